// Devices, streams, the caching allocator, copies, synchronisation and the error
// message of the C ABI (abi.h).
#include <cuda_runtime.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "cuda/abi.h"
#include "cuda/runtime.h"

namespace cs_cuda {

namespace {

thread_local std::string t_last_error;
thread_local int t_device = 0;

constexpr int kMaxDevices = 64;

// One device's state: its stream, its kernel-error slot and its block cache.
struct DeviceState {
  std::once_flag once;
  int init_rc = 0;
  std::string init_error;
  cudaStream_t stream = nullptr;       // the compute stream: every op
  cudaStream_t copy_stream = nullptr;  // uploads that overlap the compute stream's work
  KernelError* error_slot = nullptr;
  std::mutex mu;
  std::unordered_map<void*, size_t> live;                   // pointer → size class
  std::unordered_map<size_t, std::vector<void*>> free_blocks;  // size class → cached blocks
  size_t cached_bytes = 0, live_bytes = 0;
  // Accounting (cs_cuda_memory_stats): the most bytes live at once since the last reset,
  // and the driver calls the allocator made (a training step after the first should make none).
  size_t peak_live_bytes = 0;
  uint64_t driver_allocs = 0, driver_frees = 0, allocs = 0;
  // Graph capture of the compute stream (cs_cuda_graph_*): while it captures, blocks come from
  // the graphs' pool, else the cache, else the driver (in relaxed capture mode), and blocks
  // freed go to the graphs' pool: the replays write them, so they stay out of the cache while
  // a graph lives. Graphs share the pool: they replay one after another on the compute
  // stream, and nothing in the pool outlives the graph that uses it (a block allocated in a
  // capture and still live at its end makes the capture fail).
  bool capturing = false;
  std::unordered_map<size_t, std::vector<void*>> graph_pool;
  std::unordered_set<void*> capture_taken;
  size_t reserved_bytes = 0;  // in graph_pool
  int graphs_alive = 0;
  std::vector<void*> host_frees_pending;  // pinned buffers freed during a capture
  // Blocks live when a graph was captured (it may write them at every replay): freeing one
  // while graphs exist makes them unsafe to replay (graph_stale), as its memory may be reused.
  std::unordered_set<void*> graph_live;
  bool graph_stale = false;
  // Host waits (cs_cuda_wait_stats): for the whole compute stream, and for one event.
  std::atomic<uint64_t> stream_syncs{0}, event_waits{0};
};

DeviceState g_devices[kMaxDevices];

// Size classes: 512 B steps below 1 MiB, 2 MiB steps above, so the same shapes
// allocated batch after batch find their blocks again.
size_t size_class(size_t bytes) {
  if (bytes == 0) bytes = 1;
#if defined(CLIPSCALE_EMULATED_DEVICE)
  // Exact sizes on the emulated device, so each block ends at its guard page.
  return (bytes + 15) & ~static_cast<size_t>(15);
#endif
  if (bytes < (1u << 20)) return (bytes + 511) & ~static_cast<size_t>(511);
  const size_t big = 2u << 20;
  return (bytes + big - 1) / big * big;
}

std::string mib(size_t bytes) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
}

// Switches the calling thread to `device` for the scope, restoring the previous one.
class DeviceScope {
 public:
  explicit DeviceScope(int device) {
    cudaGetDevice(&prev_);
    if (prev_ != device) cudaSetDevice(device);
    restore_ = prev_ != device;
  }
  ~DeviceScope() {
    if (restore_) cudaSetDevice(prev_);
  }

 private:
  int prev_ = 0;
  bool restore_ = false;
};

int check_device_index(int device, const char* op) {
  if (device < 0 || device >= kMaxDevices) return fail("%s: device index %d is out of range", op, device);
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return fail("%s: no usable CUDA driver or device (%s)", op, cudaGetErrorString(e));
  }
  if (device >= n) return fail("%s: cuda:%d does not exist (%d CUDA device%s found)", op, device, n, n == 1 ? "" : "s");
  return 0;
}

