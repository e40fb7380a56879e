// The GEMM group's C ABI (abi_gemm.h): matmul, linear and patch embedding, each as
// conversions into K-major bf16 scratch (gemm_core.h) and one GEMM per product.
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

// Bytes of a K-major bf16 matrix of `rows` rows, rounded up so carved pieces stay aligned.
size_t kmajor_bytes(int64_t rows, int64_t K) {
  const size_t b = static_cast<size_t>(rows) * static_cast<size_t>(kmajor_ld(K)) * 2;
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

int negative(const char* op, std::initializer_list<int64_t> sizes) {
  for (int64_t s : sizes)
    if (s < 0) return fail("%s: sizes must not be negative (got %lld)", op, (long long)s);
  return 0;
}

__global__ void round_copy_kernel(const float* __restrict__ src, float* __restrict__ dst, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    dst[i] = round_bf16(src[i]);
}

// db[n] += Σ_m bf16(dy[m][n]) over a block of rows; 32 columns × 8 row lanes per block.
__global__ void bias_grad_kernel(const float* __restrict__ dy, float* __restrict__ db, int64_t M, int64_t N,
                                 int64_t rows_per_block) {
  __shared__ float part[8][33];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t n = static_cast<int64_t>(blockIdx.x) * 32 + tx;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * rows_per_block, r1 = r0 + rows_per_block < M ? r0 + rows_per_block : M;
  float s = 0.0f;
  if (n < N)
    for (int64_t r = r0 + ty; r < r1; r += 8) s += round_bf16(dy[r * N + n]);
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

// im2col into K-major bf16: dst[m][k] (transposed = 0, row length ld ≥ K) or dst[k][m]
// (transposed = 1, ld ≥ M); the padding columns get zeros.
__global__ void im2col_kernel(const float* __restrict__ img, uint16_t* __restrict__ dst, PatchGeometry g, int64_t ld,
                              int transposed, int64_t total) {
  const int64_t M = g.rows(), K = g.cols();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t row = i / ld, col = i % ld;
    const int64_t m = transposed ? col : row, k = transposed ? row : col;
    dst[i] = (m < M && k < K) ? f32_to_bf16_bits(img[g.pixel(m, k)]) : 0;
  }
}

// dimages = bf16(dcols) scattered back; a permutation (stride = kernel), one thread per pixel.
__global__ void col2im_kernel(const float* __restrict__ dcols, float* __restrict__ dimg, PatchGeometry g) {
  const int64_t total = g.B * g.C * g.H * g.W, K = g.cols();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t x = i % g.W, y = (i / g.W) % g.H, c = (i / (g.W * g.H)) % g.C, b = i / (g.W * g.H * g.C);
    const int64_t m = (b * g.gh + y / g.P) * g.gw + x / g.P;
    const int64_t k = (c * g.P + y % g.P) * g.P + x % g.P;
    dimg[i] = round_bf16(dcols[m * K + k]);
  }
}

int zero(const char* op, float* p, int64_t n) {
  if (n <= 0 || !p) return 0;
  return check(cudaMemsetAsync(p, 0, static_cast<size_t>(n) * sizeof(float), stream()), op, "clearing the output");
}

int bias_grad(const char* op, const float* dy, float* db, int64_t M, int64_t N, bool accumulate) {
  if (!accumulate)
    if (int rc = zero(op, db, N)) return rc;
  if (M == 0 || N == 0) return 0;
  const int64_t rows_per_block = std::max<int64_t>(128, (M + 65534) / 65535);
  dim3 grid(static_cast<unsigned>((N + 31) / 32), static_cast<unsigned>((M + rows_per_block - 1) / rows_per_block));
  CS_LAUNCH(bias_grad_kernel, grid, dim3(32, 8), 0, stream(), dy, db, M, N, rows_per_block);
  return launched(op);
}

