// Internal interface between the attention entry points (attention_ops.cu) and the
// kernels, which are templated on the padded head width DP (a multiple of 16) and built
// only for kAttentionWidths. The precision switch (runtime.h) picks the kernels:
//   bf16, f16  tensor cores (attention_forward.cu, attention_backward.cu), operands
//              rounded to the 16-bit type, fp32 accumulation and softmax
//   fp32       SIMT kernels (attention_f32.cu), nothing rounded
#pragma once
#include <cuda_runtime.h>
#include <stdint.h>

#include "cuda/runtime.h"

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

// Tensor-core kernels, p is BF16 or F16.
int attention_forward_mma_launch(const char* op, Precision p, int dp, const AttentionShape& s, const float* qkv,
                                 float* out, float* lse, cudaStream_t stream);
// D [B·heads·S] = Σ_c dO·O per row (from attention_ops' preprocess kernel); dQ columns of
// dqkv must be zero on entry and are left unrounded (the caller rounds them).
int attention_backward_mma_launch(const char* op, Precision p, int dp, const AttentionShape& s, const float* qkv,
                                  const float* dout, const float* lse, const float* D, float* dqkv,
                                  cudaStream_t stream);
// The fp32 kernels; the same contracts (nothing is rounded).
int attention_forward_f32_launch(const char* op, int dp, const AttentionShape& s, const float* qkv, float* out,
                                 float* lse, cudaStream_t stream);
int attention_backward_f32_launch(const char* op, int dp, const AttentionShape& s, const float* qkv,
                                  const float* dout, const float* lse, const float* D, float* dqkv,
                                  cudaStream_t stream);

}  // namespace cs_cuda
