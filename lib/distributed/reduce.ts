// The reduction every JS communicator shares: in rank order, accumulated in float64
// and rounded once, so every rank gets bit-identical results whatever the arrival order.
import type { ReduceOp } from './communicator.js';

/**
 * out[i] = Σ_r parts[r][offset + i] (÷ parts.length for 'mean'), for i < out.length.
 * `out` may be one of the parts (it is read before it is written at each index).
 */
export function reduceParts(parts: readonly Float32Array[], out: Float32Array, op: ReduceOp, offset = 0): void {
  const n = out.length;
  const inv = op === 'mean' ? 1 / parts.length : 1;
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let r = 0; r < parts.length; r++) s += parts[r][offset + i];
    out[i] = op === 'mean' ? s * inv : s;
  }
}
