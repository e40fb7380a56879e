// How much memory a model needs, estimated from its config before anything is allocated, so that a
// config that cannot fit (text width 32768 × 1024 layers, 10^6 vision layers, a context of 10^7) is
// refused with the estimate in the message instead of failing deep in an allocation (or swapping).
import os from 'node:os';

import type { ClipConfig } from './config.js';
import { computeCost } from '../scaling/flops.js';

const F32 = 4;

/** Bytes of a model's parameters and their gradients (every parameter carries a gradient). */
export function modelBytes(cfg: ClipConfig): number {
  return computeCost(cfg).params * 2 * F32;
}

/**
 * A lower-end estimate of training memory at a batch size: weights, gradients and two AdamW moments,
 * and per-layer activations kept for backward (at least 8 floats per token and width, plus attention
 * probabilities, per layer). Kept low (8 floats, where a block keeps more) so that it errs towards accepting.
 */
export function trainingBytes(cfg: ClipConfig, batchSize: number): number {
  const v = cfg.vision_cfg;
  const t = cfg.text_cfg;
  const vTokens = (Math.floor(v.image_size / v.patch_size) ** 2 + 1);
  const vHeads = v.width / v.head_width;
  const perSample =
    v.layers * (vTokens * v.width * 8 + vHeads * vTokens * vTokens) +
    t.layers * (t.context_length * t.width * 8 + t.heads * t.context_length * t.context_length);
  return computeCost(cfg).params * 4 * F32 + batchSize * perSample * F32;
}

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toPrecision(3)} GiB`;
}

/** The memory a process may plan to use: the machine's physical memory. */
export function memoryLimitBytes(): number {
  return os.totalmem();
}

/** Throws, with the estimate, when `bytes` cannot fit in this machine's memory. */
export function checkFits(bytes: number, what: string, limit = memoryLimitBytes()): void {
  if (!Number.isFinite(bytes) || bytes > limit) {
    throw new Error(`${what} needs an estimated ${gib(bytes)}, more than this machine's ${gib(limit)} of memory; refusing before allocating it`);
  }
}
