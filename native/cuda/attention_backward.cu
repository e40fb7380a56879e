// Fused attention backward, FlashAttention-2 style, on 16-bit tensor cores (bf16 or f16,
// the operand trait T; attention_operands.cuh).
//
// A block (4 warps) owns 64 keys of one (batch, head) and walks the query tiles of kQ that
// can see them; each warp owns 16 keys and keeps dK and dV for them in fp32 registers for
// the whole walk. K and V stay in shared memory; Q and dO tiles (with their lse and D) are
// staged by cp.async into two buffers, tile i+1 in flight while tile i is used. Per tile:
//   Sᵀ = K·Qᵀ, Pᵀ = exp(Sᵀ·scale − lse) (the forward's log-sum-exp; nothing is re-normalised)
//   dPᵀ = V·dOᵀ, dSᵀ = Pᵀ∘(dPᵀ − D)           D = rowsum(dO∘O), from attention_ops' pass
//   dV += Pᵀ·dO, dK += dSᵀ·Q                     A from registers, B by ldmatrix.trans
//   dQ += dS·K·scale                             dSᵀ through shared memory, then atomics
// dSᵀ is stored as the warp holds it ([key][query], one 32-bit store per register pair, no
// transposed scalar stores) and read back as dS's A fragments by ldmatrix.trans.
//
// dQ by fp32 atomics into dqkv (zeroed before, rounded after by attention_ops.cu) rather
// than a second pass over query blocks: a dQ pass would recompute S, P and dP (two more
// of the five GEMMs), while the atomics add 64·DP fp32 adds per (key block, query tile),
// spread over distinct addresses and absorbed by L2. The price is a summation order that
// varies between runs (not bit-reproducible).
//
// kQ is 64 queries, 32 at DP 96 and 128 so that dK, dV (DP/2 registers each), Pᵀ and dSᵀ
// (kQ/2 each) fit the 255-register budget (ptxas -v, sm_80: 241-243 registers and no
// spills at DP 64, 80, 128 with nvcc 13.0; kQ 64 spilled 16 bytes at DP 96). What remains to verify on a GPU (spills at
// DP 128 with ptxas -v, bank conflicts with Nsight Compute, speed vs SDPA):
// attention_kernels.h.
#include <cmath>

#include "cuda/attention_kernels.h"
#include "cuda/attention_operands.cuh"
#include "cuda/attention_tiles.cuh"
#include "cuda/launch.cuh"
#include "cuda/runtime.h"

