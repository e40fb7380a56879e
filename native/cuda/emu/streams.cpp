// The emulated device's streams, events, page-locked host memory and graphs.
//
// Work is ordered the way CUDA orders it, and run late enough that a missing wait shows:
// - A stream made with cudaStreamCreate* is lazy: launches, copies and memsets queue up and
//   run only when something needs them done: cudaStreamSynchronize, cudaDeviceSynchronize,
//   cudaEventSynchronize or cudaEventQuery of an event recorded on it (the work up to the
//   event), or another stream's cudaStreamWaitEvent on such an event. A kernel on another
//   stream that reads a lazy stream's copy without waiting for its event reads the memory as
//   it was (stale data, or the NaN bytes fresh memory holds); a host that rewrites a pinned
//   buffer before the copy from it has completed makes the copy carry the new bytes.
// - The null stream and a stream marked eager (set_stream_eager: the runtime's compute
//   stream) run work at once, so a kernel's fault is reported at its launch.
// - Copies follow CUDA's rules for host memory: from pageable memory the bytes are taken when
//   the call is made; to pageable memory the call returns when the copy is done (the stream's
//   earlier work first); from or to pinned memory (cudaHostAlloc) the copy runs in stream order.
// - cudaEventQuery of pending work runs it and answers cudaErrorNotReady (the device was still
//   busy when asked); the next query answers cudaSuccess.
// - Capture (cudaStreamBeginCapture … EndCapture) records the stream's launches (kernel and a
//   copy of its arguments), copies and memsets; cudaGraphLaunch replays them in order on a
//   stream. While a stream captures, cudaMalloc/cudaFree/synchronous copies fail, and a
//   synchronisation of the capturing stream or a copy from or to pageable memory invalidates
//   the capture (EndCapture then fails with the reason), as CUDA's global capture mode does.
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "cuda/emu/emu_internal.h"
#include "cuda_runtime.h"

using Work = std::function<cudaError_t()>;

struct CUgraph_st {
  std::vector<Work> nodes;
};
struct CUgraphExec_st {
  std::shared_ptr<const std::vector<Work>> nodes;
};
struct CUstream_st {
  bool eager = false;
  std::deque<std::pair<uint64_t, Work>> pending;  // (sequence number, work)
  uint64_t submitted = 0;                         // sequence number of the last work submitted
  uint64_t done = 0;                              // every work up to this number has run
  CUgraph_st* capture = nullptr;                  // while capturing
  std::string capture_error;                      // why the capture is invalid ("" if it is not)
};
struct CUevent_st {
  CUstream_st* stream = nullptr;  // where it was last recorded (null: never)
  uint64_t seq = 0;               // complete once stream->done >= seq
  bool queried_pending = false;
  // The host clock when the event was seen complete (ms): recorded on an eager stream, or at
  // the query or synchronisation that found it done. The emulated device's elapsed times are
  // the host's time running the emulated work.
  double done_ms = -1;
};

