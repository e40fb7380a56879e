// Internal interface between the attention entry points (attention_ops.cu) and the
// kernels, which are templated on the padded head width DP (a multiple of 16) and built
// only for kAttentionWidths. The precision switch (runtime.h) picks the kernels:
//   bf16, f16  FlashAttention-2 on tensor cores (attention_forward.cu,
//              attention_backward.cu) over a packed 16-bit copy of the operands, fp32
//              accumulation and softmax
//   fp32       SIMT kernels (attention_f32.cu), nothing rounded
//
// Verified on the emulated device (every precision against a double reference, under
// inorder, reversed and random schedules; planted missing barriers and cp.async waits are
// caught), and compiled with nvcc 13.0 (no GPU): `nvcc -std=c++17 -O3 -Inative -Xptxas -v
// -gencode=arch=compute_90a,code=sm_90a -c native/cuda/attention_backward.cu` shows no
// spills in any attention kernel on sm_90a (backward 242-250 registers at DP 64/80/128,
// forward 127-168); on sm_80 none either except 16 bytes in the backward at DP 32.
// What remains to verify on a real GPU:
//   - registers and spills as built by CMake for both targets (the figures above are from
//     a plain nvcc -O3 build of each file);
//   - shared-memory bank conflicts: Nsight Compute's
//     l1tex__data_bank_conflicts_pipe_lsu_mem_shared_op_ld / _op_st on both kernels
//     (ldmatrix and the dSᵀ stores are laid out to have none, cp.async stores too at DP
//     64 and 128; attention_tiles.cuh);
//   - the PTX emulation against the hardware: the same tests built with
//     -DCLIPSCALE_PTX_EMULATE must agree with the real-instruction build (budget for
//     the build: nvcc's cicc ran over 15 minutes on attention_forward.cu that way here,
//     on 2 loaded cores, without finishing);
//   - speed: benchmarks/gpu_layers.py, forward+backward against PyTorch's
//     scaled_dot_product_attention at S 50, 77 causal, 197, 257 and d 64, 80 (the goal is
//     ≥ 1.0× SDPA); the fp32 kernels are built for correctness, not speed.
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

// Tensor-core kernels (FlashAttention-2), p is BF16 or F16. Their operands are the packed
// 16-bit copies attention_ops.cu makes (attention_tiles.cuh): qkv16 [3][B·heads][S][dp]
// (Q, K, V planes) and do16 [B·heads][S][dp], columns d..dp-1 zero.
// out: f32 [B, S, W], or the precision's 16-bit type when out16.
int attention_forward_mma_launch(const char* op, Precision p, int dp, const AttentionShape& s, const uint16_t* qkv16,
                                 void* out, bool out16, float* lse, cudaStream_t stream);
// D [B·heads·S] = Σ_c dO·O per row (from attention_ops' preprocess kernel); dQ columns of
// dqkv must be zero on entry and are left unrounded (the caller rounds them).
int attention_backward_mma_launch(const char* op, Precision p, int dp, const AttentionShape& s,
                                  const uint16_t* qkv16, const uint16_t* do16, const float* lse, const float* D,
                                  float* dqkv, cudaStream_t stream);
// The fp32 kernels; the same contracts (nothing is rounded).
int attention_forward_f32_launch(const char* op, int dp, const AttentionShape& s, const float* qkv, float* out,
                                 float* lse, cudaStream_t stream);
int attention_backward_f32_launch(const char* op, int dp, const AttentionShape& s, const float* qkv,
                                  const float* dout, const float* lse, const float* D, float* dqkv,
                                  cudaStream_t stream);

}  // namespace cs_cuda
