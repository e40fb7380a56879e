// Model configs in OpenCLIP's JSON schema (`embed_dim`, `vision_cfg`, `text_cfg`, `quick_gelu`),
// loaded by name from lib/configs/models/ or from a path, validated, with OpenCLIP's defaults filled in.
import { existsSync, readdirSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readRegularTextSync } from '../util/regular_file.js';

/** The image tower: a ViT with a class token, patch embedding by a stride-`patch_size` convolution. */
export interface VisionConfig {
  image_size: number;
  layers: number;
  width: number;
  patch_size: number;
  /** Width of one attention head; heads = width / head_width (OpenCLIP default 64). */
  head_width: number;
  /** MLP hidden width = round(width × mlp_ratio) (OpenCLIP default 4). */
  mlp_ratio: number;
}

/** The text tower: a causal transformer over `context_length` tokens. */
export interface TextConfig {
  context_length: number;
  vocab_size: number;
  width: number;
  heads: number;
  layers: number;
  /** MLP hidden width = round(width × mlp_ratio) (OpenCLIP default 4). */
  mlp_ratio: number;
}

export interface ClipConfig {
  /** Shared embedding width both towers project to. */
  embed_dim: number;
  vision_cfg: VisionConfig;
  text_cfg: TextConfig;
  /** x·sigmoid(1.702x) instead of GELU (OpenAI's original models); default false. */
  quick_gelu: boolean;
}

/** A loaded config with where it came from. */
export interface NamedClipConfig extends ClipConfig {
  /** The config's name: the file name without `.json`. */
  name: string;
  /** The file it was read from. */
  source: string;
}

/** Fields a caller may override after loading (e.g. the text vocabulary size of a custom tokenizer). */
export interface ClipConfigOverrides {
  embed_dim?: number;
  vision_cfg?: Partial<VisionConfig>;
  text_cfg?: Partial<TextConfig>;
  quick_gelu?: boolean;
}

/** The package root: two levels above this file, from lib/nn (tsx) and dist/nn (compiled) alike. */
const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Where the shipped model configs live. */
export const modelConfigsDir = join(packageRoot, 'lib', 'configs', 'models');

/** Names of the shipped model configs, sorted. */
export function listModelConfigs(): string[] {
  return readdirSync(modelConfigsDir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -'.json'.length))
    .sort();
}

function looksLikePath(nameOrPath: string): boolean {
  return nameOrPath.endsWith('.json') || nameOrPath.includes('/') || nameOrPath.includes('\\') || isAbsolute(nameOrPath);
}

/** The file a name or path refers to; throws naming the shipped configs when a name is unknown. */
export function resolveModelConfigPath(nameOrPath: string): string {
  if (typeof nameOrPath !== 'string' || nameOrPath === '') throw new Error('model config: expected a config name or a path to a .json file, got an empty value');
  if (looksLikePath(nameOrPath)) {
    const path = resolve(nameOrPath);
    if (!existsSync(path)) throw new Error(`model config: file not found: ${path}`);
    return path;
  }
  const path = join(modelConfigsDir, `${nameOrPath}.json`);
  if (!existsSync(path)) {
    throw new Error(`model config: unknown model '${nameOrPath}'. Known models: ${listModelConfigs().join(', ')} (or give a path to a .json file)`);
  }
  return path;
}

/**
 * Loads a model config by name (lib/configs/models/<name>.json) or from a path to a .json file,
 * applies `overrides`, fills OpenCLIP's defaults and validates it.
 */
export function loadModelConfig(nameOrPath: string, overrides: ClipConfigOverrides = {}): NamedClipConfig {
  const path = resolveModelConfigPath(nameOrPath);
  let raw: unknown;
  try {
    raw = JSON.parse(readRegularTextSync(path, { what: 'model config', maxBytes: 1 << 24 }));
  } catch (err) {
    throw new Error(`model config ${path}: not valid JSON: ${(err as Error).message}`);
  }
  const merged = applyOverrides(raw, overrides, path);
  const config = parseModelConfig(merged, path);
  return { name: basename(path, '.json'), source: path, ...config };
}

function applyOverrides(raw: unknown, overrides: ClipConfigOverrides, source: string): unknown {
  if (!isObject(raw)) throw new Error(`model config ${source}: expected a JSON object at the top level`);
  const out: Record<string, unknown> = { ...raw };
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) continue;
    if (key === 'vision_cfg' || key === 'text_cfg') {
      const base = out[key];
      out[key] = { ...(isObject(base) ? base : {}), ...(value as object) };
    } else {
      out[key] = value;
    }
  }
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const visionKeys = ['image_size', 'layers', 'width', 'patch_size', 'head_width', 'mlp_ratio'] as const;
const textKeys = ['context_length', 'vocab_size', 'width', 'heads', 'layers', 'mlp_ratio'] as const;
const topKeys = ['embed_dim', 'vision_cfg', 'text_cfg', 'quick_gelu'] as const;

