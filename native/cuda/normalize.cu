// L2 normalisation along rows, as torch.nn.functional.normalize (cpu/normalize.h):
// fp32, no bf16 rounding (the features entering the loss stay fp32). One warp a row.
#include <cuda_runtime.h>

#include "cuda/abi_pointwise.h"
#include "cuda/numerics.cuh"
#include "cuda/launch.cuh"
#include "cuda/runtime.h"

namespace cs_cuda {
namespace {

constexpr float kEps = 1e-12f;
constexpr int kWarps = 8;

__global__ void l2normalize_forward_kernel(const float* x, float* out, float* __restrict__ norms, int64_t rows,
                                           int64_t width) {
  const int lane = threadIdx.x & 31;
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (r >= rows) return;
  const float* xr = x + r * width;
  float ss = 0.f;
  for (int64_t j = lane; j < width; j += 32) ss += xr[j] * xr[j];
  const float n = sqrtf(warp_sum(ss));
  const float inv = 1.0f / fmaxf(n, kEps);
  float* orow = out + r * width;
  for (int64_t j = lane; j < width; j += 32) orow[j] = xr[j] * inv;  // out may be x: same lane reads then writes
  if (lane == 0) norms[r] = n;
}

__global__ void l2normalize_backward_kernel(const float* dout, const float* __restrict__ y,
                                            const float* __restrict__ norms, float* dx, int64_t rows, int64_t width) {
  const int lane = threadIdx.x & 31;
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (r >= rows) return;
  const float* dr = dout + r * width;
  const float* yr = y + r * width;
  float* gr = dx + r * width;
  const float n = norms[r];
  if (n > kEps) {
    float yd = 0.f;
    for (int64_t j = lane; j < width; j += 32) yd += yr[j] * dr[j];
    const float c = warp_sum(yd), inv = 1.0f / n;
    for (int64_t j = lane; j < width; j += 32) gr[j] = (dr[j] - yr[j] * c) * inv;
  } else {
    for (int64_t j = lane; j < width; j += 32) gr[j] = dr[j] / kEps;
  }
}

}  // namespace
}  // namespace cs_cuda

using namespace cs_cuda;

extern "C" {

int cs_cuda_l2normalize_forward(const float* x, float* out, float* norms, int64_t rows, int64_t width) {
  if (rows <= 0) return 0;
  CS_LAUNCH(l2normalize_forward_kernel, static_cast<unsigned>((rows + kWarps - 1) / kWarps), kWarps * 32, 0, stream(), 
      x, out, norms, rows, width);
  return launched("l2normalizeForward");
}

int cs_cuda_l2normalize_backward(const float* dout, const float* out, const float* norms, float* dx, int64_t rows,
                                 int64_t width) {
  if (rows <= 0) return 0;
  CS_LAUNCH(l2normalize_backward_kernel, static_cast<unsigned>((rows + kWarps - 1) / kWarps), kWarps * 32, 0, stream(), 
      dout, out, norms, dx, rows, width);
  return launched("l2normalizeBackward");
}

}  // extern "C"
