// Token embedding lookup and its scatter-add gradient, the positional embedding add,
// and the class token put in front of the patch tokens (cpu/embedding.h). Forward
// outputs are rounded to the run's precision; ids out of range are reported at the next sync.
#include <cuda_runtime.h>

#include "cuda/abi_pointwise.h"
#include "cuda/numerics.cuh"
#include "cuda/launch.cuh"
#include "cuda/runtime.h"

namespace cs_cuda {
namespace {

constexpr int kThreads = 256;

__global__ void embedding_forward_kernel(const int32_t* __restrict__ ids, int64_t n, const float* __restrict__ table,
                                         int64_t vocab, int64_t width, float* __restrict__ out, KernelError* err, int prec) {
  const int64_t total = n * width;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t t = i / width, j = i - t * width;
    const int32_t id = ids[t];
    if (id < 0 || id >= vocab) {
      out[i] = __int_as_float(0x7fc00000);
      if (j == 0) record_kernel_error(err, kEmbeddingForwardId, t, id, vocab);
    } else {
      out[i] = round_to(prec, table[static_cast<int64_t>(id) * width + j]);
    }
  }
}

__global__ void embedding_backward_kernel(const int32_t* __restrict__ ids, int64_t n, const float* __restrict__ dout,
                                          float* dtable, int64_t vocab, int64_t width, KernelError* err) {
  const int64_t total = n * width;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t t = i / width, j = i - t * width;
    const int32_t id = ids[t];
    if (id < 0 || id >= vocab) {
      if (j == 0) record_kernel_error(err, kEmbeddingBackwardId, t, id, vocab);
    } else {
      atomicAdd(dtable + static_cast<int64_t>(id) * width + j, dout[i]);
    }
  }
}

__global__ void pos_embed_forward_kernel(const float* x, const float* __restrict__ pos, float* out, int64_t total,
                                         int64_t sw, int prec) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = round_to(prec, x[i] + pos[i % sw]);
}

// out[i] = Σ_b in[b·stride + i] for i < count: one thread a column, coalesced rows.
__global__ void sum_over_batch_kernel(const float* __restrict__ in, float* __restrict__ out, int64_t batch,
                                      int64_t stride, int64_t count) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count; i += int64_t(gridDim.x) * blockDim.x) {
    float s = 0.f;
    for (int64_t b = 0; b < batch; b++) s += in[b * stride + i];
    out[i] = s;
  }
}

__global__ void class_token_concat_kernel(const float* __restrict__ x, const float* __restrict__ cls,
                                          float* __restrict__ out, int64_t batch, int64_t seq, int64_t width, int prec) {
  const int64_t per = (seq + 1) * width, total = batch * per;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t b = i / per, k = i - b * per;
    out[i] = round_to(prec, k < width ? cls[k] : x[b * seq * width + (k - width)]);
  }
}

__global__ void class_token_dx_kernel(const float* __restrict__ dout, float* __restrict__ dx, int64_t batch,
                                      int64_t seq, int64_t width) {
  const int64_t per = seq * width, total = batch * per;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t b = i / per, k = i - b * per;
    dx[i] = dout[b * (per + width) + width + k];
  }
}

}  // namespace
}  // namespace cs_cuda

using namespace cs_cuda;

extern "C" {

int cs_cuda_embedding_forward(const int32_t* ids, int64_t n, const float* table, int64_t vocab, int64_t width,
                              float* out) {
  if (n <= 0 || width <= 0) return 0;
  CS_LAUNCH(embedding_forward_kernel, grid_for(n * width, kThreads), kThreads, 0, stream(), ids, n, table, vocab, width, out,
                                                                                     kernel_error_slot(), stored_precision());
  return launched("embeddingForward");
}

int cs_cuda_embedding_backward(const int32_t* ids, int64_t n, const float* dout, float* dtable, int64_t vocab,
                               int64_t width) {
  const char* op = "embeddingBackward";
  if (vocab <= 0 || width <= 0) return 0;
  if (int rc = check(cudaMemsetAsync(dtable, 0, sizeof(float) * vocab * width, stream()), op, "zeroing dtable"))
    return rc;
  if (n <= 0) return 0;
  CS_LAUNCH(embedding_backward_kernel, grid_for(n * width, kThreads), kThreads, 0, stream(), ids, n, dout, dtable, vocab,
                                                                                      width, kernel_error_slot());
  return launched(op);
}

int cs_cuda_pos_embed_forward(const float* x, const float* pos, float* out, int64_t batch, int64_t seq_width) {
  if (batch <= 0 || seq_width <= 0) return 0;
  CS_LAUNCH(pos_embed_forward_kernel, grid_for(batch * seq_width, kThreads), kThreads, 0, stream(), x, pos, out,
                                                                                             batch * seq_width, seq_width, stored_precision());
  return launched("posEmbedForward");
}

int cs_cuda_pos_embed_backward(const float* dout, float* dpos, int64_t batch, int64_t seq_width) {
  if (seq_width <= 0) return 0;
  CS_LAUNCH(sum_over_batch_kernel, grid_for(seq_width, kThreads), kThreads, 0, stream(), dout, dpos, batch, seq_width,
                                                                                  seq_width);
  return launched("posEmbedBackward");
}

int cs_cuda_class_token_concat(const float* x, const float* cls, float* out, int64_t batch, int64_t seq,
                               int64_t width) {
  if (batch <= 0 || width <= 0) return 0;
  CS_LAUNCH(class_token_concat_kernel, grid_for(batch * (seq + 1) * width, kThreads), kThreads, 0, stream(), x, cls, out,
                                                                                                      batch, seq, width, stored_precision());
  return launched("classTokenConcat");
}

int cs_cuda_class_token_concat_backward(const float* dout, float* dx, float* dcls, int64_t batch, int64_t seq,
                                        int64_t width) {
  const char* op = "classTokenConcatBackward";
  if (width <= 0) return 0;
  if (batch > 0 && seq > 0) {
    CS_LAUNCH(class_token_dx_kernel, grid_for(batch * seq * width, kThreads), kThreads, 0, stream(), dout, dx, batch, seq,
                                                                                              width);
    if (int rc = launched(op)) return rc;
  }
  CS_LAUNCH(sum_over_batch_kernel, grid_for(width, kThreads), kThreads, 0, stream(), dout, dcls, batch, (seq + 1) * width,
                                                                              width);
  return launched(op);
}

}  // extern "C"
