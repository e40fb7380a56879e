// Pooling a sequence to one vector per sample by picking a row: the class token
// (index 0) in the vision tower, the end-of-text token in the text tower.
#pragma once
#include "core/tensor.h"

namespace cs::cpu {

// out[b] = x[b, index[b]]; x [B, S, W], index i32 [B], out [B, W]. With bf16 emulation
// on, out is rounded to bf16 like any stored activation.
void gather_rows(const Tensor& x, const Tensor& index, Tensor& out);
// dx = 0 except dx[b, index[b]] = dout[b]; dx [B, S, W] is OVERWRITTEN entirely.
void gather_rows_backward(const Tensor& dout, const Tensor& index, Tensor& dx);
// out[b] = the first s with ids[b, s] maximal (torch.argmax); ids i32 [B, S], out i32 [B].
// The end-of-text token has the largest id in CLIP's vocabulary, so this finds it.
void argmax_ids(const Tensor& ids, Tensor& out);

}  // namespace cs::cpu
