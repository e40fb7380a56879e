// The emulated CUDA device: what <cuda_runtime.h> gives the kernel files when they are
// compiled as host C++ (the build puts native/cuda/emu first on the include path and
// defines CLIPSCALE_EMULATED_DEVICE and CLIPSCALE_PTX_EMULATE).
//
// Each thread block runs as fibers on the calling thread, in warps of 32 lanes
// (emu/fiber.cpp); __syncthreads is a counting barrier, warp collectives synchronise the
// lanes of their warp only. Device memory is host memory that ends at a guard page
// (emu/device_api.cpp). Streams (emu/device_api.cpp): a stream made with cudaStreamCreate*
// is LAZY: its work runs only when something waits for it (a synchronisation, an event it
// recorded being waited on, synchronised or queried), so a kernel on another stream that
// does not wait for it sees memory as it was before; the null stream, and a stream the
// runtime marks eager (cs_emu::set_stream_eager: the compute stream), run work at once.
// Graph capture records launches and copies and replays them (cudaGraphLaunch).
#pragma once
#if defined(__CUDACC__)
#error "native/cuda/emu is for host builds of the CUDA sources; nvcc uses the toolkit's cuda_runtime.h"
#endif
#ifndef CLIPSCALE_EMULATED_DEVICE
#define CLIPSCALE_EMULATED_DEVICE 1
#endif
#ifndef CLIPSCALE_PTX_EMULATE
#define CLIPSCALE_PTX_EMULATE 1
#endif

#include <stddef.h>
#include <stdint.h>

#include <cmath>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <utility>

// ── qualifiers ──
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
// A block's static shared memory: one copy per OS thread, and blocks run one at a time.
#define __shared__ static thread_local

// ── vector types ──
struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
};
struct alignas(16) float4 {
  float x, y, z, w;
};
struct alignas(8) float2 {
  float x, y;
};
struct alignas(16) uint4 {
  unsigned x, y, z, w;
};
inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
inline float2 make_float2(float x, float y) { return float2{x, y}; }

// ── built-in variables (set by the scheduler for the fiber it runs) ──
extern thread_local uint3 threadIdx;
extern thread_local uint3 blockIdx;
extern thread_local dim3 blockDim;
extern thread_local dim3 gridDim;
constexpr int warpSize = 32;

// ── errors, streams, events, properties ──
enum cudaError_t : int {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInitializationError = 3,
  cudaErrorLaunchFailure = 719,
  cudaErrorIllegalAddress = 700,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevice = 101,
  cudaErrorNotReady = 600,
  cudaErrorLaunchOutOfResources = 701,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorIllegalState = 401,
  cudaErrorStreamCaptureUnsupported = 900,
  cudaErrorStreamCaptureInvalidated = 901,
  cudaErrorStreamCaptureUnmatched = 903,
};
using cudaError = cudaError_t;
struct CUstream_st;
using cudaStream_t = CUstream_st*;
struct CUevent_st;
using cudaEvent_t = CUevent_st*;
struct CUgraph_st;
using cudaGraph_t = CUgraph_st*;
struct CUgraphExec_st;
using cudaGraphExec_t = CUgraphExec_st*;
enum cudaStreamCaptureMode { cudaStreamCaptureModeGlobal = 0, cudaStreamCaptureModeThreadLocal = 1, cudaStreamCaptureModeRelaxed = 2 };
enum cudaStreamCaptureStatus { cudaStreamCaptureStatusNone = 0, cudaStreamCaptureStatusActive = 1, cudaStreamCaptureStatusInvalidated = 2 };
constexpr unsigned cudaHostAllocDefault = 0;
enum cudaMemcpyKind { cudaMemcpyHostToHost = 0, cudaMemcpyHostToDevice = 1, cudaMemcpyDeviceToHost = 2, cudaMemcpyDeviceToDevice = 3, cudaMemcpyDefault = 4 };
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8, cudaFuncAttributePreferredSharedMemoryCarveout = 9 };
enum cudaDeviceAttr {
  cudaDevAttrMaxThreadsPerBlock = 1,
  cudaDevAttrMaxSharedMemoryPerBlock = 8,
  cudaDevAttrWarpSize = 10,
  cudaDevAttrMultiProcessorCount = 16,
  cudaDevAttrComputeCapabilityMajor = 75,
  cudaDevAttrComputeCapabilityMinor = 76,
  cudaDevAttrMaxSharedMemoryPerBlockOptin = 97,
};
constexpr unsigned cudaStreamDefault = 0, cudaStreamNonBlocking = 1;
constexpr unsigned cudaEventDefault = 0, cudaEventDisableTiming = 2;

