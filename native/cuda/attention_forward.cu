// Fused attention forward (flash attention 2 style) on bf16 tensor cores.
//
// A block owns 64 query rows of one (batch, head) and walks the key blocks of 64 with
// an online softmax; each of its 4 warps owns 16 query rows, keeps its Q fragments and
// its output accumulator in registers, and never writes scores to global memory.
// Q and K are staged K-major ([row][d]) and V transposed ([d][key]), all bf16, so every
// mma fragment is a 32-bit shared load (gemm_mma.cuh). Scores are fp32 in the log2
// domain (exp2); P enters P·V as bf16.
#include <cmath>

#include "cuda/attention_kernels.h"
#include "cuda/attention_operands.cuh"
#include "cuda/gemm_mma.cuh"
#include "cuda/launch.cuh"
#include "cuda/runtime.h"

namespace cs_cuda {

namespace {

constexpr int kRows = 64;   // query rows per block
constexpr int kKeys = 64;   // keys per step
constexpr int kThreads = 128;
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

template <int DP>
struct FwdSmem {
  static constexpr int kLd = DP + 8;      // Q, K rows (bf16)
  static constexpr int kLdT = kKeys + 8;  // Vᵀ rows
  static constexpr int kBytes = (kRows * kLd + kKeys * kLd + DP * kLdT) * 2;
};

template <int DP, class T>
__global__ void __launch_bounds__(kThreads) attention_forward_kernel(const float* __restrict__ qkv,
                                                                     float* __restrict__ out, float* __restrict__ lse,
                                                                     AttentionShape sh, int64_t bh0) {
  using L = FwdSmem<DP>;
  CS_DYNAMIC_SMEM(uint16_t, smem);
  uint16_t* Qs = smem;
  uint16_t* Ks = Qs + kRows * L::kLd;
  uint16_t* Vt = Ks + kKeys * L::kLd;

  const int64_t bh = bh0 + blockIdx.y, b = bh / sh.heads, h = bh % sh.heads;
  const int S = static_cast<int>(sh.S), d = static_cast<int>(sh.d);
  const int64_t ld = 3 * sh.W;
  const float* base = qkv + b * sh.S * ld + h * sh.d;  // Q of row 0; K at +W, V at +2W
  const int q0 = blockIdx.x * kRows;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;

  for (int i = tid; i < kRows * DP; i += kThreads) {
    const int r = i / DP, c = i % DP;
    const float v = (q0 + r < S && c < d) ? base[static_cast<int64_t>(q0 + r) * ld + c] : 0.0f;
    Qs[r * L::kLd + c] = T::bits(v);
  }
  __syncthreads();
  uint32_t qf[DP / 16][4];
#pragma unroll
  for (int kk = 0; kk < DP / 16; kk++) load_a_frag(qf[kk], Qs, L::kLd, warp * 16, kk * 16, lane);

  float o[DP / 8][4];
#pragma unroll
  for (int n = 0; n < DP / 8; n++)
#pragma unroll
    for (int e = 0; e < 4; e++) o[n][e] = 0.0f;
  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.0f, 0.0f};
  const int row[2] = {q0 + warp * 16 + g, q0 + warp * 16 + g + 8};
  const float scale2 = sh.scale * kLog2e;

  const int last_key = sh.causal ? min(q0 + kRows - 1, S - 1) : S - 1;
  const int steps = last_key / kKeys + 1;
  for (int step = 0; step < steps; step++) {
    const int k0 = step * kKeys;
    __syncthreads();  // the previous step's K and Vᵀ are no longer read
    for (int i = tid; i < kKeys * DP; i += kThreads) {
      const int j = i / DP, c = i % DP;
      const bool ok = k0 + j < S && c < d;
      const float* p = base + static_cast<int64_t>(k0 + j) * ld + c;
      Ks[j * L::kLd + c] = T::bits(ok ? p[sh.W] : 0.0f);
      Vt[c * L::kLdT + j] = T::bits(ok ? p[2 * sh.W] : 0.0f);
    }
    __syncthreads();

    // Scores for this warp's 16 rows × 64 keys.
    float s[kKeys / 8][4];
#pragma unroll
    for (int j = 0; j < kKeys / 8; j++)
#pragma unroll
      for (int e = 0; e < 4; e++) s[j][e] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < DP / 16; kk++)
#pragma unroll
      for (int j = 0; j < kKeys / 8; j++) {
        uint32_t b0, b1;
        load_b_frag(b0, b1, Ks, L::kLd, j * 8, kk * 16, lane);
        T::mma(s[j], qf[kk], b0, b1);
      }

