// The model config a training run saved with its checkpoints, so that a run folder can be used
// without naming the model again (OpenCLIP keeps it in params.txt; we keep the whole config).
import { readFile, stat } from 'node:fs/promises';

import { findLatestCheckpoint } from '../train/checkpoint.js';
import { parseModelConfig, type ClipConfig } from '../nn/config.js';

export interface RunModel {
  /** The config's name as saved ('tiny', 'ViT-B-32', …), or 'run' when none was saved. */
  name: string;
  config: ClipConfig;
  /** The state file it was read from. */
  source: string;
}

/** True when `path` is a directory (a run folder). */
export async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/**
 * The model config saved in the latest whole checkpoint of run folder `dir`. Throws naming the
 * folder when it holds no checkpoint or the checkpoint has no config.
 */
export async function readRunModel(dir: string): Promise<RunModel> {
  const found = await findLatestCheckpoint(dir);
  if (!found) throw new Error(`'${dir}' holds no whole training checkpoint (checkpoint-<step>.safetensors with its state-<step>.json), so it names no model; give --model`);
  let doc: { state?: { config?: { model?: unknown } } };
  try {
    doc = JSON.parse(await readFile(found.state, 'utf8'));
  } catch (err) {
    throw new Error(`${found.state}: cannot read the run's state: ${(err as Error).message}`);
  }
  const saved = doc.state?.config?.model;
  if (typeof saved !== 'object' || saved === null) throw new Error(`${found.state}: the checkpoint saved no model config; give --model`);
  const { name, source: _source, ...rest } = saved as Record<string, unknown>;
  return { name: typeof name === 'string' ? name : 'run', config: parseModelConfig(rest, found.state), source: found.state };
}
