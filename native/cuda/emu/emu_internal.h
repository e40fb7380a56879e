// Internals shared by the emulated device's runtime files (not seen by kernels).
#pragma once
#include <stdint.h>

#include <string>

#include "cuda_runtime.h"

namespace cs_emu {

enum class ScheduleKind { InOrder, Reversed, Random };
struct Schedule {
  ScheduleKind kind;
  uint64_t seed;
};
// "inorder", "reversed", "random" or "random:<seed>"; false for anything else.
bool parse_schedule(const char* text, Schedule* s);
// The calling thread's schedule for the launches that follow.
void set_schedule(const Schedule& s);

// Runs a launch to completion; on failure returns the error and its message.
cudaError_t run_launch(const char* name, dim3 grid, dim3 block, size_t smem, ThreadBody body, void* ctx,
                       std::string* error);

// "address 0x… : 4 bytes past the end of the 4096-byte allocation at 0x…" (device_api.cpp);
// safe enough to call from the fault handler (no allocation happens on that path but strings).
std::string describe_address(const void* addr);

// device_api.cpp: records e (with its message) as the calling thread's last error unless one
// is pending already; returns e.
cudaError_t set_error(cudaError_t e, std::string message);
cudaError_t last_error();
// Whether p lies in a device allocation (else it is host memory).
bool is_device_memory(const void* p);
// Checks that [dst, dst+bytes) (and [src, src+bytes) unless src is null) stay inside the
// device allocations they start in; sets and returns an error naming `what` otherwise.
cudaError_t check_ranges(void* dst, const void* src, size_t bytes, const char* what);
cudaError_t copy_checked(void* dst, const void* src, size_t bytes, const char* what);

// streams.cpp: queues a checked launch on its stream (runs it now on an eager stream, records
// it while the stream captures a graph).
cudaError_t submit_launch(const char* name, dim3 grid, dim3 block, size_t smem, cudaStream_t stream, ThreadBody body,
                          void* ctx, CloneCtx clone, FreeCtx free_ctx);
// Whether some stream is capturing a graph (cudaMalloc, cudaFree and synchronous copies fail then).
bool capture_active();
// capture_active() unless the calling thread switched to relaxed mode (cudaMalloc/cudaFree are allowed then).
bool capture_forbids_unsafe_calls();

}  // namespace cs_emu