// The fields of NVIDIA's struct that the library reads, with an H100 SXM's values.
struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  size_t sharedMemPerBlock;
  size_t sharedMemPerBlockOptin;
  size_t sharedMemPerMultiprocessor;
  int regsPerBlock;
  int warpSize;
  int maxThreadsPerBlock;
  int maxThreadsDim[3];
  int maxGridSize[3];
  int major, minor;
  int multiProcessorCount;
  int l2CacheSize;
  int memoryBusWidth;
};

const char* cudaGetErrorString(cudaError_t e);
const char* cudaGetErrorName(cudaError_t e);
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
cudaError_t cudaGetDeviceCount(int* n);
cudaError_t cudaSetDevice(int d);
cudaError_t cudaGetDevice(int* d);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int d);
cudaError_t cudaDeviceGetAttribute(int* v, cudaDeviceAttr a, int d);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaMalloc(void** p, size_t bytes);
template <typename T>
cudaError_t cudaMalloc(T** p, size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(p), bytes);
}
cudaError_t cudaFree(void* p);
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s = nullptr);
cudaError_t cudaMemset(void* p, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t s = nullptr);
cudaError_t cudaStreamCreate(cudaStream_t* s);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned flags = 0);
cudaError_t cudaEventCreate(cudaEvent_t* e);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned flags);
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s = nullptr);
cudaError_t cudaEventQuery(cudaEvent_t e);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t a, cudaEvent_t b);
// Page-locked host memory: copies from it on a lazy stream read it when they run.
cudaError_t cudaHostAlloc(void** p, size_t bytes, unsigned flags);
cudaError_t cudaFreeHost(void* p);
// Graphs: capture records the stream's launches, copies and memsets (no synchronisation,
// no cudaMalloc, no copy from pageable memory may happen while a stream captures).
cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t* graph);
cudaError_t cudaStreamIsCapturing(cudaStream_t s, cudaStreamCaptureStatus* status);
// The calling thread's capture mode (global by default): in relaxed mode cudaMalloc may be called during a capture.
cudaError_t cudaThreadExchangeStreamCaptureMode(cudaStreamCaptureMode* mode);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long flags = 0);
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s);
cudaError_t cudaGraphDestroy(cudaGraph_t graph);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);

namespace cs_emu {
cudaError_t func_set_attribute(const void* fn, cudaFuncAttribute attr, int value);
// Emulated device only: whether a stream runs its work at once (true) or lazily (the default
// for streams made with cudaStreamCreate*: see the top of this file).
cudaError_t set_stream_eager(cudaStream_t s, bool eager);
// Emulated device only: works queued on the stream and not yet run.
size_t pending_work(cudaStream_t s);
}
template <typename F>
cudaError_t cudaFuncSetAttribute(F* fn, cudaFuncAttribute attr, int value) {
  return cs_emu::func_set_attribute(reinterpret_cast<const void*>(fn), attr, value);
}

