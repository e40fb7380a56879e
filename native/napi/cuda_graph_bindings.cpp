// CUDA graphs of a training step: capture of the compute stream, replay, and the AdamW step
// whose step-dependent values (lr, bias corrections) come from a device schedule record, so
// that a captured step can be replayed at every step of a schedule.
#include <napi.h>

#include <string>

#include "core/adamw_checks.h"
#include "core/backend.h"
#include "core/error.h"
#include "cuda/abi.h"
#include "cuda/abi_pointwise.h"
#include "cuda_dispatch/cuda_backend.h"
#include "napi/args.h"
#include "napi/registry.h"

namespace cs::napi {

namespace {

#define CS_CUDA_CALL(op, name, ...) cuda_check(op, cuda_fn<decltype(cs_cuda_##name)>(#name, op)(__VA_ARGS__))

int cuda_index_arg(const Napi::CallbackInfo& info, size_t i, const char* op) {
  if (info.Length() <= i || info[i].IsUndefined() || info[i].IsNull()) return 0;
  cs::Device d = arg_device(info, i, op, "device");
  if (d.is_cpu()) fail(op, ": device must be a CUDA device ('cuda' or 'cuda:N'), got 'cpu'");
  return d.index;
}

struct GraphHandle {
  void* graph = nullptr;
  int device = 0;
};

void destroy_graph(GraphHandle* h) {
  if (!h->graph) return;
  auto f = reinterpret_cast<decltype(&cs_cuda_graph_destroy)>(cuda_symbol("cudaGraphDestroy", "graph_destroy"));
  f(h->graph, h->device);
  h->graph = nullptr;
}

GraphHandle& graph_arg(const Napi::CallbackInfo& info, size_t i, const char* op) {
  if (info.Length() <= i || !info[i].IsExternal()) fail(op, ": argument ", i + 1, " must be a graph from cudaGraphEndCapture");
  GraphHandle* h = info[i].As<Napi::External<GraphHandle>>().Data();
  if (!h || !h->graph) fail(op, ": the graph was destroyed");
  return *h;
}

// The schedule record: a CUDA i64 [4] tensor (32 bytes).
CsAdamWSchedule* schedule_arg(const Napi::CallbackInfo& info, size_t i, const char* op) {
  Tensor& t = arg_tensor(info, i, op, "schedule");
  if (t.device().is_cpu() || t.dtype != DType::I64 || t.numel() != 4 || sizeof(CsAdamWSchedule) != 32)
    fail(op, ": schedule must be a CUDA i64 tensor of 4 elements (32 bytes), got ", t.describe());
  return static_cast<CsAdamWSchedule*>(t.raw());
}

}  // namespace

// cudaGraphBeginCapture(device?): the compute stream's next ops are recorded, not run.
static Napi::Value CudaGraphBeginCapture(const Napi::CallbackInfo& info) {
  const char* op = "cudaGraphBeginCapture";
  const int device = cuda_index_arg(info, 0, op);
  cuda_use_device(op, device);
  CS_CUDA_CALL(op, graph_begin_capture, device);
  return info.Env().Undefined();
}
CS_BINDING("cudaGraphBeginCapture", CudaGraphBeginCapture);

// cudaGraphEndCapture(device?) → the graph (destroyed when collected, or by cudaGraphDestroy);
// throws with the reason when what was recorded cannot be replayed. Ends the capture either way.
static Napi::Value CudaGraphEndCapture(const Napi::CallbackInfo& info) {
  const char* op = "cudaGraphEndCapture";
  const int device = cuda_index_arg(info, 0, op);
  cuda_use_device(op, device);
  void* g = nullptr;
  CS_CUDA_CALL(op, graph_end_capture, &g, device);
  return Napi::External<GraphHandle>::New(info.Env(), new GraphHandle{g, device}, [](Napi::Env, GraphHandle* h) {
    destroy_graph(h);
    delete h;
  });
}
CS_BINDING("cudaGraphEndCapture", CudaGraphEndCapture);

// cudaGraphLaunch(graph): replays the recorded work on the compute stream.
static Napi::Value CudaGraphLaunch(const Napi::CallbackInfo& info) {
  const char* op = "cudaGraphLaunch";
  GraphHandle& h = graph_arg(info, 0, op);
  cuda_use_device(op, h.device);
  CS_CUDA_CALL(op, graph_launch, h.graph, h.device);
  return info.Env().Undefined();
}
CS_BINDING("cudaGraphLaunch", CudaGraphLaunch);

// cudaGraphDestroy(graph): frees it now (its memory blocks go back to the cache).
static Napi::Value CudaGraphDestroy(const Napi::CallbackInfo& info) {
  if (info.Length() > 0 && info[0].IsExternal()) destroy_graph(info[0].As<Napi::External<GraphHandle>>().Data());
  return info.Env().Undefined();
}
CS_BINDING("cudaGraphDestroy", CudaGraphDestroy);

// adamwSchedule(schedule, lr, beta1, beta2, step): queues the record that a scheduled AdamW
// step reads (in stream order, from the host; not while capturing).
static Napi::Value AdamwSchedule(const Napi::CallbackInfo& info) {
  const char* op = "adamwSchedule";
  CsAdamWSchedule* sched = schedule_arg(info, 0, op);
  const double lr = arg_number(info, 1, op, "lr");
  const double beta1 = arg_number(info, 2, op, "beta1");
  const double beta2 = arg_number(info, 3, op, "beta2");
  const int64_t step = arg_int(info, 4, op, "step");
  const Tensor& t = arg_tensor(info, 0, op, "schedule");
  cuda_use_device(op, t.device().index);
  CS_CUDA_CALL(op, adamw_schedule, sched, lr, beta1, beta2, step);
  return info.Env().Undefined();
}
CS_BINDING("adamwSchedule", AdamwSchedule);

// adamwStepScheduled(param, grad, m, v, paramBf16 | null, beta1, beta2, eps, weightDecay, gradScale,
//                    gateLoss, gateNorm, gateApplied, schedule): the gated AdamW step with lr and
// the bias corrections read from `schedule` on the device (CUDA only).
static Napi::Value AdamwStepScheduled(const Napi::CallbackInfo& info) {
  const char* op = "adamwStepScheduled";
  Tensor& p = arg_tensor(info, 0, op, "param");
  Tensor& g = arg_tensor(info, 1, op, "grad");
  Tensor& m = arg_tensor(info, 2, op, "m");
  Tensor& v = arg_tensor(info, 3, op, "v");
  Tensor* pb = arg_optional_tensor(info, 4, op, "paramBf16");
  AdamWConfig cfg;
  cfg.lr = 0;
  cfg.beta1 = arg_number(info, 5, op, "beta1");
  cfg.beta2 = arg_number(info, 6, op, "beta2");
  cfg.eps = arg_number(info, 7, op, "eps");
  cfg.weight_decay = arg_number(info, 8, op, "weightDecay");
  cfg.grad_scale = arg_number(info, 9, op, "gradScale");
  AdamWGate gate;
  gate.loss = &arg_tensor(info, 10, op, "gate.loss");
  gate.norm = &arg_tensor(info, 11, op, "gate.norm");
  gate.applied = &arg_tensor(info, 12, op, "gate.applied");
  CsAdamWSchedule* sched = schedule_arg(info, 13, op);
  if (!on_cuda(op, {&p, &g, &m, &v, pb, gate.loss, gate.norm, gate.applied, &arg_tensor(info, 13, op, "schedule")}))
    fail(op, ": runs on CUDA only (the schedule record is for CUDA graphs)");
  const int64_t n = check_adamw_step(on_one_cuda_device, p, g, m, v, pb, cfg);
  check_adamw_gate(on_one_cuda_device, op, gate);
  CS_CUDA_CALL(op, adamw_step_scheduled, p.data<float>(), g.data<float>(), m.data<float>(), v.data<float>(),
               pb ? pb->data<uint16_t>() : nullptr, n, cfg.beta1, cfg.beta2, cfg.eps, cfg.weight_decay,
               cfg.grad_scale, gate.loss->data<float>(), gate.norm->data<double>(), gate.applied->data<int64_t>(),
               sched);
  return info.Env().Undefined();
}
CS_BINDING("adamwStepScheduled", AdamwStepScheduled);

}  // namespace cs::napi