namespace cs_emu {

namespace {

std::recursive_mutex g_smu;
CUstream_st g_null_stream{true};
std::set<CUstream_st*> g_streams{&g_null_stream};
int g_capturing = 0;
std::mutex g_pinned_mu;
std::map<uintptr_t, size_t> g_pinned;  // cudaHostAlloc'ed ranges

CUstream_st* resolve(cudaStream_t s) { return s ? s : &g_null_stream; }

// Runs the stream's queued work numbered up to `upto`; returns the first error.
cudaError_t drain(CUstream_st* s, uint64_t upto) {
  cudaError_t first = cudaSuccess;
  while (!s->pending.empty() && s->pending.front().first <= upto) {
    auto [seq, work] = std::move(s->pending.front());
    s->pending.pop_front();
    cudaError_t e = work();
    s->done = seq;
    if (e != cudaSuccess && first == cudaSuccess) first = e;
  }
  if (s->pending.empty()) s->done = s->submitted;
  return first;
}

cudaError_t invalidate_capture(CUstream_st* s, cudaError_t e, const std::string& why) {
  if (s->capture_error.empty()) s->capture_error = why;
  return set_error(e, "emulated device: " + why);
}

// Runs work now (eager), queues it (lazy) or records it in the graph being captured.
cudaError_t submit(CUstream_st* s, Work work) {
  if (s->capture) {
    s->capture->nodes.push_back(std::move(work));
    return cudaSuccess;
  }
  s->submitted++;
  if (s->eager) {
    s->done = s->submitted;
    return work();
  }
  s->pending.emplace_back(s->submitted, std::move(work));
  return cudaSuccess;
}

bool event_complete(const CUevent_st* e) { return !e->stream || e->stream->done >= e->seq; }

double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void stamp_if_done(CUevent_st* e) {
  if (e->done_ms < 0 && event_complete(e)) e->done_ms = now_ms();
}

bool pinned_range(const void* p, size_t n) {
  std::lock_guard<std::mutex> lock(g_pinned_mu);
  const uintptr_t x = reinterpret_cast<uintptr_t>(p);
  auto it = g_pinned.upper_bound(x);
  if (it == g_pinned.begin()) return false;
  --it;
  return x >= it->first && x + n <= it->first + it->second;
}

}  // namespace

cudaError_t submit_launch(const char* name, dim3 grid, dim3 block, size_t smem, cudaStream_t stream, ThreadBody body,
                          void* ctx, CloneCtx clone, FreeCtx free_ctx) {
  std::lock_guard<std::recursive_mutex> lock(g_smu);
  CUstream_st* s = resolve(stream);
  auto run = [=](void* args) {
    std::string error;
    cudaError_t e = run_launch(name, grid, block, smem, body, args, &error);
    return set_error(e, error);
  };
  if (s->eager && !s->capture) {
    s->submitted++;
    s->done = s->submitted;
    return run(ctx);
  }
  // The arguments are copied now: the caller's may change before the work runs (or replays).
  std::shared_ptr<void> args(clone(ctx), free_ctx);
  return submit(s, [run, args] { return run(args.get()); });
}

namespace {
thread_local cudaStreamCaptureMode t_capture_mode = cudaStreamCaptureModeGlobal;
}

bool capture_active() {
  std::lock_guard<std::recursive_mutex> lock(g_smu);
  return g_capturing > 0;
}

bool capture_forbids_unsafe_calls() { return capture_active() && t_capture_mode != cudaStreamCaptureModeRelaxed; }

cudaError_t set_stream_eager(cudaStream_t stream, bool eager) {
  std::lock_guard<std::recursive_mutex> lock(g_smu);
  CUstream_st* s = resolve(stream);
  cudaError_t e = eager ? drain(s, s->submitted) : cudaSuccess;
  s->eager = eager;
  return e;
}

size_t pending_work(cudaStream_t stream) {
  std::lock_guard<std::recursive_mutex> lock(g_smu);
  return resolve(stream)->pending.size();
}

}  // namespace cs_emu

using namespace cs_emu;

cudaError_t cudaDeviceSynchronize() {
  std::lock_guard<std::recursive_mutex> lock(g_smu);
  if (g_capturing)
    return set_error(cudaErrorStreamCaptureUnsupported, "emulated device: cudaDeviceSynchronize while a stream captures");
  for (CUstream_st* s : g_streams) drain(s, s->submitted);
  return last_error();
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind) {
  if (capture_active())
    return set_error(cudaErrorStreamCaptureUnsupported, "emulated device: cudaMemcpy while a stream captures a graph");
  return copy_checked(dst, src, bytes, "cudaMemcpy");
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind, cudaStream_t stream) {
  std::lock_guard<std::recursive_mutex> lock(g_smu);
  CUstream_st* s = resolve(stream);
  if (cudaError_t e = check_ranges(dst, src, bytes, "cudaMemcpyAsync")) return e;
  if (bytes == 0) return cudaSuccess;
  const bool src_pageable = !is_device_memory(src) && !pinned_range(src, bytes);
  const bool dst_pageable = !is_device_memory(dst) && !pinned_range(dst, bytes);
  if (s->capture && (src_pageable || dst_pageable))
    return invalidate_capture(s, cudaErrorStreamCaptureUnsupported,
                              "cudaMemcpyAsync from or to pageable host memory while the stream captures a graph");
  if (s->eager && !s->capture) {
    s->submitted++;
    s->done = s->submitted;
    std::memmove(dst, src, bytes);
    return cudaSuccess;
  }
  if (dst_pageable && !s->capture) {
    // To pageable memory the call returns once the copy is done, after the stream's earlier work.
    cudaError_t e = drain(s, s->submitted);
    std::memmove(dst, src, bytes);
    return e;
  }
  if (src_pageable) {
    // From pageable memory the bytes are staged now: the caller may reuse its buffer at once.
    auto staged = std::make_shared<std::vector<unsigned char>>(static_cast<const unsigned char*>(src),
                                                               static_cast<const unsigned char*>(src) + bytes);
    return submit(s, [dst, staged] {
      std::memmove(dst, staged->data(), staged->size());
      return cudaSuccess;
    });
  }
  return submit(s, [dst, src, bytes] {
    std::memmove(dst, src, bytes);
    return cudaSuccess;
  });
}