int init_device(int device) {
  if (int rc = check_device_index(device, "init")) return rc;
  DeviceState& d = g_devices[device];
  std::call_once(d.once, [&] {
    DeviceScope scope(device);
    cudaError_t e = cudaStreamCreateWithFlags(&d.stream, cudaStreamNonBlocking);
    if (e == cudaSuccess) e = cudaStreamCreateWithFlags(&d.copy_stream, cudaStreamNonBlocking);
#if defined(CLIPSCALE_EMULATED_DEVICE)
    // Kernels on the compute stream run at launch (their faults name the op); the copy
    // stream stays lazy, so work that reads an upload without waiting for it is caught.
    // CLIPSCALE_EMU_LAZY_COMPUTE=1 makes the compute stream lazy too (work runs when waited
    // for, like a busy GPU's): host code that touches device memory out of stream order shows.
    const char* lazy = std::getenv("CLIPSCALE_EMU_LAZY_COMPUTE");
    if (e == cudaSuccess && !(lazy && std::string(lazy) == "1")) e = cs_emu::set_stream_eager(d.stream, true);
#endif
    if (e == cudaSuccess) e = cudaMalloc(&d.error_slot, sizeof(KernelError));
    if (e == cudaSuccess) e = cudaMemset(d.error_slot, 0, sizeof(KernelError));
    if (e == cudaSuccess) e = cudaDeviceSynchronize();
    if (e != cudaSuccess) {
      cudaGetLastError();
      d.init_rc = 1;
      d.init_error = std::string("init: cannot initialise cuda:") + std::to_string(device) + ": " + cudaGetErrorString(e);
    }
  });
  if (d.init_rc) return fail("%s", d.init_error.c_str());
  return 0;
}

// Returns the cached blocks of a device to the driver (its lock held).
void release_cache_locked(DeviceState& d) {
  for (auto& [cls, blocks] : d.free_blocks)
    for (void* p : blocks) {
      cudaFree(p);
      d.driver_frees++;
    }
  d.free_blocks.clear();
  d.cached_bytes = 0;
}

std::string kernel_error_message(const KernelError& e) {
  char buf[512];
  switch (e.code) {
    case kEmbeddingForwardId:
    case kEmbeddingBackwardId:
      std::snprintf(buf, sizeof buf,
                    "%s: ids (flat index %lld) = %lld is out of range for a table of %lld rows (found by the GPU "
                    "kernel; the op's output is not valid)",
                    e.code == kEmbeddingForwardId ? "embeddingForward" : "embeddingBackward", e.a, e.b, e.c);
      break;
    case kGatherRowsIndex:
    case kGatherRowsBackwardIndex:
      std::snprintf(buf, sizeof buf,
                    "%s: index[%lld] = %lld is out of range for %lld rows (found by the GPU kernel; the op's "
                    "output is not valid)",
                    e.code == kGatherRowsIndex ? "gatherRows" : "gatherRowsBackward", e.a, e.b, e.c);
      break;
    case kLogitScaleOverflow: {
      float t;
      int32_t bits = static_cast<int32_t>(e.a);
      std::memcpy(&t, &bits, 4);
      std::snprintf(buf, sizeof buf, "contrastiveLoss: exp(logitScale) overflows (logitScale = %g)", t);
      break;
    }
    default:
      std::snprintf(buf, sizeof buf, "a GPU kernel reported error code %d", e.code);
  }
  return buf;
}

// Waits for the device's stream, then reports (and clears) any error a kernel recorded.
int sync_and_report(int device, const char* op) {
  DeviceState& d = g_devices[device];
  DeviceScope scope(device);
  d.stream_syncs++;
  if (int rc = check(cudaStreamSynchronize(d.stream), op, "waiting for the GPU")) return rc;
  KernelError e{};
  if (int rc = check(cudaMemcpy(&e, d.error_slot, sizeof e, cudaMemcpyDeviceToHost), op, "reading the kernel error slot"))
    return rc;
  if (e.code != 0) {
    cudaMemset(d.error_slot, 0, sizeof(KernelError));
    return fail("%s", kernel_error_message(e).c_str());
  }
  return 0;
}

}  // namespace

