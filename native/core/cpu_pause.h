// One spin-wait step: tells the core this thread is busy-waiting (x86 PAUSE, Arm YIELD), so a
// spinning loop yields pipeline resources and power without giving up its time slice.
#pragma once

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#endif

namespace cs {

inline void cpu_pause() {
#if defined(__x86_64__) || defined(_M_X64)
  _mm_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

}  // namespace cs
