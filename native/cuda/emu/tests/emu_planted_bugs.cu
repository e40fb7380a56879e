// The emulated device's own tests: the PTX emulations against scalar references, the
// runtime's checks, and planted bugs that the harness exists to catch. Compiled as host
// C++ on the fiber runtime (native/cuda/emu/build.cjs links it with the runtime only).
// Prints one JSON line per check: {"check": name, "ok": bool, "detail": text}; exit 0 when
// every check came out as expected. test/cuda-emulator.test.ts asserts each line.
//
// The planted bugs are variants of a small double-buffered cp.async → mma GEMM built from
// the same helpers as the backend's kernels (gemm_mma.cuh, ptx.cuh):
//   wrong-fragment    a[1] and a[2] of the A fragment swapped (a wrong fragment index)
//   missing-wait      no cp.async.wait_group before the tile is read
//   missing-sync      no __syncthreads between the copies landing and the reads (run under
//                     the reversed and random schedules)
//   store-past-end    the epilogue's row bound is <= instead of < (a store past C's end)
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cuda/emu/emu_internal.h"
#include "cuda/gemm_mma.cuh"
#include "cuda/launch.cuh"

using namespace cs_cuda;

namespace {

int g_unexpected = 0;

std::string json_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    if (c == '\n') {
      o += "\\n";
      continue;
    }
    o += c;
  }
  return o;
}

void report(const char* check, bool ok, const std::string& detail) {
  std::printf("{\"check\": \"%s\", \"ok\": %s, \"detail\": \"%s\"}\n", check, ok ? "true" : "false",
              json_escape(detail).c_str());
  if (!ok) g_unexpected++;
}