int fail(const char* fmt, ...) {
  char buf[2048];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  t_last_error = buf;
  return 1;
}

int check(cudaError_t e, const char* op, const char* what) {
  if (e == cudaSuccess) return 0;
  cudaGetLastError();  // clear a sticky launch error so the next call starts clean
  return fail("%s: %s: %s (%s)", op, what, cudaGetErrorString(e), cudaGetErrorName(e));
}

int launched(const char* op) {
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess) return 0;
  return fail("%s: kernel launch failed: %s (%s)", op, cudaGetErrorString(e), cudaGetErrorName(e));
}

int current_device() { return t_device; }

namespace {
std::atomic<int> g_precision{static_cast<int>(Precision::BF16)};
}
Precision precision() { return static_cast<Precision>(g_precision.load(std::memory_order_relaxed)); }

cudaStream_t stream() { return g_devices[t_device].stream; }

KernelError* kernel_error_slot() { return g_devices[t_device].error_slot; }

Scratch::~Scratch() {
  if (ptr_) cs_cuda_free(ptr_, device_);
}

int Scratch::allocate(size_t bytes, const char* op) {
  device_ = t_device;
  if (cs_cuda_malloc(&ptr_, bytes, device_) != 0) {
    std::string why = t_last_error;
    ptr_ = nullptr;
    return fail("%s: scratch memory: %s", op, why.c_str());
  }
  return 0;
}

}  // namespace cs_cuda

using namespace cs_cuda;

