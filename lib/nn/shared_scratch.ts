// Buffers a tower's blocks share for what they write and read soon after, and keep for nothing
// else: in forward, out_proj's and c_proj's outputs (read by the residual sums); in backward, a
// linear layer's dx, attention's dqkv, and the residual sums' gradients (the mid-block one, and
// the block's input gradient, which the next block down reads and then overwrites with its own).
// Each block's own buffers were memory that every such write found out of cache (last touched a
// step earlier); one set serves every block, so those writes and the reads after them stay in
// cache. The values are the same.
import type { Tensor } from '../tensor.js';

/** The shared f32 buffer for one kind of value (`key`), of this shape. */
export type SharedScratch = (key: 'output' | 'width' | 'hidden' | 'qkv' | 'mid' | 'residual', shape: readonly number[]) => Tensor;