uint16_t bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
float from_bf16(uint16_t b) {
  uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

std::vector<uint16_t> random_bf16(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d;
  std::vector<uint16_t> v(n);
  for (auto& x : v) x = bf16(d(rng));
  return v;
}

template <typename T>
T* to_device(const std::vector<T>& h) {
  T* p = nullptr;
  cudaMalloc(&p, h.size() * sizeof(T));
  cudaMemcpy(p, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice);
  return p;
}

// ── one warp: mma against a scalar product ──
__global__ void mma_kernel(const uint16_t* A, const uint16_t* B, float* D) {
  // A 16×16 row-major, B given as [n][k] (8×16), D 16×8 row-major.
  const int lane = threadIdx.x, g = lane >> 2, t = lane & 3;
  uint32_t a[4];
  a[0] = A[g * 16 + 2 * t] | (uint32_t(A[g * 16 + 2 * t + 1]) << 16);
  a[1] = A[(g + 8) * 16 + 2 * t] | (uint32_t(A[(g + 8) * 16 + 2 * t + 1]) << 16);
  a[2] = A[g * 16 + 2 * t + 8] | (uint32_t(A[g * 16 + 2 * t + 9]) << 16);
  a[3] = A[(g + 8) * 16 + 2 * t + 8] | (uint32_t(A[(g + 8) * 16 + 2 * t + 9]) << 16);
  const uint32_t b0 = B[g * 16 + 2 * t] | (uint32_t(B[g * 16 + 2 * t + 1]) << 16);
  const uint32_t b1 = B[g * 16 + 2 * t + 8] | (uint32_t(B[g * 16 + 2 * t + 9]) << 16);
  float d[4] = {0.5f, 0.5f, 0.5f, 0.5f};
  mma_bf16_16816(d, a, b0, b1);
  D[g * 8 + 2 * t] = d[0];
  D[g * 8 + 2 * t + 1] = d[1];
  D[(g + 8) * 8 + 2 * t] = d[2];
  D[(g + 8) * 8 + 2 * t + 1] = d[3];
}

void test_mma() {
  auto A = random_bf16(256, 1), B = random_bf16(128, 2);
  uint16_t *dA = to_device(A), *dB = to_device(B);
  float* dD = to_device(std::vector<float>(128));
  CS_LAUNCH(mma_kernel, 1, 32, 0, nullptr, dA, dB, dD);
  std::vector<float> D(128);
  cudaMemcpy(D.data(), dD, 512, cudaMemcpyDeviceToHost);
  double worst = 0;
  for (int m = 0; m < 16; m++)
    for (int n = 0; n < 8; n++) {
      double s = 0.5;
      for (int k = 0; k < 16; k++) s += double(from_bf16(A[m * 16 + k])) * from_bf16(B[n * 16 + k]);
      worst = std::fmax(worst, std::fabs(s - D[m * 8 + n]));
    }
  report("mma.m16n8k16 emulation equals the scalar product", worst < 1e-4, "max abs diff " + std::to_string(worst));
  cudaFree(dA), cudaFree(dB), cudaFree(dD);
}

// ── ldmatrix x1/x2/x4 (± .trans) against the documented layout ──
template <int NMAT, bool TRANS>
__global__ void ldmatrix_kernel(const uint16_t* M, uint32_t* out) {
  __shared__ __align__(16) uint16_t s[4 * 64];
  const int lane = threadIdx.x;
  for (int i = lane; i < 4 * 64; i += 32) s[i] = M[i];
  __syncwarp();
  // Lanes 8i..8i+7 give the rows of matrix i (matrices stored one after another, 8×8 each).
  const void* row = s + (lane >> 3) * 64 + (lane & 7) * 8;
  uint32_t r[4] = {0, 0, 0, 0};
  if (NMAT == 1) {
    if (TRANS) ptx::ldmatrix_x1_trans(r[0], row); else ptx::ldmatrix_x1(r[0], row);
  } else if (NMAT == 2) {
    uint32_t (&r2)[2] = *reinterpret_cast<uint32_t(*)[2]>(r);
    if (TRANS) ptx::ldmatrix_x2_trans(r2, row); else ptx::ldmatrix_x2(r2, row);
  } else {
    if (TRANS) ptx::ldmatrix_x4_trans(r, row); else ptx::ldmatrix_x4(r, row);
  }
  for (int i = 0; i < NMAT; i++) out[lane * 4 + i] = r[i];
}

template <int NMAT, bool TRANS>
void test_ldmatrix_one() {
  std::vector<uint16_t> M(256);
  for (int i = 0; i < 256; i++) M[i] = static_cast<uint16_t>(i + 1);
  uint16_t* dM = to_device(M);
  uint32_t* dO = to_device(std::vector<uint32_t>(128));
  auto k = ldmatrix_kernel<NMAT, TRANS>;
  CS_LAUNCH(k, 1, 32, 0, nullptr, dM, dO);
  std::vector<uint32_t> O(128);
  cudaMemcpy(O.data(), dO, 512, cudaMemcpyDeviceToHost);
  int bad = 0;
  for (int lane = 0; lane < 32; lane++)
    for (int i = 0; i < NMAT; i++) {
      const uint16_t* m = M.data() + i * 64;
      uint32_t want;
      if (!TRANS)
        want = m[(lane >> 2) * 8 + 2 * (lane & 3)] | (uint32_t(m[(lane >> 2) * 8 + 2 * (lane & 3) + 1]) << 16);
      else
        want = m[(2 * (lane & 3)) * 8 + (lane >> 2)] | (uint32_t(m[(2 * (lane & 3) + 1) * 8 + (lane >> 2)]) << 16);
      if (O[lane * 4 + i] != want) bad++;
    }
  char name[96];
  std::snprintf(name, sizeof name, "ldmatrix x%d%s emulation follows the PTX layout", NMAT, TRANS ? ".trans" : "");
  report(name, bad == 0, std::to_string(bad) + " wrong registers");
  cudaFree(dM), cudaFree(dO);
}

// ── the planted-bug GEMM: C[M×N] = A[M×K]·B[N×K]ᵀ, one 64×64 block of 4 warps ──
enum Bug { kNone = 0, kWrongFragment = 1, kMissingWait = 2, kMissingSync = 3, kStorePastEnd = 4 };
constexpr int kTile = 64, kBK = 32, kLd = kBK + 8;

__global__ void small_gemm(const uint16_t* A, const uint16_t* B, float* C, int M, int N, int K, int bug) {
  CS_DYNAMIC_SMEM(uint16_t, smem);
  uint16_t* As = smem;                   // [2][64][kLd]
  uint16_t* Bs = smem + 2 * kTile * kLd;  // [2][64][kLd]
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int wm = warp >> 1, wn = warp & 1;  // each warp: 32 rows × 32 columns
  float acc[2][4][4] = {};
  const int KT = K / kBK;
  auto load = [&](int stage, int kt) {
    for (int c = tid; c < kTile * (kBK / 8); c += 128) {
      const int r = c / (kBK / 8), kc = (c % (kBK / 8)) * 8;
      cp_async16(As + (stage * kTile + r) * kLd + kc, A + r * K + kt * kBK + kc, r < M);
      cp_async16(Bs + (stage * kTile + r) * kLd + kc, B + r * K + kt * kBK + kc, r < N);
    }
  };
  load(0, 0);
  cp_async_commit();
  for (int kt = 0; kt < KT; kt++) {
    if (kt + 1 < KT) load((kt + 1) & 1, kt + 1);
    cp_async_commit();
    if (bug != kMissingWait) cp_async_wait<1>();
    if (bug != kMissingSync) __syncthreads();
    const uint16_t* as = As + (kt & 1) * kTile * kLd;
    const uint16_t* bs = Bs + (kt & 1) * kTile * kLd;
    for (int kk = 0; kk < kBK; kk += 16) {
      uint32_t af[2][4], bfr[4][2];
      for (int i = 0; i < 2; i++) {
        load_a_frag(af[i], as, kLd, wm * 32 + i * 16, kk, lane);
        if (bug == kWrongFragment) {
          const uint32_t x = af[i][1];
          af[i][1] = af[i][2];
          af[i][2] = x;
        }
      }
      for (int j = 0; j < 4; j++) load_b_frag(bfr[j][0], bfr[j][1], bs, kLd, wn * 32 + j * 8, kk, lane);
      for (int i = 0; i < 2; i++)
        for (int j = 0; j < 4; j++) mma_bf16_16816(acc[i][j], af[i], bfr[j][0], bfr[j][1]);
    }
    __syncthreads();  // the stage refilled next is no longer read
  }
  cp_async_wait<0>();
  const int g = lane >> 2, t = lane & 3;
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 4; j++)
      for (int e = 0; e < 4; e++) {
        const int r = wm * 32 + i * 16 + g + (e >> 1) * 8, c = wn * 32 + j * 8 + 2 * t + (e & 1);
        const bool in = bug == kStorePastEnd ? (r <= M && c < N) : (r < M && c < N);
        if (in) C[r * N + c] = acc[i][j][e];
      }
}

