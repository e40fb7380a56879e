// Multi-head self-attention from packed QKV, in OpenCLIP's nn.MultiheadAttention layout.
//   qkv [B, S, 3W]: Q = qkv[..., 0:W], K = [W:2W], V = [2W:3W]; head h owns columns
//   h·d..(h+1)·d of each, d = W / heads (any d).
//   out [B, S, W] = softmax(Q·Kᵀ/√d + mask)·V per head, heads concatenated.
//   lse [B, heads, S]: log Σ_j exp(score_ij), saved for backward (may be null at inference).
// causal: position i attends to j ≤ i.
// Backward (flash-attention style, recomputing the probabilities from lse):
//   dV = Pᵀ·dO, dP = dO·Vᵀ, D_i = Σ_c dO_ic·O_ic, dS = P∘(dP − D), dQ = dS·K/√d, dK = dSᵀ·Q/√d.
//   dqkv [B, S, 3W] is overwritten.
// Work is split over batch × heads; each thread keeps its own scratch inside the op,
// reused between calls: forward S² floats, backward 2·S² (+S² with bf16 emulation),
// plus S·d per operand copy when emulating. No workspace argument is needed.
// With bf16 emulation on, Q, K, V, dO and the probabilities P (and dS in backward) are
// rounded to bf16 before each matmul, as a bf16 GPU kernel holds them; scores, softmax
// and lse stay fp32; out and dqkv are stored rounded.
#pragma once
#include "core/tensor.h"

namespace cs::cpu {

// `rows` (nullable, i32, ascending indices into the B·S or T token rows): only those queries are
// needed (a tower's last block, whose other rows nothing reads): in fp32 only they are computed, the
// other rows of out and lse left as they were; their values are what computing every row gives
// them, bit for bit. Under bf16 emulation or CLIPSCALE_SKIP_ZERO_ROWS=0 every row is computed (the
// backward then multiplies every row, reading all of out and lse).
void attention_forward(const Tensor& qkv, Tensor& out, Tensor* lse, int64_t heads, bool causal,
                       const Tensor* rows = nullptr);

// Sequences packed end to end (no padding): qkv [1, T, 3W], out [1, T, W], lengths i32 [n] summing
// to T; sequence i attends only within itself (and causally, if asked). Each sequence's result is
// the same as attention_forward's on it alone, bit for bit. lse (nullable, for backward): [heads·T],
// sequence i's heads × lengths[i] values from heads·(its first token), as [B, heads, S] is laid out
// when every sequence has S tokens.
void attention_forward_packed(const Tensor& qkv, Tensor& out, Tensor* lse, const Tensor& lengths, int64_t heads,
                              bool causal, const Tensor* rows = nullptr);

void attention_backward(const Tensor& qkv, const Tensor& out, const Tensor& dout, const Tensor& lse, Tensor& dqkv,
                        int64_t heads, bool causal);

// The backward of attention_forward_packed (lse as it wrote it), each sequence's gradients the same
// as attention_backward's on it alone.
void attention_backward_packed(const Tensor& qkv, const Tensor& out, const Tensor& dout, const Tensor& lse,
                               Tensor& dqkv, const Tensor& lengths, int64_t heads, bool causal);

}  // namespace cs::cpu