extern "C" {

int cs_cuda_abi_version(void) { return CS_CUDA_ABI_VERSION; }

int cs_cuda_set_precision(int p) {
  if (p < 0 || p > 2) return fail("setPrecision: precision must be 0 (fp32), 1 (bf16) or 2 (fp16), got %d", p);
  g_precision.store(p, std::memory_order_relaxed);
  return 0;
}
int cs_cuda_get_precision(void) { return g_precision.load(std::memory_order_relaxed); }

const char* cs_cuda_last_error(void) { return t_last_error.c_str(); }

int cs_cuda_device_count(int* count) {
  *count = 0;
  cudaError_t e = cudaGetDeviceCount(count);
  if (e != cudaSuccess) {
    cudaGetLastError();
    *count = 0;
    return fail("no usable CUDA driver or device: %s (%s)", cudaGetErrorString(e), cudaGetErrorName(e));
  }
  return 0;
}

int cs_cuda_device_name(int device, char* buf, int len) {
  if (int rc = check_device_index(device, "deviceName")) return rc;
  cudaDeviceProp p;
  if (int rc = check(cudaGetDeviceProperties(&p, device), "deviceName", "cudaGetDeviceProperties")) return rc;
  std::snprintf(buf, static_cast<size_t>(len), "%s", p.name);
  return 0;
}

int cs_cuda_init(int device) {
  if (int rc = init_device(device)) return rc;
  if (int rc = check(cudaSetDevice(device), "init", "cudaSetDevice")) return rc;
  t_device = device;
  return 0;
}

int cs_cuda_malloc(void** ptr, size_t bytes, int device) {
  *ptr = nullptr;
  if (int rc = init_device(device)) return rc;
  DeviceState& d = g_devices[device];
  const size_t cls = size_class(bytes);
  std::lock_guard<std::mutex> lock(d.mu);
  d.allocs++;
  if (d.capturing) {
    // Inside a captured region: a block the capture freed, else one from the cache.
    auto& pool = d.graph_pool[cls];
    if (!pool.empty()) {
      *ptr = pool.back();
      pool.pop_back();
      d.reserved_bytes -= cls;
    } else {
      auto c = d.free_blocks.find(cls);
      if (c != d.free_blocks.end() && !c->second.empty()) {
        *ptr = c->second.back();
        c->second.pop_back();
        d.cached_bytes -= cls;
      } else {
        // The graph's own block (another graph may hold the cache's): cudaMalloc is allowed
        // during a capture in relaxed mode only, as PyTorch's allocator does it too.
        DeviceScope scope(device);
        cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
        cudaThreadExchangeStreamCaptureMode(&mode);
        cudaError_t e = cudaMalloc(ptr, cls);
        cudaThreadExchangeStreamCaptureMode(&mode);
        d.driver_allocs++;
        if (e != cudaSuccess) {
          cudaGetLastError();
          *ptr = nullptr;
          return fail("out of GPU memory on cuda:%d asking for %zu bytes (%s) while capturing a CUDA graph: %s", device,
                      bytes, mib(bytes).c_str(), cudaGetErrorString(e));
        }
      }
      d.capture_taken.insert(*ptr);
    }
#if defined(CLIPSCALE_EMULATED_DEVICE)
    cudaMemsetAsync(*ptr, 0xff, cls, d.stream);  // recorded: each replay starts from NaN bytes too
#endif
  } else if (auto it = d.free_blocks.find(cls); it != d.free_blocks.end() && !it->second.empty()) {
    *ptr = it->second.back();
    it->second.pop_back();
    d.cached_bytes -= cls;
#if defined(CLIPSCALE_EMULATED_DEVICE)
    // A reused block holds the last user's data; on the emulated device it holds NaN
    // bytes instead, so a kernel that reads scratch it never wrote shows it (in stream
    // order, so that a graph being captured records it too).
    cudaMemsetAsync(*ptr, 0xff, cls, d.stream);
#endif
  } else {
    DeviceScope scope(device);
    cudaError_t e = cudaMalloc(ptr, cls);
    d.driver_allocs++;
    if (e == cudaErrorMemoryAllocation && d.cached_bytes > 0) {
      // Give the cache back (cudaFree waits for the device) and try once more.
      cudaGetLastError();
      release_cache_locked(d);
      e = cudaMalloc(ptr, cls);
      d.driver_allocs++;
    }
    if (e != cudaSuccess) {
      cudaGetLastError();
      *ptr = nullptr;
      size_t free_b = 0, total_b = 0;
      cudaMemGetInfo(&free_b, &total_b);
      cudaGetLastError();
      if (e == cudaErrorMemoryAllocation)
        return fail("out of GPU memory on cuda:%d asking for %zu bytes (%s): %zu bytes (%s) free of %s, %s held by "
                    "clipscale tensors",
                    device, bytes, mib(bytes).c_str(), free_b, mib(free_b).c_str(), mib(total_b).c_str(),
                    mib(d.live_bytes).c_str());
      return fail("cudaMalloc of %zu bytes on cuda:%d failed: %s (%s)", bytes, device, cudaGetErrorString(e),
                  cudaGetErrorName(e));
    }
  }
  d.live[*ptr] = cls;
  d.live_bytes += cls;
  if (d.live_bytes > d.peak_live_bytes) d.peak_live_bytes = d.live_bytes;
  return 0;
}

int cs_cuda_free(void* ptr, int device) {
  if (!ptr) return 0;
  if (device < 0 || device >= kMaxDevices) return fail("free: device index %d is out of range", device);
  DeviceState& d = g_devices[device];
  std::lock_guard<std::mutex> lock(d.mu);
  auto it = d.live.find(ptr);
  if (it == d.live.end()) return fail("free: %p was not allocated by cs_cuda_malloc on cuda:%d", ptr, device);
  const size_t cls = it->second;
  d.live.erase(it);
  d.live_bytes -= cls;
  if (d.graphs_alive > 0 && d.graph_live.erase(ptr)) d.graph_stale = true;
  if (d.capturing) {
    // The captured work may have read or written it: the graphs' pool keeps it.
    d.graph_pool[cls].push_back(ptr);
    d.reserved_bytes += cls;
    return 0;
  }
  // Stream order makes the block safe to reuse at once: every op runs on the one stream.
  d.free_blocks[cls].push_back(ptr);
  d.cached_bytes += cls;
  return 0;
}

int cs_cuda_memory_info(int device, size_t* free_bytes, size_t* total_bytes, size_t* cached_bytes) {
  if (int rc = init_device(device)) return rc;
  DeviceScope scope(device);
  if (int rc = check(cudaMemGetInfo(free_bytes, total_bytes), "memoryInfo", "cudaMemGetInfo")) return rc;
  std::lock_guard<std::mutex> lock(g_devices[device].mu);
  *cached_bytes = g_devices[device].cached_bytes;
  return 0;
}

int cs_cuda_memory_stats(int device, CsCudaMemoryStats* out) {
  if (!out) return fail("memoryStats: no output struct");
  if (int rc = init_device(device)) return rc;
  DeviceState& d = g_devices[device];
  std::lock_guard<std::mutex> lock(d.mu);
  out->allocated_bytes = d.live_bytes;
  out->cached_bytes = d.cached_bytes;
  out->peak_allocated_bytes = d.peak_live_bytes;
  out->driver_allocs = d.driver_allocs;
  out->driver_frees = d.driver_frees;
  out->allocs = d.allocs;
  out->graph_reserved_bytes = d.reserved_bytes;
  return 0;
}

int cs_cuda_wait_stats(int device, uint64_t* stream_syncs, uint64_t* event_waits) {
  if (int rc = init_device(device)) return rc;
  *stream_syncs = g_devices[device].stream_syncs.load();
  *event_waits = g_devices[device].event_waits.load();
  return 0;
}

int cs_cuda_reset_peak_memory(int device) {
  if (int rc = init_device(device)) return rc;
  DeviceState& d = g_devices[device];
  std::lock_guard<std::mutex> lock(d.mu);
  d.peak_live_bytes = d.live_bytes;
  return 0;
}

int cs_cuda_empty_cache(int device) {
  if (int rc = init_device(device)) return rc;
  DeviceState& d = g_devices[device];
  DeviceScope scope(device);
  if (int rc = check(cudaStreamSynchronize(d.stream), "emptyCache", "waiting for the GPU")) return rc;
  std::lock_guard<std::mutex> lock(d.mu);
  release_cache_locked(d);
  return 0;
}

int cs_cuda_memcpy_h2d(void* dst, const void* src, size_t bytes, int device) {
  if (int rc = init_device(device)) return rc;
  if (bytes == 0) return 0;
  DeviceScope scope(device);
  // From pageable memory the copy is staged before this returns, so src may be reused.
  return check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, g_devices[device].stream), "copy to GPU",
               "cudaMemcpyAsync");
}

