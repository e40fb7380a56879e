// Argument checks of multi-head attention on packed QKV, shared by the CPU ops and the
// CUDA dispatch.
#pragma once
#include "core/checks.h"

namespace cs {

struct AttentionGeometry {
  int64_t B, S, W, heads, d;  // batch, tokens, width, heads, head width
  int64_t ld() const { return 3 * W; }  // row stride of qkv
};

// attentionForward: qkv [B, S, 3·W] with heads dividing W, out [B, S, W], lse [B, heads, S] (optional).
// out16 / qkv16 (CUDA bf16/fp16 runs): out / qkv are bf16 or f16 (the caller checks which), here
// and in backward.
AttentionGeometry check_attention_forward(DeviceCheck device, const Tensor& qkv, const Tensor& out,
                                          const Tensor* lse, int64_t heads, bool out16 = false, bool qkv16 = false);

// attentionForwardPacked (CPU): sequences of lengths[i] tokens end to end, qkv [1, T, 3·W],
// out [1, T, W], lengths i32 [n] (each ≥ 0) summing to T, lse (optional) f32 [heads·T]. Returns the
// geometry with B = 1, S = T.
AttentionGeometry check_attention_forward_packed(const Tensor& qkv, const Tensor& out, const Tensor* lse,
                                                 const Tensor& lengths, int64_t heads);

// attentionBackwardPacked (CPU): as above, with dout like out, lse f32 [heads·T], dqkv like qkv.
AttentionGeometry check_attention_backward_packed(const Tensor& qkv, const Tensor& out, const Tensor& dout,
                                                  const Tensor& lse, const Tensor& dqkv, const Tensor& lengths,
                                                  int64_t heads);

// The query rows a CPU attention forward is asked to compute (`rows`: i32 [n], indices into the
// `total` token rows of qkv, strictly ascending). Fails naming op and the first bad entry.
void check_query_rows(const char* op, const Tensor& rows, int64_t total);

// attentionBackward: out and dout [B, S, W], lse [B, heads, S], dqkv like qkv.
AttentionGeometry check_attention_backward(DeviceCheck device, const Tensor& qkv, const Tensor& out,
                                           const Tensor& dout, const Tensor& lse, const Tensor& dqkv, int64_t heads,
                                           bool out16 = false, bool qkv16 = false);

}  // namespace cs
