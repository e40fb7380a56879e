// The GEMM group's C ABI (abi_gemm.h): matmul, linear and patch embedding, each as one
// GEMM per product (gemm_core.h) in the run's precision: in bf16/fp16 on operands converted
// into K-major 16-bit scratch, in fp32 on the f32 tensors themselves.
#include <algorithm>
#include <cstdio>
#include <string>

#include "cuda/abi.h"
#include "cuda/abi_gemm.h"
#include "cuda/cublaslt_gemm.h"
#include "cuda/gemm_core.h"
#include "cuda/numerics.cuh"
#include "cuda/launch.cuh"
#include "cuda/runtime.h"

using namespace cs_cuda;

namespace {

// Bytes of a K-major 16-bit matrix of `rows` rows, rounded up so carved pieces stay aligned;
// none in fp32 (prec 0), where operands are used where they are.
size_t kmajor_bytes(int64_t rows, int64_t K, int prec) {
  if (prec == kF32) return 0;
  const size_t b = static_cast<size_t>(rows) * static_cast<size_t>(kmajor_ld(K)) * 2;
  return (b + 255) / 256 * 256;
}
// Bytes of im2col's matrix: 16-bit K-major, or f32 in fp32.
size_t cols_bytes(int64_t rows, int64_t K, int prec) {
  const size_t b = static_cast<size_t>(rows) * static_cast<size_t>(kmajor_ld(K)) * (prec == kF32 ? 4 : 2);
  return (b + 255) / 256 * 256;
}

// One scratch allocation cut into aligned pieces.
struct Carver {
  Scratch mem;
  size_t used = 0;
  int allocate(size_t bytes, const char* op) { return mem.allocate(std::max<size_t>(bytes, 256), op); }
  template <typename T>
  T* take(size_t bytes) {
    T* p = reinterpret_cast<T*>(static_cast<char*>(mem.get()) + used);
    used += (bytes + 255) / 256 * 256;
    return p;
  }
};

// An f32 tensor as a GEMM operand in the run's precision. Element (r, k) of batch entry b is
// src[b·src_stride + r·src_ld + k] (transposed = false) or src[b·src_stride + k·src_ld + r].
// fp32: the tensor itself; bf16/fp16: converted into K-major scratch taken from `s` (sized
// with kmajor_bytes(rows · batch, K, prec)).
int operand(const char* op, const float* src, int64_t src_ld, int64_t src_stride, bool transposed, int64_t rows,
            int64_t K, int64_t batch, int prec, Carver& s, Operand* out) {
  if (prec == kF32) {
    *out = Operand{src, src_ld, src_stride, kF32, !transposed};
    return 0;
  }
  const int64_t ld = kmajor_ld(K);
  uint16_t* dst = s.take<uint16_t>(kmajor_bytes(rows * batch, K, prec));
  *out = Operand{dst, ld, src_stride == 0 ? 0 : rows * ld, prec, true};
  return to_kmajor_16(op, src, src_ld, src_stride, transposed, rows, K, batch, dst, ld, prec, stream());
}

int negative(const char* op, std::initializer_list<int64_t> sizes) {
  for (int64_t s : sizes)
    if (s < 0) return fail("%s: sizes must not be negative (got %lld)", op, (long long)s);
  return 0;
}

__global__ void round_copy_kernel(const float* __restrict__ src, float* __restrict__ dst, int64_t n, int prec) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    dst[i] = round_to(prec, src[i]);
}

// db[n] += Σ_m round(dy[m][n]) over a block of rows; 32 columns × 8 row lanes per block.
__global__ void bias_grad_kernel(const float* __restrict__ dy, float* __restrict__ db, int64_t M, int64_t N,
                                 int64_t rows_per_block, int prec) {
  __shared__ float part[8][33];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t n = static_cast<int64_t>(blockIdx.x) * 32 + tx;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * rows_per_block, r1 = r0 + rows_per_block < M ? r0 + rows_per_block : M;
  float s = 0.0f;
  if (n < N)
    for (int64_t r = r0 + ty; r < r1; r += 8) s += round_to(prec, dy[r * N + n]);
  part[ty][tx] = s;
  __syncthreads();
  if (ty == 0 && n < N) {
    float t = 0.0f;
    for (int j = 0; j < 8; j++) t += part[j][tx];
    atomicAdd(db + n, t);
  }
}

