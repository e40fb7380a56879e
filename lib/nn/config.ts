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
  /** LayerScale in every block (ls_1/ls_2.gamma, initialised to this value); absent: none. */
  ls_init_value?: number;
  /** No LayerNorm before the transformer (visual.ln_pre absent). Default false. */
  no_ln_pre?: boolean;
  /** 'tok' (default): the class token; 'avg': the mean of the patch tokens (class token left out). */
  pool_type?: VisionPoolType;
  /** ln_post on the pooled vector instead of on every token before pooling (differs for 'avg'). Default false. */
  final_ln_after_pool?: boolean;
  /**
   * OpenCLIP's attentional pooler (from CoCa): `attn_pooler_queries` learned queries (default 256)
   * attend over the tokens with `attn_pooler_heads` heads (default 8); ln_post, pooling (query 0 for
   * 'tok', the mean of the others for 'avg') and proj [embed_dim, embed_dim] follow.
   */
  attentional_pool?: boolean;
  attn_pooler_queries?: number;
  attn_pooler_heads?: number;
  /** Keyword arguments of the activation: `{approximate: 'tanh'}` selects GELU's tanh form. */
  act_kwargs?: ActKwargs;
  /** Keyword arguments of every LayerNorm of the tower: `{eps}` (default 1e-5). */
  norm_kwargs?: NormKwargs;
  /** Accepted at 0 only (PatchDropout is a training-time option this implementation does not have). */
  patch_dropout?: number;
  /** Accepted as 'learnable' only. */
  pos_embed_type?: 'learnable';
}

export type VisionPoolType = 'tok' | 'avg';
/** OpenCLIP's text_global_pool: ids' first/last position, the argmax id (CLIP's eot), or the first `eos_id`. */
export type TextPoolType = 'first' | 'last' | 'argmax' | 'eos';
export interface ActKwargs {
  approximate?: 'none' | 'tanh';
}
export interface NormKwargs {
  eps?: number;
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
  /** LayerScale in every block; absent: none. */
  ls_init_value?: number;
  /** Bidirectional attention (SigLIP/CLIPA text towers). Default false (causal). */
  no_causal_mask?: boolean;
  /** Which token's features become the text embedding. Default 'argmax'. */
  pool_type?: TextPoolType;
  /** The id pooled at with pool_type 'eos' (OpenCLIP default 2). */
  eos_id?: number;
  /** 'linear' (default) or 'none' (no text_projection: the text width must equal embed_dim). */
  proj_type?: 'linear' | 'none';
  /** text_projection as nn.Linear with a bias (`text_projection.weight` [embed, width] and `.bias`). */
  proj_bias?: boolean;
  /**
   * Accepted with no effect, as in OpenCLIP 3.x (its text tower is built without it; ln_final is
   * per token, so pooling before or after it gives the same features).
   */
  final_ln_after_pool?: boolean;
  act_kwargs?: ActKwargs;
  norm_kwargs?: NormKwargs;
  /** Tokenizer settings (hf_tokenizer_name, tokenizer_kwargs, tokenizer_mode) are kept for the tokenizer; the model does not use them. */
  hf_tokenizer_name?: string;
  tokenizer_kwargs?: Record<string, unknown>;
  tokenizer_mode?: string;
  /** Padding id: only used by OpenCLIP with embed_cls (CoCa), kept for the record. */
  pad_id?: number;
}

export interface ClipConfig {
  /** Shared embedding width both towers project to. */
  embed_dim: number;
  vision_cfg: VisionConfig;
  text_cfg: TextConfig;
  /** x·sigmoid(1.702x) instead of GELU (OpenAI's original models); default false. */
  quick_gelu: boolean;
  /** A learned logit bias (`logit_bias`, shape []) with this initial value (SigLIP: -10); absent: none. */
  init_logit_bias?: number;
  /** OpenCLIP's CustomTextCLIP: the text tower's parameters are named `text.…` (SigLIP configs). */
  custom_text?: boolean;
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
  /** E.g. -10 for SigLIP training (open_clip_train --siglip adds a logit bias this way). */
  init_logit_bias?: number;
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
    const base = quickGeluBase(nameOrPath);
    if (base !== undefined && existsSync(join(modelConfigsDir, `${base}.json`))) return join(modelConfigsDir, `${base}.json`);
    throw new Error(`model config: unknown model '${nameOrPath}'. Known models: ${listModelConfigs().join(', ')} (or give a path to a .json file)`);
  }
  return path;
}

