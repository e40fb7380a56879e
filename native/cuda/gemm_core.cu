// The GEMM layer: f32 → K-major 16-bit conversion, the epilogue steps cuBLASLt leaves, the
// choice of engine (cuBLASLt or our own kernels) and the call into it.
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include "cuda/cublaslt_gemm.h"
#include "cuda/gemm_core.h"
#include "cuda/gemm_mma.cuh"
#include "cuda/numerics.cuh"
#include "cuda/launch.cuh"
#include "cuda/runtime.h"

namespace cs_cuda {

namespace {

// 32×32 tiles through shared memory so a transposed read is coalesced as well.
__global__ void to_kmajor_kernel(const float* __restrict__ src, int64_t src_ld, int64_t src_stride, int transposed,
                                 int64_t rows, int64_t K, uint16_t* __restrict__ dst, int64_t ld,
                                 int64_t dst_stride, int type) {
  __shared__ float tile[32][33];
  const int64_t b = blockIdx.z;
  const float* s = src + b * src_stride;
  uint16_t* d = dst + b * dst_stride;
  const int tx = threadIdx.x, ty = threadIdx.y;  // 32 × 8
  const int64_t k0 = static_cast<int64_t>(blockIdx.x) * 32;
  for (int64_t r0 = static_cast<int64_t>(blockIdx.y) * 32; r0 < rows; r0 += static_cast<int64_t>(gridDim.y) * 32) {
    if (transposed) {
      for (int j = ty; j < 32; j += 8) {
        const int64_t k = k0 + j, r = r0 + tx;
        tile[j][tx] = (k < K && r < rows) ? s[k * src_ld + r] : 0.0f;
      }
      __syncthreads();
      for (int j = ty; j < 32; j += 8) {
        const int64_t r = r0 + j, k = k0 + tx;
        if (r < rows && k < ld) d[r * ld + k] = to_16bit(type, tile[tx][j]);
      }
      __syncthreads();
    } else {
      for (int j = ty; j < 32; j += 8) {
        const int64_t r = r0 + j, k = k0 + tx;
        if (r < rows && k < ld) d[r * ld + k] = to_16bit(type, k < K ? s[r * src_ld + k] : 0.0f);
      }
    }
  }
}

// The epilogue steps cuBLASLt did not do, on its f32 output (bias already added).
__global__ void finish_kernel(float* C, int64_t rows, int64_t cols, int64_t ld, int64_t stride, int64_t total,
                              int gelu, float* pre_gelu, uint16_t* act16, int round) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t per = rows * cols, b = i / per, rc = i % per, r = rc / cols, c = rc % cols;
    const int64_t at = b * stride + r * ld + c;
    store_epilogue(C[at], C, pre_gelu, act16, at, gelu, round);
  }
}

// The address of batch entry b0 of an operand.
const void* offset(const Operand& o, int64_t b0) {
  const int64_t bytes = o.type == kF32 ? 4 : 2;
  return static_cast<const char*>(o.ptr) + b0 * o.stride * bytes;
}

std::atomic<long long> g_conversions{0}, g_gemms{0};

std::mutex engine_mutex;
int g_engine = -1;  // -1: not chosen yet

int choose_from_env(const char* op) {
  const char* env = std::getenv("CLIPSCALE_GEMM");
  std::string why;
  if (env && *env && std::strcmp(env, "auto") != 0) {
    if (std::strcmp(env, "own") == 0) return static_cast<int>(GemmEngine::Own);
    if (std::strcmp(env, "cublaslt") == 0) {
      if (!cs::cuda::cublaslt_load(&why))
        return -2 - fail("%s: CLIPSCALE_GEMM=cublaslt but cuBLASLt cannot be used: %s", op, why.c_str());
      return static_cast<int>(GemmEngine::CublasLt);
    }
    return -2 - fail("%s: CLIPSCALE_GEMM must be own, cublaslt or auto, got '%s'", op, env);
  }
  return static_cast<int>(cs::cuda::cublaslt_load(&why) ? GemmEngine::CublasLt : GemmEngine::Own);
}

// GEMMs the own kernel ran because cuBLASLt had no algorithm for them.
std::atomic<long long> g_fallbacks{0};
std::mutex fallback_mutex;
std::string g_last_fallback;