struct PatchGeometry {
  int64_t B, C, H, W, P, gh, gw;
  __host__ __device__ int64_t patches() const { return gh * gw; }
  __host__ __device__ int64_t rows() const { return B * gh * gw; }
  __host__ __device__ int64_t cols() const { return C * P * P; }
  // The image element at im2col (row m, column k).
  __host__ __device__ int64_t pixel(int64_t m, int64_t k) const {
    const int64_t b = m / patches(), p = m % patches();
    const int64_t c = k / (P * P), ky = (k / P) % P, kx = k % P;
    return ((b * C + c) * H + (p / gw) * P + ky) * W + (p % gw) * P + kx;
  }
};

__device__ __forceinline__ void store_as(float* d, int64_t i, float v, int) { d[i] = v; }
__device__ __forceinline__ void store_as(uint16_t* d, int64_t i, float v, int prec) { d[i] = to_16bit(prec, v); }

// im2col: dst[m][k] (transposed = 0, row length ld ≥ K) or dst[k][m] (transposed = 1,
// ld ≥ M), 16-bit (T = uint16_t, in precision prec) or f32; the padding columns get zeros.
template <typename T>
__global__ void im2col_kernel(const float* __restrict__ img, T* __restrict__ dst, PatchGeometry g, int64_t ld,
                              int transposed, int64_t total, int prec) {
  const int64_t M = g.rows(), K = g.cols();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t row = i / ld, col = i % ld;
    const int64_t m = transposed ? col : row, k = transposed ? row : col;
    store_as(dst, i, (m < M && k < K) ? img[g.pixel(m, k)] : 0.0f, prec);
  }
}

// dimages = round(dcols) scattered back; a permutation (stride = kernel), one thread per pixel.
__global__ void col2im_kernel(const float* __restrict__ dcols, float* __restrict__ dimg, PatchGeometry g, int prec) {
  const int64_t total = g.B * g.C * g.H * g.W, K = g.cols();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t x = i % g.W, y = (i / g.W) % g.H, c = (i / (g.W * g.H)) % g.C, b = i / (g.W * g.H * g.C);
    const int64_t m = (b * g.gh + y / g.P) * g.gw + x / g.P;
    const int64_t k = (c * g.P + y % g.P) * g.P + x % g.P;
    dimg[i] = round_to(prec, dcols[m * K + k]);
  }
}

int zero(const char* op, float* p, int64_t n) {
  if (n <= 0 || !p) return 0;
  return check(cudaMemsetAsync(p, 0, static_cast<size_t>(n) * sizeof(float), stream()), op, "clearing the output");
}

int bias_grad(const char* op, const float* dy, float* db, int64_t M, int64_t N, bool accumulate, int prec) {
  if (!accumulate)
    if (int rc = zero(op, db, N)) return rc;
  if (M == 0 || N == 0) return 0;
  const int64_t rows_per_block = std::max<int64_t>(128, (M + 65534) / 65535);
  dim3 grid(static_cast<unsigned>((N + 31) / 32), static_cast<unsigned>((M + rows_per_block - 1) / rows_per_block));
  CS_LAUNCH(bias_grad_kernel, grid, dim3(32, 8), 0, stream(), dy, db, M, N, rows_per_block, prec);
  return launched(op);
}

// im2col into dst (16-bit in prec, or f32 when prec is fp32), row length kmajor_ld.
int im2col(const char* op, const float* images, const PatchGeometry& g, void* dst, bool transposed, int prec) {
  const int64_t rows = transposed ? g.cols() : g.rows();
  const int64_t ld = kmajor_ld(transposed ? g.rows() : g.cols());
  const int64_t total = rows * ld;
  if (total == 0) return 0;
  if (prec != kF32) count_conversion();
  if (prec == kF32) {
    auto k = im2col_kernel<float>;
    CS_LAUNCH(k, grid_for(total, 256), 256, 0, stream(), images, static_cast<float*>(dst), g, ld, transposed ? 1 : 0,
              total, prec);
  } else {
    auto k = im2col_kernel<uint16_t>;
    CS_LAUNCH(k, grid_for(total, 256), 256, 0, stream(), images, static_cast<uint16_t*>(dst), g, ld,
              transposed ? 1 : 0, total, prec);
  }
  return launched(op);
}

}  // namespace