// ── device intrinsics ──
inline unsigned __float_as_uint(float f) {
  unsigned u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float __uint_as_float(unsigned u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline int __float_as_int(float f) {
  int i;
  std::memcpy(&i, &f, 4);
  return i;
}
inline float __int_as_float(int i) {
  float f;
  std::memcpy(&f, &i, 4);
  return f;
}
using std::isfinite;
using std::isinf;
using std::isnan;
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __fdividef(float a, float b) { return a / b; }
// Round-to-nearest products that the compiler must not fuse into a multiply-add.
inline double __dmul_rn(double a, double b) {
  volatile double p = a * b;
  return p;
}
inline void __threadfence() {}
inline void __threadfence_block() {}

// CUDA's integer and float min/max overloads.
#define CS_EMU_MINMAX(T)                       \
  inline T min(T a, T b) { return b < a ? b : a; } \
  inline T max(T a, T b) { return a < b ? b : a; }
CS_EMU_MINMAX(int)
CS_EMU_MINMAX(unsigned)
CS_EMU_MINMAX(long)
CS_EMU_MINMAX(unsigned long)
CS_EMU_MINMAX(long long)
CS_EMU_MINMAX(unsigned long long)
inline float min(float a, float b) { return std::fmin(a, b); }
inline float max(float a, float b) { return std::fmax(a, b); }
inline double min(double a, double b) { return std::fmin(a, b); }
inline double max(double a, double b) { return std::fmax(a, b); }
#undef CS_EMU_MINMAX

// ── the fiber runtime's entry points (emu/fiber.cpp) ──
namespace cs_emu {

// One word a lane reads from another lane at a warp barrier: *dst = src lane's pub[word].
struct ExchangeRequest {
  uint8_t src, word;
  uint32_t* dst;
};
// A warp collective: every lane named in `mask` (and alive) must call it; the call
// returns once all of them have, with the requests of each served from the others'
// published words. Checks the masks and the source lanes (errors abort the launch).
void warp_exchange(const char* what, unsigned mask, const uint32_t* pub, int npub, const ExchangeRequest* req,
                   int nreq);
void syncthreads();
int lane_id();
// Dynamic (extern __shared__) shared memory of the running block.
void* dynamic_shared();
// cp.async: queued per thread with its group; lands at the wait_group that retires it.
void cp_async(void* smem, const void* gmem, int bytes, int src_bytes);
void cp_async_commit();
void cp_async_wait(int n);
// Aborts the running launch with a message (a check inside the runtime failed).
[[noreturn]] void kernel_fault(const char* fmt, ...);

// Runs `body(block, thread)` for every thread of every block: the launch itself.
using ThreadBody = void (*)(void* ctx);
// A launch's arguments copied for later (a lazy stream, a captured graph) and freed.
using CloneCtx = void* (*)(const void* ctx);
using FreeCtx = void (*)(void* ctx);
cudaError_t launch(const char* name, const void* fn, dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                   ThreadBody body, void* ctx, CloneCtx clone, FreeCtx free_ctx);

template <typename T>
inline void to_words(const T& v, uint32_t (&w)[2]) {
  static_assert(sizeof(T) <= 8, "shuffles move at most 8 bytes");
  w[0] = w[1] = 0;
  std::memcpy(w, &v, sizeof(T));
}
template <typename T>
inline T from_words(const uint32_t (&w)[2]) {
  T v;
  std::memcpy(&v, w, sizeof(T));
  return v;
}
template <typename T>
inline T shfl_from(const char* what, unsigned mask, T v, int src) {
  uint32_t pub[2], got[2];
  to_words(v, pub);
  const int nw = sizeof(T) > 4 ? 2 : 1;
  ExchangeRequest req[2] = {{static_cast<uint8_t>(src), 0, &got[0]}, {static_cast<uint8_t>(src), 1, &got[1]}};
  warp_exchange(what, mask, pub, nw, req, nw);
  if (nw == 1) got[1] = 0;
  return from_words<T>(got);
}

template <typename... P>
struct KernelCall {
  void (*fn)(P...);
  std::tuple<std::decay_t<P>...> args;
  static void run(void* ctx) {
    auto* c = static_cast<KernelCall*>(ctx);
    std::apply(c->fn, c->args);
  }
  static void* clone(const void* ctx) { return new KernelCall(*static_cast<const KernelCall*>(ctx)); }
  static void free(void* ctx) { delete static_cast<KernelCall*>(ctx); }
};

template <typename... P, typename... A>
cudaError_t launch_kernel(const char* name, void (*fn)(P...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                          A&&... args) {
  static_assert(sizeof...(P) == sizeof...(A), "kernel launched with the wrong number of arguments");
  KernelCall<P...> call{fn, std::tuple<std::decay_t<P>...>(static_cast<std::decay_t<P>>(std::forward<A>(args))...)};
  return launch(name, reinterpret_cast<const void*>(fn), grid, block, smem, stream, &KernelCall<P...>::run, &call,
                &KernelCall<P...>::clone, &KernelCall<P...>::free);
}

}  // namespace cs_emu

// ── warp collectives ──
inline void __syncthreads() { cs_emu::syncthreads(); }
inline void __syncwarp(unsigned mask = 0xffffffffu) { cs_emu::warp_exchange("__syncwarp", mask, nullptr, 0, nullptr, 0); }
template <typename T>
inline T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
  const int lane = cs_emu::lane_id();
  return cs_emu::shfl_from("__shfl_sync", mask, v, (lane & ~(width - 1)) + (src & (width - 1)));
}
template <typename T>
inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
  const int lane = cs_emu::lane_id();
  int src = lane ^ lane_mask;
  if ((src & ~(width - 1)) != (lane & ~(width - 1))) src = lane;
  return cs_emu::shfl_from("__shfl_xor_sync", mask, v, src);
}
template <typename T>
inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  const int lane = cs_emu::lane_id();
  int src = lane + static_cast<int>(delta);
  if ((src & ~(width - 1)) != (lane & ~(width - 1))) src = lane;
  return cs_emu::shfl_from("__shfl_down_sync", mask, v, src);
}
template <typename T>
inline T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  const int lane = cs_emu::lane_id();
  int src = lane - static_cast<int>(delta);
  if (src < 0 || (src & ~(width - 1)) != (lane & ~(width - 1))) src = lane;
  return cs_emu::shfl_from("__shfl_up_sync", mask, v, src);
}
inline unsigned __ballot_sync(unsigned mask, int pred) {
  uint32_t pub = pred ? 1u : 0u, got[32] = {0};
  cs_emu::ExchangeRequest req[32];
  int n = 0;
  for (int l = 0; l < 32; l++)
    if (mask >> l & 1u) req[n++] = {static_cast<uint8_t>(l), 0, &got[l]};
  cs_emu::warp_exchange("__ballot_sync", mask, &pub, 1, req, n);
  unsigned r = 0;
  for (int l = 0; l < 32; l++) r |= (got[l] & 1u) << l;
  return r;
}
inline int __any_sync(unsigned mask, int pred) { return __ballot_sync(mask, pred) != 0; }
inline int __all_sync(unsigned mask, int pred) { return (__ballot_sync(mask, pred) & mask) == mask; }

// ── atomics: fibers of a launch share one OS thread and switch only at barriers ──
template <typename T>
inline T atomicAdd(T* p, T v) {
  T old = *p;
  *p = old + v;
  return old;
}
template <typename T>
inline T atomicSub(T* p, T v) {
  T old = *p;
  *p = old - v;
  return old;
}
template <typename T>
inline T atomicExch(T* p, T v) {
  T old = *p;
  *p = v;
  return old;
}
template <typename T>
inline T atomicCAS(T* p, T compare, T v) {
  T old = *p;
  if (old == compare) *p = v;
  return old;
}
template <typename T>
inline T atomicMax(T* p, T v) {
  T old = *p;
  if (old < v) *p = v;
  return old;
}
template <typename T>
inline T atomicMin(T* p, T v) {
  T old = *p;
  if (v < old) *p = v;
  return old;
}