void note_own_fallback(int64_t M, int64_t N, int64_t K, const std::string& why) {
  g_fallbacks++;
  std::lock_guard<std::mutex> lock(fallback_mutex);
  g_last_fallback = why;
}

// cuBLASLt's workspace: 32 MiB serves Hopper's kernels (NVIDIA's recommendation).
constexpr size_t kCublasLtWorkspace = size_t{32} << 20;

}  // namespace

void count_conversion() { g_conversions++; }
void count_gemm() { g_gemms++; }
long long conversion_count() { return g_conversions.load(); }
long long gemm_count() { return g_gemms.load(); }

int to_kmajor_16(const char* op, const float* src, int64_t src_ld, int64_t src_stride, bool transposed, int64_t rows,
                 int64_t K, int64_t batch, uint16_t* dst, int64_t ld, int type, cudaStream_t stream) {
  if (rows <= 0 || batch <= 0 || ld <= 0) return 0;
  if (type != kBF16 && type != kF16) return fail("%s: 16-bit operands are bf16 or fp16 (type %d)", op, type);
  count_conversion();
  const int64_t gx = (ld + 31) / 32;
  if (gx > 65535 * 1024LL) return fail("%s: operand rows of %lld elements are too long", op, (long long)ld);
  const unsigned gy = static_cast<unsigned>(std::min<int64_t>((rows + 31) / 32, 65535));
  for (int64_t b0 = 0; b0 < batch; b0 += 65535) {
    dim3 grid(static_cast<unsigned>(gx), gy, static_cast<unsigned>(std::min<int64_t>(65535, batch - b0)));
    CS_LAUNCH(to_kmajor_kernel, grid, dim3(32, 8), 0, stream, src + b0 * src_stride, src_ld, src_stride, transposed ? 1 : 0,
                                                       rows, K, dst + b0 * rows * ld, ld, rows * ld, type);
    if (int rc = launched(op)) return rc;
  }
  return 0;
}

int finish_epilogue(const char* op, float* C, int64_t rows, int64_t cols, int64_t ld, int64_t stride, int64_t batch,
                    int gelu, float* pre_gelu, uint16_t* act16, int round, cudaStream_t stream) {
  const int64_t total = rows * cols * batch;
  if (total <= 0 || (!gelu && !round)) return 0;
  CS_LAUNCH(finish_kernel, grid_for(total, 256), 256, 0, stream, C, rows, cols, ld, stride, total, gelu, pre_gelu,
            act16, round);
  return launched(op);
}

int gemm_engine(const char* op, GemmEngine* engine) {
  std::lock_guard<std::mutex> lock(engine_mutex);
  if (g_engine < 0) {
    int e = choose_from_env(op);
    if (e < 0) return 1;  // message set
    g_engine = e;
  }
  *engine = static_cast<GemmEngine>(g_engine);
  return 0;
}

int set_gemm_engine(const char* name) {
  std::string why;
  int e;
  if (std::strcmp(name, "own") == 0) {
    e = static_cast<int>(GemmEngine::Own);
  } else if (std::strcmp(name, "cublaslt") == 0) {
    if (!cs::cuda::cublaslt_load(&why)) return fail("cs_cuda_gemm_set_backend: cuBLASLt cannot be used: %s", why.c_str());
    e = static_cast<int>(GemmEngine::CublasLt);
  } else if (std::strcmp(name, "auto") == 0) {
    e = static_cast<int>(cs::cuda::cublaslt_load(&why) ? GemmEngine::CublasLt : GemmEngine::Own);
  } else {
    return fail("cs_cuda_gemm_set_backend: backend must be own, cublaslt or auto, got '%s'", name);
  }
  std::lock_guard<std::mutex> lock(engine_mutex);
  g_engine = e;
  return 0;
}

std::string gemm_fallback_note() {
  const long long n = g_fallbacks.load();
  if (n == 0) return "";
  std::lock_guard<std::mutex> lock(fallback_mutex);
  return "our own kernel ran " + std::to_string(n) + " GEMM(s) cuBLASLt had no algorithm for (last: " +
         g_last_fallback + ")";
}