const QUICK_GELU_SUFFIX = '-quickgelu';

/** 'ViT-B-32' for 'ViT-B-32-quickgelu' (OpenCLIP's naming of the QuickGELU variants); undefined otherwise. */
function quickGeluBase(name: string): string | undefined {
  return name.endsWith(QUICK_GELU_SUFFIX) && name.length > QUICK_GELU_SUFFIX.length ? name.slice(0, -QUICK_GELU_SUFFIX.length) : undefined;
}

/**
 * Loads a model config by name (lib/configs/models/<name>.json) or from a path to a .json file,
 * applies `overrides`, fills OpenCLIP's defaults and validates it.
 */
export function loadModelConfig(nameOrPath: string, overrides: ClipConfigOverrides = {}): NamedClipConfig {
  const path = resolveModelConfigPath(nameOrPath);
  // 'NAME-quickgelu' without a file of its own: NAME's config with QuickGELU, named as asked.
  const viaSuffix = !looksLikePath(nameOrPath) && basename(path, '.json') !== nameOrPath;
  let raw: unknown;
  try {
    raw = JSON.parse(readRegularTextSync(path, { what: 'model config', maxBytes: 1 << 24 }));
  } catch (err) {
    throw new Error(`model config ${path}: not valid JSON: ${(err as Error).message}`);
  }
  const merged = applyOverrides(viaSuffix ? { ...(isObject(raw) ? raw : {}), quick_gelu: true } : raw, overrides, path);
  const config = parseModelConfig(merged, path);
  return { name: viaSuffix ? nameOrPath : basename(path, '.json'), source: path, ...config };
}

