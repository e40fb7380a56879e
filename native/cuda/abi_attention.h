// C ABI of the fused attention group: multi-head self-attention from packed QKV, flash
// style (online softmax; no S×S matrix in global memory), forward and backward, in the
// precision cs_cuda_set_precision chose (abi.h). In bf16 (the default) each equals the
// CPU op (native/cpu/attention.h) with bf16 emulation on: Q, K, V, dO and the
// probabilities (forward P, backward P and dS) enter the tensor cores as bf16,
// scores/softmax/lse stay fp32, and out and dqkv are stored bf16-rounded. fp16 rounds at
// the same points to IEEE half (f16 tensor cores); fp32 rounds nowhere (SIMT kernels).
// Head dimensions up to 128 (kernels are built
// for padded widths 32, 64, 80, 96 and 128; CLIP's 64, 80, 88 and 128 among them).
// Shapes are checked by the addon; pointers are device pointers on the calling
// thread's current device (abi.h).
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// The largest head dimension the kernels take.
#define CS_CUDA_ATTENTION_MAX_HEAD_DIM 128

// qkv [B, S, 3W] (OpenCLIP's in_proj layout: Q | K | V, head h at columns h·d..(h+1)·d
// of each, d = W / heads), out [B, S, W], lse [B, heads, S] or null.
int cs_cuda_attention_forward(const float* qkv, float* out, float* lse, int64_t B, int64_t S, int64_t W,
                              int64_t heads, int causal);
// dqkv [B, S, 3W] is overwritten; lse is the forward's. Probabilities are recomputed
// from lse; dQ is accumulated in fp32 across key blocks, then rounded.
int cs_cuda_attention_backward(const float* qkv, const float* out, const float* dout, const float* lse, float* dqkv,
                               int64_t B, int64_t S, int64_t W, int64_t heads, int causal);
// The same two with qkv and/or out in the precision's 16-bit type (bf16/fp16 runs; an error in
// fp32): give qkv or qkv16, out or out16 (one of each). The pack pass reads qkv16's bits as they
// are; the forward stores out16, the backward reads it for D = rowsum(dO∘O).
int cs_cuda_attention_forward16(const float* qkv, const uint16_t* qkv16, float* out, uint16_t* out16, float* lse,
                                int64_t B, int64_t S, int64_t W, int64_t heads, int causal);
int cs_cuda_attention_backward16(const float* qkv, const uint16_t* qkv16, const float* out, const uint16_t* out16,
                                 const float* dout, const float* lse, float* dqkv, int64_t B, int64_t S, int64_t W,
                                 int64_t heads, int causal);

#ifdef __cplusplus
}
#endif
