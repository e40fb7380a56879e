// Dynamic loss scaling decided on the device (torch.cuda.amp.GradScaler's rule), so that an
// fp16 step reads nothing back and can be captured in a CUDA graph: the scale lives in device
// memory (a state record of two doubles: the scale and the count of finite steps since the last
// growth or skip), the loss gradient is multiplied by it and the parameter gradients divided by
// it in kernels that read it there, and the update after the step (the host's LossScaler rule,
// lib/train/loss_scaler.ts) runs on the device from the step's loss and gradient norm.
#include <cuda_runtime.h>

#include <cmath>

#include "cuda/abi.h"
#include "cuda/abi_pointwise.h"
#include "cuda/launch.cuh"
#include "cuda/runtime.h"
#include "cuda/tensor_list.cuh"

namespace cs_cuda {
namespace {

constexpr int kThreads = 256;
// x *= scale, or x *= 1/scale (PyTorch's unscale: the reciprocal taken in double, rounded to f32).
__global__ void loss_scale_apply_kernel(TensorList list, const double* state, int invert) {
  const double s = state[0];
  const float f = static_cast<float>(invert ? 1.0 / s : s);
  const int k = blockIdx.y;
  float* p = list.p[k];
  const int64_t n = list.n[k];
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    p[i] *= f;
}

// The host LossScaler's update: a non-finite loss changes nothing (the step is a bad one, not an
// overflow); a finite loss with a non-finite gradient norm backs off; else one more good step,
// growing the scale after `interval` of them. Clamped to [min_scale, max_scale].
__global__ void loss_scale_update_kernel(double* state, const float* loss, const double* norm, double growth,
                                         double backoff, double interval, double min_scale, double max_scale) {
  if (!isfinite(*loss)) return;
  if (!isfinite(*norm)) {
    state[0] = fmax(state[0] * backoff, min_scale);
    state[1] = 0;
    return;
  }
  state[1] += 1;
  if (state[1] >= interval) {
    state[1] = 0;
    state[0] = fmin(state[0] * growth, max_scale);
  }
}

}  // namespace
}  // namespace cs_cuda

using namespace cs_cuda;

extern "C" {

int cs_cuda_loss_scale_apply(float* const* tensors, const int64_t* sizes, int count, const double* state, int invert) {
  const char* op = "lossScaleApply";
  if (!state) return fail("%s: no loss-scale state", op);
  return for_each_tensor_list(tensors, sizes, count, [&](const TensorList& list, int in_list, int64_t most) {
    CS_LAUNCH(loss_scale_apply_kernel, dim3(grid_for(most, kThreads), in_list), kThreads, 0, stream(), list, state, invert);
    return launched(op);
  });
}

int cs_cuda_loss_scale_update(double* state, const float* loss, const double* norm, double growth, double backoff,
                              int64_t interval, double min_scale, double max_scale) {
  const char* op = "lossScaleUpdate";
  if (!state || !loss || !norm) return fail("%s: needs the state, the loss and the norm on the device", op);
  CS_LAUNCH(loss_scale_update_kernel, 1, 1, 0, stream(), state, loss, norm, growth, backoff,
            static_cast<double>(interval), min_scale, max_scale);
  return launched(op);
}

}  // extern "C"