/**
 * Validates a parsed config object and fills defaults. `source` names the file (or caller) in errors.
 * Unknown fields are rejected: OpenCLIP options this implementation does not build
 * (e.g. `timm_model_name`, `ls_init_value`) would otherwise be silently ignored.
 */
export function parseModelConfig(raw: unknown, source = '<object>'): ClipConfig {
  const where = `model config ${source}`;
  if (!isObject(raw)) throw new Error(`${where}: expected a JSON object at the top level`);
  rejectUnknown(raw, topKeys, where, '');
  const vision = raw.vision_cfg;
  const text = raw.text_cfg;
  if (!isObject(vision)) throw new Error(`${where}: 'vision_cfg' is ${vision === undefined ? 'missing' : 'not an object'}`);
  if (!isObject(text)) throw new Error(`${where}: 'text_cfg' is ${text === undefined ? 'missing' : 'not an object'}`);
  rejectUnknown(vision, visionKeys, where, 'vision_cfg.');
  rejectUnknown(text, textKeys, where, 'text_cfg.');

  const int = (obj: Record<string, unknown>, key: string, prefix: string, fallback?: number): number => {
    const v = obj[key] ?? fallback;
    if (v === undefined) throw new Error(`${where}: '${prefix}${key}' is missing`);
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
      throw new Error(`${where}: '${prefix}${key}' must be a positive integer, got ${JSON.stringify(v)}`);
    }
    return v;
  };
  const positive = (obj: Record<string, unknown>, key: string, prefix: string, fallback: number): number => {
    const v = obj[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
      throw new Error(`${where}: '${prefix}${key}' must be a positive number, got ${JSON.stringify(v)}`);
    }
    return v;
  };

  const vision_cfg: VisionConfig = {
    image_size: int(vision, 'image_size', 'vision_cfg.'),
    layers: int(vision, 'layers', 'vision_cfg.'),
    width: int(vision, 'width', 'vision_cfg.'),
    patch_size: int(vision, 'patch_size', 'vision_cfg.'),
    head_width: int(vision, 'head_width', 'vision_cfg.', 64),
    mlp_ratio: positive(vision, 'mlp_ratio', 'vision_cfg.', 4),
  };
  const text_cfg: TextConfig = {
    context_length: int(text, 'context_length', 'text_cfg.'),
    vocab_size: int(text, 'vocab_size', 'text_cfg.'),
    width: int(text, 'width', 'text_cfg.'),
    heads: int(text, 'heads', 'text_cfg.'),
    layers: int(text, 'layers', 'text_cfg.'),
    mlp_ratio: positive(text, 'mlp_ratio', 'text_cfg.', 4),
  };
  const embed_dim = int(raw, 'embed_dim', '');
  const quick_gelu = raw.quick_gelu ?? false;
  if (typeof quick_gelu !== 'boolean') throw new Error(`${where}: 'quick_gelu' must be true or false, got ${JSON.stringify(quick_gelu)}`);

  if (vision_cfg.width % vision_cfg.head_width !== 0) {
    throw new Error(`${where}: 'vision_cfg.width' (${vision_cfg.width}) must be a multiple of 'vision_cfg.head_width' (${vision_cfg.head_width})`);
  }
  if (vision_cfg.image_size % vision_cfg.patch_size !== 0) {
    throw new Error(`${where}: 'vision_cfg.image_size' (${vision_cfg.image_size}) must be a multiple of 'vision_cfg.patch_size' (${vision_cfg.patch_size})`);
  }
  if (text_cfg.width % text_cfg.heads !== 0) {
    throw new Error(`${where}: 'text_cfg.width' (${text_cfg.width}) must be a multiple of 'text_cfg.heads' (${text_cfg.heads})`);
  }
  return { embed_dim, vision_cfg, text_cfg, quick_gelu };
}

function rejectUnknown(obj: Record<string, unknown>, known: readonly string[], where: string, prefix: string): void {
  for (const key of Object.keys(obj)) {
    if (!known.includes(key)) {
      throw new Error(`${where}: unsupported field '${prefix}${key}' (supported: ${known.map((k) => prefix + k).join(', ')})`);
    }
  }
}

/** Attention heads of the image tower (width / head_width). */
export function visionHeads(cfg: ClipConfig): number {
  return cfg.vision_cfg.width / cfg.vision_cfg.head_width;
}

/** Patch tokens of the image tower, without the class token. */
export function visionPatches(cfg: ClipConfig): number {
  const grid = cfg.vision_cfg.image_size / cfg.vision_cfg.patch_size;
  return grid * grid;
}

/** Hidden width of an MLP block: OpenCLIP's int(width × mlp_ratio). */
export function mlpWidth(width: number, mlpRatio: number): number {
  return Math.floor(width * mlpRatio);
}
