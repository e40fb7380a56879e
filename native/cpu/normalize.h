// L2 normalisation along the last dimension, as torch.nn.functional.normalize:
//   y = x / max(‖x‖, 1e-12)
// The CLIP features that enter the contrastive loss; like autocast's normalize, the
// output stays fp32 (no bf16 rounding under emulation).
#pragma once
#include "core/tensor.h"

namespace cs::cpu {

constexpr float kL2NormalizeEps = 1e-12f;

// x [..., D], out same shape (may be x itself), norms: one f32 per row (‖x‖, unclamped).
void l2normalize_forward(const Tensor& x, Tensor& out, Tensor& norms);
// From the forward's out (y) and norms: dx = (dout − y·(y·dout)) / ‖x‖, or dout / eps
// where the norm was clamped. dx may be dout itself.
void l2normalize_backward(const Tensor& dout, const Tensor& out, const Tensor& norms, Tensor& dx);

}  // namespace cs::cpu
