// The C ABI's emulation entry points (abi.h): which build this is, and the emulated
// device's schedule option. The GPU build answers "not emulated" and refuses the rest.
#include "cuda/abi.h"
#include "cuda/runtime.h"

#if defined(CLIPSCALE_EMULATED_DEVICE)
#include "cuda/emu/emu_internal.h"
#endif

using namespace cs_cuda;

extern "C" {

int cs_cuda_emulated(void) {
#if defined(CLIPSCALE_EMULATED_DEVICE)
  return 1;
#else
  return 0;
#endif
}

int cs_cuda_emu_set_schedule(const char* schedule) {
#if defined(CLIPSCALE_EMULATED_DEVICE)
  cs_emu::Schedule s;
  if (!cs_emu::parse_schedule(schedule, &s))
    return fail("emuSetSchedule: schedule must be inorder, reversed, random or random:<seed>, got '%s'",
                schedule ? schedule : "(null)");
  cs_emu::set_schedule(s);
  return 0;
#else
  return fail("emuSetSchedule: this is the GPU build of the CUDA backend, not the emulated device");
#endif
}

}  // extern "C"
