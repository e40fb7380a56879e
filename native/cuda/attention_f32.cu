// Fused attention forward and backward in fp32 on the SIMT cores (the fp32 precision
// mode: nothing rounded). Same algorithm as the tensor-core kernels — online softmax in
// the log2 domain, no S×S matrix in global memory, backward from the forward's lse with
// dQ added by atomics — on 32×32 tiles staged in shared memory.
//
// A block has 128 threads, 4 per tile row: thread (r = tid/4, part = tid%4) owns row r of
// the block's 32 rows (queries forward, keys backward) and, of the other side's 32-wide
// tile, the entries part, part+4, …, part+28; of the head dimension, the columns
// part, part+4, …. Shared rows are DP+1 floats long (DP+1 is odd), so the 8 rows a warp
// reads at one column fall in 8 different banks; the 32×33 score tiles likewise.
#include <cmath>

#include "cuda/attention_kernels.h"
#include "cuda/launch.cuh"
#include "cuda/runtime.h"

namespace cs_cuda {

namespace {

constexpr int kTile = 32;
constexpr int kThreads = 128;
constexpr int kPer = kTile / 4;  // tile entries (and head columns / 4) per thread
constexpr int kLdS = kTile + 1;  // score tile row stride
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

template <int DP>
struct F32Smem {
  static constexpr int kLd = DP + 1;
  static constexpr int kFwdBytes = (3 * kTile * kLd + kTile * kLdS) * 4;                // Q, K, V, P
  static constexpr int kBwdBytes = (4 * kTile * kLd + 2 * kTile * kLdS + 2 * kTile) * 4;  // K, V, Q, dO, P, dS, lse, D
};

// rows [r0, r0+32) of one head's d columns of a [·, ld]-strided matrix into a
// [32][DP+1] tile; rows past S and columns past d are zero.
template <int DP>
__device__ __forceinline__ void stage(float* tile, const float* src, int64_t ld, int r0, int S, int d, int tid) {
  for (int i = tid; i < kTile * DP; i += kThreads) {
    const int r = i / DP, c = i % DP;
    tile[r * F32Smem<DP>::kLd + c] = (r0 + r < S && c < d) ? src[static_cast<int64_t>(r0 + r) * ld + c] : 0.0f;
  }
}

template <int DP>
__global__ void __launch_bounds__(kThreads) attention_forward_f32_kernel(const float* __restrict__ qkv,
                                                                         float* __restrict__ out,
                                                                         float* __restrict__ lse, AttentionShape sh,
                                                                         int64_t bh0) {
  constexpr int ld = F32Smem<DP>::kLd;
  CS_DYNAMIC_SMEM(float, smem);
  float* Qs = smem;
  float* Ks = Qs + kTile * ld;
  float* Vs = Ks + kTile * ld;
  float* Ps = Vs + kTile * ld;

  const int64_t bh = bh0 + blockIdx.y, b = bh / sh.heads, h = bh % sh.heads;
  const int S = static_cast<int>(sh.S), d = static_cast<int>(sh.d);
  const int64_t ldg = 3 * sh.W;
  const float* base = qkv + b * sh.S * ldg + h * sh.d;
  const int q0 = blockIdx.x * kTile;
  const int tid = threadIdx.x, r = tid >> 2, part = tid & 3, row = q0 + r;
  const float scale2 = sh.scale * kLog2e;

  stage<DP>(Qs, base, ldg, q0, S, d, tid);
  float o[DP / 4];
#pragma unroll
  for (int n = 0; n < DP / 4; n++) o[n] = 0.0f;
  float m_run = -INFINITY, l_run = 0.0f;

  const int last_key = sh.causal ? min(q0 + kTile - 1, S - 1) : S - 1;
  for (int k0 = 0; k0 <= last_key; k0 += kTile) {
    __syncthreads();  // Q staged (first pass); the previous tile's K, V and P no longer read
    stage<DP>(Ks, base + sh.W, ldg, k0, S, d, tid);
    stage<DP>(Vs, base + 2 * sh.W, ldg, k0, S, d, tid);
    __syncthreads();

    float s[kPer];
#pragma unroll
    for (int m = 0; m < kPer; m++) s[m] = 0.0f;
    for (int c = 0; c < DP; c++) {
      const float q = Qs[r * ld + c];
#pragma unroll
      for (int m = 0; m < kPer; m++) s[m] += q * Ks[(part + 4 * m) * ld + c];
    }
    float m_new = m_run;
#pragma unroll
    for (int m = 0; m < kPer; m++) {
      const int key = k0 + part + 4 * m;
      const bool ok = key < S && (!sh.causal || key <= row);
      s[m] = ok ? s[m] * scale2 : -INFINITY;
      m_new = fmaxf(m_new, s[m]);
    }
    // The row's 4 threads are adjacent lanes of one warp.
    m_new = fmaxf(m_new, __shfl_xor_sync(0xffffffffu, m_new, 1));
    m_new = fmaxf(m_new, __shfl_xor_sync(0xffffffffu, m_new, 2));
    const float base_m = m_new == -INFINITY ? 0.0f : m_new;  // nothing visible yet
    const float alpha = exp2f(m_run - base_m);
    m_run = m_new;
    l_run *= alpha;
#pragma unroll
    for (int m = 0; m < kPer; m++) {
      s[m] = exp2f(s[m] - base_m);
      l_run += s[m];
      Ps[r * kLdS + part + 4 * m] = s[m];
    }
    __syncwarp();  // the row's P is read by its 4 threads, all in this warp
#pragma unroll
    for (int n = 0; n < DP / 4; n++) o[n] *= alpha;
    for (int j = 0; j < kTile; j++) {
      const float p = Ps[r * kLdS + j];
#pragma unroll
      for (int n = 0; n < DP / 4; n++) o[n] += p * Vs[j * ld + part + 4 * n];
    }
  }

  l_run += __shfl_xor_sync(0xffffffffu, l_run, 1);
  l_run += __shfl_xor_sync(0xffffffffu, l_run, 2);
  if (row >= S) return;
  const float inv = 1.0f / l_run;
  float* orow = out + (b * sh.S + row) * sh.W + h * sh.d;
#pragma unroll
  for (int n = 0; n < DP / 4; n++) {
    const int c = part + 4 * n;
    if (c < d) orow[c] = o[n] * inv;
  }
  if (lse && part == 0) lse[bh * sh.S + row] = (m_run + log2f(l_run)) * kLn2;
}

template <int DP>
__global__ void __launch_bounds__(kThreads) attention_backward_f32_kernel(const float* __restrict__ qkv,
                                                                          const float* __restrict__ dout,
                                                                          const float* __restrict__ lse,
                                                                          const float* __restrict__ Dvec,
                                                                          float* __restrict__ dqkv, AttentionShape sh,
                                                                          int64_t bh0) {
  constexpr int ld = F32Smem<DP>::kLd;
  CS_DYNAMIC_SMEM(float, smem);
  float* Ks = smem;
  float* Vs = Ks + kTile * ld;
  float* Qs = Vs + kTile * ld;
  float* dOs = Qs + kTile * ld;
  float* Ps = dOs + kTile * ld;   // [key][query]
  float* dSs = Ps + kTile * kLdS;  // [key][query]
  float* lse2 = dSs + kTile * kLdS;  // lse·log2(e); +inf past S
  float* Ds = lse2 + kTile;

  const int64_t bh = bh0 + blockIdx.y, b = bh / sh.heads, h = bh % sh.heads;
  const int S = static_cast<int>(sh.S), d = static_cast<int>(sh.d);
  const int64_t ldg = 3 * sh.W;
  const float* base = qkv + b * sh.S * ldg + h * sh.d;
  const float* dobase = dout + b * sh.S * sh.W + h * sh.d;
  float* dqbase = dqkv + b * sh.S * ldg + h * sh.d;
  const int k0 = blockIdx.x * kTile;
  const int tid = threadIdx.x, r = tid >> 2, part = tid & 3, key = k0 + r;
  const float scale2 = sh.scale * kLog2e;

  stage<DP>(Ks, base + sh.W, ldg, k0, S, d, tid);
  stage<DP>(Vs, base + 2 * sh.W, ldg, k0, S, d, tid);
  float dk[DP / 4], dv[DP / 4];
#pragma unroll
  for (int n = 0; n < DP / 4; n++) dk[n] = dv[n] = 0.0f;

  // Causal: queries before the first key see none of this block's keys.
  for (int q0 = sh.causal ? k0 : 0; q0 < S; q0 += kTile) {
    __syncthreads();  // K, V staged (first pass); the previous tile's Q, dO, P, dS no longer read
    stage<DP>(Qs, base, ldg, q0, S, d, tid);
    stage<DP>(dOs, dobase, sh.W, q0, S, d, tid);
    for (int i = tid; i < kTile; i += kThreads) {
      const bool ok = q0 + i < S;
      lse2[i] = ok ? lse[bh * sh.S + q0 + i] * kLog2e : INFINITY;
      Ds[i] = ok ? Dvec[bh * sh.S + q0 + i] : 0.0f;
    }
    __syncthreads();

    // Pᵀ and dPᵀ for key r and queries part + 4m.
    float p[kPer], dp[kPer];
#pragma unroll
    for (int m = 0; m < kPer; m++) p[m] = dp[m] = 0.0f;
    for (int c = 0; c < DP; c++) {
      const float kc = Ks[r * ld + c], vc = Vs[r * ld + c];
#pragma unroll
      for (int m = 0; m < kPer; m++) {
        const int ql = part + 4 * m;
        p[m] += kc * Qs[ql * ld + c];
        dp[m] += vc * dOs[ql * ld + c];
      }
    }
#pragma unroll
    for (int m = 0; m < kPer; m++) {
      const int ql = part + 4 * m, q = q0 + ql;
      const bool ok = key < S && q < S && (!sh.causal || key <= q);
      const float pv = ok ? exp2f(p[m] * scale2 - lse2[ql]) : 0.0f;
      Ps[r * kLdS + ql] = pv;
      dSs[r * kLdS + ql] = pv * (dp[m] - Ds[ql]);
    }
    __syncthreads();  // dQ below reads every key's dS

    // dV += Pᵀ·dO, dK += dSᵀ·Q for key r (the unscaled sum; scaled once at the end).
    for (int ql = 0; ql < kTile; ql++) {
      const float pv = Ps[r * kLdS + ql], ds = dSs[r * kLdS + ql];
#pragma unroll
      for (int n = 0; n < DP / 4; n++) {
        dv[n] += pv * dOs[ql * ld + part + 4 * n];
        dk[n] += ds * Qs[ql * ld + part + 4 * n];
      }
    }
    // dQ[query r] += scale · Σ_key dS·K over this block's keys.
    const int q = q0 + r;
    if (q < S) {
      float acc[DP / 4];
#pragma unroll
      for (int n = 0; n < DP / 4; n++) acc[n] = 0.0f;
      for (int kl = 0; kl < kTile; kl++) {
        const float ds = dSs[kl * kLdS + r];
#pragma unroll
        for (int n = 0; n < DP / 4; n++) acc[n] += ds * Ks[kl * ld + part + 4 * n];
      }
      float* dqrow = dqbase + static_cast<int64_t>(q) * ldg;
#pragma unroll
      for (int n = 0; n < DP / 4; n++) {
        const int c = part + 4 * n;
        if (c < d) atomicAdd(dqrow + c, acc[n] * sh.scale);
      }
    }
  }

  if (key >= S) return;
  float* dkrow = dqbase + static_cast<int64_t>(key) * ldg + sh.W;
  float* dvrow = dkrow + sh.W;
#pragma unroll
  for (int n = 0; n < DP / 4; n++) {
    const int c = part + 4 * n;
    if (c < d) {
      dkrow[c] = dk[n] * sh.scale;
      dvrow[c] = dv[n];
    }
  }
}

// Raises the kernel's dynamic shared memory limit where it needs more than 48 KiB.
template <typename K>
int allow_smem(K kernel, int bytes, const char* op) {
  if (bytes <= 48 * 1024) return 0;
  return check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes), op,
               "raising the fp32 attention kernel's shared memory limit");
}

