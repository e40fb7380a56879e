// Picking one row per sample (class token / end-of-text token) and its gradient, and
// the argmax of token ids (cpu/pooling.h).
#include <cuda_runtime.h>

#include "cuda/abi_pointwise.h"
#include "cuda/numerics.cuh"
#include "cuda/launch.cuh"
#include "cuda/runtime.h"

namespace cs_cuda {
namespace {

constexpr int kThreads = 256;

__global__ void gather_rows_kernel(const float* __restrict__ x, const int32_t* __restrict__ index,
                                   float* __restrict__ out, int64_t batch, int64_t seq, int64_t width,
                                   KernelError* err, int prec) {
  const int64_t total = batch * width;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t b = i / width, j = i - b * width;
    const int32_t s = index[b];
    if (s < 0 || s >= seq) {
      out[i] = __int_as_float(0x7fc00000);
      if (j == 0) record_kernel_error(err, kGatherRowsIndex, b, s, seq);
    } else {
      out[i] = round_to(prec, x[(b * seq + s) * width + j]);
    }
  }
}

// Every element of dx written: dout's row where s == index[b], else 0.
__global__ void gather_rows_backward_kernel(const float* __restrict__ dout, const int32_t* __restrict__ index,
                                            float* __restrict__ dx, int64_t batch, int64_t seq, int64_t width,
                                            KernelError* err) {
  const int64_t per = seq * width, total = batch * per;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t b = i / per, k = i - b * per, s = k / width, j = k - s * width;
    const int32_t pick = index[b];
    if (k == 0 && (pick < 0 || pick >= seq)) record_kernel_error(err, kGatherRowsBackwardIndex, b, pick, seq);
    dx[i] = s == pick ? dout[b * width + j] : 0.0f;
  }
}

// One warp a row: the first position of the largest id.
__global__ void argmax_ids_kernel(const int32_t* __restrict__ ids, int32_t* __restrict__ out, int64_t batch,
                                  int64_t seq) {
  const int lane = threadIdx.x & 31;
  const int64_t b = static_cast<int64_t>(blockIdx.x) * (blockDim.x / 32) + (threadIdx.x >> 5);
  if (b >= batch) return;
  const int32_t* row = ids + b * seq;
  int32_t best_v = INT32_MIN;
  long long best_i = seq;  // any real position beats it
  for (int64_t s = lane; s < seq; s += 32) {
    const int32_t v = row[s];
    if (v > best_v) {
      best_v = v;
      best_i = s;
    }
  }
  for (int o = 16; o > 0; o >>= 1) {
    const int32_t ov = __shfl_xor_sync(0xffffffffu, best_v, o);
    const long long oi = __shfl_xor_sync(0xffffffffu, best_i, o);
    if (ov > best_v || (ov == best_v && oi < best_i)) {
      best_v = ov;
      best_i = oi;
    }
  }
  if (lane == 0) out[b] = static_cast<int32_t>(best_i);
}

}  // namespace
}  // namespace cs_cuda

using namespace cs_cuda;

extern "C" {

int cs_cuda_gather_rows(const float* x, const int32_t* index, float* out, int64_t batch, int64_t seq,
                        int64_t width) {
  if (batch <= 0 || width <= 0) return 0;
  CS_LAUNCH(gather_rows_kernel, grid_for(batch * width, kThreads), kThreads, 0, stream(), x, index, out, batch, seq, width,
                                                                                   kernel_error_slot(), stored_precision());
  return launched("gatherRows");
}

int cs_cuda_gather_rows_backward(const float* dout, const int32_t* index, float* dx, int64_t batch, int64_t seq,
                                 int64_t width) {
  if (batch <= 0 || seq <= 0 || width <= 0) return 0;
  CS_LAUNCH(gather_rows_backward_kernel, grid_for(batch * seq * width, kThreads), kThreads, 0, stream(), 
      dout, index, dx, batch, seq, width, kernel_error_slot());
  return launched("gatherRowsBackward");
}

int cs_cuda_argmax_ids(const int32_t* ids, int32_t* out, int64_t batch, int64_t seq) {
  if (batch <= 0) return 0;
  if (seq <= 0) return fail("argmaxIds: ids must have at least one token a row");
  CS_LAUNCH(argmax_ids_kernel, static_cast<unsigned>((batch + 7) / 8), 256, 0, stream(), ids, out, batch, seq);
  return launched("argmaxIds");
}

}  // extern "C"
