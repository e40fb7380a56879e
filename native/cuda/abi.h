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
#define CS_CUDA_ABI_VERSION 1

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

// Copies on the device's stream. h2d returns once the host buffer may be reused;
// d2h waits for the stream (it is the synchronisation point) and reports any error
// recorded by earlier kernels; d2d is queued.
int cs_cuda_memcpy_h2d(void* dst, const void* src, size_t bytes, int device);
int cs_cuda_memcpy_d2h(void* dst, const void* src, size_t bytes, int device);
int cs_cuda_memcpy_d2d(void* dst, const void* src, size_t bytes, int device);
// Waits for the device's stream and reports errors recorded by earlier kernels.
int cs_cuda_synchronize(int device);

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

#ifdef __cplusplus
}
#endif
