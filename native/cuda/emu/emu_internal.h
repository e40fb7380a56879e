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

}  // namespace cs_emu
