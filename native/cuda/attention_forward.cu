// Fused attention forward, FlashAttention-2 style, on 16-bit tensor cores (bf16 or f16,
// the operand trait T; attention_operands.cuh).
//
// A block (4 warps) owns 64 query rows of one (batch, head) and walks the key tiles of 64
// with an online softmax in fp32; each warp owns 16 query rows, keeps its Q fragments and
// its output accumulator in registers and never writes scores to memory. K and V tiles are
// staged by cp.async into two buffers, tile j+1 in flight while tile j is used
// (commit/wait groups); fragments come from ldmatrix (.trans for V in P·V). Operands are
// the packed 16-bit copy of qkv (attention_tiles.cuh: global and shared layouts, why the
// shared rows are padded). Scores are in the log2 domain (exp2); P enters P·V as T.
//
// Per thread: O (DP/2 fp32), scores (32 fp32) and Q fragments (DP/4 registers). What
// remains to verify on a GPU (spills, bank conflicts, speed vs SDPA): attention_kernels.h.
#include <cmath>

#include "cuda/attention_kernels.h"
#include "cuda/attention_operands.cuh"
#include "cuda/attention_tiles.cuh"
#include "cuda/launch.cuh"
#include "cuda/runtime.h"

namespace cs_cuda {

namespace {

constexpr int kRows = 64;  // query rows per block
constexpr int kKeys = 64;  // keys per tile
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

template <int DP>
struct FwdSmem {
  static constexpr int kLd = DP + 8;
  static constexpr int kTile = kKeys * kLd;        // elements of one K or V buffer
  static constexpr int kBytes = (kRows * kLd + 4 * kTile) * 2;  // Q, K×2, V×2
};

template <int DP, class T>
__global__ void __launch_bounds__(kAttnThreads) attention_forward_kernel(const uint16_t* __restrict__ qkv16,
                                                                         void* __restrict__ out, bool out16,
                                                                         float* __restrict__ lse, AttentionShape sh,
                                                                         int64_t bh0) {
  using L = FwdSmem<DP>;
  constexpr int ld = L::kLd;
  CS_DYNAMIC_SMEM(uint16_t, smem);
  uint16_t* Qs = smem;
  uint16_t* Ks = Qs + kRows * ld;  // [2][kKeys][ld]
  uint16_t* Vs = Ks + 2 * L::kTile;

  const int64_t bh = bh0 + blockIdx.y, b = bh / sh.heads, h = bh % sh.heads;
  const int S = static_cast<int>(sh.S), d = static_cast<int>(sh.d);
  const int64_t plane = sh.B * sh.heads * sh.S * DP;  // one of Q, K, V
  const uint16_t* Qg = qkv16 + bh * sh.S * DP;
  const uint16_t* Kg = Qg + plane;
  const uint16_t* Vg = Kg + plane;
  const int q0 = blockIdx.x * kRows;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;
  const int row[2] = {q0 + warp * 16 + g, q0 + warp * 16 + g + 8};
  const float scale2 = sh.scale * kLog2e;

  const int last_key = sh.causal ? min(q0 + kRows - 1, S - 1) : S - 1;
  const int steps = last_key / kKeys + 1;

  // Group 0: Q and the first K, V tile.
  load_tile_async<kRows, DP>(Qs, Qg, q0, S, tid);
  load_tile_async<kKeys, DP>(Ks, Kg, 0, S, tid);
  load_tile_async<kKeys, DP>(Vs, Vg, 0, S, tid);
  ptx::cp_async_commit();

  uint32_t qf[DP / 16][4];
  float o[DP / 8][4];
#pragma unroll
  for (int n = 0; n < DP / 8; n++)
#pragma unroll
    for (int e = 0; e < 4; e++) o[n][e] = 0.0f;
  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.0f, 0.0f};

