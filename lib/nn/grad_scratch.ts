// Buffers a tower's blocks share for the gradients their backward makes and reads soon after: a
// linear layer's dx, attention's dqkv, and the residual sums' gradients (the mid-block one, and the
// block's input gradient, which the next block down reads and then overwrites with its own). Each
// block's own buffers were memory that every such write found out of cache (last touched a step
// earlier); one set serves every block, so those writes and the reads after them stay in cache.
// The values are the same.
import type { Tensor } from '../tensor.js';

/** The shared f32 buffer for one kind of gradient (`key`), of this shape. */
export type GradScratch = (key: 'width' | 'hidden' | 'qkv' | 'mid' | 'residual', shape: readonly number[]) => Tensor;