cudaError_t cudaMemset(void* p, int value, size_t bytes) {
  if (capture_active())
    return set_error(cudaErrorStreamCaptureUnsupported, "emulated device: cudaMemset while a stream captures a graph");
  if (cudaError_t e = check_ranges(p, nullptr, bytes, "cudaMemset")) return e;
  std::memset(p, value, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t stream) {
  std::lock_guard<std::recursive_mutex> lock(g_smu);
  if (cudaError_t e = check_ranges(p, nullptr, bytes, "cudaMemsetAsync")) return e;
  return submit(resolve(stream), [p, value, bytes] {
    std::memset(p, value, bytes);
    return cudaSuccess;
  });
}

cudaError_t cudaStreamCreate(cudaStream_t* s) { return cudaStreamCreateWithFlags(s, 0); }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned) {
  std::lock_guard<std::recursive_mutex> lock(g_smu);
  *s = new CUstream_st();
  g_streams.insert(*s);
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  std::lock_guard<std::recursive_mutex> lock(g_smu);
  if (!s) return cudaSuccess;
  drain(s, s->submitted);  // CUDA lets queued work finish
  if (s->capture) {
    delete s->capture;
    g_capturing--;
  }
  g_streams.erase(s);
  delete s;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  std::lock_guard<std::recursive_mutex> lock(g_smu);
  CUstream_st* s = resolve(stream);
  if (s->capture)
    return invalidate_capture(s, cudaErrorStreamCaptureUnsupported, "cudaStreamSynchronize of a capturing stream");
  drain(s, s->submitted);
  return last_error();
}
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t e, unsigned) {
  std::lock_guard<std::recursive_mutex> lock(g_smu);
  CUstream_st* s = resolve(stream);
  if (!e) return set_error(cudaErrorInvalidResourceHandle, "emulated device: cudaStreamWaitEvent of a null event");
  if (!e->stream || event_complete(e)) return cudaSuccess;
  if (s->capture)
    return invalidate_capture(s, cudaErrorStreamCaptureUnsupported,
                              "cudaStreamWaitEvent on a capturing stream for work outside the capture (wait before "
                              "capturing or launching the graph)");
  CUstream_st* other = e->stream;
  const uint64_t seq = e->seq;  // the event may be recorded again before this wait runs
  if (s->eager) return drain(other, seq);
  return submit(s, [other, seq] { return drain(other, seq); });
}

cudaError_t cudaEventCreate(cudaEvent_t* e) { return cudaEventCreateWithFlags(e, 0); }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned) {
  *e = new CUevent_st();
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete e;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t stream) {
  std::lock_guard<std::recursive_mutex> lock(g_smu);
  CUstream_st* s = resolve(stream);
  if (!e) return set_error(cudaErrorInvalidResourceHandle, "emulated device: cudaEventRecord of a null event");
  if (s->capture)
    return invalidate_capture(s, cudaErrorStreamCaptureUnsupported,
                              "cudaEventRecord on a capturing stream (not emulated: record after the graph launch)");
  e->stream = s;
  e->seq = s->submitted;
  e->queried_pending = false;
  e->done_ms = -1;
  stamp_if_done(e);
  return cudaSuccess;
}
cudaError_t cudaEventQuery(cudaEvent_t e) {
  std::lock_guard<std::recursive_mutex> lock(g_smu);
  if (!e) return set_error(cudaErrorInvalidResourceHandle, "emulated device: cudaEventQuery of a null event");
  if (event_complete(e)) {
    stamp_if_done(e);
    return cudaSuccess;
  }
  // Still pending when asked: the device goes on with it meanwhile.
  cudaError_t err = drain(e->stream, e->seq);
  stamp_if_done(e);
  return err != cudaSuccess ? err : cudaErrorNotReady;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) {
  std::lock_guard<std::recursive_mutex> lock(g_smu);
  if (!e) return set_error(cudaErrorInvalidResourceHandle, "emulated device: cudaEventSynchronize of a null event");
  if (e->stream && e->stream->capture)
    return invalidate_capture(e->stream, cudaErrorStreamCaptureUnsupported, "cudaEventSynchronize while capturing");
  if (!e->stream) return cudaSuccess;
  cudaError_t err = drain(e->stream, e->seq);
  stamp_if_done(e);
  return err;
}
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t a, cudaEvent_t b) {
  std::lock_guard<std::recursive_mutex> lock(g_smu);
  *ms = 0.0f;
  if (!a || !b || !a->stream || !b->stream)
    return set_error(cudaErrorInvalidResourceHandle, "emulated device: cudaEventElapsedTime of an event never recorded");
  stamp_if_done(a);
  stamp_if_done(b);
  if (a->done_ms < 0 || b->done_ms < 0) return cudaErrorNotReady;
  *ms = static_cast<float>(b->done_ms - a->done_ms);
  return cudaSuccess;
}

