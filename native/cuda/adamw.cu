// Fused AdamW on fp32 master weights with an optional 16-bit copy of the result, the
// global gradient norm (two passes, fixed chunking, so the sum does not depend on
// timing) and norm clipping without a host round trip (cpu/adamw.h).
#include <cuda_runtime.h>

#include <cmath>
#include <vector>

#include "cuda/abi.h"
#include "cuda/abi_pointwise.h"
#include "cuda/numerics.cuh"
#include "cuda/launch.cuh"
#include "cuda/runtime.h"
#include "cuda/tensor_list.cuh"

namespace cs_cuda {
namespace {

constexpr int kThreads = 256;

// The step's outcome decided on the device (see cs_cuda_adamw_step_gated): no gate, or a
// loss and a norm that must both be finite, and the count of updates applied so far, which
// picks the bias corrections of step known + 1 (set a) or known + 2 (set b).
struct Gate {
  const float* loss;
  const double* norm;
  const int64_t* applied;
  int64_t known;
  float step_size_b, inv_sqrt_bc2_b;
  // A CUDA graph's step (cs_cuda_adamw_step_scheduled): lr, known and both sets of bias
  // corrections are read from the device, written before each replay; decay from this.
  const CsAdamWSchedule* sched;
  double weight_decay;
};

__device__ inline bool gate_open(const float* loss, const double* norm) {
  return isfinite(*loss) && isfinite(*norm);
}

__global__ void adamw_kernel(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ m,
                             float* __restrict__ v, uint16_t* __restrict__ pb, int64_t n, float b1, float b2,
                             float decay, float step_size, float inv_sqrt_bc2, float eps, float gs, Gate gate,
                             int copy_type) {
  if (gate.loss) {
    // Every thread reads the same three words: a skipped step writes nothing.
    if (!gate_open(gate.loss, gate.norm)) return;
    int64_t known = gate.known;
    float step_size_b = gate.step_size_b, inv_sqrt_bc2_b = gate.inv_sqrt_bc2_b;
    if (gate.sched) {
      const CsAdamWSchedule sc = *gate.sched;
      // Rounded as the host rounds 1 - lr * wd (no fused multiply-add).
      decay = static_cast<float>(1.0 - __dmul_rn(sc.lr, gate.weight_decay));
      step_size = sc.step_size_a;
      inv_sqrt_bc2 = sc.inv_sqrt_bc2_a;
      known = sc.known;
      step_size_b = sc.step_size_b;
      inv_sqrt_bc2_b = sc.inv_sqrt_bc2_b;
    }
    if (*gate.applied != known) {
      step_size = step_size_b;
      inv_sqrt_bc2 = inv_sqrt_bc2_b;
    }
  }
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float gi = g[i] * gs;
    const float mi = b1 * m[i] + (1.0f - b1) * gi;
    const float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    const float pi = p[i] * decay - step_size * mi / (sqrtf(vi) * inv_sqrt_bc2 + eps);
    p[i] = pi;
    if (pb) pb[i] = to_16bit(copy_type, pi);
  }
}

__global__ void adamw_commit_kernel(const float* loss, const double* norm, int64_t* applied) {
  if (gate_open(loss, norm)) *applied += 1;
}

// Up to kBatch tensors per launch, passed by value (no host→device copy, no sync).
constexpr int kBatch = kTensorsPerLaunch;
constexpr int64_t kChunk = 1 << 16;  // elements per partial sum

struct NormBatch {
  const float* p[kBatch];
  int64_t n[kBatch];
  int64_t first[kBatch];  // index of the tensor's first partial
};

__global__ void __launch_bounds__(kThreads) sumsq_partials_kernel(NormBatch batch, double* partials) {
  __shared__ double sd[32];
  const int k = blockIdx.y;
  const int64_t n = batch.n[k];
  const int64_t c = blockIdx.x;
  const int64_t b = c * kChunk;
  if (b >= n) return;  // the whole block leaves together
  const int64_t e = min(n, b + kChunk);
  const float* p = batch.p[k];
  double s = 0;
  for (int64_t i = b + threadIdx.x; i < e; i += blockDim.x) s += static_cast<double>(p[i]) * p[i];
  s = block_sum(s, sd);
  if (threadIdx.x == 0) partials[batch.first[k] + c] = s;
}

__global__ void __launch_bounds__(1024) norm_finish_kernel(const double* partials, int64_t count, double* norm) {
  __shared__ double sd[32];
  double s = 0;
  for (int64_t k = threadIdx.x; k < count; k += blockDim.x) s += partials[k];
  s = block_sum(s, sd);
  if (threadIdx.x == 0) *norm = sqrt(s);
}

// Scales by min(1, max_norm / (norm + 1e-6)), reading the norm on the device.
__global__ void clip_kernel(TensorList batch, const double* norm_dev, double max_norm) {
  const double norm = *norm_dev;
  if (!isfinite(norm)) return;
  const double coef = max_norm / (norm + 1e-6);
  if (coef >= 1.0) return;
  const float c = static_cast<float>(coef);
  const int k = blockIdx.y;
  float* p = batch.p[k];
  const int64_t n = batch.n[k];
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    p[i] *= c;
}

// The norm into norm_dev (device), no synchronisation.
int grad_norm_device(const char* op, const float* const* tensors, const int64_t* sizes, int count, double* norm_dev) {
  int64_t total_chunks = 0;
  for (int k = 0; k < count; k++) total_chunks += (sizes[k] + kChunk - 1) / kChunk;
  Scratch partial;
  if (int rc = partial.allocate(sizeof(double) * (total_chunks > 0 ? total_chunks : 1), op)) return rc;
  double* parts = partial.as<double>();
  int64_t next = 0;
  for (int k0 = 0; k0 < count; k0 += kBatch) {
    NormBatch b{};
    int64_t most = 0;
    const int in_batch = count - k0 < kBatch ? count - k0 : kBatch;
    for (int k = 0; k < in_batch; k++) {
      b.p[k] = tensors[k0 + k];
      b.n[k] = sizes[k0 + k];
      b.first[k] = next;
      const int64_t chunks = (sizes[k0 + k] + kChunk - 1) / kChunk;
      next += chunks;
      if (chunks > most) most = chunks;
    }
    if (most == 0) continue;
    if (most > 2147483647LL) return fail("%s: a tensor is too large", op);
    CS_LAUNCH(sumsq_partials_kernel, dim3(static_cast<unsigned>(most), in_batch), kThreads, 0, stream(), b, parts);
    if (int rc = launched(op)) return rc;
  }
  CS_LAUNCH(norm_finish_kernel, 1, 1024, 0, stream(), parts, total_chunks, norm_dev);
  return launched(op);
}

}  // namespace
}  // namespace cs_cuda