extern "C" {

const char* cs_cuda_gemm_backend_name(void) { return gemm_engine_name(); }

int cs_cuda_gemm_backend_info(char* buf, int len) {
  if (!buf || len <= 0) return fail("cs_cuda_gemm_backend_info: no buffer");
  std::string why;
  const bool lt = cs::cuda::cublaslt_load(&why);
  const std::string name = gemm_engine_name();
  std::string line;
  if (name == "cublaslt") {
    line = "cublaslt (" + cs::cuda::cublaslt_loaded_path() + ", version " + std::to_string(cs::cuda::cublaslt_version()) + ")";
    const std::string note = gemm_fallback_note();
    if (!note.empty()) line += "; " + note;
  }
  else if (name == "own")
    line = std::string("own mma.sync bf16 kernel (") + (lt ? "cuBLASLt loaded but not chosen" : "cuBLASLt: " + why) + ")";
  else
    line = "unavailable: " + std::string(cs_cuda_last_error());
  std::snprintf(buf, static_cast<size_t>(len), "%s", line.c_str());
  return 0;
}

int cs_cuda_gemm_set_backend(const char* name) {
  if (!name) return fail("cs_cuda_gemm_set_backend: no name");
  return set_gemm_engine(name);
}

int cs_cuda_gemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                 int64_t stride_a, const float* B, int64_t ldb, int64_t stride_b, float beta, float* C, int64_t ldc,
                 int64_t stride_c, int64_t batch) {
  const char* op = "matmul";
  if (int rc = negative(op, {M, N, K, lda, ldb, ldc, stride_a, stride_b, stride_c, batch})) return rc;
  if (M == 0 || N == 0 || batch == 0) return 0;
  if (ldc < N) return fail("%s: ldc %lld is less than N %lld", op, (long long)ldc, (long long)N);
  if (lda < (trans_a ? M : K) || ldb < (trans_b ? K : N))
    return fail("%s: leading dimensions too small (lda %lld, ldb %lld)", op, (long long)lda, (long long)ldb);
  const int64_t batch_a = stride_a == 0 ? 1 : batch, batch_b = stride_b == 0 ? 1 : batch;
  const int prec = stored_precision();
  Carver s;
  if (int rc = s.allocate(kmajor_bytes(M * batch_a, K, prec) + kmajor_bytes(N * batch_b, K, prec) + 512, op)) return rc;
  Operand a, b;
  // op(A) row m, column k: A[m·lda + k], or A[k·lda + m] when transposed.
  if (int rc = operand(op, A, lda, stride_a, trans_a != 0, M, K, batch_a, prec, s, &a)) return rc;
  // B as [n][k]: B[n·ldb + k] when trans_b, else B[k·ldb + n].
  if (int rc = operand(op, B, ldb, stride_b, trans_b == 0, N, K, batch_b, prec, s, &b)) return rc;
  Epilogue ep;
  ep.alpha = alpha;
  ep.beta = beta;
  ep.round = prec;
  return gemm_nt(op, M, N, K, a, b, C, ldc, stride_c, batch, ep);
}

