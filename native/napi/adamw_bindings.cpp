#include <cmath>
#include <string>
#include <vector>

#include "core/backend.h"
#include "cuda_dispatch/cuda_pointwise.h"
#include "cpu/adamw.h"
#include "napi/args.h"
#include "napi/registry.h"
#include "napi/tensor_wrap.h"

namespace cs::napi {

// An array of tensors, e.g. every gradient of a model.
static std::vector<Tensor*> arg_tensor_list(const Napi::CallbackInfo& info, size_t i, const char* op,
                                            const char* name) {
  Napi::Value v = i < info.Length() ? info[i] : info.Env().Undefined();
  if (!v.IsArray()) fail(op, ": ", name, " must be an array of Tensors");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<Tensor*> out;
  for (uint32_t k = 0; k < a.Length(); k++) {
    Napi::Value e = a.Get(k);
    std::string what = std::string(name) + "[" + std::to_string(k) + "]";
    if (!TensorWrap::IsTensor(e)) fail(op, ": ", what, " must be a Tensor");
    Tensor& t = TensorWrap::Unwrap(e.As<Napi::Object>())->tensor(op, what.c_str());
    out.push_back(&t);
  }
  return out;
}

// on_cuda for a list: all on one device (the error names the first that differs).
static bool on_cuda_list(const char* op, const std::vector<const Tensor*>& ts) {
  for (size_t k = 1; k < ts.size(); k++)
    if (ts[k]->device() != ts[0]->device())
      fail(op, ": grads[", k, "] is on ", ts[k]->device().str(), " but grads[0] is on ", ts[0]->device().str());
  return !ts.empty() && on_cuda(op, {ts[0]});
}

// The optional gate (core/adamw_checks.h) from arguments i, i+1, i+2; null when all are absent.
static bool arg_gate(const Napi::CallbackInfo& info, size_t i, const char* op, AdamWGate* gate) {
  gate->loss = arg_optional_tensor(info, i, op, "gate.loss");
  gate->norm = arg_optional_tensor(info, i + 1, op, "gate.norm");
  gate->applied = arg_optional_tensor(info, i + 2, op, "gate.applied");
  const bool any = gate->loss || gate->norm || gate->applied;
  if (any && !(gate->loss && gate->norm && gate->applied)) fail(op, ": a gated step needs gate.loss, gate.norm and gate.applied");
  return any;
}

// adamwStep(param, grad, m, v, paramBf16 | null, lr, beta1, beta2, eps, weightDecay, step, gradScale
//           [, gateLoss, gateNorm, gateApplied [, zeroGrad]])
static Napi::Value AdamwStep(const Napi::CallbackInfo& info) {
  const char* op = "adamwStep";
  Tensor& p = arg_tensor(info, 0, op, "param");
  Tensor& g = arg_tensor(info, 1, op, "grad");
  Tensor& m = arg_tensor(info, 2, op, "m");
  Tensor& v = arg_tensor(info, 3, op, "v");
  Tensor* pb = arg_optional_tensor(info, 4, op, "paramBf16");
  cpu::AdamWConfig cfg;
  cfg.lr = arg_number(info, 5, op, "lr");
  cfg.beta1 = arg_number(info, 6, op, "beta1");
  cfg.beta2 = arg_number(info, 7, op, "beta2");
  cfg.eps = arg_number(info, 8, op, "eps");
  cfg.weight_decay = arg_number(info, 9, op, "weightDecay");
  cfg.step = arg_int(info, 10, op, "step");
  cfg.grad_scale = arg_number(info, 11, op, "gradScale");
  AdamWGate gate;
  const AdamWGate* gp = arg_gate(info, 12, op, &gate) ? &gate : nullptr;
  cfg.zero_grad = info.Length() > 15 && !info[15].IsUndefined() && !info[15].IsNull() && arg_bool(info, 15, op, "zeroGrad");
  if (on_cuda(op, {&p, &g, &m, &v, pb, gate.loss, gate.norm, gate.applied})) {
    if (cfg.zero_grad) fail(op, ": zeroGrad is for CPU tensors (on CUDA the step zeroes the gradients itself)");
    cuda::adamw_step(p, g, m, v, pb, cfg, gp);
  } else
    cpu::adamw_step(p, g, m, v, pb, cfg, gp);
  return info.Env().Undefined();
}
CS_BINDING("adamwStep", AdamwStep);

// adamwCommit(gateLoss, gateNorm, gateApplied): applied += 1 when the loss and norm are finite.
static Napi::Value AdamwCommit(const Napi::CallbackInfo& info) {
  const char* op = "adamwCommit";
  AdamWGate gate;
  if (!arg_gate(info, 0, op, &gate)) fail(op, ": needs gate.loss, gate.norm and gate.applied");
  if (on_cuda(op, {gate.loss, gate.norm, gate.applied}))
    cuda::adamw_commit(gate);
  else
    cpu::adamw_commit(gate);
  return info.Env().Undefined();
}
CS_BINDING("adamwCommit", AdamwCommit);

// lossScaleApply([t1, t2, …], state, invert): every f32 tensor times the device loss scale
// (state: i64 [2] holding f64 scale and good steps), or divided by it. CUDA only: the CPU's
// loss scaling is the host's LossScaler.
static Napi::Value LossScaleApply(const Napi::CallbackInfo& info) {
  const char* op = "lossScaleApply";
  std::vector<Tensor*> list = arg_tensor_list(info, 0, op, "tensors");
  Tensor& state = arg_tensor(info, 1, op, "state");
  const bool invert = arg_bool(info, 2, op, "invert");
  std::vector<const Tensor*> all(list.begin(), list.end());
  all.push_back(&state);
  if (!on_cuda_list(op, all)) fail(op, ": the device loss scale is for CUDA tensors (on the CPU the host's LossScaler scales)");
  cuda::loss_scale_apply(list, state, invert);
  return info.Env().Undefined();
}
CS_BINDING("lossScaleApply", LossScaleApply);

// lossScaleUpdate(state, loss, norm, growthFactor, backoffFactor, growthInterval, minScale, maxScale)
static Napi::Value LossScaleUpdate(const Napi::CallbackInfo& info) {
  const char* op = "lossScaleUpdate";
  Tensor& state = arg_tensor(info, 0, op, "state");
  Tensor& loss = arg_tensor(info, 1, op, "loss");
  Tensor& norm = arg_tensor(info, 2, op, "norm");
  const double growth = arg_number(info, 3, op, "growthFactor");
  const double backoff = arg_number(info, 4, op, "backoffFactor");
  const int64_t interval = arg_int(info, 5, op, "growthInterval");
  const double min_scale = arg_number(info, 6, op, "minScale");
  const double max_scale = arg_number(info, 7, op, "maxScale");
  if (!on_cuda_list(op, {&state, &loss, &norm}))
    fail(op, ": the device loss scale is for CUDA tensors (on the CPU the host's LossScaler scales)");
  cuda::loss_scale_update(state, loss, norm, growth, backoff, interval, min_scale, max_scale);
  return info.Env().Undefined();
}
CS_BINDING("lossScaleUpdate", LossScaleUpdate);

// A CPU norm also stored in normOut (the f64's bits in a 1-element i64 tensor).
static double store_norm(const char* op, Tensor* out, double norm) {
  if (!out) return norm;
  if (out->dtype != DType::I64 || out->numel() != 1)
    fail(op, ": normOut must be a 1-element i64 tensor (holding an f64), got ", out->describe());
  *out->data<double>() = norm;
  return norm;
}

// gradNorm([g1, g2, …] [, normOut]) → number. With normOut on a GPU the norm stays there
// (nothing is read back; NaN is returned).
static Napi::Value GradNorm(const Napi::CallbackInfo& info) {
  std::vector<Tensor*> list = arg_tensor_list(info, 0, "gradNorm", "grads");
  std::vector<const Tensor*> grads(list.begin(), list.end());
  Tensor* out = arg_optional_tensor(info, 1, "gradNorm", "normOut");
  if (on_cuda_list("gradNorm", grads)) {
    if (!out) return Napi::Number::New(info.Env(), cuda::grad_norm(grads));
    cuda::grad_norm_into(grads, *out);
    return Napi::Number::New(info.Env(), std::nan(""));
  }
  return Napi::Number::New(info.Env(), store_norm("gradNorm", out, cpu::grad_norm(grads)));
}
CS_BINDING("gradNorm", GradNorm);

// clipGradNorm([g1, g2, …], maxNorm [, normOut]) → the norm before clipping (normOut as gradNorm's)
static Napi::Value ClipGradNorm(const Napi::CallbackInfo& info) {
  std::vector<Tensor*> grads = arg_tensor_list(info, 0, "clipGradNorm", "grads");
  double max_norm = arg_number(info, 1, "clipGradNorm", "maxNorm");
  Tensor* out = arg_optional_tensor(info, 2, "clipGradNorm", "normOut");
  if (on_cuda_list("clipGradNorm", std::vector<const Tensor*>(grads.begin(), grads.end()))) {
    if (!out) return Napi::Number::New(info.Env(), cuda::clip_grad_norm(grads, max_norm));
    cuda::clip_grad_norm_into(grads, max_norm, *out);
    return Napi::Number::New(info.Env(), std::nan(""));
  }
  return Napi::Number::New(info.Env(), store_norm("clipGradNorm", out, cpu::clip_grad_norm(grads, max_norm)));
}
CS_BINDING("clipGradNorm", ClipGradNorm);

}  // namespace cs::napi