cudaError_t cudaHostAlloc(void** p, size_t bytes, unsigned) {
  *p = nullptr;
  if (capture_forbids_unsafe_calls())
    return set_error(cudaErrorStreamCaptureUnsupported, "emulated device: cudaHostAlloc while a stream captures");
  void* q = nullptr;
  if (posix_memalign(&q, 4096, bytes ? bytes : 1) != 0)
    return set_error(cudaErrorMemoryAllocation, "emulated device: cudaHostAlloc: out of host memory");
  std::memset(q, 0xff, bytes);
  std::lock_guard<std::mutex> lock(g_pinned_mu);
  g_pinned[reinterpret_cast<uintptr_t>(q)] = bytes ? bytes : 1;
  *p = q;
  return cudaSuccess;
}
cudaError_t cudaFreeHost(void* p) {
  if (!p) return cudaSuccess;
  if (capture_forbids_unsafe_calls())
    return set_error(cudaErrorStreamCaptureUnsupported, "emulated device: cudaFreeHost while a stream captures a graph");
  {
    std::lock_guard<std::mutex> lock(g_pinned_mu);
    auto it = g_pinned.find(reinterpret_cast<uintptr_t>(p));
    if (it == g_pinned.end())
      return set_error(cudaErrorInvalidValue, "emulated device: cudaFreeHost of a pointer cudaHostAlloc did not return");
    g_pinned.erase(it);
  }
  std::free(p);
  return cudaSuccess;
}

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode) {
  std::lock_guard<std::recursive_mutex> lock(g_smu);
  if (!stream) return set_error(cudaErrorStreamCaptureUnsupported, "emulated device: the null stream cannot capture");
  if (stream->capture) return set_error(cudaErrorIllegalState, "emulated device: the stream captures already");
  stream->capture = new CUgraph_st();
  stream->capture_error.clear();
  g_capturing++;
  return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph) {
  std::lock_guard<std::recursive_mutex> lock(g_smu);
  *graph = nullptr;
  if (!stream || !stream->capture)
    return set_error(cudaErrorStreamCaptureUnmatched, "emulated device: cudaStreamEndCapture of a stream that does not capture");
  CUgraph_st* g = stream->capture;
  stream->capture = nullptr;
  g_capturing--;
  if (!stream->capture_error.empty()) {
    delete g;
    return set_error(cudaErrorStreamCaptureInvalidated,
                     "emulated device: the capture was invalidated: " + stream->capture_error);
  }
  *graph = g;
  return cudaSuccess;
}
cudaError_t cudaThreadExchangeStreamCaptureMode(cudaStreamCaptureMode* mode) {
  std::swap(*mode, t_capture_mode);
  return cudaSuccess;
}
cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus* status) {
  std::lock_guard<std::recursive_mutex> lock(g_smu);
  CUstream_st* s = resolve(stream);
  *status = !s->capture ? cudaStreamCaptureStatusNone
            : s->capture_error.empty() ? cudaStreamCaptureStatusActive
                                       : cudaStreamCaptureStatusInvalidated;
  return cudaSuccess;
}
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long) {
  if (!graph) return set_error(cudaErrorInvalidValue, "emulated device: cudaGraphInstantiate of a null graph");
  *exec = new CUgraphExec_st{std::make_shared<const std::vector<Work>>(graph->nodes)};
  return cudaSuccess;
}
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
  std::lock_guard<std::recursive_mutex> lock(g_smu);
  if (!exec) return set_error(cudaErrorInvalidValue, "emulated device: cudaGraphLaunch of a null graph");
  CUstream_st* s = resolve(stream);
  if (s->capture)
    return invalidate_capture(s, cudaErrorStreamCaptureUnsupported, "cudaGraphLaunch on a capturing stream (not emulated)");
  auto nodes = exec->nodes;
  return submit(s, [nodes] {
    cudaError_t first = cudaSuccess;
    for (const Work& w : *nodes) {
      cudaError_t e = w();
      if (e != cudaSuccess && first == cudaSuccess) first = e;
    }
    return first;
  });
}
cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  delete graph;
  return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  delete exec;  // a launch still queued keeps its nodes alive
  return cudaSuccess;
}
