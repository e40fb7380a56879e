// JS entry points of the MPI communicator. Collectives return Promises: when MPI
// grants MPI_THREAD_SERIALIZED they run on a worker thread, so the event loop stays
// free; otherwise they run on the JS thread (the only one MPI allows then).
// Without mpi.h at build time every entry point says so.
#include <napi.h>

#include <functional>
#include <string>
#include <vector>

#include "core/error.h"
#include "napi/registry.h"

#ifdef CLIPSCALE_WITH_MPI
#include "dist/mpi_communicator.h"
#endif

namespace cs::napi {

[[maybe_unused]] static const char* kNotBuilt = "MPI support not built: mpi.h was not found at build time (install libopenmpi-dev and rebuild)";

static Napi::Value MpiBuildInfo(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
#ifdef CLIPSCALE_WITH_MPI
  o.Set("built", true);
#else
  o.Set("built", false);
  o.Set("reason", kNotBuilt);
#endif
  return o;
}
CS_BINDING("mpiBuildInfo", MpiBuildInfo);

#ifdef CLIPSCALE_WITH_MPI

namespace {

struct FloatArg {
  float* data;
  int64_t length;
  Napi::Object holder;
};

FloatArg arg_floats(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name) {
  Napi::Value v = i < info.Length() ? info[i] : info.Env().Undefined();
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    fail("mpi ", op, ": ", name, " must be a Float32Array");
  auto a = v.As<Napi::Float32Array>();
  return {a.Data(), static_cast<int64_t>(a.ElementLength()), a};
}

dist::MpiReduce arg_reduce(const Napi::CallbackInfo& info, size_t i, const char* op) {
  std::string s = i < info.Length() && info[i].IsString() ? info[i].As<Napi::String>().Utf8Value() : "";
  if (s == "sum") return dist::MpiReduce::Sum;
  if (s == "mean") return dist::MpiReduce::Mean;
  fail("mpi ", op, ": op must be 'sum' or 'mean'");
}

bool overlaps(const FloatArg& a, const FloatArg& b) {
  return a.data < b.data + b.length && b.data < a.data + a.length;
}

bool g_serialized = false;

// Runs `work` on a libuv worker thread and settles a Promise; the arrays stay referenced until then.
class MpiWork : public Napi::AsyncWorker {
 public:
  MpiWork(Napi::Env env, std::function<void()> work, const std::vector<Napi::Object>& keep)
      : Napi::AsyncWorker(env, "clipscale:mpi"), deferred_(Napi::Promise::Deferred::New(env)), work_(std::move(work)) {
    for (const auto& o : keep) keep_.push_back(Napi::Persistent(o));
  }
  Napi::Promise promise() { return deferred_.Promise(); }
  void Execute() override {
    try {
      work_();
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override { deferred_.Resolve(Env().Undefined()); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::function<void()> work_;
  std::vector<Napi::ObjectReference> keep_;
};

Napi::Value run(Napi::Env env, std::function<void()> work, const std::vector<Napi::Object>& keep) {
  if (g_serialized) {
    auto* w = new MpiWork(env, std::move(work), keep);
    Napi::Promise p = w->promise();
    w->Queue();
    return p;
  }
  auto d = Napi::Promise::Deferred::New(env);
  try {
    work();
    d.Resolve(env.Undefined());
  } catch (const std::exception& e) {
    d.Reject(Napi::Error::New(env, e.what()).Value());
  }
  return d.Promise();
}

}  // namespace

static Napi::Value MpiStart(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  dist::MpiWorld w = dist::mpi_start();
  g_serialized = w.serialized;
  Napi::Object o = Napi::Object::New(env);
  o.Set("rank", w.rank);
  o.Set("size", w.size);
  o.Set("threadLevel", w.thread_level);
  o.Set("serialized", w.serialized);
  o.Set("library", w.library);
  return o;
}
CS_BINDING("mpiStart", MpiStart);

static Napi::Value MpiFinish(const Napi::CallbackInfo& info) {
  dist::mpi_finish();
  return info.Env().Undefined();
}
CS_BINDING("mpiFinish", MpiFinish);

static Napi::Value MpiAbort(const Napi::CallbackInfo& info) {
  int code = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 1;
  dist::mpi_abort(code);
  return info.Env().Undefined();
}
CS_BINDING("mpiAbort", MpiAbort);

static Napi::Value MpiAllReduce(const Napi::CallbackInfo& info) {
  FloatArg x = arg_floats(info, 0, "allReduce", "x");
  dist::MpiReduce op = arg_reduce(info, 1, "allReduce");
  return run(info.Env(), [x, op] { dist::mpi_all_reduce(x.data, x.length, op); }, {x.holder});
}
CS_BINDING("mpiAllReduce", MpiAllReduce);

static Napi::Value MpiAllGather(const Napi::CallbackInfo& info) {
  FloatArg in = arg_floats(info, 0, "allGather", "input");
  FloatArg out = arg_floats(info, 1, "allGather", "output");
  if (overlaps(in, out)) fail("mpi allGather: output overlaps input; pass a separate array");
  return run(info.Env(), [in, out] { dist::mpi_all_gather(in.data, in.length, out.data, out.length); }, {in.holder, out.holder});
}
CS_BINDING("mpiAllGather", MpiAllGather);

static Napi::Value MpiReduceScatter(const Napi::CallbackInfo& info) {
  FloatArg in = arg_floats(info, 0, "reduceScatter", "input");
  FloatArg out = arg_floats(info, 1, "reduceScatter", "output");
  dist::MpiReduce op = arg_reduce(info, 2, "reduceScatter");
  if (overlaps(in, out)) fail("mpi reduceScatter: output overlaps input; pass a separate array");
  return run(info.Env(), [in, out, op] { dist::mpi_reduce_scatter(in.data, in.length, out.data, out.length, op); }, {in.holder, out.holder});
}
CS_BINDING("mpiReduceScatter", MpiReduceScatter);

static Napi::Value MpiBroadcast(const Napi::CallbackInfo& info) {
  FloatArg x = arg_floats(info, 0, "broadcast", "x");
  if (info.Length() < 2 || !info[1].IsNumber()) fail("mpi broadcast: root must be a number");
  int root = info[1].As<Napi::Number>().Int32Value();
  return run(info.Env(), [x, root] { dist::mpi_broadcast(x.data, x.length, root); }, {x.holder});
}
CS_BINDING("mpiBroadcast", MpiBroadcast);

static Napi::Value MpiBarrier(const Napi::CallbackInfo& info) {
  return run(info.Env(), [] { dist::mpi_barrier(); }, {});
}
CS_BINDING("mpiBarrier", MpiBarrier);

#else  // no MPI in this build

static Napi::Value MpiNotBuilt(const Napi::CallbackInfo&) { fail(kNotBuilt); }
CS_BINDING("mpiStart", MpiNotBuilt);

#endif

}  // namespace cs::napi
