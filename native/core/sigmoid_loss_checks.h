// Argument checks of the SigLIP (sigmoid) loss, shared by the CPU op and the CUDA dispatch.
#pragma once
#include "core/checks.h"

namespace cs {

struct SigmoidLossDims {
  int64_t R, C, D;  // image rows, text rows, feature width
};

// image f32 [R, D], text f32 [C, D]; logitScale and logitBias one value each; positives at
// j = i + positiveOffset (0 ≤ offset, offset + R ≤ C) or none (offset −1). Optional gradients
// (dImage like image, dText like text, dLogitScale / dLogitBias one value each), lossOut
// (one f32 value) and workspace (at least R·C values), none overlapping the inputs.
SigmoidLossDims check_sigmoid_loss(DeviceCheck device, const Tensor& image, const Tensor& text,
                                   const Tensor& logit_scale, const Tensor& logit_bias, int64_t positive_offset,
                                   const Tensor* dimage, const Tensor* dtext, const Tensor* dlogit_scale,
                                   const Tensor* dlogit_bias, const Tensor* loss_out, const Tensor* workspace,
                                   float grad_scale);

}  // namespace cs
