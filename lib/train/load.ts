// Loading a CLIP's weights from a safetensors file in OpenCLIP's state-dict naming: a pretrained
// `open_clip_model.safetensors`, a file made with `safetensors.torch.save_file(model.state_dict())`,
// or one of our `checkpoint-<step>.safetensors` (or the latest whole checkpoint of a training
// directory). F32, F16, BF16 and F64 weights are accepted; they are converted to f32.
//
// The header is checked against the model before any tensor data is read, and every fault is
// reported at once (missing names, unexpected names, shape mismatches), so a wrong config or a
// foreign file is explained in one message rather than found one tensor at a time.
import { stat } from 'node:fs/promises';

import { CLIP, createModel, type CreateModelOptions } from '../nn/clip.js';
import type { ClipConfig } from '../nn/config.js';
import { findLatestCheckpoint } from './checkpoint.js';
import { countNonFinite } from '../util/non_finite.js';
import { SafetensorsReader, type TensorEntry } from './safetensors.js';

/** Tensors OpenCLIP keeps as buffers (the causal mask); they carry no weights and are ignored. */
function isIgnoredBuffer(name: string): boolean {
  return name === 'attn_mask' || name.endsWith('.attn_mask');
}

/** Prefixes a training wrapper adds to every name (DistributedDataParallel's `module.`, torch.compile's `_orig_mod.`). */
const WRAPPER_PREFIXES = ['module.', '_orig_mod.'];

const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16', 'F64']);

export interface LoadCheckpointOptions {
  /** Refuse tensors the model has no parameter for (default true; OpenCLIP's buffers are always allowed). */
  strict?: boolean;
  /** When the model is created here: its initialisation seed and config overrides. */
  create?: CreateModelOptions;
}

/** What `loadInto` matched: the file's name for each parameter, and the file's dtypes. */
export interface LoadReport {
  path: string;
  /** The prefix stripped from every name ('' when none). */
  strippedPrefix: string;
  /** Tensors per dtype in the file, e.g. { F32: 146, BF16: 0 }. */
  dtypes: Record<string, number>;
  /** Tensors in the file that were not loaded (ignored buffers, or extras when not strict). */
  ignored: string[];
}

function list(names: string[], max = 8): string {
  return names.length <= max ? names.join(', ') : `${names.slice(0, max).join(', ')}, … (${names.length} in all)`;
}

