// Our own 16-bit tensor-core GEMM (mma.sync m16n8k16 on bf16 or fp16 operands, fp32
// accumulation), for when cuBLASLt is absent or CLIPSCALE_GEMM=own. Operands are K-major (gemm_core.h),
// staged through shared memory by a 3-stage cp.async pipeline; the epilogue applies
// alpha/beta, bias, GELU (erf or tanh) and the rounding of stored outputs.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "cuda/gemm_core.h"
#include "cuda/gemm_mma.cuh"
#include "cuda/launch.cuh"
#include "cuda/runtime.h"

namespace cs_cuda {

namespace {

constexpr int kBK = 32;        // k per pipeline stage
constexpr int kSK = kBK + 8;   // shared row stride (bf16): 80 bytes, conflict-free fragment loads
constexpr int kStages = 3;

struct NtParams {
  const uint16_t* A;
  const uint16_t* B;
  float* C;
  int64_t lda, ldb, ldc, sa, sb, sc;
  int M, N, K;
  float alpha, beta;
  const float* bias;
  float* pre_gelu;
  uint16_t* act16;
  int gelu, round;
};

// B's shared row stride when B is stored MN-major ([k][n] rows of BN, +8 against bank conflicts).
template <int BN>
constexpr int mn_ld() {
  return BN + 8;
}

template <int BM, int BN, bool B_KMAJOR>
constexpr int smem_bytes() {
  return kStages * (BM * kSK + (B_KMAJOR ? BN * kSK : kBK * mn_ld<BN>())) * 2;
}

// F16: the operands are fp16 (mma.f16), else bf16. B_KMAJOR: B stored [n][k] (K-major), else
// [k][n] (element (n, k) at B[k·ldb + n]; N and ldb multiples of 8), read with ldmatrix.trans —
// so a weight's bf16 copy w [N_out][K_in] serves as wᵀ without a transposing conversion.
template <int BM, int BN, int WARPS_M, int WARPS_N, bool F16, bool B_KMAJOR>
__global__ void __launch_bounds__(WARPS_M* WARPS_N * 32) gemm_nt_kernel(NtParams p) {
  constexpr int kThreads = WARPS_M * WARPS_N * 32;
  constexpr int TM = BM / WARPS_M / 16;  // m16 tiles per warp
  constexpr int TN = BN / WARPS_N / 8;   // n8 tiles per warp
  static_assert(TM >= 1 && TN >= 1 && BM % (WARPS_M * 16) == 0 && BN % (WARPS_N * 8) == 0, "tile shape");
  CS_DYNAMIC_SMEM(uint16_t, smem);
  uint16_t* As = smem;                        // [kStages][BM][kSK]
  uint16_t* Bs = smem + kStages * BM * kSK;   // [kStages][BN][kSK], or [kStages][kBK][mn_ld] (MN-major)
  constexpr int kBStage = B_KMAJOR ? BN * kSK : kBK * mn_ld<BN>();

  const int64_t batch = blockIdx.z;
  const uint16_t* A = p.A + batch * p.sa;
  const uint16_t* B = p.B + batch * p.sb;
  float* C = p.C + batch * p.sc;
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int wm = warp / WARPS_N, wn = warp % WARPS_N;

  float acc[TM][TN][4];
#pragma unroll
  for (int i = 0; i < TM; i++)
#pragma unroll
    for (int j = 0; j < TN; j++)
#pragma unroll
      for (int e = 0; e < 4; e++) acc[i][j][e] = 0.0f;

  const int KT = (p.K + kBK - 1) / kBK;
  // Rows past M/N and chunks past K are zero-filled; a chunk that starts below K may
  // reach into the row's zero padding (ld is a multiple of 8).
  auto load_tile = [&](int stage, int kt) {
    const int k0 = kt * kBK;
    uint16_t* as = As + stage * BM * kSK;
    uint16_t* bs = Bs + stage * kBStage;
#pragma unroll
    for (int c = tid; c < BM * (kBK / 8); c += kThreads) {
      const int r = c / (kBK / 8), kc = (c % (kBK / 8)) * 8;
      const bool ok = m0 + r < p.M && k0 + kc < p.K;
      cp_async16(as + r * kSK + kc, ok ? A + static_cast<int64_t>(m0 + r) * p.lda + k0 + kc : A, ok);
    }
    if (B_KMAJOR) {
#pragma unroll
      for (int c = tid; c < BN * (kBK / 8); c += kThreads) {
        const int r = c / (kBK / 8), kc = (c % (kBK / 8)) * 8;
        const bool ok = n0 + r < p.N && k0 + kc < p.K;
        cp_async16(bs + r * kSK + kc, ok ? B + static_cast<int64_t>(n0 + r) * p.ldb + k0 + kc : B, ok);
      }
    } else {
      // Rows of k, 8 columns of n a chunk (N is a multiple of 8: a chunk is all in or all out).
#pragma unroll
      for (int c = tid; c < kBK * (BN / 8); c += kThreads) {
        const int r = c / (BN / 8), nc = (c % (BN / 8)) * 8;
        const bool ok = k0 + r < p.K && n0 + nc < p.N;
        cp_async16(bs + r * mn_ld<BN>() + nc, ok ? B + static_cast<int64_t>(k0 + r) * p.ldb + n0 + nc : B, ok);
      }
    }
  };

#pragma unroll
  for (int s = 0; s < kStages - 1; s++) {
    if (s < KT) load_tile(s, s);
    cp_async_commit();
  }
  for (int kt = 0; kt < KT; kt++) {
    cp_async_wait<kStages - 2>();  // tile kt has landed (this thread's copies)
    __syncthreads();               // ...everyone's; and the stage refilled below is no longer read
    const int next = kt + kStages - 1;
    if (next < KT) load_tile(next % kStages, next);
    cp_async_commit();
    const uint16_t* as = As + (kt % kStages) * BM * kSK;
    const uint16_t* bs = Bs + (kt % kStages) * kBStage;
#pragma unroll
    for (int kk = 0; kk < kBK; kk += 16) {
      uint32_t af[TM][4], bf[TN][2];
#pragma unroll
      for (int i = 0; i < TM; i++) load_a_frag(af[i], as, kSK, (wm * TM + i) * 16, kk, lane);
#pragma unroll
      for (int j = 0; j < TN; j++) {
        if (B_KMAJOR) {
          load_b_frag(bf[j][0], bf[j][1], bs, kSK, (wn * TN + j) * 8, kk, lane);
        } else {
          // Two 8×8 blocks (k kk..kk+7 and kk+8..kk+15 at columns n): lanes 0–15 give their rows.
          uint32_t r[2];
          ptx::ldmatrix_x2_trans(r, bs + (kk + (lane & 15)) * mn_ld<BN>() + (wn * TN + j) * 8);
          bf[j][0] = r[0];
          bf[j][1] = r[1];
        }
      }
#pragma unroll
      for (int i = 0; i < TM; i++)
#pragma unroll
        for (int j = 0; j < TN; j++) {
          if (F16)
            mma_f16_16816(acc[i][j], af[i], bf[j][0], bf[j][1]);
          else
            mma_bf16_16816(acc[i][j], af[i], bf[j][0], bf[j][1]);
        }
    }
  }
  cp_async_wait<0>();

  const int g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int i = 0; i < TM; i++)
#pragma unroll
    for (int j = 0; j < TN; j++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int r = m0 + (wm * TM + i) * 16 + g + (e >> 1) * 8;
        const int c = n0 + (wn * TN + j) * 8 + 2 * t + (e & 1);
        if (r >= p.M || c >= p.N) continue;
        const int64_t at = static_cast<int64_t>(r) * p.ldc + c;
        float* dst = C + at;
        float v = p.alpha * acc[i][j][e];
        if (p.beta != 0.0f) v += p.beta * *dst;
        if (p.bias) v += p.bias[c];
        store_epilogue(v, C, p.pre_gelu ? p.pre_gelu + batch * p.sc : nullptr,
                       p.act16 ? p.act16 + batch * p.sc : nullptr, at, p.gelu, p.round);
      }
}

template <int BM, int BN, int WARPS_M, int WARPS_N, bool F16, bool B_KMAJOR>
int launch(const char* op, const NtParams& p, int64_t batch, cudaStream_t stream) {
  constexpr int bytes = smem_bytes<BM, BN, B_KMAJOR>();
  auto kernel = gemm_nt_kernel<BM, BN, WARPS_M, WARPS_N, F16, B_KMAJOR>;
  if (bytes > 48 * 1024) {
    // Opting in to more than 48 KiB of shared memory is per device; cheap to repeat.
    if (int rc = check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes), op,
                       "raising the GEMM kernel's shared memory limit"))
      return rc;
  }
  const int64_t gy = (p.M + BM - 1) / BM;
  if (gy > 65535) return fail("%s: GEMM with %d rows is too tall for one launch", op, p.M);
  for (int64_t b0 = 0; b0 < batch; b0 += 65535) {
    NtParams q = p;
    q.A += b0 * p.sa;
    q.B += b0 * p.sb;
    q.C += b0 * p.sc;
    if (q.pre_gelu) q.pre_gelu += b0 * p.sc;
    if (q.act16) q.act16 += b0 * p.sc;
    dim3 grid((p.N + BN - 1) / BN, static_cast<unsigned>(gy), static_cast<unsigned>(std::min<int64_t>(65535, batch - b0)));
    CS_LAUNCH(kernel, grid, WARPS_M * WARPS_N * 32, bytes, stream, q);
    if (int rc = launched(op)) return rc;
  }
  return 0;
}