int im2col(const char* op, const float* images, const PatchGeometry& g, uint16_t* dst, bool transposed) {
  const int64_t rows = transposed ? g.cols() : g.rows();
  const int64_t ld = kmajor_ld(transposed ? g.rows() : g.cols());
  const int64_t total = rows * ld;
  if (total == 0) return 0;
  CS_LAUNCH(im2col_kernel, grid_for(total, 256), 256, 0, stream(), images, dst, g, ld, transposed ? 1 : 0, total);
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
  Carver s;
  if (int rc = s.allocate(kmajor_bytes(M * batch_a, K) + kmajor_bytes(N * batch_b, K) + 512, op)) return rc;
  uint16_t* a = s.take<uint16_t>(kmajor_bytes(M * batch_a, K));
  uint16_t* b = s.take<uint16_t>(kmajor_bytes(N * batch_b, K));
  const int64_t ldk = kmajor_ld(K);
  // op(A) row m, column k: A[m·lda + k], or A[k·lda + m] when transposed.
  if (int rc = to_kmajor_bf16(op, A, lda, stride_a, trans_a != 0, M, K, batch_a, a, ldk, stream())) return rc;
  // B as [n][k]: B[n·ldb + k] when trans_b, else B[k·ldb + n].
  if (int rc = to_kmajor_bf16(op, B, ldb, stride_b, trans_b == 0, N, K, batch_b, b, ldk, stream())) return rc;
  Epilogue ep;
  ep.alpha = alpha;
  ep.beta = beta;
  ep.round = true;
  return gemm_nt(op, M, N, K, {a, ldk, stride_a == 0 ? 0 : M * ldk}, {b, ldk, stride_b == 0 ? 0 : N * ldk}, C, ldc,
                 stride_c, batch, ep);
}

int cs_cuda_linear_forward(const float* x, const float* w, const float* b, float* y, int64_t M, int64_t K, int64_t N,
                           int gelu) {
  const char* op = "linearForward";
  if (int rc = negative(op, {M, K, N})) return rc;
  if (M == 0 || N == 0) return 0;
  Carver s;
  if (int rc = s.allocate(kmajor_bytes(M, K) + kmajor_bytes(N, K) + static_cast<size_t>(N) * 4 + 768, op)) return rc;
  uint16_t* xa = s.take<uint16_t>(kmajor_bytes(M, K));
  uint16_t* wb = s.take<uint16_t>(kmajor_bytes(N, K));
  float* bias = b ? s.take<float>(static_cast<size_t>(N) * 4) : nullptr;
  const int64_t ldk = kmajor_ld(K);
  if (int rc = to_kmajor_bf16(op, x, K, 0, false, M, K, 1, xa, ldk, stream())) return rc;
  if (int rc = to_kmajor_bf16(op, w, K, 0, false, N, K, 1, wb, ldk, stream())) return rc;
  if (b) {
    CS_LAUNCH(round_copy_kernel, grid_for(N, 256), 256, 0, stream(), b, bias, N);
    if (int rc = launched(op)) return rc;
  }
  Epilogue ep;
  ep.bias = bias;
  ep.gelu = gelu != 0;
  ep.round = true;
  return gemm_nt(op, M, N, K, {xa, ldk, 0}, {wb, ldk, 0}, y, N, 0, 1, ep);
}

