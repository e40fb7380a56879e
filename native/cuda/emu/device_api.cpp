// The emulated device's runtime API: one device with an H100 SXM's properties; device
// memory is host memory whose end touches a PROT_NONE guard page, so a kernel that reads
// or writes past the end of a buffer faults and the launch fails naming the allocation;
// copies and memsets check their ranges against the allocations they touch. Streams,
// events, pinned host memory and graphs are in emu/streams.cpp.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>

#include "cuda/emu/emu_internal.h"
#include "cuda_runtime.h"

namespace cs_emu {

namespace {

constexpr size_t kTotalMemory = 85029158912ull;  // what an H100 80GB HBM3 reports

struct Allocation {
  void* map;        // the mapping: [map, map + map_bytes) including the guard page
  size_t map_bytes;
  size_t bytes;     // asked for
};

std::mutex g_mu;
std::map<uintptr_t, Allocation> g_allocs;  // user pointer → allocation
size_t g_used = 0;
std::unordered_map<const void*, int> g_dynamic_smem_limit;  // kernel → opted-in bytes

thread_local cudaError_t t_last = cudaSuccess;
thread_local std::string t_last_message;
thread_local int t_device = 0;

size_t page_size() {
  static const size_t p = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return p;
}


const Allocation* find_locked(const void* p, uintptr_t* base) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto it = g_allocs.upper_bound(a);
  if (it == g_allocs.begin()) return nullptr;
  --it;
  *base = it->first;
  return &it->second;
}

// Whether [p, p + n) lies in host memory or entirely inside one device allocation.
bool range_ok(const void* p, size_t n, std::string* why) {
  std::lock_guard<std::mutex> lock(g_mu);
  uintptr_t base = 0;
  const Allocation* a = find_locked(p, &base);
  const uintptr_t x = reinterpret_cast<uintptr_t>(p);
  if (!a) return true;
  const uintptr_t map0 = reinterpret_cast<uintptr_t>(a->map);
  if (x >= map0 + a->map_bytes) return true;  // past this mapping: not device memory we know
  if (x + n <= base + a->bytes) return true;
  char buf[256];
  std::snprintf(buf, sizeof buf, "%zu bytes at %p reach %zu bytes past the end of the %zu-byte device allocation at %p",
                n, p, static_cast<size_t>(x + n - (base + a->bytes)), a->bytes, reinterpret_cast<void*>(base));
  *why = buf;
  return false;
}

}  // namespace

cudaError_t set_error(cudaError_t e, std::string message) {
  if (e != cudaSuccess && t_last == cudaSuccess) {
    t_last = e;
    t_last_message = std::move(message);
  }
  return e;
}

cudaError_t last_error() { return t_last; }

bool is_device_memory(const void* p) {
  std::lock_guard<std::mutex> lock(g_mu);
  uintptr_t base = 0;
  const Allocation* a = find_locked(p, &base);
  return a && reinterpret_cast<uintptr_t>(p) < reinterpret_cast<uintptr_t>(a->map) + a->map_bytes;
}

cudaError_t check_ranges(void* dst, const void* src, size_t bytes, const char* what) {
  std::string why;
  if (!range_ok(dst, bytes, &why) || (src && !range_ok(src, bytes, &why)))
    return set_error(cudaErrorInvalidValue, std::string("emulated device: ") + what + ": " + why);
  return cudaSuccess;
}

cudaError_t copy_checked(void* dst, const void* src, size_t bytes, const char* what) {
  if (cudaError_t e = check_ranges(dst, src, bytes, what)) return e;
  if (bytes) std::memmove(dst, src, bytes);
  return cudaSuccess;
}