/** A config object (OpenCLIP schema) with `overrides` applied, validated. */
export function parseModelConfigWith(raw: unknown, overrides: ClipConfigOverrides = {}, source = '<object>'): ClipConfig {
  return parseModelConfig(applyOverrides(raw, overrides, source), source);
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

const visionKeys = [
  'image_size', 'layers', 'width', 'patch_size', 'head_width', 'mlp_ratio',
  'ls_init_value', 'no_ln_pre', 'pool_type', 'final_ln_after_pool', 'attentional_pool', 'attn_pooler_queries', 'attn_pooler_heads',
  'act_kwargs', 'norm_kwargs', 'patch_dropout', 'pos_embed_type', 'output_tokens',
] as const;
const textKeys = [
  'context_length', 'vocab_size', 'width', 'heads', 'layers', 'mlp_ratio',
  'ls_init_value', 'no_causal_mask', 'pool_type', 'eos_id', 'proj_type', 'proj_bias', 'final_ln_after_pool',
  'act_kwargs', 'norm_kwargs', 'hf_tokenizer_name', 'tokenizer_kwargs', 'tokenizer_mode', 'pad_id', 'embed_cls', 'output_tokens',
] as const;
const topKeys = ['embed_dim', 'vision_cfg', 'text_cfg', 'quick_gelu', 'init_logit_bias', 'custom_text'] as const;

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
  parseVisionExtras(vision, vision_cfg, where);
  parseTextExtras(text, text_cfg, where);
  const extras: Pick<ClipConfig, 'init_logit_bias' | 'custom_text'> = {};
  if (raw.init_logit_bias !== undefined && raw.init_logit_bias !== null) {
    if (typeof raw.init_logit_bias !== 'number' || !Number.isFinite(raw.init_logit_bias)) {
      throw new Error(`${where}: 'init_logit_bias' must be a finite number, got ${JSON.stringify(raw.init_logit_bias)}`);
    }
    extras.init_logit_bias = raw.init_logit_bias;
  }
  if (raw.custom_text !== undefined) extras.custom_text = bool(raw.custom_text, 'custom_text', where);
  if (vision_cfg.attentional_pool) {
    const heads = vision_cfg.attn_pooler_heads ?? 8;
    if (embed_dim % heads !== 0) throw new Error(`${where}: 'embed_dim' (${embed_dim}) must be a multiple of 'vision_cfg.attn_pooler_heads' (${heads}) for the attentional pooler`);
    if (vision_cfg.pool_type === 'avg' && (vision_cfg.attn_pooler_queries ?? 256) < 2) {
      throw new Error(`${where}: 'vision_cfg.pool_type' 'avg' after the attentional pooler averages queries 1.., so 'attn_pooler_queries' must be at least 2`);
    }
  }
  if (text_cfg.proj_type === 'none' && text_cfg.width !== embed_dim) {
    throw new Error(`${where}: 'text_cfg.proj_type' 'none' leaves the text features at the text width (${text_cfg.width}), which must then equal 'embed_dim' (${embed_dim})`);
  }

  if (vision_cfg.width % vision_cfg.head_width !== 0) {
    throw new Error(`${where}: 'vision_cfg.width' (${vision_cfg.width}) must be a multiple of 'vision_cfg.head_width' (${vision_cfg.head_width})`);
  }
  if (vision_cfg.image_size % vision_cfg.patch_size !== 0) {
    throw new Error(`${where}: 'vision_cfg.image_size' (${vision_cfg.image_size}) must be a multiple of 'vision_cfg.patch_size' (${vision_cfg.patch_size})`);
  }
  if (text_cfg.width % text_cfg.heads !== 0) {
    throw new Error(`${where}: 'text_cfg.width' (${text_cfg.width}) must be a multiple of 'text_cfg.heads' (${text_cfg.heads})`);
  }
  return { embed_dim, vision_cfg, text_cfg, quick_gelu, ...extras };
}