namespace cs_cuda {

namespace {

constexpr int kKeys = 64;  // keys per block
constexpr float kLog2e = 1.4426950408889634f;

template <int DP>
struct BwdSmem {
  static constexpr int kQ = DP > 80 ? 32 : 64;  // queries per tile (ptxas: 64 spills at DP 96)
  static constexpr int kLd = DP + 8;
  static constexpr int kLdS = kQ + 8;           // dSᵀ [key][query]
  static constexpr int kQTile = kQ * kLd;       // one Q or dO buffer
  static constexpr int k16 = 2 * kKeys * kLd + 4 * kQTile + kKeys * kLdS;  // K, V, Q×2, dO×2, dSᵀ
  static constexpr int kBytes = k16 * 2 + 4 * kQ * 4;                      // + lse·log2e×2, D×2
};

// lse (times log2 e; +inf past S, so P is 0 there) and D of queries [q0, q0 + n).
__device__ __forceinline__ void load_row_stats(float* lse2, float* Ds, const float* lse, const float* Dvec, int q0,
                                               int n, int S, int tid) {
  for (int i = tid; i < n; i += kAttnThreads) {
    const bool ok = q0 + i < S;
    lse2[i] = ok ? lse[q0 + i] * kLog2e : INFINITY;
    Ds[i] = ok ? Dvec[q0 + i] : 0.0f;
  }
}

template <int DP, class T>
__global__ void __launch_bounds__(kAttnThreads) attention_backward_kernel(const uint16_t* __restrict__ qkv16,
                                                                          const uint16_t* __restrict__ do16,
                                                                          const float* __restrict__ lse,
                                                                          const float* __restrict__ Dvec,
                                                                          float* __restrict__ dqkv, AttentionShape sh,
                                                                          int64_t bh0) {
  using L = BwdSmem<DP>;
  constexpr int kQ = L::kQ, ld = L::kLd, ldS = L::kLdS;
  CS_DYNAMIC_SMEM(uint16_t, smem);
  uint16_t* Ks = smem;
  uint16_t* Vs = Ks + kKeys * ld;
  uint16_t* Qs = Vs + kKeys * ld;    // [2][kQ][ld]
  uint16_t* dOs = Qs + 2 * L::kQTile;  // [2][kQ][ld]
  uint16_t* dSt = dOs + 2 * L::kQTile; // [kKeys][ldS]
  float* lse2 = reinterpret_cast<float*>(dSt + kKeys * ldS);  // [2][kQ]
  float* Ds = lse2 + 2 * kQ;                                  // [2][kQ]

  const int64_t bh = bh0 + blockIdx.y, b = bh / sh.heads, h = bh % sh.heads;
  const int S = static_cast<int>(sh.S), d = static_cast<int>(sh.d);
  const int64_t plane = sh.B * sh.heads * sh.S * DP;
  const uint16_t* Qg = qkv16 + bh * sh.S * DP;
  const uint16_t* Kg = Qg + plane;
  const uint16_t* Vg = Kg + plane;
  const uint16_t* dOg = do16 + bh * sh.S * DP;
  const float* lse_bh = lse + bh * sh.S;
  const float* D_bh = Dvec + bh * sh.S;
  const int64_t ldg = 3 * sh.W;
  float* dqbase = dqkv + b * sh.S * ldg + h * sh.d;
  const int k0 = blockIdx.x * kKeys;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;
  const int key[2] = {k0 + warp * 16 + g, k0 + warp * 16 + g + 8};
  const float scale2 = sh.scale * kLog2e;

  // Causal: queries before the first key see none of this block's keys (k0 is a multiple of kQ).
  const int q_first = sh.causal ? k0 : 0;
  const int tiles = (S - q_first + kQ - 1) / kQ;

  // Group 0: K, V and the first query tile.
  load_tile_async<kKeys, DP>(Ks, Kg, k0, S, tid);
  load_tile_async<kKeys, DP>(Vs, Vg, k0, S, tid);
  load_tile_async<kQ, DP>(Qs, Qg, q_first, S, tid);
  load_tile_async<kQ, DP>(dOs, dOg, q_first, S, tid);
  ptx::cp_async_commit();
  load_row_stats(lse2, Ds, lse_bh, D_bh, q_first, kQ, S, tid);

  float dk[DP / 8][4], dv[DP / 8][4];
#pragma unroll
  for (int n = 0; n < DP / 8; n++)
#pragma unroll
    for (int e = 0; e < 4; e++) dk[n][e] = dv[n][e] = 0.0f;

  for (int it = 0; it < tiles; it++) {
    const int q0 = q_first + it * kQ, buf = it & 1;
    const uint16_t* Qb = Qs + buf * L::kQTile;
    const uint16_t* dOb = dOs + buf * L::kQTile;
    const float* lse2b = lse2 + buf * kQ;
    const float* Db = Ds + buf * kQ;
    // One barrier per tile at the top: after it, this tile's copies and row stats are
    // visible, and every warp is done with the previous tile (its buffers, which the next
    // copies reuse, and dSᵀ, which this tile rewrites).
    ptx::cp_async_wait<0>();
    __syncthreads();
    if (it + 1 < tiles) {  // in flight while this tile computes
      load_tile_async<kQ, DP>(Qs + (buf ^ 1) * L::kQTile, Qg, q0 + kQ, S, tid);
      load_tile_async<kQ, DP>(dOs + (buf ^ 1) * L::kQTile, dOg, q0 + kQ, S, tid);
      ptx::cp_async_commit();
      load_row_stats(lse2 + (buf ^ 1) * kQ, Ds + (buf ^ 1) * kQ, lse_bh, D_bh, q0 + kQ, kQ, S, tid);
    }

    // Sᵀ and dPᵀ for this warp's 16 keys × kQ queries.
    float p[kQ / 8][4], ds[kQ / 8][4];
#pragma unroll
    for (int j = 0; j < kQ / 8; j++)
#pragma unroll
      for (int e = 0; e < 4; e++) p[j][e] = ds[j][e] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < DP / 16; kk++) {
      uint32_t ka[4], va[4];
      ldsm_a(ka, Ks, ld, warp * 16, kk * 16, lane);
      ldsm_a(va, Vs, ld, warp * 16, kk * 16, lane);
#pragma unroll
      for (int jp = 0; jp < kQ / 16; jp++) {
        uint32_t qb[4], ob[4];
        ldsm_b2(qb, Qb, ld, jp * 16, kk * 16, lane);
        T::mma(p[2 * jp], ka, qb[0], qb[1]);
        T::mma(p[2 * jp + 1], ka, qb[2], qb[3]);
        ldsm_b2(ob, dOb, ld, jp * 16, kk * 16, lane);
        T::mma(ds[2 * jp], va, ob[0], ob[1]);
        T::mma(ds[2 * jp + 1], va, ob[2], ob[3]);
      }
    }
    // Pᵀ from lse (0 where masked; lse is +inf past S), dSᵀ = Pᵀ∘(dPᵀ − D).
    const bool masked = k0 + kKeys > S || (sh.causal && k0 + kKeys - 1 > q0);
#pragma unroll
    for (int j = 0; j < kQ / 8; j++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int ql = j * 8 + 2 * t + (e & 1), kr = key[e >> 1];
        const bool ok = !masked || (kr < S && (!sh.causal || kr <= q0 + ql));
        p[j][e] = ok ? exp2f(p[j][e] * scale2 - lse2b[ql]) : 0.0f;
        ds[j][e] = p[j][e] * (ds[j][e] - Db[ql]);
      }
    // dV += Pᵀ·dO, dK += dSᵀ·Q (the unscaled sum; scaled once at the end).
#pragma unroll
    for (int kk = 0; kk < kQ / 16; kk++) {
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
      for (int np = 0; np < DP / 16; np++) {
        uint32_t ob[4], qb[4];
        ldsm_b2_trans(ob, dOb, ld, kk * 16, np * 16, lane);
        T::mma(dv[2 * np], pa, ob[0], ob[1]);
        T::mma(dv[2 * np + 1], pa, ob[2], ob[3]);
        ldsm_b2_trans(qb, Qb, ld, kk * 16, np * 16, lane);
        T::mma(dk[2 * np], sa, qb[0], qb[1]);
        T::mma(dk[2 * np + 1], sa, qb[2], qb[3]);
      }
      // dSᵀ rows (keys) of this warp, as held: register pairs are adjacent queries.
      uint32_t* row_g = reinterpret_cast<uint32_t*>(dSt + (warp * 16 + g) * ldS + kk * 16 + 2 * t);
      uint32_t* row_g8 = reinterpret_cast<uint32_t*>(dSt + (warp * 16 + g + 8) * ldS + kk * 16 + 2 * t);
      row_g[0] = sa[0];
      row_g8[0] = sa[1];
      row_g[4] = sa[2];   // 8 queries further: +8 elements = +4 words
      row_g8[4] = sa[3];
    }
    __syncthreads();  // dQ reads every warp's dSᵀ

    // dQ[kQ × DP] += dS·K·scale over this block's 64 keys: warp w takes query rows
    // 16·(w mod kQ/16) and 1/kSplit of the columns.
    {
      constexpr int kMBlocks = kQ / 16, kSplit = 4 / kMBlocks, kCols = DP / kSplit;
      static_assert(kCols % 16 == 0, "dQ column split must be a multiple of 16");
      const int m0 = (warp % kMBlocks) * 16, c0 = (warp / kMBlocks) * kCols;
      float acc[kCols / 8][4];
#pragma unroll
      for (int n = 0; n < kCols / 8; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) acc[n][e] = 0.0f;
#pragma unroll
      for (int kk = 0; kk < kKeys / 16; kk++) {
        uint32_t sa[4];
        ldsm_a_trans(sa, dSt, ldS, m0, kk * 16, lane);
#pragma unroll
        for (int np = 0; np < kCols / 16; np++) {
          uint32_t kb[4];
          ldsm_b2_trans(kb, Ks, ld, kk * 16, c0 + np * 16, lane);
          T::mma(acc[2 * np], sa, kb[0], kb[1]);
          T::mma(acc[2 * np + 1], sa, kb[2], kb[3]);
        }
      }
      const int qa = q0 + m0 + g, qb = qa + 8;
#pragma unroll
      for (int n = 0; n < kCols / 8; n++) {
        const int c = c0 + n * 8 + 2 * t;
#pragma unroll
        for (int e = 0; e < 4; e++) {
          const int q = (e >> 1) ? qb : qa, cc = c + (e & 1);
          if (q < S && cc < d) atomicAdd(dqbase + static_cast<int64_t>(q) * ldg + cc, acc[n][e] * sh.scale);
        }
      }
    }
  }

#pragma unroll
  for (int r = 0; r < 2; r++) {
    if (key[r] >= S) continue;
    float* dkrow = dqbase + static_cast<int64_t>(key[r]) * ldg + sh.W;
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
int launch(const char* op, const AttentionShape& s, const uint16_t* qkv16, const uint16_t* do16, const float* lse,
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
    CS_LAUNCH(kernel, grid, kAttnThreads, bytes, stream, qkv16, do16, lse, D, dqkv, s, bh0);
    if (int rc = launched(op)) return rc;
  }
  return 0;
}

template <class T>
int launch_width(const char* op, int dp, const AttentionShape& s, const uint16_t* qkv16, const uint16_t* do16,
                 const float* lse, const float* D, float* dqkv, cudaStream_t stream) {
  switch (dp) {
    case 32: return launch<32, T>(op, s, qkv16, do16, lse, D, dqkv, stream);
    case 64: return launch<64, T>(op, s, qkv16, do16, lse, D, dqkv, stream);
    case 80: return launch<80, T>(op, s, qkv16, do16, lse, D, dqkv, stream);
    case 96: return launch<96, T>(op, s, qkv16, do16, lse, D, dqkv, stream);
    case 128: return launch<128, T>(op, s, qkv16, do16, lse, D, dqkv, stream);
    default: return fail("%s: no attention kernel for padded head width %d", op, dp);
  }
}

}  // namespace

int attention_backward_mma_launch(const char* op, Precision p, int dp, const AttentionShape& s,
                                  const uint16_t* qkv16, const uint16_t* do16, const float* lse, const float* D,
                                  float* dqkv, cudaStream_t stream) {
  if (p == Precision::F16) return launch_width<F16Operands>(op, dp, s, qkv16, do16, lse, D, dqkv, stream);
  return launch_width<Bf16Operands>(op, dp, s, qkv16, do16, lse, D, dqkv, stream);
}

}  // namespace cs_cuda
