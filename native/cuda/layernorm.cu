// Layer normalisation, forward (plain and with the residual add) and backward.
// One warp per row, fp32 statistics, 16-byte loads when the row allows them; the
// output is rounded to the run's precision (bf16: the CPU's bf16-emulation points). Backward: parameter
// gradients as column sums over row chunks (deterministic), then dx a warp per row.
#include <cuda_runtime.h>

#include <cstdint>

#include "cuda/abi_pointwise.h"
#include "cuda/numerics.cuh"
#include "cuda/launch.cuh"
#include "cuda/runtime.h"

namespace cs_cuda {
namespace {

constexpr int kWarps = 8;  // rows per block
constexpr int kThreads = kWarps * 32;

// The row's values as groups of V floats (V = 4: float4 loads; V = 1: scalars).
template <int V>
struct Vec;
template <>
struct Vec<1> {
  float v[1];
  __device__ static Vec load(const float* p, int64_t i) { return Vec{{p[i]}}; }
  __device__ void store(float* p, int64_t i) const { p[i] = v[0]; }
};
template <>
struct Vec<4> {
  float v[4];
  __device__ static Vec load(const float* p, int64_t i) {
    const float4 f = reinterpret_cast<const float4*>(p)[i];
    return Vec{{f.x, f.y, f.z, f.w}};
  }
  __device__ void store(float* p, int64_t i) const { reinterpret_cast<float4*>(p)[i] = make_float4(v[0], v[1], v[2], v[3]); }
};

// RESIDUAL: first sum = round(x + residual) into sum_out, then normalise sum_out.
// OUT16: out holds the precision's 16-bit type (uint16_t bits), the same values as the f32
// output rounded to it; the linear that reads it takes them in place (backward needs only x).
template <int V, bool RESIDUAL, bool OUT16>
__global__ void __launch_bounds__(kThreads) layernorm_forward_kernel(const float* x, const float* residual,
                                                                     float* sum_out, const float* __restrict__ gamma,
                                                                     const float* __restrict__ beta, void* out,
                                                                     float* mean, float* rstd, int64_t rows,
                                                                     int64_t width, float eps, int prec) {
  const int lane = threadIdx.x & 31;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (row >= rows) return;
  const int64_t groups = width / V;
  const float* xr = x + row * width;
  float acc = 0.f;
  if (RESIDUAL) {
    const float* rr = residual + row * width;
    float* sr = sum_out + row * width;
    for (int64_t k = lane; k < groups; k += 32) {
      Vec<V> a = Vec<V>::load(xr, k), b = Vec<V>::load(rr, k);
#pragma unroll
      for (int u = 0; u < V; u++) {
        a.v[u] = round_to(prec, a.v[u] + b.v[u]);
        acc += a.v[u];
      }
      a.store(sr, k);
    }
    xr = sr;  // each lane re-reads only what it wrote itself
  } else {
    for (int64_t k = lane; k < groups; k += 32) {
      const Vec<V> a = Vec<V>::load(xr, k);
#pragma unroll
      for (int u = 0; u < V; u++) acc += a.v[u];
    }
  }
  const float mu = width ? warp_sum(acc) / static_cast<float>(width) : 0.f;
  float ss = 0.f;
  for (int64_t k = lane; k < groups; k += 32) {
    const Vec<V> a = Vec<V>::load(xr, k);
#pragma unroll
    for (int u = 0; u < V; u++) {
      const float d = a.v[u] - mu;
      ss += d * d;
    }
  }
  const float var = width ? warp_sum(ss) / static_cast<float>(width) : 0.f;
  const float rs = 1.0f / sqrtf(var + eps);
  for (int64_t k = lane; k < groups; k += 32) {
    Vec<V> a = Vec<V>::load(xr, k);
    const Vec<V> g = Vec<V>::load(gamma, k), b = Vec<V>::load(beta, k);
    if (OUT16) {
      uint16_t* orow = static_cast<uint16_t*>(out) + row * width + k * V;
#pragma unroll
      for (int u = 0; u < V; u++) orow[u] = to_16bit(prec, (a.v[u] - mu) * rs * g.v[u] + b.v[u]);
    } else {
#pragma unroll
      for (int u = 0; u < V; u++) a.v[u] = round_to(prec, (a.v[u] - mu) * rs * g.v[u] + b.v[u]);
      a.store(static_cast<float*>(out) + row * width, k);
    }
  }
  if (lane == 0) {
    mean[row] = mu;
    rstd[row] = rs;
  }
}

// Column sums of dout·x̂ and dout over a chunk of rows: partial[chunk][col].
// Block: 32 columns × 8 row lanes; coalesced 128-byte row segments.
__global__ void __launch_bounds__(256) layernorm_param_partials(const float* __restrict__ dout,
                                                                const float* __restrict__ x,
                                                                const float* __restrict__ mean,
                                                                const float* __restrict__ rstd, float* pg, float* pb,
                                                                int64_t rows, int64_t width, int64_t rows_per_chunk) {
  __shared__ float sg[8][33], sb[8][33];
  const int tx = threadIdx.x & 31, ty = threadIdx.x >> 5;
  const int64_t col = static_cast<int64_t>(blockIdx.x) * 32 + tx;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * rows_per_chunk;
  const int64_t r1 = min(rows, r0 + rows_per_chunk);
  float ag = 0.f, ab = 0.f;
  if (col < width) {
    for (int64_t r = r0 + ty; r < r1; r += 8) {
      const float d = dout[r * width + col];
      ag += d * ((x[r * width + col] - mean[r]) * rstd[r]);
      ab += d;
    }
  }
  sg[ty][tx] = ag;
  sb[ty][tx] = ab;
  __syncthreads();
  if (ty == 0 && col < width) {
    float g = 0.f, b = 0.f;
#pragma unroll
    for (int k = 0; k < 8; k++) {
      g += sg[k][tx];
      b += sb[k][tx];
    }
    pg[blockIdx.y * width + col] = g;
    pb[blockIdx.y * width + col] = b;
  }
}

__global__ void layernorm_param_finish(const float* pg, const float* pb, float* dgamma, float* dbeta, int64_t chunks,
                                       int64_t width) {
  const int64_t col = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (col >= width) return;
  float g = 0.f, b = 0.f;
  for (int64_t c = 0; c < chunks; c++) {
    g += pg[c * width + col];
    b += pb[c * width + col];
  }
  if (dgamma) dgamma[col] = g;
  if (dbeta) dbeta[col] = b;
}

// dx = rstd · (g − mean(g) − x̂ · mean(g·x̂)),  g = dout·gamma. dx may be dout.
template <int V>
__global__ void __launch_bounds__(kThreads) layernorm_dx_kernel(const float* dout, const float* __restrict__ x,
                                                                const float* __restrict__ gamma,
                                                                const float* __restrict__ mean,
                                                                const float* __restrict__ rstd, float* dx,
                                                                int64_t rows, int64_t width) {
  const int lane = threadIdx.x & 31;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (row >= rows) return;
  const int64_t groups = width / V;
  const float* dr = dout + row * width;
  const float* xr = x + row * width;
  const float m = mean[row], rs = rstd[row];
  float sg = 0.f, sgx = 0.f;
  for (int64_t k = lane; k < groups; k += 32) {
    const Vec<V> d = Vec<V>::load(dr, k), xv = Vec<V>::load(xr, k), g = Vec<V>::load(gamma, k);
#pragma unroll
    for (int u = 0; u < V; u++) {
      const float gj = d.v[u] * g.v[u];
      sg += gj;
      sgx += gj * ((xv.v[u] - m) * rs);
    }
  }
  const float a = width ? warp_sum(sg) / static_cast<float>(width) : 0.f;
  const float b = width ? warp_sum(sgx) / static_cast<float>(width) : 0.f;
  float* gr = dx + row * width;
  for (int64_t k = lane; k < groups; k += 32) {
    Vec<V> d = Vec<V>::load(dr, k);
    const Vec<V> xv = Vec<V>::load(xr, k), g = Vec<V>::load(gamma, k);
#pragma unroll
    for (int u = 0; u < V; u++) d.v[u] = rs * (d.v[u] * g.v[u] - a - ((xv.v[u] - m) * rs) * b);
    d.store(gr, k);
  }
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// float4 loads need a width divisible by 4 and every row pointer 16-byte aligned.
bool vectorisable(int64_t width, std::initializer_list<const void*> ptrs) {
  if (width % 4 != 0) return false;
  for (const void* p : ptrs)
    if (p && !aligned16(p)) return false;
  return true;
}

unsigned row_blocks(int64_t rows) { return static_cast<unsigned>((rows + kWarps - 1) / kWarps); }

template <bool OUT16>
using ForwardKernel = decltype(&layernorm_forward_kernel<1, false, OUT16>);

template <bool OUT16>
ForwardKernel<OUT16> pick_forward(bool residual, bool vec) {
  return residual ? (vec ? layernorm_forward_kernel<4, true, OUT16> : layernorm_forward_kernel<1, true, OUT16>)
                  : (vec ? layernorm_forward_kernel<4, false, OUT16> : layernorm_forward_kernel<1, false, OUT16>);
}

// out: f32, or the precision's 16-bit type when out16.
int forward(const char* op, const float* x, const float* residual, float* sum_out, const float* gamma,
            const float* beta, void* out, bool out16, float* mean, float* rstd, int64_t rows, int64_t width,
            float eps) {
  if (rows <= 0) return 0;
  if (rows > 65535LL * 65535LL) return fail("%s: too many rows (%lld)", op, static_cast<long long>(rows));
  if (out16 && precision() == Precision::F32) return fail("%s: a 16-bit output needs a bf16 or fp16 precision", op);
  const bool vec = vectorisable(width, {x, residual, sum_out, gamma, beta, out16 ? nullptr : out});
  const unsigned blocks = row_blocks(rows);
  if (out16) {
    CS_LAUNCH(pick_forward<true>(residual != nullptr, vec), blocks, kThreads, 0, stream(), x, residual, sum_out, gamma,
              beta, out, mean, rstd, rows, width, eps, stored_precision());
    return launched(op);
  }
  auto kernel = pick_forward<false>(residual != nullptr, vec);
  CS_LAUNCH(kernel, blocks, kThreads, 0, stream(), x, residual, sum_out, gamma, beta, out, mean, rstd, rows, width, eps,
            stored_precision());
  return launched(op);
}

}  // namespace
}  // namespace cs_cuda

using namespace cs_cuda;

extern "C" {

int cs_cuda_layernorm_forward(const float* x, const float* gamma, const float* beta, float* out, float* mean,
                              float* rstd, int64_t rows, int64_t width, float eps) {
  return forward("layernormForward", x, nullptr, nullptr, gamma, beta, out, false, mean, rstd, rows, width, eps);
}

int cs_cuda_layernorm_forward16(const float* x, const float* residual, float* sum_out, const float* gamma,
                                const float* beta, uint16_t* out16, float* mean, float* rstd, int64_t rows,
                                int64_t width, float eps) {
  return forward(residual ? "residualLayernormForward" : "layernormForward", x, residual, sum_out, gamma, beta, out16,
                 true, mean, rstd, rows, width, eps);
}

int cs_cuda_residual_layernorm_forward(const float* x, const float* residual, float* sum_out, const float* gamma,
                                       const float* beta, float* out, float* mean, float* rstd, int64_t rows,
                                       int64_t width, float eps) {
  return forward("residualLayernormForward", x, residual, sum_out, gamma, beta, out, false, mean, rstd, rows, width,
                 eps);
}

int cs_cuda_layernorm_backward(const float* dout, const float* x, const float* gamma, const float* mean,
                               const float* rstd, float* dx, float* dgamma, float* dbeta, int64_t rows,
                               int64_t width) {
  const char* op = "layernormBackward";
  if (width <= 0) return 0;
  // Parameter gradients first: dx may overwrite dout.
  if (dgamma || dbeta) {
    if (rows == 0) {
      if (dgamma) cudaMemsetAsync(dgamma, 0, sizeof(float) * width, stream());
      if (dbeta) cudaMemsetAsync(dbeta, 0, sizeof(float) * width, stream());
      if (int rc = launched(op)) return rc;
    } else {
      // About 64 rows a chunk, at most 512 chunks: enough blocks to fill the GPU.
      int64_t chunks = (rows + 63) / 64;
      if (chunks > 512) chunks = 512;
      const int64_t per_chunk = (rows + chunks - 1) / chunks;
      chunks = (rows + per_chunk - 1) / per_chunk;
      Scratch partial;
      if (int rc = partial.allocate(sizeof(float) * 2 * chunks * width, op)) return rc;
      float* pg = partial.as<float>();
      float* pb = pg + chunks * width;
      dim3 grid(static_cast<unsigned>((width + 31) / 32), static_cast<unsigned>(chunks));
      CS_LAUNCH(layernorm_param_partials, grid, 256, 0, stream(), dout, x, mean, rstd, pg, pb, rows, width, per_chunk);
      if (int rc = launched(op)) return rc;
      CS_LAUNCH(layernorm_param_finish, static_cast<unsigned>((width + 255) / 256), 256, 0, stream(), pg, pb, dgamma, dbeta,
                                                                                              chunks, width);
      if (int rc = launched(op)) return rc;
    }
  }
  if (rows <= 0) return 0;
  if (vectorisable(width, {dout, x, gamma, dx}))
    CS_LAUNCH(layernorm_dx_kernel<4>, row_blocks(rows), kThreads, 0, stream(), dout, x, gamma, mean, rstd, dx, rows, width);
  else
    CS_LAUNCH(layernorm_dx_kernel<1>, row_blocks(rows), kThreads, 0, stream(), dout, x, gamma, mean, rstd, dx, rows, width);
  return launched(op);
}

}  // extern "C"