template <int DP>
int forward(const char* op, const AttentionShape& s, const float* qkv, float* out, float* lse, cudaStream_t stream) {
  constexpr int bytes = F32Smem<DP>::kFwdBytes;
  auto kernel = attention_forward_f32_kernel<DP>;
  if (int rc = allow_smem(kernel, bytes, op)) return rc;
  const int64_t bh = s.B * s.heads;
  const unsigned gx = static_cast<unsigned>((s.S + kTile - 1) / kTile);
  for (int64_t bh0 = 0; bh0 < bh; bh0 += 65535) {
    dim3 grid(gx, static_cast<unsigned>(bh - bh0 < 65535 ? bh - bh0 : 65535));
    CS_LAUNCH(kernel, grid, kThreads, bytes, stream, qkv, out, lse, s, bh0);
    if (int rc = launched(op)) return rc;
  }
  return 0;
}

template <int DP>
int backward(const char* op, const AttentionShape& s, const float* qkv, const float* dout, const float* lse,
             const float* D, float* dqkv, cudaStream_t stream) {
  constexpr int bytes = F32Smem<DP>::kBwdBytes;
  auto kernel = attention_backward_f32_kernel<DP>;
  if (int rc = allow_smem(kernel, bytes, op)) return rc;
  const int64_t bh = s.B * s.heads;
  const unsigned gx = static_cast<unsigned>((s.S + kTile - 1) / kTile);
  for (int64_t bh0 = 0; bh0 < bh; bh0 += 65535) {
    dim3 grid(gx, static_cast<unsigned>(bh - bh0 < 65535 ? bh - bh0 : 65535));
    CS_LAUNCH(kernel, grid, kThreads, bytes, stream, qkv, dout, lse, D, dqkv, s, bh0);
    if (int rc = launched(op)) return rc;
  }
  return 0;
}

}  // namespace

