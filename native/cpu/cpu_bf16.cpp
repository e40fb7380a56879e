#include "cpu/cpu_bf16.h"

#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
#include <cpuid.h>
#endif

namespace cs::cpu {

Bf16Support cpu_bf16_support() {
  Bf16Support s{false, false};
#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
  unsigned a, b, c, d;
  if (__get_cpuid_max(0, nullptr) < 7) return s;
  // Leaf 7 subleaf 1, EAX bit 5: AVX512_BF16.
  __cpuid_count(7, 1, a, b, c, d);
  s.avx512_bf16 = (a >> 5) & 1;
  // Leaf 7 subleaf 0, EDX bit 22: AMX-BF16; bit 24: AMX-TILE. The OS must also enable the
  // tile state (XCR0 bits 17 and 18) for AMX to be usable.
  __cpuid_count(7, 0, a, b, c, d);
  const bool amx = ((d >> 22) & 1) && ((d >> 24) & 1);
  bool os_tiles = false;
  __cpuid(1, a, b, c, d);
  if ((c >> 27) & 1) {  // OSXSAVE: XGETBV is available
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    os_tiles = ((lo >> 17) & 3) == 3;
  }
  s.amx_bf16 = amx && os_tiles;
  // AVX-512 BF16 needs the OS to save zmm state too (XCR0 bits 5-7), as any AVX-512 does.
  if (s.avx512_bf16 && !__builtin_cpu_supports("avx512f")) s.avx512_bf16 = false;
#endif
  return s;
}

}  // namespace cs::cpu