std::string describe_address(const void* addr) {
  const uintptr_t x = reinterpret_cast<uintptr_t>(addr);
  char buf[320];
  uintptr_t base = 0;
  const Allocation* a = find_locked(addr, &base);  // no lock: the fault handler must not block
  if (a && x < reinterpret_cast<uintptr_t>(a->map) + a->map_bytes) {
    std::snprintf(buf, sizeof buf, "address %p, %zu bytes past the end of the %zu-byte device allocation at %p", addr,
                  static_cast<size_t>(x - (base + a->bytes)), a->bytes, reinterpret_cast<void*>(base));
  } else {
    std::snprintf(buf, sizeof buf, "address %p, which is in no device allocation (freed memory, or a bad pointer)",
                  addr);
  }
  return buf;
}

cudaError_t func_set_attribute(const void* fn, cudaFuncAttribute attr, int value) {
  if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize) {
    if (value < 0 || value > 232448)
      return set_error(cudaErrorInvalidValue, "cudaFuncSetAttribute: " + std::to_string(value) +
                                                  " bytes of dynamic shared memory exceed the H100's 232448");
    std::lock_guard<std::mutex> lock(g_mu);
    g_dynamic_smem_limit[fn] = value;
  }
  return cudaSuccess;
}

cudaError_t launch(const char* name, const void* fn, dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                   ThreadBody body, void* ctx, CloneCtx clone, FreeCtx free_ctx) {
  const uint64_t threads = static_cast<uint64_t>(block.x) * block.y * block.z;
  char buf[512];
  if (threads == 0 || threads > 1024 || block.z > 64 || grid.x == 0 || grid.y == 0 || grid.z == 0 ||
      grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535) {
    std::snprintf(buf, sizeof buf, "emulated device: launch of %s with grid (%u,%u,%u) and block (%u,%u,%u) is invalid",
                  name, grid.x, grid.y, grid.z, block.x, block.y, block.z);
    return set_error(cudaErrorInvalidConfiguration, buf);
  }
  size_t limit = 48 * 1024;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    auto it = g_dynamic_smem_limit.find(fn);
    if (it != g_dynamic_smem_limit.end()) limit = static_cast<size_t>(it->second);
  }
  if (smem > limit) {
    std::snprintf(buf, sizeof buf,
                  "emulated device: launch of %s asks for %zu bytes of dynamic shared memory; the limit is %zu "
                  "(cudaFuncSetAttribute raises it)",
                  name, smem, limit);
    return set_error(cudaErrorInvalidValue, buf);
  }
  return submit_launch(name, grid, block, smem, stream, body, ctx, clone, free_ctx);
}

}  // namespace cs_emu

using namespace cs_emu;

const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorIllegalState: return "cudaErrorIllegalState";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
    case cudaErrorStreamCaptureInvalidated: return "cudaErrorStreamCaptureInvalidated";
    case cudaErrorStreamCaptureUnmatched: return "cudaErrorStreamCaptureUnmatched";
    default: return "cudaErrorUnknown";
  }
}

// The last error's own message when it is the one asked about (the emulator says more
// than CUDA's fixed strings: which kernel, block, thread and address).
const char* cudaGetErrorString(cudaError_t e) {
  static thread_local std::string s;
  if (e != cudaSuccess && !t_last_message.empty()) {
    s = t_last_message;
    return s.c_str();
  }
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    default: return "emulated device error";
  }
}

cudaError_t cudaGetLastError() {
  cudaError_t e = t_last;
  t_last = cudaSuccess;
  // The message stays readable for cudaGetErrorString right after.
  return e;
}
cudaError_t cudaPeekAtLastError() { return t_last; }