int sm_count() {
  static int counts[64] = {0};
  int dev = 0;
  cudaGetDevice(&dev);
  if (dev < 0 || dev >= 64) return 100;
  if (!counts[dev]) {
    int n = 0;
    if (cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess || n <= 0) n = 100;
    counts[dev] = n;
  }
  return counts[dev];
}

}  // namespace

int own_gemm_nt(const char* op, int64_t M, int64_t N, int64_t K, Operand A, Operand B, float* C, int64_t ldc,
                int64_t sc, int64_t batch, const Epilogue& ep, cudaStream_t stream) {
  if (A.type == kF32) return own_gemm_f32(op, M, N, K, A, B, C, ldc, sc, batch, ep, stream);
  if (M > INT32_MAX || N > INT32_MAX || K > INT32_MAX)
    return fail("%s: GEMM dimensions %lld×%lld×%lld exceed the own kernel's 32-bit indexing", op, (long long)M,
                (long long)N, (long long)K);
  NtParams p{static_cast<const uint16_t*>(A.ptr), static_cast<const uint16_t*>(B.ptr), C, A.ld, B.ld, ldc, A.stride,
             B.stride, sc, static_cast<int>(M), static_cast<int>(N), static_cast<int>(K), ep.alpha, ep.beta, ep.bias,
             ep.pre_gelu, ep.act16, ep.gelu, ep.round};
  const bool f16 = A.type == kF16;
  if (!A.kmajor) return fail("%s: the own 16-bit GEMM kernel takes A K-major", op);
  if (!B.kmajor && (N % 8 != 0 || B.ld % 8 != 0 || reinterpret_cast<uintptr_t>(B.ptr) % 16 != 0))
    return fail("%s: an MN-major 16-bit B needs N and ldb multiples of 8 and 16-byte alignment", op);
  // 128×128 tiles (8 warps, 64×32 each) when they fill the GPU; 64×64 (4 warps) for
  // the small GEMMs of short sequences and small widths.
  // CLIPSCALE_GEMM_TILE=128|64 forces one (the tests run both on small problems).
  const char* force = std::getenv("CLIPSCALE_GEMM_TILE");
  const int64_t big_tiles = ((M + 127) / 128) * ((N + 127) / 128) * batch;
  const bool big = force && *force ? std::strcmp(force, "128") == 0 : big_tiles >= sm_count();
  auto run = [&](auto f16_tag, auto kmajor_tag) {
    constexpr bool F = decltype(f16_tag)::value, KM = decltype(kmajor_tag)::value;
    return big ? launch<128, 128, 2, 4, F, KM>(op, p, batch, stream) : launch<64, 64, 2, 2, F, KM>(op, p, batch, stream);
  };
  using T = std::true_type;
  using F = std::false_type;
  if (f16) return B.kmajor ? run(T{}, T{}) : run(T{}, F{});
  return B.kmajor ? run(F{}, T{}) : run(F{}, F{});
}

}  // namespace cs_cuda
