// The SigLIP loss (Zhai et al. 2023; OpenCLIP's SigLipLoss), forward and backward in one call.
//
// Image features I [R, D] and text features T [C, D] are L2-normalised; t is the log of the
// logit scale, b the logit bias (1-element f32 tensors), s = exp(t):
//   z_ij = s·⟨I_i, T_j⟩ + b,   loss = Σ_ij −log σ(y_ij·z_ij) / R,
// y_ij = +1 for the positives j = i + positive_offset, −1 elsewhere (positive_offset −1: no
// positives, OpenCLIP's negative_only blocks). R = C with offset 0 is the single-process loss;
// a rank's block of the distributed loss is its R images against the C gathered texts.
//
// Gradients (of the loss, times grad_scale) OVERWRITE dimage, dtext, dlogit_scale and
// dlogit_bias; each may be nullptr. Logits are fp32 (an fp32 GEMM, as the CLIP loss: bf16
// features would move logits at scale 100 by ~0.4); −log σ is computed without overflow
// (softplus of the negated margin); sums are in double. The R×C logits block is the caller's
// workspace or allocated for the call.
#pragma once
#include "core/tensor.h"

namespace cs::cpu {

double sigmoid_loss(const Tensor& image, const Tensor& text, const Tensor& logit_scale, const Tensor& logit_bias,
                    int64_t positive_offset, Tensor* dimage, Tensor* dtext, Tensor* dlogit_scale, Tensor* dlogit_bias,
                    Tensor* workspace, float grad_scale);

}  // namespace cs::cpu