int cs_cuda_linear_backward(const float* x, const float* w, const float* dy, float* dx, float* dw, float* db,
                            int64_t M, int64_t K, int64_t N, int accumulate) {
  const char* op = "linearBackward";
  if (int rc = negative(op, {M, K, N})) return rc;
  if (db)
    if (int rc = bias_grad(op, dy, db, M, N, accumulate != 0)) return rc;
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
  const size_t bytes = (dx ? kmajor_bytes(M, N) + kmajor_bytes(K, N) : 0) +
                       (dw ? kmajor_bytes(N, M) + kmajor_bytes(K, M) : 0) + 1024;
  if (int rc = s.allocate(bytes, op)) return rc;
  if (dx) {
    // dx[M×K] = dy[M×N] · w[N×K]: A = dy as [m][n], B = wᵀ as [k][n].
    uint16_t* dya = s.take<uint16_t>(kmajor_bytes(M, N));
    uint16_t* wt = s.take<uint16_t>(kmajor_bytes(K, N));
    const int64_t ldn = kmajor_ld(N);
    if (int rc = to_kmajor_bf16(op, dy, N, 0, false, M, N, 1, dya, ldn, stream())) return rc;
    if (int rc = to_kmajor_bf16(op, w, K, 0, true, K, N, 1, wt, ldn, stream())) return rc;
    Epilogue ep;
    ep.round = true;
    if (int rc = gemm_nt(op, M, K, N, {dya, ldn, 0}, {wt, ldn, 0}, dx, K, 0, 1, ep)) return rc;
  }
  if (dw) {
    // dw[N×K] = dyᵀ · x: A = dyᵀ as [n][m], B = xᵀ as [k][m]; fp32 output, not rounded.
    uint16_t* dyt = s.take<uint16_t>(kmajor_bytes(N, M));
    uint16_t* xt = s.take<uint16_t>(kmajor_bytes(K, M));
    const int64_t ldm = kmajor_ld(M);
    if (int rc = to_kmajor_bf16(op, dy, N, 0, true, N, M, 1, dyt, ldm, stream())) return rc;
    if (int rc = to_kmajor_bf16(op, x, K, 0, true, K, M, 1, xt, ldm, stream())) return rc;
    Epilogue ep;
    ep.beta = accumulate ? 1.0f : 0.0f;
    if (int rc = gemm_nt(op, N, K, M, {dyt, ldm, 0}, {xt, ldm, 0}, dw, K, 0, 1, ep)) return rc;
  }
  return 0;
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
  Carver s;
  if (int rc = s.allocate(kmajor_bytes(M, K) + kmajor_bytes(N, K) + 512, op)) return rc;
  uint16_t* cols = s.take<uint16_t>(kmajor_bytes(M, K));
  uint16_t* wb = s.take<uint16_t>(kmajor_bytes(N, K));
  const int64_t ldk = kmajor_ld(K);
  if (int rc = im2col(op, images, g, cols, false)) return rc;
  if (int rc = to_kmajor_bf16(op, weight, K, 0, false, N, K, 1, wb, ldk, stream())) return rc;
  Epilogue ep;
  ep.round = true;
  return gemm_nt(op, M, N, K, {cols, ldk, 0}, {wb, ldk, 0}, out, N, 0, 1, ep);
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
  Carver s;
  const size_t bytes = (dweight ? kmajor_bytes(N, M) + kmajor_bytes(K, M) : 0) +
                       (dimages ? kmajor_bytes(M, N) + kmajor_bytes(K, N) + static_cast<size_t>(M * K) * 4 : 0) + 1280;
  if (int rc = s.allocate(bytes, op)) return rc;
  if (dweight) {
    // dweight[N×K] = doutᵀ · cols: A = doutᵀ as [n][m], B = colsᵀ as [k][m].
    uint16_t* dot = s.take<uint16_t>(kmajor_bytes(N, M));
    uint16_t* colst = s.take<uint16_t>(kmajor_bytes(K, M));
    const int64_t ldm = kmajor_ld(M);
    if (int rc = to_kmajor_bf16(op, dout, N, 0, true, N, M, 1, dot, ldm, stream())) return rc;
    if (int rc = im2col(op, images, g, colst, true)) return rc;
    Epilogue ep;
    ep.beta = accumulate ? 1.0f : 0.0f;
    if (int rc = gemm_nt(op, N, K, M, {dot, ldm, 0}, {colst, ldm, 0}, dweight, K, 0, 1, ep)) return rc;
  }
  if (dimages) {
    // dcols[M×K] = dout · weight: A = dout as [m][n], B = weightᵀ as [k][n]; then scattered.
    uint16_t* doa = s.take<uint16_t>(kmajor_bytes(M, N));
    uint16_t* wt = s.take<uint16_t>(kmajor_bytes(K, N));
    float* dcols = s.take<float>(static_cast<size_t>(M * K) * 4);
    const int64_t ldn = kmajor_ld(N);
    if (int rc = to_kmajor_bf16(op, dout, N, 0, false, M, N, 1, doa, ldn, stream())) return rc;
    if (int rc = to_kmajor_bf16(op, weight, K, 0, true, K, N, 1, wt, ldn, stream())) return rc;
    Epilogue ep;
    if (int rc = gemm_nt(op, M, K, N, {doa, ldn, 0}, {wt, ldn, 0}, dcols, K, 0, 1, ep)) return rc;
    CS_LAUNCH(col2im_kernel, grid_for(B * C * H * W, 256), 256, 0, stream(), dcols, dimages, g);
    if (int rc = launched(op)) return rc;
  }
  return 0;
}

}  // extern "C"