    // Mask, then the online softmax of each of this thread's two rows.
    float m_new[2] = {m_run[0], m_run[1]};
#pragma unroll
    for (int j = 0; j < kKeys / 8; j++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int key = k0 + j * 8 + 2 * t + (e & 1), r = e >> 1;
        const bool ok = key < S && (!sh.causal || key <= row[r]);
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

    // O += P·V: the score accumulators of two adjacent key octets form P's A fragment.
#pragma unroll
    for (int kk = 0; kk < kKeys / 16; kk++) {
      uint32_t a[4];
      a[0] = T::pack(s[2 * kk][0], s[2 * kk][1]);
      a[1] = T::pack(s[2 * kk][2], s[2 * kk][3]);
      a[2] = T::pack(s[2 * kk + 1][0], s[2 * kk + 1][1]);
      a[3] = T::pack(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
      for (int n = 0; n < DP / 8; n++) {
        uint32_t b0, b1;
        load_b_frag(b0, b1, Vt, L::kLdT, n * 8, kk * 16, lane);
        T::mma(o[n], a, b0, b1);
      }
    }
  }

  // Row sums are spread over the 4 threads of a quad.
#pragma unroll
  for (int r = 0; r < 2; r++) {
    l_run[r] += __shfl_xor_sync(0xffffffffu, l_run[r], 1);
    l_run[r] += __shfl_xor_sync(0xffffffffu, l_run[r], 2);
  }
  float* obase = out + b * sh.S * sh.W + h * sh.d;
#pragma unroll
  for (int r = 0; r < 2; r++) {
    if (row[r] >= S) continue;
    const float inv = 1.0f / l_run[r];
    float* orow = obase + static_cast<int64_t>(row[r]) * sh.W;
#pragma unroll
    for (int n = 0; n < DP / 8; n++)
#pragma unroll
      for (int e = 0; e < 2; e++) {
        const int c = n * 8 + 2 * t + e;
        if (c < d) orow[c] = T::round(o[n][r * 2 + e] * inv);
      }
    if (lse && t == 0) lse[bh * sh.S + row[r]] = (m_run[r] + log2f(l_run[r])) * kLn2;
  }
}

template <int DP, class T>
int launch(const char* op, const AttentionShape& s, const float* qkv, float* out, float* lse, cudaStream_t stream) {
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
    CS_LAUNCH(kernel, grid, kThreads, bytes, stream, qkv, out, lse, s, bh0);
    if (int rc = launched(op)) return rc;
  }
  return 0;
}

template <class T>
int launch_width(const char* op, int dp, const AttentionShape& s, const float* qkv, float* out, float* lse,
                 cudaStream_t stream) {
  switch (dp) {
    case 32: return launch<32, T>(op, s, qkv, out, lse, stream);
    case 64: return launch<64, T>(op, s, qkv, out, lse, stream);
    case 80: return launch<80, T>(op, s, qkv, out, lse, stream);
    case 96: return launch<96, T>(op, s, qkv, out, lse, stream);
    case 128: return launch<128, T>(op, s, qkv, out, lse, stream);
    default: return fail("%s: no attention kernel for padded head width %d", op, dp);
  }
}

}  // namespace

int attention_forward_mma_launch(const char* op, Precision p, int dp, const AttentionShape& s, const float* qkv,
                                 float* out, float* lse, cudaStream_t stream) {
  if (p == Precision::F16) return launch_width<F16Operands>(op, dp, s, qkv, out, lse, stream);
  return launch_width<Bf16Operands>(op, dp, s, qkv, out, lse, stream);
}

}  // namespace cs_cuda