// The linear forward with the epilogue's GELU: gelu 0 none, 1 erf, 2 tanh; pre (or null)
// receives the pre-GELU values.
// Whether a 16-bit matrix with rows of K elements can be read in place (16-byte rows).
static bool usable16(const uint16_t* p, int64_t K, int prec) {
  return p && prec != kF32 && K % 8 == 0 && reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

// w16: w in the precision's 16-bit type (the optimizer's copy) or null; read in place of
// converting w when the run is bf16 or fp16 and its rows suit the kernels (K a multiple of 8,
// 16-byte aligned). x16: the input itself in 16 bits (then x is null; it must suit them too).
// y16: with gelu, the GELU output in 16 bits (y then receives the pre-GELU value, pre unused).
static int linear_forward(const char* op, const float* x, const uint16_t* x16, const float* w, const uint16_t* w16,
                          const float* b, float* pre, float* y, uint16_t* y16, int64_t M, int64_t K, int64_t N,
                          int gelu) {
  if (int rc = negative(op, {M, K, N})) return rc;
  if (M == 0 || N == 0) return 0;
  const int prec = stored_precision();
  if (x16 && !usable16(x16, K, prec))
    return fail("%s: a 16-bit x needs a bf16/fp16 run and rows of a multiple of 8 elements (K = %lld)", op,
                (long long)K);
  if (y16 && prec == kF32) return fail("%s: a 16-bit output needs a bf16/fp16 run", op);
  if (y16 && !gelu && y) return fail("%s: a 16-bit output without GELU goes to y16 only (y null)", op);
  Carver s;
  if (int rc = s.allocate(kmajor_bytes(M, K, prec) + kmajor_bytes(N, K, prec) + static_cast<size_t>(N) * 4 + 768, op))
    return rc;
  Operand xa, wb;
  if (x16) {
    xa = Operand{x16, K, 0, prec, true};
  } else if (int rc = operand(op, x, K, 0, false, M, K, 1, prec, s, &xa)) {
    return rc;
  }
  if (usable16(w16, K, prec)) {
    wb = Operand{w16, K, 0, prec, true};
  } else if (int rc = operand(op, w, K, 0, false, N, K, 1, prec, s, &wb)) {
    return rc;
  }
  const float* bias = b;
  if (b && prec != kF32) {
    float* rounded = s.take<float>(static_cast<size_t>(N) * 4);
    CS_LAUNCH(round_copy_kernel, grid_for(N, 256), 256, 0, stream(), b, rounded, N, prec);
    if (int rc = launched(op)) return rc;
    bias = rounded;
  }
  Epilogue ep;
  ep.bias = bias;
  ep.gelu = gelu;
  ep.pre_gelu = gelu && !y16 ? pre : nullptr;
  ep.act16 = y16;
  ep.round = prec;
  return gemm_nt(op, M, N, K, xa, wb, y, N, 0, 1, ep);
}

int cs_cuda_linear_forward(const float* x, const float* w, const float* b, float* y, int64_t M, int64_t K, int64_t N,
                           int gelu) {
  // gelu = 1 is the tanh form here (abi_gemm.h); the epilogue's code for it is 2.
  return linear_forward("linearForward", x, nullptr, w, nullptr, b, nullptr, y, nullptr, M, K, N, gelu ? 2 : 0);
}

int cs_cuda_linear_gelu_forward(const float* x, const float* w, const float* b, float* pre, float* y, int64_t M,
                                int64_t K, int64_t N, int form) {
  const char* op = "linearGeluForward";
  if (form != 1 && form != 2) return fail("%s: GELU form must be 1 (erf) or 2 (tanh), got %d", op, form);
  return linear_forward(op, x, nullptr, w, nullptr, b, pre, y, nullptr, M, K, N, form);
}

int cs_cuda_linear_forward_ex(const float* x, const uint16_t* x16, const float* w, const uint16_t* w16,
                              const float* b, float* pre, float* y, uint16_t* y16, int64_t M, int64_t K, int64_t N,
                              int gelu) {
  const char* op = gelu ? "linearGeluForward" : "linearForward";
  if (gelu < 0 || gelu > 2) return fail("%s: GELU form must be 0 (none), 1 (erf) or 2 (tanh), got %d", op, gelu);
  if (!x == !x16) return fail("%s: give x or x16 (one of them)", op);
  return linear_forward(op, x, x16, w, w16, b, pre, y, y16, M, K, N, gelu);
}

int cs_cuda_gemm_counters(long long* conversions, long long* gemms) {
  if (conversions) *conversions = conversion_count();
  if (gemms) *gemms = gemm_count();
  return 0;
}

// w16: as linear_forward's; dx reads it MN-major in place of converting wᵀ. x16: the input in
// 16 bits (then x is null): dw reads it MN-major as xᵀ.
static int linear_backward(const float* x, const uint16_t* x16, const float* w, const uint16_t* w16, const float* dy,
                           float* dx, float* dw, float* db, int64_t M, int64_t K, int64_t N, int accumulate) {
  const char* op = "linearBackward";
  if (x16 && !usable16(x16, K, stored_precision()))
    return fail("%s: a 16-bit x needs a bf16/fp16 run and rows of a multiple of 8 elements (K = %lld)", op,
                (long long)K);
  if (int rc = negative(op, {M, K, N})) return rc;
  const int prec = stored_precision();
  if (db)
    if (int rc = bias_grad(op, dy, db, M, N, accumulate != 0, prec)) return rc;
  if (dw && (M == 0 || K == 0 || N == 0)) {
    if (!accumulate)
      if (int rc = zero(op, dw, N * K)) return rc;
    dw = nullptr;
  }
  if (dx && (M == 0 || K == 0 || N == 0)) {
    if (int rc = zero(op, dx, M * K)) return rc;
    dx = nullptr;
  }
  if (!dw && !dx) return 0;
  Carver s;
  const size_t bytes = (dx ? kmajor_bytes(M, N, prec) + kmajor_bytes(K, N, prec) : 0) +
                       (dw ? kmajor_bytes(N, M, prec) + kmajor_bytes(K, M, prec) : 0) + 1024;
  if (int rc = s.allocate(bytes, op)) return rc;
  if (dx) {
    // dx[M×K] = dy[M×N] · w[N×K]: A = dy as [m][n], B = wᵀ as [k][n].
    Operand dya, wt;
    if (int rc = operand(op, dy, N, 0, false, M, N, 1, prec, s, &dya)) return rc;
    if (usable16(w16, K, prec)) {
      wt = Operand{w16, K, 0, prec, false};  // element (k, n) at w16[n·K + k]: wᵀ, MN-major
    } else if (int rc = operand(op, w, K, 0, true, K, N, 1, prec, s, &wt)) {
      return rc;
    }
    Epilogue ep;
    ep.round = prec;
    if (int rc = gemm_nt(op, M, K, N, dya, wt, dx, K, 0, 1, ep)) return rc;
  }
  if (dw) {
    // dw[N×K] = dyᵀ · x: A = dyᵀ as [n][m], B = xᵀ as [k][m]; fp32 output, not rounded.
    Operand dyt, xt;
    if (int rc = operand(op, dy, N, 0, true, N, M, 1, prec, s, &dyt)) return rc;
    if (x16) {
      xt = Operand{x16, K, 0, prec, false};  // element (k, m) at x16[m·K + k]: xᵀ, MN-major
    } else if (int rc = operand(op, x, K, 0, true, K, M, 1, prec, s, &xt)) {
      return rc;
    }
    Epilogue ep;
    ep.beta = accumulate ? 1.0f : 0.0f;
    if (int rc = gemm_nt(op, N, K, M, dyt, xt, dw, K, 0, 1, ep)) return rc;
  }
  return 0;
}

int cs_cuda_linear_backward(const float* x, const float* w, const float* dy, float* dx, float* dw, float* db,
                            int64_t M, int64_t K, int64_t N, int accumulate) {
  return linear_backward(x, nullptr, w, nullptr, dy, dx, dw, db, M, K, N, accumulate);
}

int cs_cuda_linear_backward_ex(const float* x, const uint16_t* x16, const float* w, const uint16_t* w16,
                               const float* dy, float* dx, float* dw, float* db, int64_t M, int64_t K, int64_t N,
                               int accumulate) {
  if (!x == !x16) return fail("linearBackward: give x or x16 (one of them)");
  return linear_backward(x, x16, w, w16, dy, dx, dw, db, M, K, N, accumulate);
}

static int patch_geometry(const char* op, int64_t B, int64_t C, int64_t H, int64_t W, int64_t P, int64_t width,
                          PatchGeometry* g) {
  if (int rc = negative(op, {B, C, H, W, P, width})) return rc;
  if (P == 0 || H % P != 0 || W % P != 0)
    return fail("%s: image %lld×%lld is not a whole number of %lld-pixel patches", op, (long long)H, (long long)W,
                (long long)P);
  *g = PatchGeometry{B, C, H, W, P, H / P, W / P};
  return 0;
}

int cs_cuda_patch_embed_forward(const float* images, const float* weight, float* out, int64_t B, int64_t C, int64_t H,
                                int64_t W, int64_t P, int64_t width) {
  const char* op = "patchEmbedForward";
  PatchGeometry g;
  if (int rc = patch_geometry(op, B, C, H, W, P, width, &g)) return rc;
  const int64_t M = g.rows(), N = width, K = g.cols();
  if (M == 0 || N == 0) return 0;
  const int prec = stored_precision();
  Carver s;
  if (int rc = s.allocate(cols_bytes(M, K, prec) + kmajor_bytes(N, K, prec) + 512, op)) return rc;
  const int64_t ldk = kmajor_ld(K);
  void* cols = s.take<char>(cols_bytes(M, K, prec));
  if (int rc = im2col(op, images, g, cols, false, prec)) return rc;
  Operand wb;
  if (int rc = operand(op, weight, K, 0, false, N, K, 1, prec, s, &wb)) return rc;
  Epilogue ep;
  ep.round = prec;
  return gemm_nt(op, M, N, K, Operand{cols, ldk, 0, prec, true}, wb, out, N, 0, 1, ep);
}

int cs_cuda_patch_embed_backward(const float* images, const float* weight, const float* dout, float* dweight,
                                 float* dimages, int64_t B, int64_t C, int64_t H, int64_t W, int64_t P, int64_t width,
                                 int accumulate) {
  const char* op = "patchEmbedBackward";
  PatchGeometry g;
  if (int rc = patch_geometry(op, B, C, H, W, P, width, &g)) return rc;
  const int64_t M = g.rows(), N = width, K = g.cols();
  if (dweight && (M == 0 || N == 0 || K == 0)) {
    if (!accumulate)
      if (int rc = zero(op, dweight, N * K)) return rc;
    dweight = nullptr;
  }
  if (dimages && (M == 0 || N == 0 || K == 0)) {
    if (int rc = zero(op, dimages, B * C * H * W)) return rc;
    dimages = nullptr;
  }
  if (!dweight && !dimages) return 0;
  const int prec = stored_precision();
  Carver s;
  const size_t bytes = (dweight ? kmajor_bytes(N, M, prec) + cols_bytes(K, M, prec) : 0) +
                       (dimages ? kmajor_bytes(M, N, prec) + kmajor_bytes(K, N, prec) + static_cast<size_t>(M * K) * 4
                                : 0) +
                       1280;
  if (int rc = s.allocate(bytes, op)) return rc;
  if (dweight) {
    // dweight[N×K] = doutᵀ · cols: A = doutᵀ as [n][m], B = colsᵀ as [k][m] (16-bit: im2col
    // written transposed, K-major; fp32: cols [m][k] read as it is).
    Operand dot;
    if (int rc = operand(op, dout, N, 0, true, N, M, 1, prec, s, &dot)) return rc;
    void* cols = s.take<char>(cols_bytes(K, M, prec));
    const bool f32 = prec == kF32;
    if (int rc = im2col(op, images, g, cols, !f32, prec)) return rc;
    const Operand colst = f32 ? Operand{cols, kmajor_ld(K), 0, kF32, false} : Operand{cols, kmajor_ld(M), 0, prec, true};
    Epilogue ep;
    ep.beta = accumulate ? 1.0f : 0.0f;
    if (int rc = gemm_nt(op, N, K, M, dot, colst, dweight, K, 0, 1, ep)) return rc;
  }
  if (dimages) {
    // dcols[M×K] = dout · weight: A = dout as [m][n], B = weightᵀ as [k][n]; then scattered.
    Operand doa, wt;
    if (int rc = operand(op, dout, N, 0, false, M, N, 1, prec, s, &doa)) return rc;
    if (int rc = operand(op, weight, K, 0, true, K, N, 1, prec, s, &wt)) return rc;
    float* dcols = s.take<float>(static_cast<size_t>(M * K) * 4);
    Epilogue ep;
    if (int rc = gemm_nt(op, M, K, N, doa, wt, dcols, K, 0, 1, ep)) return rc;
    CS_LAUNCH(col2im_kernel, grid_for(B * C * H * W, 256), 256, 0, stream(), dcols, dimages, g, prec);
    if (int rc = launched(op)) return rc;
  }
  return 0;
}

}  // extern "C"
