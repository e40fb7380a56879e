// Fused attention backward (flash attention 2 style) on bf16 tensor cores.
//
// A block owns 64 keys of one (batch, head) and walks the query blocks of 64 that can
// see them. Each of its 4 warps owns 16 keys and keeps dK and dV for them in registers.
// Per query block it recomputes Sᵀ = K·Qᵀ, Pᵀ = exp(Sᵀ·scale − lse) (from the forward's
// log-sum-exp), then dV += Pᵀ·dO, dPᵀ = V·dOᵀ, dSᵀ = Pᵀ∘(dPᵀ − D), dK += dSᵀ·Q; dS goes
// through shared memory for dQ = dS·K, which is added to global memory with fp32 atomics
// (the caller zeroes dQ first and rounds it afterwards). Operands are staged K-major
// (and transposed copies where an operand is used the other way), bf16.
#include <cmath>

#include "cuda/attention_kernels.h"
#include "cuda/attention_operands.cuh"
#include "cuda/gemm_mma.cuh"
#include "cuda/launch.cuh"
#include "cuda/runtime.h"

namespace cs_cuda {

namespace {

constexpr int kKeys = 64;  // keys per block
constexpr int kRows = 64;  // queries per step
constexpr int kThreads = 128;
constexpr float kLog2e = 1.4426950408889634f;

template <int DP>
struct BwdSmem {
  static constexpr int kLd = DP + 8;      // [row][d] (bf16)
  static constexpr int kLdT = kRows + 8;  // [d][row] and dS [query][key]
  static constexpr int kBf16 = 2 * kKeys * kLd   // K, V
                               + DP * kLdT       // Kᵀ
                               + 2 * kRows * kLd // Q, dO
                               + 2 * DP * kLdT   // Qᵀ, dOᵀ
                               + kRows * kLdT;   // dS
  static constexpr int kBytes = kBf16 * 2 + 2 * kRows * 4;
};

template <int DP, class T>
__global__ void __launch_bounds__(kThreads) attention_backward_kernel(const float* __restrict__ qkv,
                                                                      const float* __restrict__ dout,
                                                                      const float* __restrict__ lse,
                                                                      const float* __restrict__ Dvec,
                                                                      float* __restrict__ dqkv, AttentionShape sh,
                                                                      int64_t bh0) {
  using L = BwdSmem<DP>;
  CS_DYNAMIC_SMEM(uint16_t, smem);
  uint16_t* Ks = smem;
  uint16_t* Vs = Ks + kKeys * L::kLd;
  uint16_t* Kt = Vs + kKeys * L::kLd;
  uint16_t* Qs = Kt + DP * L::kLdT;
  uint16_t* dOs = Qs + kRows * L::kLd;
  uint16_t* Qt = dOs + kRows * L::kLd;
  uint16_t* dOt = Qt + DP * L::kLdT;
  uint16_t* dSs = dOt + DP * L::kLdT;
  float* lse2 = reinterpret_cast<float*>(dSs + kRows * L::kLdT);  // lse·log2(e); +inf past S
  float* Ds = lse2 + kRows;

  const int64_t bh = bh0 + blockIdx.y, b = bh / sh.heads, h = bh % sh.heads;
  const int S = static_cast<int>(sh.S), d = static_cast<int>(sh.d);
  const int64_t ld = 3 * sh.W;
  const float* base = qkv + b * sh.S * ld + h * sh.d;
  const float* dobase = dout + b * sh.S * sh.W + h * sh.d;
  float* dqbase = dqkv + b * sh.S * ld + h * sh.d;
  const int k0 = blockIdx.x * kKeys;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;
  const float scale2 = sh.scale * kLog2e;

  for (int i = tid; i < kKeys * DP; i += kThreads) {
    const int j = i / DP, c = i % DP;
    const bool ok = k0 + j < S && c < d;
    const float* p = base + static_cast<int64_t>(k0 + j) * ld + c;
    const uint16_t kv = T::bits(ok ? p[sh.W] : 0.0f);
    Ks[j * L::kLd + c] = kv;
    Kt[c * L::kLdT + j] = kv;
    Vs[j * L::kLd + c] = T::bits(ok ? p[2 * sh.W] : 0.0f);
  }

  float dk[DP / 8][4], dv[DP / 8][4];
#pragma unroll
  for (int n = 0; n < DP / 8; n++)
#pragma unroll
    for (int e = 0; e < 4; e++) dk[n][e] = dv[n][e] = 0.0f;
  const int key[2] = {k0 + warp * 16 + g, k0 + warp * 16 + g + 8};

  // Causal: queries before the first key see none of this block's keys.
  for (int q0 = sh.causal ? k0 : 0; q0 < S; q0 += kRows) {
    __syncthreads();  // K/V staged (first pass); Q, dO, dS of the previous pass no longer read
    for (int i = tid; i < kRows * DP; i += kThreads) {
      const int r = i / DP, c = i % DP;
      const bool ok = q0 + r < S && c < d;
      const uint16_t q = T::bits(ok ? base[static_cast<int64_t>(q0 + r) * ld + c] : 0.0f);
      const uint16_t o = T::bits(ok ? dobase[static_cast<int64_t>(q0 + r) * sh.W + c] : 0.0f);
      Qs[r * L::kLd + c] = q;
      Qt[c * L::kLdT + r] = q;
      dOs[r * L::kLd + c] = o;
      dOt[c * L::kLdT + r] = o;
    }
    for (int r = tid; r < kRows; r += kThreads) {
      const bool ok = q0 + r < S;
      lse2[r] = ok ? lse[bh * sh.S + q0 + r] * kLog2e : INFINITY;
      Ds[r] = ok ? Dvec[bh * sh.S + q0 + r] : 0.0f;
    }
    __syncthreads();

    // Sᵀ and dPᵀ for this warp's 16 keys × 64 queries.
    float p[kRows / 8][4], ds[kRows / 8][4];
#pragma unroll
    for (int j = 0; j < kRows / 8; j++)
#pragma unroll
      for (int e = 0; e < 4; e++) p[j][e] = ds[j][e] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < DP / 16; kk++) {
      uint32_t ka[4], va[4];
      load_a_frag(ka, Ks, L::kLd, warp * 16, kk * 16, lane);
      load_a_frag(va, Vs, L::kLd, warp * 16, kk * 16, lane);
#pragma unroll
      for (int j = 0; j < kRows / 8; j++) {
        uint32_t b0, b1;
        load_b_frag(b0, b1, Qs, L::kLd, j * 8, kk * 16, lane);
        T::mma(p[j], ka, b0, b1);
        load_b_frag(b0, b1, dOs, L::kLd, j * 8, kk * 16, lane);
        T::mma(ds[j], va, b0, b1);
      }
    }
    // Pᵀ from lse (0 where masked or out of range), dSᵀ = Pᵀ∘(dPᵀ − D).
#pragma unroll
    for (int j = 0; j < kRows / 8; j++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int ql = j * 8 + 2 * t + (e & 1), q = q0 + ql, kr = key[e >> 1];
        const bool ok = kr < S && q < S && (!sh.causal || kr <= q);
        p[j][e] = ok ? exp2f(p[j][e] * scale2 - lse2[ql]) : 0.0f;
        ds[j][e] = p[j][e] * (ds[j][e] - Ds[ql]);
      }
    // dV += Pᵀ·dO and dK += dSᵀ·Q (the unscaled sum; scaled once at the end).
#pragma unroll
    for (int kk = 0; kk < kRows / 16; kk++) {
      uint32_t pa[4], sa[4];
      pa[0] = T::pack(p[2 * kk][0], p[2 * kk][1]);
      pa[1] = T::pack(p[2 * kk][2], p[2 * kk][3]);
      pa[2] = T::pack(p[2 * kk + 1][0], p[2 * kk + 1][1]);
      pa[3] = T::pack(p[2 * kk + 1][2], p[2 * kk + 1][3]);
      sa[0] = T::pack(ds[2 * kk][0], ds[2 * kk][1]);
      sa[1] = T::pack(ds[2 * kk][2], ds[2 * kk][3]);
      sa[2] = T::pack(ds[2 * kk + 1][0], ds[2 * kk + 1][1]);
      sa[3] = T::pack(ds[2 * kk + 1][2], ds[2 * kk + 1][3]);
#pragma unroll
      for (int n = 0; n < DP / 8; n++) {
        uint32_t b0, b1;
        load_b_frag(b0, b1, dOt, L::kLdT, n * 8, kk * 16, lane);
        T::mma(dv[n], pa, b0, b1);
        load_b_frag(b0, b1, Qt, L::kLdT, n * 8, kk * 16, lane);
        T::mma(dk[n], sa, b0, b1);
      }
    }
    // dS (queries × keys) to shared memory for dQ.
#pragma unroll
    for (int j = 0; j < kRows / 8; j++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int ql = j * 8 + 2 * t + (e & 1), kl = warp * 16 + g + (e >> 1) * 8;
        dSs[ql * L::kLdT + kl] = T::bits(ds[j][e]);
      }
    __syncthreads();
    // dQ[16 queries of this warp × DP] += dS·K·scale.
    uint32_t da[kKeys / 16][4];
#pragma unroll
    for (int kk = 0; kk < kKeys / 16; kk++) load_a_frag(da[kk], dSs, L::kLdT, warp * 16, kk * 16, lane);
    const int qa = q0 + warp * 16 + g, qb = qa + 8;
#pragma unroll
    for (int n = 0; n < DP / 8; n++) {
      float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
      for (int kk = 0; kk < kKeys / 16; kk++) {
        uint32_t b0, b1;
        load_b_frag(b0, b1, Kt, L::kLdT, n * 8, kk * 16, lane);
        T::mma(acc, da[kk], b0, b1);
      }
      const int c = n * 8 + 2 * t;
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int q = (e >> 1) ? qb : qa, cc = c + (e & 1);
        if (q < S && cc < d) atomicAdd(dqbase + static_cast<int64_t>(q) * ld + cc, acc[e] * sh.scale);
      }
    }
  }

#pragma unroll
  for (int r = 0; r < 2; r++) {
    if (key[r] >= S) continue;
    float* dkrow = dqbase + static_cast<int64_t>(key[r]) * ld + sh.W;
    float* dvrow = dkrow + sh.W;
#pragma unroll
    for (int n = 0; n < DP / 8; n++)
#pragma unroll
      for (int e = 0; e < 2; e++) {
        const int c = n * 8 + 2 * t + e;
        if (c < d) {
          dkrow[c] = T::round(dk[n][r * 2 + e] * sh.scale);
          dvrow[c] = T::round(dv[n][r * 2 + e]);
        }
      }
  }
}