int attention_forward_f32_launch(const char* op, int dp, const AttentionShape& s, const float* qkv, float* out,
                                 float* lse, cudaStream_t stream) {
  switch (dp) {
    case 32: return forward<32>(op, s, qkv, out, lse, stream);
    case 64: return forward<64>(op, s, qkv, out, lse, stream);
    case 80: return forward<80>(op, s, qkv, out, lse, stream);
    case 96: return forward<96>(op, s, qkv, out, lse, stream);
    case 128: return forward<128>(op, s, qkv, out, lse, stream);
    default: return fail("%s: no fp32 attention kernel for padded head width %d", op, dp);
  }
}

int attention_backward_f32_launch(const char* op, int dp, const AttentionShape& s, const float* qkv,
                                  const float* dout, const float* lse, const float* D, float* dqkv,
                                  cudaStream_t stream) {
  switch (dp) {
    case 32: return backward<32>(op, s, qkv, dout, lse, D, dqkv, stream);
    case 64: return backward<64>(op, s, qkv, dout, lse, D, dqkv, stream);
    case 80: return backward<80>(op, s, qkv, dout, lse, D, dqkv, stream);
    case 96: return backward<96>(op, s, qkv, dout, lse, D, dqkv, stream);
    case 128: return backward<128>(op, s, qkv, dout, lse, D, dqkv, stream);
    default: return fail("%s: no fp32 attention kernel for padded head width %d", op, dp);
  }
}

}  // namespace cs_cuda