function shapeText(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** The config fields a tensor's shape depends on, for the hint in a mismatch message. */
function shapeHint(name: string): string {
  if (name === 'visual.positional_embedding') return ' (vision_cfg.image_size / patch_size and width)';
  if (name === 'positional_embedding') return ' (text_cfg.context_length and width)';
  if (name === 'token_embedding.weight') return ' (text_cfg.vocab_size and width)';
  if (name === 'visual.conv1.weight') return ' (vision_cfg.patch_size and width)';
  if (name === 'visual.proj' || name === 'text_projection') return ' (embed_dim and the tower width)';
  if (name.includes('.mlp.')) return ' (width and mlp_ratio)';
  return '';
}

/** Resolves a directory to the weights of its latest whole training checkpoint. */
async function resolveWeightsPath(path: string): Promise<string> {
  let info;
  try {
    info = await stat(path);
  } catch (err) {
    throw new Error(`loadCheckpoint: cannot read '${path}': ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (err as Error).message}`);
  }
  if (!info.isDirectory()) return path;
  const found = await findLatestCheckpoint(path);
  if (!found) throw new Error(`loadCheckpoint: '${path}' is a directory with no whole training checkpoint (expected checkpoint-<step>.safetensors with latest.json)`);
  return found.weights;
}

/**
 * Loads the weights in `path` (a safetensors file, or a training directory: its latest checkpoint)
 * into `model`. Every parameter must be in the file with its exact shape (a one-element logit_scale
 * may be [] or [1]); nothing is written to the model unless all of them are (only a file changed
 * on disk while it is read can fail halfway, leaving the model partly loaded).
 */
export async function loadWeightsInto(model: CLIP, path: string, options: Pick<LoadCheckpointOptions, 'strict'> = {}): Promise<LoadReport> {
  const file = await resolveWeightsPath(path);
  const reader = await SafetensorsReader.open(file);
  try {
    const where = `loadCheckpoint: ${file}`;
    const entries = reader.header.tensors;
    if (entries.length === 0) throw new Error(`${where}: the file holds no tensors`);
    const prefix = WRAPPER_PREFIXES.find((p) => entries.every((e) => e.name.startsWith(p))) ?? '';
    const byName = new Map<string, TensorEntry>(entries.map((e) => [e.name.slice(prefix.length), e]));
    const dtypes: Record<string, number> = {};
    for (const e of entries) dtypes[e.dtype] = (dtypes[e.dtype] ?? 0) + 1;

    const params = model.namedParameters();
    const faults: string[] = [];
    const missing = [...params.keys()].filter((n) => !byName.has(n));
    if (missing.length) faults.push(`missing ${missing.length} tensor(s) the model needs: ${list(missing)}`);
    const extra = [...byName.keys()].filter((n) => !params.has(n) && !isIgnoredBuffer(n));
    if (extra.length && (options.strict ?? true)) {
      faults.push(`${extra.length} tensor(s) this config has no parameter for: ${list(extra)}`);
    }
    const shapes: string[] = [];
    const badTypes: string[] = [];
    for (const [name, p] of params) {
      const e = byName.get(name);
      if (!e) continue;
      if (!FLOAT_DTYPES.has(e.dtype)) badTypes.push(`${name} is ${e.dtype}`);
      const numel = e.shape.reduce((a, b) => a * b, 1);
      const same = e.shape.length === p.shape.length && e.shape.every((d, i) => d === p.shape[i]);
      if (!same && !(p.numel === 1 && numel === 1)) shapes.push(`${name}: file ${shapeText(e.shape)}, model ${shapeText(p.shape)}${shapeHint(name)}`);
    }
    if (shapes.length) faults.push(`${shapes.length} shape mismatch(es) — the weights were made for a different config:\n    ${shapes.slice(0, 12).join('\n    ')}${shapes.length > 12 ? `\n    … (${shapes.length} in all)` : ''}`);
    if (badTypes.length) faults.push(`weights must be F32, F16, BF16 or F64: ${list(badTypes)}`);
    if (faults.length) {
      const looksForeign = missing.length === params.size;
      throw new Error(`${where}: does not fit the model:\n  ${faults.join('\n  ')}${looksForeign ? '\n  (none of the names match: is this an OpenCLIP CLIP state dict? Non-ViT towers (timm, HF text) are not supported)' : ''}`);
    }

    // All checked: read each tensor straight into the parameter's memory, converting to f32
    // (no second copy of the weights: a large model would need twice its memory).
    for (const [name, p] of params) await reader.readInto(prefix + name, p.values());
    // Diverged weights load (they may be inspected) but never silently.
    const nonFinite = [...params].map(([name, p]) => [name, countNonFinite(p.values()).count] as const).filter(([, c]) => c > 0);
    if (nonFinite.length > 0) {
      process.emitWarning(`${where}: ${nonFinite.length} tensor(s) hold NaN or ±Inf values: ${list(nonFinite.map(([n, c]) => `${n} (${c})`))}`, 'ClipscaleWarning');
    }
    const ignored = [...byName.keys()].filter((n) => !params.has(n)).map((n) => prefix + n);
    return { path: file, strippedPrefix: prefix, dtypes, ignored };
  } finally {
    await reader.close();
  }
}

/**
 * A CLIP with the weights of `path`. `model` is a config name (lib/configs/models), a path to a
 * config JSON, a config object, or a CLIP to load into.
 *
 *   const model = await loadCheckpoint('ViT-B-32', 'open_clip_model.safetensors');
 *   const trained = await loadCheckpoint('tiny', 'runs/tiny');   // latest checkpoint of a run
 */
export async function loadCheckpoint(model: string | ClipConfig | CLIP, path: string, options: LoadCheckpointOptions = {}): Promise<CLIP> {
  const target = model instanceof CLIP ? model : createModel(model, options.create ?? {});
  try {
    await loadWeightsInto(target, path, options);
  } catch (err) {
    if (target !== model) target.dispose();
    throw err;
  }
  return target;
}