function bool(v: unknown, key: string, where: string): boolean {
  if (typeof v !== 'boolean') throw new Error(`${where}: '${key}' must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

function finitePositive(v: unknown, key: string, where: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new Error(`${where}: '${key}' must be a positive number, got ${JSON.stringify(v)}`);
  return v;
}

function parseActKwargs(v: unknown, key: string, where: string): ActKwargs | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) throw new Error(`${where}: '${key}' must be an object, got ${JSON.stringify(v)}`);
  for (const k of Object.keys(v)) {
    if (k !== 'approximate') throw new Error(`${where}: unsupported field '${key}.${k}' (nn.GELU takes only 'approximate')`);
  }
  if (v.approximate !== undefined && v.approximate !== 'none' && v.approximate !== 'tanh') {
    throw new Error(`${where}: '${key}.approximate' must be 'none' or 'tanh' (nn.GELU), got ${JSON.stringify(v.approximate)}`);
  }
  return v.approximate === undefined ? {} : { approximate: v.approximate as 'none' | 'tanh' };
}

function parseNormKwargs(v: unknown, key: string, where: string): NormKwargs | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) throw new Error(`${where}: '${key}' must be an object, got ${JSON.stringify(v)}`);
  for (const k of Object.keys(v)) {
    if (k !== 'eps') throw new Error(`${where}: unsupported field '${key}.${k}' (supported: ${key}.eps)`);
  }
  return v.eps === undefined ? {} : { eps: finitePositive(v.eps, `${key}.eps`, where) };
}

/** OpenCLIP's VisionTransformer options beyond the plain ViT, validated into `out`. */
function parseVisionExtras(v: Record<string, unknown>, out: VisionConfig, where: string): void {
  const p = 'vision_cfg.';
  if (v.ls_init_value !== undefined && v.ls_init_value !== null) {
    if (typeof v.ls_init_value !== 'number' || !Number.isFinite(v.ls_init_value)) throw new Error(`${where}: '${p}ls_init_value' must be a number, got ${JSON.stringify(v.ls_init_value)}`);
    out.ls_init_value = v.ls_init_value;
  }
  if (v.no_ln_pre !== undefined) out.no_ln_pre = bool(v.no_ln_pre, `${p}no_ln_pre`, where);
  if (v.pool_type !== undefined) {
    if (v.pool_type === 'none') {
      throw new Error(`${where}: '${p}pool_type' 'none' makes the image tower return every token (OpenCLIP uses it inside CoCa); a CLIP model needs one embedding per image: use 'tok' or 'avg'`);
    }
    if (v.pool_type !== 'tok' && v.pool_type !== 'avg') throw new Error(`${where}: '${p}pool_type' must be 'tok' or 'avg', got ${JSON.stringify(v.pool_type)}`);
    out.pool_type = v.pool_type;
  }
  if (v.final_ln_after_pool !== undefined) out.final_ln_after_pool = bool(v.final_ln_after_pool, `${p}final_ln_after_pool`, where);
  if (typeof v.attentional_pool === 'string') {
    throw new Error(
      `${where}: '${p}attentional_pool' ${JSON.stringify(v.attentional_pool)} (separate contrastive and token poolers) is not built: ` +
        "OpenCLIP marks these modes untested work in progress; use true (one pooler) or false",
    );
  }
  if (v.attentional_pool !== undefined) out.attentional_pool = bool(v.attentional_pool, `${p}attentional_pool`, where);
  for (const k of ['attn_pooler_queries', 'attn_pooler_heads'] as const) {
    if (v[k] === undefined) continue;
    const n = int0(v[k], `${p}${k}`, where);
    if (n < 1) throw new Error(`${where}: '${p}${k}' must be at least 1`);
    out[k] = n;
  }
  const act = parseActKwargs(v.act_kwargs, `${p}act_kwargs`, where);
  if (act) out.act_kwargs = act;
  const norm = parseNormKwargs(v.norm_kwargs, `${p}norm_kwargs`, where);
  if (norm) out.norm_kwargs = norm;
  if (v.patch_dropout !== undefined && v.patch_dropout !== 0) {
    throw new Error(`${where}: '${p}patch_dropout' ${JSON.stringify(v.patch_dropout)} is not supported (patch dropout is not implemented; use 0)`);
  }
  if (v.pos_embed_type !== undefined && v.pos_embed_type !== 'learnable') {
    throw new Error(`${where}: '${p}pos_embed_type' ${JSON.stringify(v.pos_embed_type)} is not supported (only 'learnable')`);
  }
  if (v.output_tokens !== undefined && v.output_tokens !== false) throw new Error(`${where}: '${p}output_tokens' is not supported (CoCa only)`);
}

function int0(v: unknown, key: string, where: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new Error(`${where}: '${key}' must be a non-negative integer, got ${JSON.stringify(v)}`);
  return v;
}

/** OpenCLIP's TextTransformer options beyond CLIP's, validated into `out`. */
function parseTextExtras(t: Record<string, unknown>, out: TextConfig, where: string): void {
  const p = 'text_cfg.';
  if (t.ls_init_value !== undefined && t.ls_init_value !== null) {
    if (typeof t.ls_init_value !== 'number' || !Number.isFinite(t.ls_init_value)) throw new Error(`${where}: '${p}ls_init_value' must be a number, got ${JSON.stringify(t.ls_init_value)}`);
    out.ls_init_value = t.ls_init_value;
  }
  if (t.no_causal_mask !== undefined) out.no_causal_mask = bool(t.no_causal_mask, `${p}no_causal_mask`, where);
  if (t.pool_type !== undefined) {
    if (t.pool_type === 'none') throw new Error(`${where}: '${p}pool_type' 'none' makes the text tower return every token; a CLIP model needs one embedding per text: use 'argmax', 'first', 'last' or 'eos'`);
    if (!['first', 'last', 'argmax', 'eos'].includes(t.pool_type as string)) {
      throw new Error(`${where}: '${p}pool_type' must be 'first', 'last', 'argmax' or 'eos', got ${JSON.stringify(t.pool_type)}`);
    }
    out.pool_type = t.pool_type as TextPoolType;
  }
  if (t.eos_id !== undefined) out.eos_id = int0(t.eos_id, `${p}eos_id`, where);
  if (t.proj_type !== undefined) {
    if (t.proj_type === 'mlp') {
      throw new Error(`${where}: '${p}proj_type' 'mlp' is not supported: OpenCLIP's own text tower builds a plain linear projection for it (only Hugging Face text towers have an MLP head); write 'linear'`);
    }
    if (t.proj_type !== 'linear' && t.proj_type !== 'none') throw new Error(`${where}: '${p}proj_type' must be 'linear' or 'none', got ${JSON.stringify(t.proj_type)}`);
    out.proj_type = t.proj_type;
  }
  if (t.proj_bias !== undefined) out.proj_bias = bool(t.proj_bias, `${p}proj_bias`, where);
  if (t.final_ln_after_pool !== undefined) out.final_ln_after_pool = bool(t.final_ln_after_pool, `${p}final_ln_after_pool`, where);
  const act = parseActKwargs(t.act_kwargs, `${p}act_kwargs`, where);
  if (act) out.act_kwargs = act;
  const norm = parseNormKwargs(t.norm_kwargs, `${p}norm_kwargs`, where);
  if (norm) out.norm_kwargs = norm;
  if (t.hf_tokenizer_name !== undefined) {
    if (typeof t.hf_tokenizer_name !== 'string') throw new Error(`${where}: '${p}hf_tokenizer_name' must be a string`);
    out.hf_tokenizer_name = t.hf_tokenizer_name;
  }
  if (t.tokenizer_kwargs !== undefined) {
    if (!isObject(t.tokenizer_kwargs)) throw new Error(`${where}: '${p}tokenizer_kwargs' must be an object`);
    out.tokenizer_kwargs = t.tokenizer_kwargs;
  }
  if (t.tokenizer_mode !== undefined && t.tokenizer_mode !== null) {
    if (typeof t.tokenizer_mode !== 'string') throw new Error(`${where}: '${p}tokenizer_mode' must be a string`);
    out.tokenizer_mode = t.tokenizer_mode;
  }
  if (t.pad_id !== undefined) out.pad_id = int0(t.pad_id, `${p}pad_id`, where);
  if (t.embed_cls !== undefined && t.embed_cls !== false) throw new Error(`${where}: '${p}embed_cls' is not supported (CoCa's appended class token)`);
  if (t.output_tokens !== undefined && t.output_tokens !== false) throw new Error(`${where}: '${p}output_tokens' is not supported (CoCa only)`);
}

/** LayerNorm eps of a tower (norm_kwargs.eps, default 1e-5 as nn.LayerNorm). */
export function normEps(cfg: { norm_kwargs?: NormKwargs }): number {
  return cfg.norm_kwargs?.eps ?? 1e-5;
}

/** The tower's activation: QuickGELU when the model says so, else GELU (erf, or tanh with act_kwargs.approximate 'tanh'). */
export function activationOf(quickGelu: boolean, cfg: { act_kwargs?: ActKwargs }): 'gelu' | 'gelu_tanh' | 'quick_gelu' {
  if (quickGelu) {
    if (cfg.act_kwargs && Object.keys(cfg.act_kwargs).length > 0) {
      throw new Error("model config: 'act_kwargs' with quick_gelu: OpenCLIP would pass them to QuickGELU, which takes none");
    }
    return 'quick_gelu';
  }
  return cfg.act_kwargs?.approximate === 'tanh' ? 'gelu_tanh' : 'gelu';
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