int cs_cuda_memcpy_d2h(void* dst, const void* src, size_t bytes, int device) {
  if (int rc = init_device(device)) return rc;
  DeviceScope scope(device);
  if (bytes != 0) {
    if (int rc = check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, g_devices[device].stream),
                       "copy from GPU", "cudaMemcpyAsync"))
      return rc;
  }
  return sync_and_report(device, "copy from GPU");
}

int cs_cuda_memcpy_d2d(void* dst, const void* src, size_t bytes, int device) {
  if (int rc = init_device(device)) return rc;
  if (bytes == 0 || dst == src) return 0;
  DeviceScope scope(device);
  return check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, g_devices[device].stream), "copy on GPU",
               "cudaMemcpyAsync");
}

int cs_cuda_host_alloc(void** ptr, size_t bytes, int device) {
  *ptr = nullptr;
  if (int rc = init_device(device)) return rc;
  DeviceScope scope(device);
  cudaError_t e = cudaHostAlloc(ptr, bytes ? bytes : 1, cudaHostAllocDefault);
  if (e != cudaSuccess) {
    *ptr = nullptr;
    return check(e, "hostAlloc", "cudaHostAlloc (page-locked host memory)");
  }
  return 0;
}

int cs_cuda_host_free(void* ptr, int device) {
  if (!ptr) return 0;
  if (int rc = init_device(device)) return rc;
  DeviceState& d = g_devices[device];
  std::vector<void*> now;
  {
    // A garbage collector may free a pinned buffer at any moment, a capture included, where
    // cudaFreeHost (which synchronises) is not permitted: those wait for the capture's end.
    std::lock_guard<std::mutex> lock(d.mu);
    d.host_frees_pending.push_back(ptr);
    if (d.capturing) return 0;
    now.swap(d.host_frees_pending);
  }
  DeviceScope scope(device);
  int rc = 0;
  for (void* p : now)
    if (int r = check(cudaFreeHost(p), "hostFree", "cudaFreeHost")) rc = r;
  return rc;
}

