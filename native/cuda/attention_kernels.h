// Internal interface between the attention entry points (attention_ops.cu) and the
// kernels (attention_forward.cu, attention_backward.cu), which are templated on the
// padded head width DP (a multiple of 16) and built only for kAttentionWidths.
#pragma once
#include <cuda_runtime.h>
#include <stdint.h>

namespace cs_cuda {

struct AttentionShape {
  int64_t B, S, W, heads, d;
  int causal;
  float scale;  // 1/√d
};

constexpr int kAttentionWidths[] = {32, 64, 80, 96, 128};

// The smallest built width that holds d, or 0 when d is too large.
inline int attention_width(int64_t d) {
  for (int w : kAttentionWidths)
    if (d <= w) return w;
  return 0;
}

int attention_forward_launch(const char* op, int dp, const AttentionShape& s, const float* qkv, float* out, float* lse,
                             cudaStream_t stream);
// D [B·heads·S] = Σ_c dO·O per row (from attention_ops' preprocess kernel); dQ columns of
// dqkv must be zero on entry and are left unrounded (the caller rounds them).
int attention_backward_launch(const char* op, int dp, const AttentionShape& s, const float* qkv, const float* dout,
                              const float* lse, const float* D, float* dqkv, cudaStream_t stream);

}  // namespace cs_cuda
