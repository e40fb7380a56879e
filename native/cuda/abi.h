// The C ABI of the CUDA backend library (build-cuda/libclipscale_cuda.so).
//
// The addon loads the library at run time (dlopen) and looks every entry point up by
// name, so nothing C++ crosses this boundary: raw device pointers, sizes and scalars.
// Every function returns 0 on success, or nonzero with a message that
// cs_cuda_last_error() returns (per calling thread) until the next failing call.
//
// Devices and streams: cs_cuda_init(d) makes device d current FOR THE CALLING THREAD;
// every op then runs on that device's one stream (created at init). Ops never wait for
// the host and never synchronise: kernels are queued and errors inside kernels (an id
// out of range, an overflowing scale) are recorded on the device and reported by the
// next cs_cuda_synchronize or cs_cuda_memcpy_d2h on that device.
//
// Numerics: the ops take f32 tensors and, in the precision set by cs_cuda_set_precision, round
// to bf16 (or fp16) at the points where the GPU will store 16-bit values (stored activations,
// matrix operands), as the CPU backend does with bf16 emulation on; fp32 rounds nothing;
// statistics, softmax, losses and optimizer state are fp32.
// (bf16 storage itself is a later step; the rounding points already match it.)
//
// Dtype codes are cs::DType's: 0 f32, 1 bf16, 2 i32, 3 i64.
// Per-group ABI headers: abi_pointwise.h (this group), abi_gemm.h, abi_attention.h.
#pragma once
#include <stddef.h>
#include <stdint.h>

// Bumped whenever an existing entry point changes its arguments or meaning.
#define CS_CUDA_ABI_VERSION 2

