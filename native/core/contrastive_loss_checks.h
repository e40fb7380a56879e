// Argument checks of the CLIP contrastive loss, shared by the CPU op and the CUDA dispatch.
#pragma once
#include "core/checks.h"

namespace cs {

struct LossDims {
  int64_t N, D;  // gathered rows, feature width
};

// image/text f32 [N, D], logitScale one value, rows [r0, r0 + n) within N; optional
// gradients (dImage/dText like image, dLogitScale one value), lossOut (one f32 value; the
// CUDA op's only) and workspace (at least n·N values), none overlapping the inputs.
LossDims check_contrastive_loss(DeviceCheck device, const Tensor& image, const Tensor& text,
                                const Tensor& logit_scale, int64_t r0, int64_t n, const Tensor* dimage,
                                const Tensor* dtext, const Tensor* dlogit_scale, const Tensor* loss_out,
                                const Tensor* workspace, float loss_scale);

}  // namespace cs