namespace {
int stream_of(int device, int which, cudaStream_t* s, const char* op) {
  if (which != 0 && which != 1) return fail("%s: stream must be 0 (compute) or 1 (copy), got %d", op, which);
  *s = which == 0 ? g_devices[device].stream : g_devices[device].copy_stream;
  return 0;
}
}  // namespace

int cs_cuda_event_create(void** event, int device) {
  *event = nullptr;
  if (int rc = init_device(device)) return rc;
  DeviceScope scope(device);
  cudaEvent_t e = nullptr;
  if (int rc = check(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "eventCreate", "cudaEventCreate")) return rc;
  *event = e;
  return 0;
}

int cs_cuda_event_create_timed(void** event, int device) {
  *event = nullptr;
  if (int rc = init_device(device)) return rc;
  DeviceScope scope(device);
  cudaEvent_t e = nullptr;
  if (int rc = check(cudaEventCreate(&e), "eventCreate", "cudaEventCreate (with timing)")) return rc;
  *event = e;
  return 0;
}

int cs_cuda_event_elapsed_ms(void* start, void* end, float* ms, int device) {
  *ms = 0;
  if (int rc = init_device(device)) return rc;
  DeviceScope scope(device);
  if (int rc = check(cudaEventSynchronize(static_cast<cudaEvent_t>(end)), "eventElapsed", "waiting for the end event"))
    return rc;
  return check(cudaEventElapsedTime(ms, static_cast<cudaEvent_t>(start), static_cast<cudaEvent_t>(end)), "eventElapsed",
               "cudaEventElapsedTime");
}

int cs_cuda_event_destroy(void* event, int device) {
  if (!event) return 0;
  if (int rc = init_device(device)) return rc;
  DeviceScope scope(device);
  return check(cudaEventDestroy(static_cast<cudaEvent_t>(event)), "eventDestroy", "cudaEventDestroy");
}

int cs_cuda_event_record(void* event, int stream, int device) {
  if (int rc = init_device(device)) return rc;
  cudaStream_t s;
  if (int rc = stream_of(device, stream, &s, "eventRecord")) return rc;
  DeviceScope scope(device);
  return check(cudaEventRecord(static_cast<cudaEvent_t>(event), s), "eventRecord", "cudaEventRecord");
}

int cs_cuda_event_query(void* event, int* done, int device) {
  *done = 0;
  if (int rc = init_device(device)) return rc;
  DeviceScope scope(device);
  cudaError_t e = cudaEventQuery(static_cast<cudaEvent_t>(event));
  if (e == cudaErrorNotReady) return 0;
  if (int rc = check(e, "eventQuery", "cudaEventQuery")) return rc;
  *done = 1;
  return 0;
}

int cs_cuda_event_synchronize(void* event, int device) {
  if (int rc = init_device(device)) return rc;
  DeviceScope scope(device);
  g_devices[device].event_waits++;
  return check(cudaEventSynchronize(static_cast<cudaEvent_t>(event)), "eventSynchronize", "waiting for the event");
}

