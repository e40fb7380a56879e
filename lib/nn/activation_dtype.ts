// Which type a stored activation that only a linear reads takes: on CUDA in a bf16 / fp16 run,
// that 16-bit type (half the memory; the linear reads it in place, forward and for its weight
// gradient, with the same values as the f32 activation rounded to it). f32 on the CPU, in fp32,
// and when the row (the linear's in-features) is not a multiple of 8 (16-byte rows for the GEMM).
import { native } from '../native.js';
import type { Tensor } from '../tensor.js';

let enabled = true;

/**
 * Turns the 16-bit storage of these activations off (f32 storage rounded to the 16-bit type, the
 * same numbers) or back on; returns the previous setting. Process-wide; for comparisons.
 */
export function setActivations16(on: boolean): boolean {
  const previous = enabled;
  enabled = on;
  return previous;
}

export function linearInputDtype(like: Tensor, features: number): 'f32' | 'bf16' | 'f16' {
  return features % 8 !== 0 ? 'f32' : storedDtype(like);
}

/**
 * The type of an activation whose readers all take the run's 16-bit type at any alignment (qkv:
 * the attention's pack pass): as linearInputDtype without the row condition.
 */
export function storedDtype(like: Tensor): 'f32' | 'bf16' | 'f16' {
  if (!enabled || like.device === 'cpu') return 'f32';
  const precision = native.cudaPrecision();
  return precision === 'fp32' ? 'f32' : precision === 'fp16' ? 'f16' : 'bf16';
}
