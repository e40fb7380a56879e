// The rows a tower pools, picked out before its last block's token-wise work. Only the pooled
// token of each sequence is read after the last block, so that block's out_proj, residual sums,
// ln_2 and MLP run on B rows instead of B·S (its attention still reads every token's keys and
// values, and on the CPU computes only the picked queries: tokenRows), in inference and in training
// (the other rows' gradients there are exactly zero). Each picked row goes through the same ops as
// it would unpicked, with the same bits.
import * as ops from '../ops.js';
import type { Tensor } from '../tensor.js';

/** Picks `count` rows of a token tensor [..., W] into [count, W]; scatter is its backward. */
export interface RowPick {
  readonly count: number;
  gather(from: Tensor, into: Tensor): void;
  /** into [..., W] (overwritten): the picked rows from `from` [count, W], zero everywhere else. */
  scatter(from: Tensor, into: Tensor): void;
  /**
   * into (i32 [count], CPU): the picked rows as indices into the flattened token rows of a tensor
   * whose sequences hold `length` tokens each (packed: ignored), ascending: the attention's queries.
   */
  tokenRows(length: number, into: Tensor): void;
}

/** Row index[b] of each sequence b of a tensor [B, S, W] (index i32 [B]). */
export function pickPerSequence(index: Tensor): RowPick {
  return {
    count: index.shape[0],
    gather: (from, into) => ops.gatherRows(from, index, into),
    scatter: (from, into) => ops.gatherRowsBackward(from, index, into),
    tokenRows(length, into) {
      const picked = index.view() as Int32Array;
      const rows = into.view() as Int32Array;
      for (let b = 0; b < picked.length; b++) rows[b] = b * length + picked[b];
    },
  };
}

/** The rows at these token positions of a packed [1, T, W] (sequences end to end; CPU f32 tensors). */
export function pickPositions(positions: readonly number[]): RowPick {
  return {
    count: positions.length,
    gather(from, into) {
      const w = from.shape[from.shape.length - 1];
      const src = from.viewF32();
      const dst = into.viewF32();
      positions.forEach((p, i) => dst.set(src.subarray(p * w, (p + 1) * w), i * w));
    },
    scatter(from, into) {
      const w = into.shape[into.shape.length - 1];
      const src = from.viewF32();
      const dst = into.viewF32();
      dst.fill(0);
      positions.forEach((p, i) => dst.set(src.subarray(i * w, (i + 1) * w), p * w));
    },
    tokenRows(_length, into) {
      (into.view() as Int32Array).set(positions);
    },
  };
}