int cs_cuda_stream_wait_event(int stream, void* event, int device) {
  if (int rc = init_device(device)) return rc;
  cudaStream_t s;
  if (int rc = stream_of(device, stream, &s, "streamWaitEvent")) return rc;
  DeviceScope scope(device);
  return check(cudaStreamWaitEvent(s, static_cast<cudaEvent_t>(event), 0), "streamWaitEvent", "cudaStreamWaitEvent");
}

int cs_cuda_memcpy_h2d_async(void* dst, const void* src, size_t bytes, int stream, int device) {
  if (int rc = init_device(device)) return rc;
  cudaStream_t s;
  if (int rc = stream_of(device, stream, &s, "uploadAsync")) return rc;
  if (bytes == 0) return 0;
  DeviceScope scope(device);
  return check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, s), "uploadAsync", "cudaMemcpyAsync");
}

int cs_cuda_memcpy_d2h_after(void* dst, const void* src, size_t bytes, void* event, int device) {
  if (int rc = init_device(device)) return rc;
  DeviceScope scope(device);
  const char* op = "copy from GPU after an event";
  g_devices[device].event_waits++;
  if (int rc = check(cudaEventSynchronize(static_cast<cudaEvent_t>(event)), op, "waiting for the event")) return rc;
  // The work before the event is done; later work may still run: no stream is waited for.
  if (bytes != 0)
    if (int rc = check(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), op, "cudaMemcpy")) return rc;
  KernelError e{};
  DeviceState& d = g_devices[device];
  if (int rc = check(cudaMemcpy(&e, d.error_slot, sizeof e, cudaMemcpyDeviceToHost), op, "reading the kernel error slot"))
    return rc;
  if (e.code > 0) {
    cudaMemset(d.error_slot, 0, sizeof(KernelError));
    return fail("%s", kernel_error_message(e).c_str());
  }
  return 0;
}

namespace {
// An instantiated graph of the compute stream.
struct GraphHandle {
  cudaGraphExec_t exec = nullptr;
  int device = 0;
};

// Returns the graphs' pool to the cache once no graph uses it.
void release_graph_pool_locked(DeviceState& d) {
  if (d.graphs_alive > 0 || d.capturing) return;
  d.graph_live.clear();
  d.graph_stale = false;
  for (auto& [cls, blocks] : d.graph_pool)
    for (void* p : blocks) {
      d.free_blocks[cls].push_back(p);
      d.cached_bytes += cls;
    }
  d.graph_pool.clear();
  d.reserved_bytes = 0;
}

// Ends the allocator's capture mode; a new graph now uses the pool when `made`.
void end_allocator_capture_locked(DeviceState& d, bool made) {
  d.capturing = false;
  d.capture_taken.clear();
  if (made) d.graphs_alive++;
  release_graph_pool_locked(d);
}
}  // namespace

int cs_cuda_graph_begin_capture(int device) {
  if (int rc = init_device(device)) return rc;
  DeviceState& d = g_devices[device];
  DeviceScope scope(device);
  {
    std::lock_guard<std::mutex> lock(d.mu);
    if (d.capturing) return fail("graphCapture: cuda:%d is capturing already", device);
    d.capturing = true;
  }
  cudaError_t e = cudaStreamBeginCapture(d.stream, cudaStreamCaptureModeGlobal);
  if (e != cudaSuccess) {
    std::lock_guard<std::mutex> lock(d.mu);
    end_allocator_capture_locked(d, false);
    return check(e, "graphCapture", "cudaStreamBeginCapture");
  }
  return 0;
}