const char* gemm_engine_name() {
  GemmEngine e;
  if (gemm_engine("cs_cuda_gemm_backend_name", &e)) return "unavailable";
  return e == GemmEngine::CublasLt ? "cublaslt" : "own";
}

int gemm_nt(const char* op, int64_t M, int64_t N, int64_t K, Operand A, Operand B, float* C, int64_t ldc, int64_t sc,
            int64_t batch, const Epilogue& ep) {
  if (M <= 0 || N <= 0 || batch <= 0) return 0;
  count_gemm();
  if (A.type != B.type) return fail("%s: GEMM operands of different types (%d, %d)", op, A.type, B.type);
  if (A.type != kF32 && !A.kmajor) return fail("%s: a 16-bit A operand must be K-major", op);
  if (ep.act16 && ep.round != kBF16 && ep.round != kF16)
    return fail("%s: a 16-bit activation output needs 16-bit rounding", op);
  if (ep.act16 && !ep.gelu && (C || batch != 1 || ep.beta != 0.0f))
    return fail("%s: a 16-bit output without GELU takes no f32 C, one batch entry and beta 0", op);
  if (!C && !(ep.act16 && !ep.gelu)) return fail("%s: no output given", op);
  cudaStream_t s = stream();
  GemmEngine engine;
  if (int rc = gemm_engine(op, &engine)) return rc;
  // One tall GEMM instead of a batch when B is shared and A, C are stacked densely.
  if (batch > 1 && B.stride == 0 && A.kmajor && A.stride == M * A.ld && sc == M * ldc) {
    M *= batch;
    batch = 1;
  }
  auto own = [&](int64_t b0) {
    Operand a2 = A, b2 = B;
    a2.ptr = offset(A, b0);
    b2.ptr = offset(B, b0);
    Epilogue e2 = ep;
    if (e2.pre_gelu) e2.pre_gelu += b0 * sc;
    if (e2.act16) e2.act16 += b0 * sc;
    return A.type == kF32 ? own_gemm_f32(op, M, N, K, a2, b2, C + b0 * sc, ldc, sc, batch - b0, e2, s)
                          : own_gemm_nt(op, M, N, K, a2, b2, C + b0 * sc, ldc, sc, batch - b0, e2, s);
  };
  if (engine == GemmEngine::Own || K == 0) return own(0);

  // cuBLASLt's GELU epilogue is the tanh form: used for a tanh-GELU model when the pre-GELU
  // value is not wanted; otherwise its bias epilogue, then our GELU (erf or tanh) and rounding.
  const bool lt_gelu = ep.gelu == 2 && !ep.pre_gelu && !ep.act16;
  Scratch workspace, wide;
  if (int rc = workspace.allocate(kCublasLtWorkspace, op)) return rc;
  if (!C) {
    // A 16-bit output only: cuBLASLt writes f32 here, the epilogue pass rounds it into act16.
    if (int rc = wide.allocate(static_cast<size_t>(M) * ldc * sizeof(float), op)) return rc;
    C = wide.as<float>();
  }
  for (int64_t b0 = 0; b0 < batch; b0 += INT32_MAX) {
    const int64_t nb = std::min<int64_t>(INT32_MAX, batch - b0);
    bool no_algorithm = false;
    std::string err = cs::cuda::cublaslt_gemm_nt(s, M, N, K, ep.alpha, A.type, offset(A, b0), A.ld, A.stride, A.kmajor,
                                                 offset(B, b0), B.ld, B.stride, B.kmajor, ep.beta, C + b0 * sc, ldc, sc,
                                                 nb, ep.bias, lt_gelu, workspace.get(), kCublasLtWorkspace,
                                                 &no_algorithm);
    if (no_algorithm) {
      // cuBLASLt has no algorithm for this shape: our own kernel computes the rest
      // (epilogue and rounding included), and the backend info says it happened.
      note_own_fallback(M, N, K, err);
      return own(b0);
    }
    if (!err.empty()) return fail("%s: %s", op, err.c_str());
  }
  return finish_epilogue(op, C, M, N, ldc, sc, batch, lt_gelu ? 0 : ep.gelu, ep.pre_gelu, ep.act16, ep.round, s);
}

}  // namespace cs_cuda