#ifdef __cplusplus
extern "C" {
#endif

int cs_cuda_abi_version(void);
// The message of the last failed call on this thread ("" if none).
const char* cs_cuda_last_error(void);

// Number of CUDA devices the driver offers; fails (with the reason) without a driver.
int cs_cuda_device_count(int* count);
// Device name (e.g. "NVIDIA H100 80GB HBM3") and compute capability "9.0".
int cs_cuda_device_name(int device, char* buf, int len);
// Initialises device (stream, allocator) once, and makes it current for this thread.
int cs_cuda_init(int device);

// Caching allocator: freed blocks are kept per device and size class and reused in
// stream order. Out of memory is reported with the bytes asked for and free.
int cs_cuda_malloc(void** ptr, size_t bytes, int device);
int cs_cuda_free(void* ptr, int device);
// Bytes the driver reports free/total, and bytes held by the cache (allocated but unused).
int cs_cuda_memory_info(int device, size_t* free_bytes, size_t* total_bytes, size_t* cached_bytes);
// Returns every cached block to the driver.
int cs_cuda_empty_cache(int device);
// The caching allocator's accounting of a device. Bytes are counted in the allocator's
// size classes (what the blocks really hold). driver_allocs/frees count the cudaMalloc and
// cudaFree calls the allocator made since init: none once the cache holds every size a
// training step asks for.
typedef struct CsCudaMemoryStats {
  uint64_t allocated_bytes;       // in live blocks (tensors, scratch in use)
  uint64_t cached_bytes;          // in freed blocks kept for reuse
  uint64_t peak_allocated_bytes;  // the most allocated_bytes at once since init or the last reset
  uint64_t driver_allocs;
  uint64_t driver_frees;
  uint64_t allocs;                // cs_cuda_malloc calls (from the cache or the driver)
  uint64_t graph_reserved_bytes;  // freed blocks kept for captured graphs (not in cached_bytes)
} CsCudaMemoryStats;
int cs_cuda_memory_stats(int device, CsCudaMemoryStats* out);
// Starts a new peak: peak_allocated_bytes = allocated_bytes now.
int cs_cuda_reset_peak_memory(int device);
// How often the host has waited for the device since init: for the whole compute stream
// (cs_cuda_synchronize, every d2h copy) and for one event (cs_cuda_event_synchronize,
// cs_cuda_memcpy_d2h_after). A training step that reads its outcome a step late waits for events only.
int cs_cuda_wait_stats(int device, uint64_t* stream_syncs, uint64_t* event_waits);

// Copies on the device's stream. h2d returns once the host buffer may be reused;
// d2h waits for the stream (it is the synchronisation point) and reports any error
// recorded by earlier kernels; d2d is queued.
int cs_cuda_memcpy_h2d(void* dst, const void* src, size_t bytes, int device);
int cs_cuda_memcpy_d2h(void* dst, const void* src, size_t bytes, int device);
int cs_cuda_memcpy_d2d(void* dst, const void* src, size_t bytes, int device);
// Waits for the device's stream and reports errors recorded by earlier kernels.
int cs_cuda_synchronize(int device);

// Streams, events and page-locked memory, for uploads that overlap computation and reads
// that wait for one step only. Each device has two streams: 0 the compute stream (every op
// above), 1 the copy stream. Events are cudaEvent_t handles (no timing).
// Page-locked (pinned) host memory: copies from it run asynchronously in stream order, so
// the host must not rewrite it until an event recorded after the copy has completed.
int cs_cuda_host_alloc(void** ptr, size_t bytes, int device);
int cs_cuda_host_free(void* ptr, int device);
int cs_cuda_event_create(void** event, int device);
int cs_cuda_event_destroy(void* event, int device);
// An event that keeps its time, and the milliseconds between two such events once the end one
// has completed (waits for it). On the emulated device: the host's time running the work.
int cs_cuda_event_create_timed(void** event, int device);
int cs_cuda_event_elapsed_ms(void* start, void* end, float* ms, int device);
// Marks the point in `stream` after everything queued on it so far.
int cs_cuda_event_record(void* event, int stream, int device);
// *done = 1 when the work before the event's last record has completed (or it was never recorded).
int cs_cuda_event_query(void* event, int* done, int device);
int cs_cuda_event_synchronize(void* event, int device);
// Work queued on `stream` after this call starts once the event's work has completed (the host does not wait).
int cs_cuda_stream_wait_event(int stream, void* event, int device);
// A host-to-device copy queued on `stream`; from pinned memory it reads src when it runs.
int cs_cuda_memcpy_h2d_async(void* dst, const void* src, size_t bytes, int stream, int device);
// Waits for the event only (not for any stream: later work may still run), then copies
// bytes device → host and reports any error kernels recorded before the event.
int cs_cuda_memcpy_d2h_after(void* dst, const void* src, size_t bytes, void* event, int device);

// CUDA graphs of the compute stream. Between begin and end, the ops called are recorded, not
// run; they must not synchronise, read back, copy from pageable memory or allocate beyond
// the cache (the cache serves them; blocks freed inside become the graph's). end fails,
// naming why, when the work was not capturable (*graph stays null), and ends the capture in
// any case. launch replays the recorded work on the compute stream (same pointers, same
// arguments): step-dependent values must come from device memory.
int cs_cuda_graph_begin_capture(int device);
int cs_cuda_graph_end_capture(void** graph, int device);
int cs_cuda_graph_launch(void* graph, int device);
int cs_cuda_graph_destroy(void* graph, int device);

// The operand precision of the matrix kernels (GEMM, attention) and of the values they
// store: 0 fp32, 1 bf16 (the default), 2 fp16. Accumulation is fp32 in every mode.
// Process-wide, like the CPU's bf16 emulation switch; set by a run before its first step.
int cs_cuda_set_precision(int precision);
int cs_cuda_get_precision(void);

// 1 in the emulated device's library (libclipscale_cuda_emu.so, kernels compiled as host
// C++ on a fiber runtime), 0 in the GPU build.
int cs_cuda_emulated(void);
// Emulated device only: the order its fibers run in between barriers, for the launches
// the calling thread makes next: "inorder", "reversed", "random" or "random:<seed>".
// Fails in the GPU build and for another name.
int cs_cuda_emu_set_schedule(const char* schedule);
// Emulated device only: lazy = 1 makes the device's compute stream lazy (its work runs when
// waited for, like a busy GPU's), 0 eager again (the default: kernels run at launch), -1 keeps
// it; *pending = the works queued on it and not yet run. Fails in the GPU build.
int cs_cuda_emu_compute_stream(int device, int lazy, uint64_t* pending);

#ifdef __cplusplus
}
#endif