int cs_cuda_graph_end_capture(void** graph, int device) {
  *graph = nullptr;
  if (int rc = init_device(device)) return rc;
  DeviceState& d = g_devices[device];
  DeviceScope scope(device);
  cudaGraph_t g = nullptr;
  cudaError_t e = cudaStreamEndCapture(d.stream, &g);
  std::string why;
  if (e != cudaSuccess) {
    why = std::string("the capture was invalidated: ") + cudaGetErrorString(e);
    cudaGetLastError();
  }
  std::lock_guard<std::mutex> lock(d.mu);
  if (why.empty()) {
    size_t outliving = 0;
    for (void* p : d.capture_taken)
      if (d.live.count(p)) outliving++;
    if (outliving)
      why = "not capturable: " + std::to_string(outliving) +
            " block(s) allocated inside the captured work are still in use after it (a tensor made in the step "
            "outlives it; make it before capturing)";
  }
  if (!why.empty()) {
    if (g) cudaGraphDestroy(g);
    end_allocator_capture_locked(d, false);
    return fail("graphCapture: %s", why.c_str());
  }
  auto* h = new GraphHandle();
  h->device = device;
  e = cudaGraphInstantiate(&h->exec, g, 0);
  cudaGraphDestroy(g);
  if (e != cudaSuccess) {
    delete h;
    end_allocator_capture_locked(d, false);
    return check(e, "graphCapture", "cudaGraphInstantiate");
  }
  end_allocator_capture_locked(d, true);
  for (const auto& [p, cls] : d.live) d.graph_live.insert(p);
  *graph = h;
  return 0;
}

namespace {
// Frees the pinned buffers whose release waited for a capture to end.
void free_pending_host(int device) {
  DeviceState& d = g_devices[device];
  std::vector<void*> now;
  {
    std::lock_guard<std::mutex> lock(d.mu);
    if (d.capturing) return;
    now.swap(d.host_frees_pending);
  }
  for (void* p : now) cudaFreeHost(p);
}
}  // namespace

int cs_cuda_graph_launch(void* graph, int device) {
  if (!graph) return fail("graphLaunch: no graph");
  free_pending_host(device);
  auto* h = static_cast<GraphHandle*>(graph);
  if (h->device != device) return fail("graphLaunch: the graph was captured on cuda:%d, not cuda:%d", h->device, device);
  if (int rc = init_device(device)) return rc;
  {
    std::lock_guard<std::mutex> lock(g_devices[device].mu);
    if (g_devices[device].graph_stale)
      return fail("graphLaunch: not replayable: a block that was in use when the graph was captured has been freed "
                  "since (a tensor the step reads or writes was disposed or re-made), so its memory may hold something "
                  "else; capture the step again");
  }
  DeviceScope scope(device);
  return check(cudaGraphLaunch(h->exec, g_devices[device].stream), "graphLaunch", "cudaGraphLaunch");
}

int cs_cuda_graph_destroy(void* graph, int device) {
  if (!graph) return 0;
  auto* h = static_cast<GraphHandle*>(graph);
  DeviceState& d = g_devices[h->device];
  DeviceScope scope(h->device);
  cudaGraphExecDestroy(h->exec);
  // Later users of the pool's blocks run on the compute stream after the graph's last replay.
  std::lock_guard<std::mutex> lock(d.mu);
  d.graphs_alive--;
  release_graph_pool_locked(d);
  delete h;
  (void)device;
  return 0;
}

int cs_cuda_emu_compute_stream(int device, int lazy, uint64_t* pending) {
#if defined(CLIPSCALE_EMULATED_DEVICE)
  if (int rc = init_device(device)) return rc;
  if (lazy != -1 && lazy != 0 && lazy != 1) return fail("emuComputeStream: lazy must be -1, 0 or 1, got %d", lazy);
  cudaStream_t s = g_devices[device].stream;
  if (lazy != -1)
    if (int rc = check(cs_emu::set_stream_eager(s, lazy == 0), "emuComputeStream", "switching the stream")) return rc;
  *pending = cs_emu::pending_work(s);
  return 0;
#else
  (void)device;
  (void)lazy;
  *pending = 0;
  return fail("emuComputeStream: this is the GPU build of the CUDA backend, not the emulated device");
#endif
}

int cs_cuda_synchronize(int device) {
  if (int rc = init_device(device)) return rc;
  return sync_and_report(device, "synchronize");
}

}  // extern "C"