  for (int step = 0; step < steps; step++) {
    const int k0 = step * kKeys;
    const uint16_t* Kb = Ks + (step & 1) * L::kTile;
    const uint16_t* Vb = Vs + (step & 1) * L::kTile;
    // One barrier per step: after it, this step's copies (every thread's) are visible, and
    // every warp is done with the previous step, whose buffers the next copies reuse.
    ptx::cp_async_wait<0>();
    __syncthreads();
    if (step + 1 < steps) {  // in flight while this step computes
      load_tile_async<kKeys, DP>(Ks + ((step + 1) & 1) * L::kTile, Kg, k0 + kKeys, S, tid);
      load_tile_async<kKeys, DP>(Vs + ((step + 1) & 1) * L::kTile, Vg, k0 + kKeys, S, tid);
      ptx::cp_async_commit();
    }
    if (step == 0) {
#pragma unroll
      for (int kk = 0; kk < DP / 16; kk++) ldsm_a(qf[kk], Qs, ld, warp * 16, kk * 16, lane);
    }

    // Scores for this warp's 16 rows × 64 keys.
    float s[kKeys / 8][4];
#pragma unroll
    for (int j = 0; j < kKeys / 8; j++)
#pragma unroll
      for (int e = 0; e < 4; e++) s[j][e] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < DP / 16; kk++)
#pragma unroll
      for (int jp = 0; jp < kKeys / 16; jp++) {
        uint32_t kb[4];
        ldsm_b2(kb, Kb, ld, jp * 16, kk * 16, lane);
        T::mma(s[2 * jp], qf[kk], kb[0], kb[1]);
        T::mma(s[2 * jp + 1], qf[kk], kb[2], kb[3]);
      }

    // Mask (only tiles that cross S or the diagonal), then the online softmax of each of
    // this thread's two rows.
    const bool masked = k0 + kKeys > S || (sh.causal && k0 + kKeys - 1 > q0);
    float m_new[2] = {m_run[0], m_run[1]};
#pragma unroll
    for (int j = 0; j < kKeys / 8; j++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int key = k0 + j * 8 + 2 * t + (e & 1), r = e >> 1;
        const bool ok = !masked || (key < S && (!sh.causal || key <= row[r]));
        s[j][e] = ok ? s[j][e] * scale2 : -INFINITY;
        m_new[r] = fmaxf(m_new[r], s[j][e]);
      }
    float alpha[2], base_m[2];
#pragma unroll
    for (int r = 0; r < 2; r++) {
      m_new[r] = fmaxf(m_new[r], __shfl_xor_sync(0xffffffffu, m_new[r], 1));
      m_new[r] = fmaxf(m_new[r], __shfl_xor_sync(0xffffffffu, m_new[r], 2));
      base_m[r] = m_new[r] == -INFINITY ? 0.0f : m_new[r];  // a row with nothing visible yet
      alpha[r] = exp2f(m_run[r] - base_m[r]);
      m_run[r] = m_new[r];
      l_run[r] *= alpha[r];
    }
#pragma unroll
    for (int j = 0; j < kKeys / 8; j++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int r = e >> 1;
        s[j][e] = exp2f(s[j][e] - base_m[r]);
        l_run[r] += s[j][e];
      }
#pragma unroll
    for (int n = 0; n < DP / 8; n++) {
      o[n][0] *= alpha[0];
      o[n][1] *= alpha[0];
      o[n][2] *= alpha[1];
      o[n][3] *= alpha[1];
    }

    // O += P·V: the score accumulators of two adjacent key octets form P's A fragment;
    // V's B fragments come transposed out of its [key][d] tile.
#pragma unroll
    for (int kk = 0; kk < kKeys / 16; kk++) {
      uint32_t a[4];
      a[0] = T::pack(s[2 * kk][0], s[2 * kk][1]);
      a[1] = T::pack(s[2 * kk][2], s[2 * kk][3]);
      a[2] = T::pack(s[2 * kk + 1][0], s[2 * kk + 1][1]);
      a[3] = T::pack(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
      for (int np = 0; np < DP / 16; np++) {
        uint32_t vb[4];
        ldsm_b2_trans(vb, Vb, ld, kk * 16, np * 16, lane);
        T::mma(o[2 * np], a, vb[0], vb[1]);
        T::mma(o[2 * np + 1], a, vb[2], vb[3]);
      }
    }
  }