template <int DP, class T>
int launch(const char* op, const AttentionShape& s, const float* qkv, const float* dout, const float* lse,
           const float* D, float* dqkv, cudaStream_t stream) {
  constexpr int bytes = BwdSmem<DP>::kBytes;
  auto kernel = attention_backward_kernel<DP, T>;
  if (bytes > 48 * 1024)
    if (int rc = check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes), op,
                       "raising the attention kernel's shared memory limit"))
      return rc;
  const int64_t bh = s.B * s.heads;
  const unsigned gx = static_cast<unsigned>((s.S + kKeys - 1) / kKeys);
  for (int64_t bh0 = 0; bh0 < bh; bh0 += 65535) {
    dim3 grid(gx, static_cast<unsigned>(bh - bh0 < 65535 ? bh - bh0 : 65535));
    CS_LAUNCH(kernel, grid, kThreads, bytes, stream, qkv, dout, lse, D, dqkv, s, bh0);
    if (int rc = launched(op)) return rc;
  }
  return 0;
}

template <class T>
int launch_width(const char* op, int dp, const AttentionShape& s, const float* qkv, const float* dout,
                 const float* lse, const float* D, float* dqkv, cudaStream_t stream) {
  switch (dp) {
    case 32: return launch<32, T>(op, s, qkv, dout, lse, D, dqkv, stream);
    case 64: return launch<64, T>(op, s, qkv, dout, lse, D, dqkv, stream);
    case 80: return launch<80, T>(op, s, qkv, dout, lse, D, dqkv, stream);
    case 96: return launch<96, T>(op, s, qkv, dout, lse, D, dqkv, stream);
    case 128: return launch<128, T>(op, s, qkv, dout, lse, D, dqkv, stream);
    default: return fail("%s: no attention kernel for padded head width %d", op, dp);
  }
}

}  // namespace

int attention_backward_mma_launch(const char* op, Precision p, int dp, const AttentionShape& s, const float* qkv,
                                  const float* dout, const float* lse, const float* D, float* dqkv,
                                  cudaStream_t stream) {
  if (p == Precision::F16) return launch_width<F16Operands>(op, dp, s, qkv, dout, lse, D, dqkv, stream);
  return launch_width<Bf16Operands>(op, dp, s, qkv, dout, lse, D, dqkv, stream);
}

}  // namespace cs_cuda
