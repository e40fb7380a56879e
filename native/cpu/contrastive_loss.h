// The CLIP contrastive loss, forward and backward fused in one call.
//
// Image features I and text features T are [N, D] (already L2-normalised), t is the
// log of the logit scale (a 1-element f32 tensor), s = exp(t):
//   logits = s · I · Tᵀ,   loss = ½ · (CE(logits, arange) + CE(logitsᵀ, arange)),
// each cross-entropy a mean over N rows.
//
// Distributed form (OpenCLIP's --local-loss --gather-with-grad): I and T are the
// features gathered from every rank ([N, D], N the global batch) and this rank owns
// rows r0 .. r0+n. It computes its own image rows against all texts and its own text
// rows against all images, and returns this rank's CONTRIBUTION to the global loss:
//   loss_r = (Σ_{i∈r} CE_image_i + Σ_{j∈r} CE_text_j) / (2N),   Σ_r loss_r = global loss.
// Its gradients are those of loss_r with respect to ALL of I, T and t, so summing them
// over ranks (reduce-scatter for features, all-reduce for t) gives exactly the
// gradient of the global loss. With r0 = 0, n = N this is the single-process loss.
//
// Gradients are multiplied by loss_scale (gradient accumulation, fp16 loss scaling)
// and OVERWRITE dimage, dtext, dlogit_scale; each may be nullptr to skip it. The only
// N-sized buffer is one n×N logits block: the caller's workspace (≥ n·N f32 values)
// or, without one, allocated for the call. All math is fp32 with double sums.
// With n = N one logits matrix serves both directions (row and column log-softmax),
// three GEMMs in all; a rank's share (n < N) needs two n×N blocks in turn, six GEMMs.
#pragma once
#include "core/tensor.h"

namespace cs::cpu {

double contrastive_loss(const Tensor& image, const Tensor& text, const Tensor& logit_scale, int64_t row_offset,
                        int64_t row_count, Tensor* dimage, Tensor* dtext, Tensor* dlogit_scale, Tensor* workspace,
                        float loss_scale);

}  // namespace cs::cpu