struct GemmResult {
  cudaError_t err;
  std::string message;
  double max_rel;
};

GemmResult run_gemm(int bug, const char* schedule) {
  const int M = 48, N = 64, K = 96;  // M short of the tile, so row M exists in the tile but not in C
  auto A = random_bf16(size_t(M) * K, 3), B = random_bf16(size_t(N) * K, 4);
  // A is read for rows < 64 only where r < M: pad it so the unguarded loads stay in A.
  uint16_t *dA = to_device(A), *dB = to_device(B);
  float* dC = to_device(std::vector<float>(size_t(M) * N, 0.0f));
  cs_emu::Schedule s;
  cs_emu::parse_schedule(schedule, &s);
  cs_emu::set_schedule(s);
  CS_LAUNCH(small_gemm, 1, 128, 2 * 2 * kTile * kLd * 2, nullptr, dA, dB, dC, M, N, K, bug);
  GemmResult r{cudaGetLastError(), "", 0};
  if (r.err != cudaSuccess) r.message = cudaGetErrorString(r.err);
  std::vector<float> C(size_t(M) * N);
  cudaMemcpy(C.data(), dC, C.size() * 4, cudaMemcpyDeviceToHost);
  double num = 0, den = 0;
  for (int m = 0; m < M; m++)
    for (int n = 0; n < N; n++) {
      double ref = 0;
      for (int k = 0; k < K; k++) ref += double(from_bf16(A[m * K + k])) * from_bf16(B[n * K + k]);
      const double d = std::isfinite(C[m * N + n]) ? C[m * N + n] - ref : 1e30;
      num += d * d;
      den += ref * ref;
    }
  r.max_rel = std::sqrt(num / den);
  cs_emu::parse_schedule("inorder", &s);
  cs_emu::set_schedule(s);
  cudaFree(dA), cudaFree(dB), cudaFree(dC);
  return r;
}

void test_planted_bugs() {
  for (const char* sched : {"inorder", "reversed", "random:7"}) {
    GemmResult r = run_gemm(kNone, sched);
    report((std::string("bug-free GEMM is exact under the ") + sched + " schedule").c_str(),
           r.err == cudaSuccess && r.max_rel < 1e-5, "relErr " + std::to_string(r.max_rel) + " " + r.message);
  }
  GemmResult r = run_gemm(kWrongFragment, "inorder");
  report("planted: wrong fragment index is detected", r.err == cudaSuccess && r.max_rel > 0.1,
         "relErr " + std::to_string(r.max_rel));
  r = run_gemm(kMissingWait, "inorder");
  report("planted: missing cp.async wait is detected", r.err == cudaSuccess && r.max_rel > 0.1,
         "relErr " + std::to_string(r.max_rel));
  for (const char* sched : {"reversed", "random:7"}) {
    r = run_gemm(kMissingSync, sched);
    report((std::string("planted: missing __syncthreads is detected under the ") + sched + " schedule").c_str(),
           r.err == cudaSuccess && r.max_rel > 0.1, "relErr " + std::to_string(r.max_rel));
  }
  r = run_gemm(kStorePastEnd, "inorder");
  report("planted: store past the end of a buffer is detected",
         r.err == cudaErrorIllegalAddress && r.message.find("past the end of the 12288-byte device allocation") !=
                                                 std::string::npos,
         r.message);
}

// ── the runtime's own checks ──
__global__ void warp0_reduce(const float* x, float* out) {
  // Only warp 0 shuffles: the other warps must not be waited for (HIP-CPU failed this).
  float v = x[threadIdx.x];
  if (threadIdx.x < 32) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (threadIdx.x == 0) *out = v;
  }
}

