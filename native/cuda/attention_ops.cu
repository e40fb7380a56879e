// The fused attention group's C ABI (abi_attention.h): argument checks, the precision and
// head-width dispatch, and the small passes around the kernels: the 16-bit packing of
// qkv (and dO) for the tensor-core kernels, D = rowsum(dO∘O) with dQ cleared before the
// backward, dQ rounded after it.
#include <cmath>

#include "cuda/abi_attention.h"
#include "cuda/attention_kernels.h"
#include "cuda/attention_operands.cuh"
#include "cuda/numerics.cuh"
#include "cuda/launch.cuh"
#include "cuda/runtime.h"

using namespace cs_cuda;

namespace {

int check_shape(const char* op, int64_t B, int64_t S, int64_t W, int64_t heads, AttentionShape* s, int* dp) {
  if (B < 0 || S < 0 || W < 0) return fail("%s: sizes must not be negative (B %lld, S %lld, W %lld)", op, (long long)B, (long long)S, (long long)W);
  if (heads < 1 || W == 0 || W % heads != 0)
    return fail("%s: width %lld must be a positive multiple of heads (%lld)", op, (long long)W, (long long)heads);
  const int64_t d = W / heads;
  *dp = attention_width(d);
  if (*dp == 0)
    return fail("%s: head dimension %lld is larger than the GPU kernels' %d", op, (long long)d,
                CS_CUDA_ATTENTION_MAX_HEAD_DIM);
  if (S > (int64_t{1} << 30)) return fail("%s: sequence length %lld is too long", op, (long long)S);
  *s = AttentionShape{B, S, W, heads, d, 0, 1.0f / std::sqrt(static_cast<float>(d))};
  return 0;
}

// qkv [B, S, 3W] fp32 → qkv16 [3][B·heads][S][dp] in the precision's 16-bit type, columns
// d..dp-1 zero: the tensor-core kernels' operands (attention_tiles.cuh). A thread makes 8
// consecutive columns, one 16-byte store (dp is a multiple of 16). With in16 (qkv stored in the
// precision's 16-bit type) its bits are copied as they are: the same operands, head-major.
__global__ void attention_pack_qkv_kernel(const float* __restrict__ qkv, const uint16_t* __restrict__ in16,
                                          uint16_t* __restrict__ qkv16, AttentionShape s, int dp, Precision p) {
  const int64_t bhs = s.B * s.heads * s.S, chunks = dp / 8, total = 3 * bhs * chunks;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t c0 = (i % chunks) * 8, row = i / chunks, which = row / bhs, r = row % bhs;
    const int64_t si = r % s.S, bh = r / s.S, h = bh % s.heads, b = bh / s.heads;
    const int64_t from = (b * s.S + si) * 3 * s.W + which * s.W + h * s.d;
    uint32_t w[4];
#pragma unroll
    for (int e = 0; e < 4; e++) {
      const int64_t c = c0 + 2 * e;
      uint32_t lo, hi;
      if (in16) {  // 0 bits are +0 in bf16 and f16
        lo = c < s.d ? in16[from + c] : 0u;
        hi = c + 1 < s.d ? in16[from + c + 1] : 0u;
      } else {
        lo = operand_bits(p, c < s.d ? qkv[from + c] : 0.0f);
        hi = operand_bits(p, c + 1 < s.d ? qkv[from + c + 1] : 0.0f);
      }
      w[e] = lo | (hi << 16);
    }
    uint4 v;
    v.x = w[0], v.y = w[1], v.z = w[2], v.w = w[3];
    *reinterpret_cast<uint4*>(qkv16 + row * dp + c0) = v;
  }
}

// One warp per (b, h, i): D = Σ_c round(dO)·round(O) (rounded to the precision's operand
// type, as the kernels see dO; O read from out16 when the forward stored it 16-bit, the same
// values), dQ's row cleared for the atomics, and, for the tensor-core kernels (do16 not null),
// dO packed as [B·heads][S][dp] 16-bit with zero columns past d.
__global__ void attention_preprocess_kernel(const float* __restrict__ out, const uint16_t* __restrict__ out16,
                                            const float* __restrict__ dout,
                                            float* __restrict__ D, float* __restrict__ dqkv,
                                            uint16_t* __restrict__ do16, AttentionShape s, int dp, Precision p) {
  const int64_t rows = s.B * s.heads * s.S;
  const int lane = threadIdx.x & 31;
  for (int64_t w = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) >> 5; w < rows;
       w += (static_cast<int64_t>(gridDim.x) * blockDim.x) >> 5) {
    const int64_t i = w % s.S, bh = w / s.S, h = bh % s.heads, b = bh / s.heads;
    const int64_t at = (b * s.S + i) * s.W + h * s.d;
    float acc = 0.0f;
    for (int64_t c = lane; c < s.d; c += 32) {
      const float o = out16 ? from_16bit(static_cast<int>(p), out16[at + c]) : round_to(p, out[at + c]);
      acc += round_to(p, dout[at + c]) * o;
    }
    acc = warp_sum(acc);
    if (lane == 0) D[w] = acc;
    float* dq = dqkv + (b * s.S + i) * 3 * s.W + h * s.d;
    for (int64_t c = lane; c < s.d; c += 32) dq[c] = 0.0f;
    if (do16)
      for (int64_t c = lane; c < dp; c += 32) do16[w * dp + c] = operand_bits(p, c < s.d ? dout[at + c] : 0.0f);
  }
}

__global__ void round_dq_kernel(float* __restrict__ dqkv, int64_t rows, int64_t W, Precision p) {
  const int64_t total = rows * W;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float* q = dqkv + (i / W) * 3 * W + i % W;
    *q = round_to(p, *q);
  }
}

