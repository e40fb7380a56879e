// JS entry points of the NCCL communicator, through the CUDA backend's loader (the
// addon has no build-time CUDA or NCCL dependency). Joining a communicator and the
// collectives return Promises and run on a libuv worker thread: the CUDA library
// waits there (bounded by the communicator's timeout) while the event loop stays free.
#include <napi.h>

#include <functional>
#include <string>

#include "core/checks.h"
#include "cuda_dispatch/cuda_backend.h"
#include "cuda/abi.h"
#include "cuda/nccl_comm.h"
#include "napi/args.h"
#include "napi/registry.h"

namespace cs::napi {

namespace {

// What JS holds: the library's communicator, cleared once destroyed or aborted, so a
// late call gets an error instead of touching freed memory.
struct NcclHandle {
  void* comm = nullptr;
  int device = 0;
  int nranks = 1;
};

NcclHandle& arg_handle(const Napi::CallbackInfo& info, size_t i, const char* op) {
  if (i >= info.Length() || !info[i].IsExternal()) fail("nccl ", op, ": the first argument must be an NCCL communicator handle");
  NcclHandle* h = info[i].As<Napi::External<NcclHandle>>().Data();
  if (!h || !h->comm) fail("nccl ", op, ": the communicator was closed");
  return *h;
}

// A CUDA f32 tensor on the communicator's device.
Tensor arg_device_tensor(const Napi::CallbackInfo& info, size_t i, const NcclHandle& h, const char* op, const char* name) {
  Tensor& t = arg_tensor(info, i, op, name);
  if (t.device().is_cpu() || t.device().index != h.device)
    fail("nccl ", op, ": ", name, " is ", t.describe(), " but the communicator's tensors are on cuda:", h.device);
  if (t.dtype != DType::F32) fail("nccl ", op, ": ", name, " must be f32, got ", t.describe());
  return t;
}

// Runs `work` (returning the library's rc) on a worker thread and settles a Promise:
// resolved with `result()` or rejected with the library's message.
class NcclWork : public Napi::AsyncWorker {
 public:
  NcclWork(Napi::Env env, const char* op, std::function<int()> work, std::function<Napi::Value(Napi::Env)> result)
      : Napi::AsyncWorker(env, "clipscale:nccl"),
        deferred_(Napi::Promise::Deferred::New(env)),
        op_(op),
        work_(std::move(work)),
        result_(std::move(result)) {}
  Napi::Promise promise() { return deferred_.Promise(); }
  void Execute() override {
    try {
      cuda_check(op_, work_());
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override { deferred_.Resolve(result_ ? result_(Env()) : Env().Undefined()); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  const char* op_;
  std::function<int()> work_;
  std::function<Napi::Value(Napi::Env)> result_;
};

Napi::Value queue(Napi::Env env, const char* op, std::function<int()> work, std::function<Napi::Value(Napi::Env)> result = nullptr) {
  auto* w = new NcclWork(env, op, std::move(work), std::move(result));
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

int reduce_code(const Napi::CallbackInfo& info, size_t i, const char* op) {
  std::string s = i < info.Length() && info[i].IsString() ? info[i].As<Napi::String>().Utf8Value() : "";
  if (s == "sum") return 0;
  if (s == "mean") return 1;
  fail("nccl ", op, ": op must be 'sum' or 'mean'");
}

}  // namespace

// ncclInfo() → { available, version?, path?, reason? }: whether NCCL can be used
// (the CUDA backend loaded and libnccl.so.2 found), without needing a GPU.
static Napi::Value NcclInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  const CudaBackendStatus& s = cuda_backend_status();
  if (!s.loaded) {
    o.Set("available", false);
    o.Set("reason", "the CUDA backend is not available: " + s.reason);
    return o;
  }
  try {
    int version = 0;
    char path[1024] = {0};
    if (cuda_fn<decltype(cs_cuda_nccl_version)>("nccl_version", "ncclInfo")(&version, path, sizeof path) != 0) {
      // The library's own words (where it looked), without the op prefixes of cuda_check.
      o.Set("available", false);
      o.Set("reason", std::string(cuda_fn<decltype(cs_cuda_last_error)>("last_error", "ncclInfo")()));
      return o;
    }
    o.Set("available", true);
    o.Set("version", version);
    o.Set("path", std::string(path));
  } catch (const std::exception& e) {
    o.Set("available", false);
    o.Set("reason", std::string(e.what()));
  }
  return o;
}
CS_BINDING("ncclInfo", NcclInfo);

// ncclUniqueId() → Uint8Array(128): made by rank 0 and sent to the others.
static Napi::Value NcclUniqueId(const Napi::CallbackInfo& info) {
  const char* op = "ncclUniqueId";
  auto out = Napi::Uint8Array::New(info.Env(), CS_CUDA_NCCL_UNIQUE_ID_BYTES);
  cuda_check(op, cuda_fn<decltype(cs_cuda_nccl_get_unique_id)>("nccl_get_unique_id", op)(out.Data()));
  return out;
}
CS_BINDING("ncclUniqueId", NcclUniqueId);

// ncclInitRank(device, nranks, rank, id: Uint8Array(128), timeoutSeconds) → Promise<handle>
static Napi::Value NcclInitRank(const Napi::CallbackInfo& info) {
  const char* op = "ncclInitRank";
  const int device = static_cast<int>(arg_int(info, 0, op, "device"));
  const int nranks = static_cast<int>(arg_int(info, 1, op, "nranks"));
  const int rank = static_cast<int>(arg_int(info, 2, op, "rank"));
  if (info.Length() < 4 || !info[3].IsTypedArray() || info[3].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array ||
      info[3].As<Napi::Uint8Array>().ElementLength() != CS_CUDA_NCCL_UNIQUE_ID_BYTES)
    fail(op, ": id must be a Uint8Array of ", CS_CUDA_NCCL_UNIQUE_ID_BYTES, " bytes (from ncclUniqueId on rank 0)");
  const double timeout_s = arg_number(info, 4, op, "timeoutSeconds");
  if (!(timeout_s > 0)) fail(op, ": timeoutSeconds must be positive, got ", timeout_s);
  if (nranks < 1 || rank < 0 || rank >= nranks) fail(op, ": rank ", rank, " is not a rank of a world of ", nranks);
  cuda_use_device(op, device);  // a clear error for a missing driver or device, on this thread
  auto init = cuda_fn<decltype(cs_cuda_nccl_init_rank)>("nccl_init_rank", op);
  auto id = std::make_shared<std::string>(reinterpret_cast<const char*>(info[3].As<Napi::Uint8Array>().Data()),
                                          CS_CUDA_NCCL_UNIQUE_ID_BYTES);
  auto comm = std::make_shared<void*>(nullptr);
  return queue(
      info.Env(), op,
      [=] { return init(comm.get(), device, nranks, rank, reinterpret_cast<const unsigned char*>(id->data()), timeout_s); },
      [=](Napi::Env env) -> Napi::Value {
        auto* h = new NcclHandle{*comm, device, nranks};
        return Napi::External<NcclHandle>::New(env, h, [](Napi::Env, NcclHandle* p) { delete p; });
      });
}
CS_BINDING("ncclInitRank", NcclInitRank);

// ncclAllReduce(handle, x, op): in place.
static Napi::Value NcclAllReduce(const Napi::CallbackInfo& info) {
  const char* op = "ncclAllReduce";
  NcclHandle& h = arg_handle(info, 0, op);
  Tensor x = arg_device_tensor(info, 1, h, op, "x");
  const int code = reduce_code(info, 2, op);
  auto f = cuda_fn<decltype(cs_cuda_nccl_all_reduce)>("nccl_all_reduce", op);
  void* comm = h.comm;
  return queue(info.Env(), op, [=] { return f(comm, x.data<float>(), x.data<float>(), static_cast<size_t>(x.numel()), code); });
}
CS_BINDING("ncclAllReduce", NcclAllReduce);

// ncclAllGather(handle, input [n], output [nranks·n])
static Napi::Value NcclAllGather(const Napi::CallbackInfo& info) {
  const char* op = "ncclAllGather";
  NcclHandle& h = arg_handle(info, 0, op);
  Tensor in = arg_device_tensor(info, 1, h, op, "input");
  Tensor out = arg_device_tensor(info, 2, h, op, "output");
  if (out.numel() != in.numel() * h.nranks)
    fail("nccl ", op, ": output must hold ", h.nranks, " × ", in.numel(), " floats (world size × input), got ", out.numel());
  if (overlaps(in, out)) fail("nccl ", op, ": output overlaps input; pass a separate tensor");
  auto f = cuda_fn<decltype(cs_cuda_nccl_all_gather)>("nccl_all_gather", op);
  void* comm = h.comm;
  return queue(info.Env(), op, [=] { return f(comm, in.data<float>(), out.data<float>(), static_cast<size_t>(in.numel())); });
}
CS_BINDING("ncclAllGather", NcclAllGather);

// ncclReduceScatter(handle, input [nranks·n], output [n], op)
static Napi::Value NcclReduceScatter(const Napi::CallbackInfo& info) {
  const char* op = "ncclReduceScatter";
  NcclHandle& h = arg_handle(info, 0, op);
  Tensor in = arg_device_tensor(info, 1, h, op, "input");
  Tensor out = arg_device_tensor(info, 2, h, op, "output");
  const int code = reduce_code(info, 3, op);
  if (in.numel() != out.numel() * h.nranks)
    fail("nccl ", op, ": input must hold ", h.nranks, " × ", out.numel(), " floats (world size × output), got ", in.numel());
  if (overlaps(in, out)) fail("nccl ", op, ": output overlaps input; pass a separate tensor");
  auto f = cuda_fn<decltype(cs_cuda_nccl_reduce_scatter)>("nccl_reduce_scatter", op);
  void* comm = h.comm;
  return queue(info.Env(), op, [=] { return f(comm, in.data<float>(), out.data<float>(), static_cast<size_t>(out.numel()), code); });
}
CS_BINDING("ncclReduceScatter", NcclReduceScatter);

// ncclBroadcast(handle, x, root): in place.
static Napi::Value NcclBroadcast(const Napi::CallbackInfo& info) {
  const char* op = "ncclBroadcast";
  NcclHandle& h = arg_handle(info, 0, op);
  Tensor x = arg_device_tensor(info, 1, h, op, "x");
  const int64_t root = arg_int(info, 2, op, "root");
  if (root < 0 || root >= h.nranks) fail("nccl ", op, ": root must be a rank in 0..", h.nranks - 1, ", got ", root);
  auto f = cuda_fn<decltype(cs_cuda_nccl_broadcast)>("nccl_broadcast", op);
  void* comm = h.comm;
  return queue(info.Env(), op, [=] { return f(comm, x.data<float>(), static_cast<size_t>(x.numel()), static_cast<int>(root)); });
}
CS_BINDING("ncclBroadcast", NcclBroadcast);

// ncclCommInfo(handle) → { rank, size, device, broken }
static Napi::Value NcclCommInfo(const Napi::CallbackInfo& info) {
  const char* op = "ncclCommInfo";
  NcclHandle& h = arg_handle(info, 0, op);
  int rank = 0, nranks = 0, device = 0, broken = 0;
  cuda_check(op, cuda_fn<decltype(cs_cuda_nccl_comm_info)>("nccl_comm_info", op)(h.comm, &rank, &nranks, &device, &broken));
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("rank", rank);
  o.Set("size", nranks);
  o.Set("device", device);
  o.Set("broken", broken != 0);
  return o;
}
CS_BINDING("ncclCommInfo", NcclCommInfo);

// ncclDestroy(handle) → Promise: finalises with the other ranks (bounded), then frees.
static Napi::Value NcclDestroy(const Napi::CallbackInfo& info) {
  const char* op = "ncclDestroy";
  if (info.Length() < 1 || !info[0].IsExternal()) fail("nccl ", op, ": the first argument must be an NCCL communicator handle");
  NcclHandle* h = info[0].As<Napi::External<NcclHandle>>().Data();
  if (!h || !h->comm) return queue(info.Env(), op, [] { return 0; });  // already closed
  auto f = cuda_fn<decltype(cs_cuda_nccl_destroy)>("nccl_destroy", op);
  void* comm = h->comm;
  h->comm = nullptr;
  return queue(info.Env(), op, [=] { return f(comm); });
}
CS_BINDING("ncclDestroy", NcclDestroy);

// ncclAbort(handle): ends the communicator at once, without the other ranks.
static Napi::Value NcclAbort(const Napi::CallbackInfo& info) {
  const char* op = "ncclAbort";
  if (info.Length() < 1 || !info[0].IsExternal()) fail("nccl ", op, ": the first argument must be an NCCL communicator handle");
  NcclHandle* h = info[0].As<Napi::External<NcclHandle>>().Data();
  if (h && h->comm) {
    void* comm = h->comm;
    h->comm = nullptr;
    cuda_check(op, cuda_fn<decltype(cs_cuda_nccl_abort)>("nccl_abort", op)(comm));
  }
  return info.Env().Undefined();
}
CS_BINDING("ncclAbort", NcclAbort);

}  // namespace cs::napi