cudaError_t cudaGetDeviceCount(int* n) {
  *n = 1;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int d) {
  if (d != 0) return set_error(cudaErrorInvalidDevice, "emulated device: only device 0 exists");
  t_device = d;
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int* d) {
  *d = t_device;
  return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int d) {
  if (d != 0) return set_error(cudaErrorInvalidDevice, "emulated device: only device 0 exists");
  std::memset(p, 0, sizeof *p);
  std::snprintf(p->name, sizeof p->name, "NVIDIA H100 80GB HBM3");
  p->totalGlobalMem = kTotalMemory;
  p->sharedMemPerBlock = 49152;
  p->sharedMemPerBlockOptin = 232448;
  p->sharedMemPerMultiprocessor = 233472;
  p->regsPerBlock = 65536;
  p->warpSize = 32;
  p->maxThreadsPerBlock = 1024;
  p->maxThreadsDim[0] = 1024;
  p->maxThreadsDim[1] = 1024;
  p->maxThreadsDim[2] = 64;
  p->maxGridSize[0] = 2147483647;
  p->maxGridSize[1] = 65535;
  p->maxGridSize[2] = 65535;
  p->major = 9;
  p->minor = 0;
  p->multiProcessorCount = 132;
  p->l2CacheSize = 52428800;
  p->memoryBusWidth = 5120;
  return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int* v, cudaDeviceAttr a, int d) {
  cudaDeviceProp p;
  if (cudaError_t e = cudaGetDeviceProperties(&p, d)) return e;
  switch (a) {
    case cudaDevAttrMaxThreadsPerBlock: *v = p.maxThreadsPerBlock; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *v = static_cast<int>(p.sharedMemPerBlock); break;
    case cudaDevAttrWarpSize: *v = 32; break;
    case cudaDevAttrMultiProcessorCount: *v = p.multiProcessorCount; break;
    case cudaDevAttrComputeCapabilityMajor: *v = p.major; break;
    case cudaDevAttrComputeCapabilityMinor: *v = p.minor; break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *v = static_cast<int>(p.sharedMemPerBlockOptin); break;
    default: return set_error(cudaErrorInvalidValue, "emulated device: attribute not emulated");
  }
  return cudaSuccess;
}

cudaError_t cudaMalloc(void** out, size_t bytes) {
  *out = nullptr;
  if (capture_forbids_unsafe_calls())
    return set_error(cudaErrorStreamCaptureUnsupported,
                     "emulated device: cudaMalloc while a stream captures a graph (not permitted in global capture mode)");
  const size_t page = page_size();
  const size_t body = (bytes + 15) / 16 * 16;  // 16-byte aligned starts, as float4 loads want
  const size_t pages = (body + page - 1) / page * page;
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_used + bytes > kTotalMemory) return set_error(cudaErrorMemoryAllocation, "out of memory");
  void* map = mmap(nullptr, pages + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (map == MAP_FAILED) return set_error(cudaErrorMemoryAllocation, "out of memory (host mmap failed)");
  char* guard = static_cast<char*>(map) + pages;
  mprotect(guard, page, PROT_NONE);
  // The buffer ends where the guard page starts (to 16 bytes): an overrun faults.
  char* user = guard - body;
  // Fresh device memory is not zeroed on a GPU either: fill it with NaN bytes.
  std::memset(user, 0xff, body);
  g_allocs[reinterpret_cast<uintptr_t>(user)] = Allocation{map, pages + page, bytes};
  g_used += bytes;
  *out = user;
  return cudaSuccess;
}

cudaError_t cudaFree(void* p) {
  if (!p) return cudaSuccess;
  if (capture_forbids_unsafe_calls())
    return set_error(cudaErrorStreamCaptureUnsupported,
                     "emulated device: cudaFree while a stream captures a graph (not permitted in global capture mode)");
  std::lock_guard<std::mutex> lock(g_mu);
  auto it = g_allocs.find(reinterpret_cast<uintptr_t>(p));
  if (it == g_allocs.end()) return set_error(cudaErrorInvalidValue, "emulated device: cudaFree of a pointer cudaMalloc did not return");
  munmap(it->second.map, it->second.map_bytes);
  g_used -= it->second.bytes;
  g_allocs.erase(it);
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  std::lock_guard<std::mutex> lock(g_mu);
  *total_bytes = kTotalMemory;
  *free_bytes = kTotalMemory - g_used;
  return cudaSuccess;
}