// out: f32, or the precision's 16-bit type when out16 (never in fp32).
// qkv or qkv_in16 (16-bit, never in fp32).
int forward(const char* op, const float* qkv, const uint16_t* qkv_in16, void* out, bool out16, float* lse, int64_t B,
            int64_t S, int64_t W, int64_t heads, int causal) {
  AttentionShape s;
  int dp = 0;
  if (int rc = check_shape(op, B, S, W, heads, &s, &dp)) return rc;
  if (B == 0 || S == 0) return 0;
  s.causal = causal ? 1 : 0;
  const Precision p = precision();
  if ((out16 || qkv_in16) && p == Precision::F32) return fail("%s: 16-bit qkv or out needs a bf16 or fp16 precision", op);
  if (!qkv == !qkv_in16) return fail("%s: give qkv or qkv16 (one of them)", op);
  if (p == Precision::F32) return attention_forward_f32_launch(op, dp, s, qkv, static_cast<float*>(out), lse, stream());
  const int64_t n16 = 3 * B * heads * S * dp;
  Scratch qkv16;
  if (int rc = qkv16.allocate(static_cast<size_t>(n16) * 2, op)) return rc;
  CS_LAUNCH(attention_pack_qkv_kernel, grid_for(n16 / 8, 256), 256, 0, stream(), qkv, qkv_in16, qkv16.as<uint16_t>(), s,
            dp, p);
  if (int rc = launched(op)) return rc;
  return attention_forward_mma_launch(op, p, dp, s, qkv16.as<uint16_t>(), out, out16, lse, stream());
}

// out or out16 (the forward's output in the precision's 16-bit type; never in fp32).
int backward(const char* op, const float* qkv, const uint16_t* qkv_in16, const float* out, const uint16_t* out16,
             const float* dout, const float* lse, float* dqkv, int64_t B, int64_t S, int64_t W, int64_t heads,
             int causal) {
  AttentionShape s;
  int dp = 0;
  if (int rc = check_shape(op, B, S, W, heads, &s, &dp)) return rc;
  if (B == 0 || S == 0) return 0;
  s.causal = causal ? 1 : 0;
  const int64_t rows = B * heads * S;
  Scratch D;
  if (int rc = D.allocate(static_cast<size_t>(rows) * sizeof(float), op)) return rc;
  const Precision p = precision();
  const bool mma = p != Precision::F32;
  if ((out16 || qkv_in16) && !mma) return fail("%s: 16-bit qkv or out needs a bf16 or fp16 precision", op);
  if (!qkv == !qkv_in16) return fail("%s: give qkv or qkv16 (one of them)", op);
  if (!out == !out16) return fail("%s: give out or out16 (one of them)", op);
  Scratch qkv16, do16;
  const int64_t n16 = 3 * rows * dp;
  if (mma) {
    if (int rc = qkv16.allocate(static_cast<size_t>(n16) * 2, op)) return rc;
    if (int rc = do16.allocate(static_cast<size_t>(rows * dp) * 2, op)) return rc;
  }
  CS_LAUNCH(attention_preprocess_kernel, grid_for(rows * 32, 256), 256, 0, stream(), out, out16, dout, D.as<float>(), dqkv,
            mma ? do16.as<uint16_t>() : nullptr, s, dp, p);
  if (int rc = launched(op)) return rc;
  if (!mma)  // dQ stays fp32: nothing to round
    return attention_backward_f32_launch(op, dp, s, qkv, dout, lse, D.as<float>(), dqkv, stream());
  CS_LAUNCH(attention_pack_qkv_kernel, grid_for(n16 / 8, 256), 256, 0, stream(), qkv, qkv_in16, qkv16.as<uint16_t>(), s,
            dp, p);
  if (int rc = launched(op)) return rc;
  if (int rc = attention_backward_mma_launch(op, p, dp, s, qkv16.as<uint16_t>(), do16.as<uint16_t>(), lse,
                                             D.as<float>(), dqkv, stream()))
    return rc;
  CS_LAUNCH(round_dq_kernel, grid_for(B * S * W, 256), 256, 0, stream(), dqkv, B * S, W, p);
  return launched(op);
}

}  // namespace

extern "C" {

int cs_cuda_attention_forward(const float* qkv, float* out, float* lse, int64_t B, int64_t S, int64_t W,
                              int64_t heads, int causal) {
  return forward("attentionForward", qkv, nullptr, out, false, lse, B, S, W, heads, causal);
}

int cs_cuda_attention_forward16(const float* qkv, const uint16_t* qkv16, float* out, uint16_t* out16, float* lse,
                                int64_t B, int64_t S, int64_t W, int64_t heads, int causal) {
  const char* op = "attentionForward";
  if (!out == !out16) return fail("%s: give out or out16 (one of them)", op);
  return forward(op, qkv, qkv16, out16 ? static_cast<void*>(out16) : out, out16 != nullptr, lse, B, S, W, heads, causal);
}

int cs_cuda_attention_backward(const float* qkv, const float* out, const float* dout, const float* lse, float* dqkv,
                               int64_t B, int64_t S, int64_t W, int64_t heads, int causal) {
  return backward("attentionBackward", qkv, nullptr, out, nullptr, dout, lse, dqkv, B, S, W, heads, causal);
}

int cs_cuda_attention_backward16(const float* qkv, const uint16_t* qkv16, const float* out, const uint16_t* out16,
                                 const float* dout, const float* lse, float* dqkv, int64_t B, int64_t S, int64_t W,
                                 int64_t heads, int causal) {
  return backward("attentionBackward", qkv, qkv16, out, out16, dout, lse, dqkv, B, S, W, heads, causal);
}

}  // extern "C"