__global__ void block_reduce(const float* x, float* out) {
  __shared__ float part[32];
  float v = x[threadIdx.x];
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = v;
  if (threadIdx.x >= 64) return;  // returned threads count as arrived at the barrier
  __syncthreads();
  if (threadIdx.x == 0) {
    float s = 0;
    for (int w = 0; w < int(blockDim.x >> 5); w++) s += part[w];
    *out = s;
  }
}

__global__ void shuffle_after_return(float* out) {
  if (threadIdx.x == 5) return;
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1.0f, 1);
}

__global__ void divergent_barrier(float* out) {
  if (threadIdx.x < 16) __syncthreads();
  else out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1.0f, 1);  // waits for lanes 0-15 forever
}

__global__ void ballot_kernel(unsigned* out) {
  const unsigned b = __ballot_sync(0xffffffffu, threadIdx.x % 3 == 0);
  const int any = __any_sync(0xffffffffu, threadIdx.x == 17), all = __all_sync(0xffffffffu, threadIdx.x < 32);
  if (threadIdx.x == 0) out[0] = b, out[1] = any, out[2] = all;
}

void test_runtime() {
  std::vector<float> x(256);
  double want0 = 0, want = 0;
  for (int i = 0; i < 256; i++) x[i] = float(i % 7) - 2.5f, want += x[i], want0 += i < 32 ? x[i] : 0;
  float* dx = to_device(x);
  float* dout = to_device(std::vector<float>(64, 0.0f));
  for (const char* sched : {"inorder", "reversed", "random:3"}) {
    cs_emu::Schedule s;
    cs_emu::parse_schedule(sched, &s);
    cs_emu::set_schedule(s);
    float got = 0, got0 = 0;
    CS_LAUNCH(warp0_reduce, 1, 256, 0, nullptr, dx, dout);
    cudaError_t e1 = cudaGetLastError();
    cudaMemcpy(&got0, dout, 4, cudaMemcpyDeviceToHost);
    CS_LAUNCH(block_reduce, 1, 256, 0, nullptr, dx, dout);
    cudaError_t e2 = cudaGetLastError();
    cudaMemcpy(&got, dout, 4, cudaMemcpyDeviceToHost);
    report((std::string("warp-0-only shuffle reduction and block reduction (") + sched + ")").c_str(),
           e1 == cudaSuccess && e2 == cudaSuccess && got0 == float(want0) && got == float(want),
           std::to_string(got0) + " / " + std::to_string(got));
  }
  cs_emu::Schedule s;
  cs_emu::parse_schedule("inorder", &s);
  cs_emu::set_schedule(s);
  CS_LAUNCH(shuffle_after_return, 1, 32, 0, nullptr, dout);
  cudaError_t e = cudaGetLastError();
  std::string m = e ? cudaGetErrorString(e) : "";
  report("a shuffle waiting for a lane that returned is an error", e != cudaSuccess && m.find("have returned") != std::string::npos, m);
  CS_LAUNCH(divergent_barrier, 1, 32, 0, nullptr, dout);
  e = cudaGetLastError();
  m = e ? cudaGetErrorString(e) : "";
  report("__syncthreads in a branch half a warp takes deadlocks and says so", e != cudaSuccess && m.find("deadlock") != std::string::npos, m);
  unsigned* dball = to_device(std::vector<unsigned>(3, 0));
  CS_LAUNCH(ballot_kernel, 1, 64, 0, nullptr, dball);
  unsigned b[3];
  cudaMemcpy(b, dball, 12, cudaMemcpyDeviceToHost);
  report("ballot, any and all", b[0] == 0x49249249u && b[1] == 1 && b[2] == 1, std::to_string(b[0]));
  CS_LAUNCH(small_gemm, 1, 128, 60 * 1024, nullptr, nullptr, nullptr, nullptr, 0, 0, 0, 0);
  e = cudaGetLastError();
  m = e ? cudaGetErrorString(e) : "";
  report("more than 48 KiB of dynamic shared memory needs cudaFuncSetAttribute", e == cudaErrorInvalidValue, m);
  cudaFree(dx), cudaFree(dout), cudaFree(dball);
}

}  // namespace

int main() {
  test_mma();
  test_ldmatrix_one<1, false>();
  test_ldmatrix_one<2, false>();
  test_ldmatrix_one<4, false>();
  test_ldmatrix_one<1, true>();
  test_ldmatrix_one<2, true>();
  test_ldmatrix_one<4, true>();
  test_runtime();
  test_planted_bugs();
  std::printf("{\"summary\": true, \"unexpected\": %d}\n", g_unexpected);
  return g_unexpected ? 1 : 0;
}