using namespace cs_cuda;

extern "C" {

namespace {
// The same constants as the CPU op, computed the same way (on the host, in double).
float step_size_at(double lr, double beta1, int64_t step) {
  return static_cast<float>(lr / (1.0 - std::pow(beta1, static_cast<double>(step))));
}
float inv_sqrt_bc2_at(double beta2, int64_t step) {
  return static_cast<float>(1.0 / std::sqrt(1.0 - std::pow(beta2, static_cast<double>(step))));
}

int adamw_launch(float* param, const float* grad, float* m, float* v, uint16_t* param_bf16, int64_t n, double lr,
                 double beta1, double beta2, double eps, double weight_decay, int64_t step, double grad_scale,
                 Gate gate) {
  if (n <= 0) return 0;
  if (step < 1) return fail("adamwStep: step must be a 1-based step number, got %lld", static_cast<long long>(step));
  const float b1 = static_cast<float>(beta1), b2 = static_cast<float>(beta2);
  const float decay = static_cast<float>(1.0 - lr * weight_decay);
  CS_LAUNCH(adamw_kernel, grid_for(n, kThreads), kThreads, 0, stream(), param, grad, m, v, param_bf16, n, b1, b2, decay,
                                                                 step_size_at(lr, beta1, step), inv_sqrt_bc2_at(beta2, step),
                                                                 static_cast<float>(eps), static_cast<float>(grad_scale), gate,
                                                                 precision() == Precision::F16 ? 2 : 1);
  return launched("adamwStep");
}
}  // namespace

int cs_cuda_adamw_step(float* param, const float* grad, float* m, float* v, uint16_t* param_bf16, int64_t n,
                       double lr, double beta1, double beta2, double eps, double weight_decay, int64_t step,
                       double grad_scale) {
  return adamw_launch(param, grad, m, v, param_bf16, n, lr, beta1, beta2, eps, weight_decay, step, grad_scale, Gate{});
}

int cs_cuda_adamw_step_gated(float* param, const float* grad, float* m, float* v, uint16_t* param_bf16, int64_t n,
                             double lr, double beta1, double beta2, double eps, double weight_decay, int64_t step,
                             double grad_scale, const float* loss, const double* norm, const int64_t* applied) {
  if (!loss || !norm || !applied) return fail("adamwStep: a gated step needs loss, norm and applied on the device");
  Gate gate{loss, norm, applied, step - 1, step_size_at(lr, beta1, step + 1), inv_sqrt_bc2_at(beta2, step + 1), nullptr, 0.0};
  return adamw_launch(param, grad, m, v, param_bf16, n, lr, beta1, beta2, eps, weight_decay, step, grad_scale, gate);
}

int cs_cuda_adamw_schedule(CsAdamWSchedule* sched, double lr, double beta1, double beta2, int64_t step) {
  if (!sched) return fail("adamwSchedule: no schedule record");
  if (step < 1) return fail("adamwSchedule: step must be a 1-based step number, got %lld", static_cast<long long>(step));
  // The same numbers cs_cuda_adamw_step_gated computes for this step, queued in stream order.
  CsAdamWSchedule h{lr, step - 1, step_size_at(lr, beta1, step), inv_sqrt_bc2_at(beta2, step),
                    step_size_at(lr, beta1, step + 1), inv_sqrt_bc2_at(beta2, step + 1)};
  return cs_cuda_memcpy_h2d(sched, &h, sizeof h, current_device());
}

int cs_cuda_adamw_step_scheduled(float* param, const float* grad, float* m, float* v, uint16_t* param_bf16, int64_t n,
                                 double beta1, double beta2, double eps, double weight_decay, double grad_scale,
                                 const float* loss, const double* norm, const int64_t* applied,
                                 const CsAdamWSchedule* sched) {
  if (!loss || !norm || !applied || !sched)
    return fail("adamwStep: a scheduled step needs loss, norm, applied and the schedule on the device");
  // lr and step here only shape the launch's host-side values, which the schedule replaces.
  Gate gate{loss, norm, applied, 0, 0.0f, 0.0f, sched, weight_decay};
  return adamw_launch(param, grad, m, v, param_bf16, n, 0.0, beta1, beta2, eps, weight_decay, 1, grad_scale, gate);
}

int cs_cuda_adamw_commit(const float* loss, const double* norm, int64_t* applied) {
  CS_LAUNCH(adamw_commit_kernel, 1, 1, 0, stream(), loss, norm, applied);
  return launched("adamwCommit");
}

int cs_cuda_grad_norm(const float* const* tensors, const int64_t* sizes, int count, double* norm_device,
                      double* norm_host) {
  const char* op = "gradNorm";
  Scratch own;
  double* nd = norm_device;
  if (!nd) {
    if (int rc = own.allocate(sizeof(double), op)) return rc;
    nd = own.as<double>();
  }
  if (int rc = grad_norm_device(op, tensors, sizes, count, nd)) return rc;
  if (norm_host) return cs_cuda_memcpy_d2h(norm_host, nd, sizeof(double), current_device());
  return 0;
}

int cs_cuda_clip_grad_norm(float* const* tensors, const int64_t* sizes, int count, double max_norm,
                           double* norm_host) {
  return cs_cuda_clip_grad_norm_device(tensors, sizes, count, max_norm, nullptr, norm_host);
}

int cs_cuda_clip_grad_norm_device(float* const* tensors, const int64_t* sizes, int count, double max_norm,
                                  double* norm_device, double* norm_host) {
  const char* op = "clipGradNorm";
  if (!(max_norm > 0)) return fail("%s: maxNorm must be positive, got %g", op, max_norm);
  Scratch own;
  double* nd = norm_device;
  if (!nd) {
    if (int rc = own.allocate(sizeof(double), op)) return rc;
    nd = own.as<double>();
  }
  std::vector<const float*> ro(tensors, tensors + count);
  if (int rc = grad_norm_device(op, ro.data(), sizes, count, nd)) return rc;
  if (int rc = for_each_tensor_list(tensors, sizes, count, [&](const TensorList& list, int in_list, int64_t most) {
        CS_LAUNCH(clip_kernel, dim3(grid_for(most, kThreads), in_list), kThreads, 0, stream(), list, nd, max_norm);
        return launched(op);
      }))
    return rc;
  if (norm_host) return cs_cuda_memcpy_d2h(norm_host, nd, sizeof(double), current_device());
  return 0;
}

}  // extern "C"
