// The CUDA runtime's own state seen from JavaScript: the caching allocator's accounting
// (memory stats, peak reset); page-locked host buffers, events and the copy stream, for
// uploads that overlap a step and reads that wait for one step only.
#include <napi.h>

#include <string>

#include "core/error.h"
#include "cuda/abi.h"
#include "cuda_dispatch/cuda_backend.h"
#include "napi/args.h"
#include "napi/registry.h"

namespace cs::napi {

namespace {

// The optional device argument ('cuda' or 'cuda:N'; absent means cuda:0), as an index.
int cuda_index_arg(const Napi::CallbackInfo& info, size_t i, const char* op) {
  if (info.Length() <= i || info[i].IsUndefined() || info[i].IsNull()) return 0;
  cs::Device d = arg_device(info, i, op, "device");
  if (d.is_cpu()) fail(op, ": device must be a CUDA device ('cuda' or 'cuda:N'), got 'cpu'");
  return d.index;
}

// 'compute' → 0, 'copy' → 1.
int stream_arg(const Napi::CallbackInfo& info, size_t i, const char* op) {
  const std::string s = arg_string(info, i, op, "stream");
  if (s == "compute") return 0;
  if (s == "copy") return 1;
  fail(op, ": stream must be 'compute' or 'copy', got '", s, "'");
}

// An event handle held by JavaScript; destroyed when collected.
struct EventHandle {
  void* event = nullptr;
  int device = 0;
};

EventHandle& event_arg(const Napi::CallbackInfo& info, size_t i, const char* op) {
  if (info.Length() <= i || !info[i].IsExternal()) fail(op, ": argument ", i + 1, " must be an event from cudaEventCreate");
  EventHandle* h = info[i].As<Napi::External<EventHandle>>().Data();
  if (!h || !h->event) fail(op, ": the event was destroyed");
  return *h;
}

// The bytes of an ArrayBuffer or a typed array view.
void bytes_arg(const Napi::CallbackInfo& info, size_t i, const char* op, const char* name, void** data, size_t* n) {
  if (info.Length() > i && info[i].IsTypedArray()) {
    Napi::TypedArray t = info[i].As<Napi::TypedArray>();
    *data = static_cast<char*>(t.ArrayBuffer().Data()) + t.ByteOffset();
    *n = t.ByteLength();
    return;
  }
  if (info.Length() > i && info[i].IsArrayBuffer()) {
    Napi::ArrayBuffer b = info[i].As<Napi::ArrayBuffer>();
    *data = b.Data();
    *n = b.ByteLength();
    return;
  }
  fail(op, ": ", name, " must be an ArrayBuffer or a typed array");
}

}  // namespace

// cudaPinnedBuffer(bytes, device?) → an ArrayBuffer in page-locked host memory (freed when
// collected). Copies from it run asynchronously: rewrite it only after the copy's event.
static Napi::Value CudaPinnedBuffer(const Napi::CallbackInfo& info) {
  const char* op = "cudaPinnedBuffer";
  const int64_t bytes = arg_int(info, 0, op, "bytes");
  if (bytes < 0) fail(op, ": bytes must be >= 0, got ", bytes);
  const int device = cuda_index_arg(info, 1, op);
  cuda_use_device(op, device);
  void* p = nullptr;
  cuda_check(op, cuda_fn<decltype(cs_cuda_host_alloc)>("host_alloc", op)(&p, static_cast<size_t>(bytes), device));
  auto* dev = new int(device);
  return Napi::ArrayBuffer::New(
      info.Env(), p, static_cast<size_t>(bytes),
      [](Napi::Env, void* data, int* d) {
        auto f = reinterpret_cast<decltype(&cs_cuda_host_free)>(cuda_symbol("cudaPinnedBuffer", "host_free"));
        f(data, *d);
        delete d;
      },
      dev);
}
CS_BINDING("cudaPinnedBuffer", CudaPinnedBuffer);

static Napi::Value CudaEventCreate(const Napi::CallbackInfo& info) {
  const char* op = "cudaEventCreate";
  const int device = cuda_index_arg(info, 0, op);
  cuda_use_device(op, device);
  const bool timed = info.Length() > 1 && info[1].IsBoolean() && info[1].As<Napi::Boolean>().Value();
  auto* h = new EventHandle{nullptr, device};
  const int rc = timed ? cuda_fn<decltype(cs_cuda_event_create_timed)>("event_create_timed", op)(&h->event, device)
                       : cuda_fn<decltype(cs_cuda_event_create)>("event_create", op)(&h->event, device);
  if (rc != 0) {
    delete h;
    cuda_check(op, 1);
  }
  return Napi::External<EventHandle>::New(info.Env(), h, [](Napi::Env, EventHandle* e) {
    auto f = reinterpret_cast<decltype(&cs_cuda_event_destroy)>(cuda_symbol("cudaEventCreate", "event_destroy"));
    f(e->event, e->device);
    delete e;
  });
}
CS_BINDING("cudaEventCreate", CudaEventCreate);

// cudaEventElapsedMs(start, end) → milliseconds between two timed events (waits for end).
static Napi::Value CudaEventElapsedMs(const Napi::CallbackInfo& info) {
  const char* op = "cudaEventElapsedMs";
  EventHandle& a = event_arg(info, 0, op);
  EventHandle& b = event_arg(info, 1, op);
  if (a.device != b.device) fail(op, ": the events are on cuda:", a.device, " and cuda:", b.device);
  cuda_use_device(op, a.device);
  float ms = 0;
  cuda_check(op, cuda_fn<decltype(cs_cuda_event_elapsed_ms)>("event_elapsed_ms", op)(a.event, b.event, &ms, a.device));
  return Napi::Number::New(info.Env(), ms);
}
CS_BINDING("cudaEventElapsedMs", CudaEventElapsedMs);

// cudaEventRecord(event, stream): marks the point after the work queued on 'compute' or 'copy' so far.
static Napi::Value CudaEventRecord(const Napi::CallbackInfo& info) {
  const char* op = "cudaEventRecord";
  EventHandle& e = event_arg(info, 0, op);
  const int stream = stream_arg(info, 1, op);
  cuda_use_device(op, e.device);
  cuda_check(op, cuda_fn<decltype(cs_cuda_event_record)>("event_record", op)(e.event, stream, e.device));
  return info.Env().Undefined();
}
CS_BINDING("cudaEventRecord", CudaEventRecord);

// cudaEventQuery(event) → whether the work before it has completed (never waits).
static Napi::Value CudaEventQuery(const Napi::CallbackInfo& info) {
  const char* op = "cudaEventQuery";
  EventHandle& e = event_arg(info, 0, op);
  cuda_use_device(op, e.device);
  int done = 0;
  cuda_check(op, cuda_fn<decltype(cs_cuda_event_query)>("event_query", op)(e.event, &done, e.device));
  return Napi::Boolean::New(info.Env(), done != 0);
}
CS_BINDING("cudaEventQuery", CudaEventQuery);

// cudaEventSynchronize(event): waits for the work before it (and nothing after).
static Napi::Value CudaEventSynchronize(const Napi::CallbackInfo& info) {
  const char* op = "cudaEventSynchronize";
  EventHandle& e = event_arg(info, 0, op);
  cuda_use_device(op, e.device);
  cuda_check(op, cuda_fn<decltype(cs_cuda_event_synchronize)>("event_synchronize", op)(e.event, e.device));
  return info.Env().Undefined();
}
CS_BINDING("cudaEventSynchronize", CudaEventSynchronize);

// cudaStreamWaitEvent(stream, event): later work on `stream` starts after the event's work.
static Napi::Value CudaStreamWaitEvent(const Napi::CallbackInfo& info) {
  const char* op = "cudaStreamWaitEvent";
  const int stream = stream_arg(info, 0, op);
  EventHandle& e = event_arg(info, 1, op);
  cuda_use_device(op, e.device);
  cuda_check(op, cuda_fn<decltype(cs_cuda_stream_wait_event)>("stream_wait_event", op)(stream, e.event, e.device));
  return info.Env().Undefined();
}
CS_BINDING("cudaStreamWaitEvent", CudaStreamWaitEvent);

// cudaUploadAsync(dst, src, stream): queues a copy of src's bytes (pinned: read when the copy
// runs) into the CUDA tensor dst, which must have exactly as many bytes.
static Napi::Value CudaUploadAsync(const Napi::CallbackInfo& info) {
  const char* op = "cudaUploadAsync";
  Tensor& dst = arg_tensor(info, 0, op, "dst");
  void* src = nullptr;
  size_t n = 0;
  bytes_arg(info, 1, op, "src", &src, &n);
  const int stream = stream_arg(info, 2, op);
  if (dst.device().is_cpu()) fail(op, ": dst must be a CUDA tensor, got a CPU one");
  if (n != dst.nbytes()) fail(op, ": src has ", n, " bytes but dst ", shape_str(dst.shape), " holds ", dst.nbytes());
  cuda_use_device(op, dst.device().index);
  cuda_check(op, cuda_fn<decltype(cs_cuda_memcpy_h2d_async)>("memcpy_h2d_async", op)(dst.raw(), src, n, stream,
                                                                                     dst.device().index));
  return info.Env().Undefined();
}
CS_BINDING("cudaUploadAsync", CudaUploadAsync);

// cudaReadAfter(event, tensor) → an ArrayBuffer with the CUDA tensor's bytes, read once the
// event's work has completed (no stream is waited for: later work may still run).
static Napi::Value CudaReadAfter(const Napi::CallbackInfo& info) {
  const char* op = "cudaReadAfter";
  EventHandle& e = event_arg(info, 0, op);
  Tensor& src = arg_tensor(info, 1, op, "tensor");
  if (src.device().is_cpu() || src.device().index != e.device)
    fail(op, ": the tensor must be on the event's device cuda:", e.device);
  cuda_use_device(op, e.device);
  Napi::ArrayBuffer out = Napi::ArrayBuffer::New(info.Env(), src.nbytes());
  cuda_check(op, cuda_fn<decltype(cs_cuda_memcpy_d2h_after)>("memcpy_d2h_after", op)(out.Data(), src.raw(), src.nbytes(),
                                                                                     e.event, e.device));
  return out;
}
CS_BINDING("cudaReadAfter", CudaReadAfter);

// cudaMemoryStats(device?) → {allocatedBytes, cachedBytes, peakAllocatedBytes, driverAllocs, driverFrees, allocs}
static Napi::Value CudaMemoryStats(const Napi::CallbackInfo& info) {
  const char* op = "cudaMemoryStats";
  const int device = cuda_index_arg(info, 0, op);
  cuda_use_device(op, device);
  CsCudaMemoryStats s{};
  cuda_check(op, cuda_fn<decltype(cs_cuda_memory_stats)>("memory_stats", op)(device, &s));
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("allocatedBytes", static_cast<double>(s.allocated_bytes));
  o.Set("cachedBytes", static_cast<double>(s.cached_bytes));
  o.Set("peakAllocatedBytes", static_cast<double>(s.peak_allocated_bytes));
  o.Set("driverAllocs", static_cast<double>(s.driver_allocs));
  o.Set("driverFrees", static_cast<double>(s.driver_frees));
  o.Set("allocs", static_cast<double>(s.allocs));
  o.Set("graphReservedBytes", static_cast<double>(s.graph_reserved_bytes));
  return o;
}
CS_BINDING("cudaMemoryStats", CudaMemoryStats);

// cudaWaitStats(device?) → {streamSyncs, eventWaits}: how often the host has waited for the whole
// compute stream, and for a single event.
static Napi::Value CudaWaitStats(const Napi::CallbackInfo& info) {
  const char* op = "cudaWaitStats";
  const int device = cuda_index_arg(info, 0, op);
  cuda_use_device(op, device);
  uint64_t streams = 0, events = 0;
  cuda_check(op, cuda_fn<decltype(cs_cuda_wait_stats)>("wait_stats", op)(device, &streams, &events));
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("streamSyncs", static_cast<double>(streams));
  o.Set("eventWaits", static_cast<double>(events));
  return o;
}
CS_BINDING("cudaWaitStats", CudaWaitStats);

// cudaEmuComputeStream(lazy: boolean | null, device?) → works queued on the compute stream and
// not yet run (emulated device only; lazy true/false switches the stream, null keeps it).
static Napi::Value CudaEmuComputeStream(const Napi::CallbackInfo& info) {
  const char* op = "cudaEmuComputeStream";
  const int lazy = info.Length() < 1 || info[0].IsNull() || info[0].IsUndefined() ? -1 : arg_bool(info, 0, op, "lazy") ? 1 : 0;
  const int device = cuda_index_arg(info, 1, op);
  cuda_use_device(op, device);
  uint64_t pending = 0;
  cuda_check(op, cuda_fn<decltype(cs_cuda_emu_compute_stream)>("emu_compute_stream", op)(device, lazy, &pending));
  return Napi::Number::New(info.Env(), static_cast<double>(pending));
}
CS_BINDING("cudaEmuComputeStream", CudaEmuComputeStream);

// cudaResetPeakMemory(device?): the peak starts again from the bytes allocated now.
static Napi::Value CudaResetPeakMemory(const Napi::CallbackInfo& info) {
  const char* op = "cudaResetPeakMemory";
  const int device = cuda_index_arg(info, 0, op);
  cuda_use_device(op, device);
  cuda_check(op, cuda_fn<decltype(cs_cuda_reset_peak_memory)>("reset_peak_memory", op)(device));
  return info.Env().Undefined();
}
CS_BINDING("cudaResetPeakMemory", CudaResetPeakMemory);

}  // namespace cs::napi