  // Row sums are spread over the 4 threads of a quad.
#pragma unroll
  for (int r = 0; r < 2; r++) {
    l_run[r] += __shfl_xor_sync(0xffffffffu, l_run[r], 1);
    l_run[r] += __shfl_xor_sync(0xffffffffu, l_run[r], 2);
  }
  // out16 (uniform across the grid): the same values stored as their 16-bit bits.
  const int64_t obase = b * sh.S * sh.W + h * sh.d;
#pragma unroll
  for (int r = 0; r < 2; r++) {
    if (row[r] >= S) continue;
    const float inv = 1.0f / l_run[r];
    const int64_t orow = obase + static_cast<int64_t>(row[r]) * sh.W;
#pragma unroll
    for (int n = 0; n < DP / 8; n++)
#pragma unroll
      for (int e = 0; e < 2; e++) {
        const int c = n * 8 + 2 * t + e;
        if (c >= d) continue;
        if (out16) static_cast<uint16_t*>(out)[orow + c] = T::bits(o[n][r * 2 + e] * inv);
        else static_cast<float*>(out)[orow + c] = T::round(o[n][r * 2 + e] * inv);
      }
    if (lse && t == 0) lse[bh * sh.S + row[r]] = (m_run[r] + log2f(l_run[r])) * kLn2;
  }
}

template <int DP, class T>
int launch(const char* op, const AttentionShape& s, const uint16_t* qkv16, void* out, bool out16, float* lse,
           cudaStream_t stream) {
  constexpr int bytes = FwdSmem<DP>::kBytes;
  auto kernel = attention_forward_kernel<DP, T>;
  if (bytes > 48 * 1024)
    if (int rc = check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes), op,
                       "raising the attention kernel's shared memory limit"))
      return rc;
  const int64_t bh = s.B * s.heads;
  const unsigned gx = static_cast<unsigned>((s.S + kRows - 1) / kRows);
  for (int64_t bh0 = 0; bh0 < bh; bh0 += 65535) {
    dim3 grid(gx, static_cast<unsigned>(bh - bh0 < 65535 ? bh - bh0 : 65535));
    CS_LAUNCH(kernel, grid, kAttnThreads, bytes, stream, qkv16, out, out16, lse, s, bh0);
    if (int rc = launched(op)) return rc;
  }
  return 0;
}

template <class T>
int launch_width(const char* op, int dp, const AttentionShape& s, const uint16_t* qkv16, void* out, bool out16,
                 float* lse, cudaStream_t stream) {
  switch (dp) {
    case 32: return launch<32, T>(op, s, qkv16, out, out16, lse, stream);
    case 64: return launch<64, T>(op, s, qkv16, out, out16, lse, stream);
    case 80: return launch<80, T>(op, s, qkv16, out, out16, lse, stream);
    case 96: return launch<96, T>(op, s, qkv16, out, out16, lse, stream);
    case 128: return launch<128, T>(op, s, qkv16, out, out16, lse, stream);
    default: return fail("%s: no attention kernel for padded head width %d", op, dp);
  }
}

}  // namespace

int attention_forward_mma_launch(const char* op, Precision p, int dp, const AttentionShape& s, const uint16_t* qkv16,
                                 void* out, bool out16, float* lse, cudaStream_t stream) {
  if (p == Precision::F16) return launch_width<F16Operands>(op, dp, s, qkv16, out, out16, lse, stream);
  return launch_width<Bf16Operands>(op, dp, s, qkv16, out, out16, lse, stream);
}

}  // namespace cs_cuda
