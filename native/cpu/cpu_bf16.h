// What this CPU offers for bf16 matrix work, detected at run time. clipscale has no bf16
// speed kernel yet: on the CPU, bf16 is emulated (fp32 math rounded where the GPU rounds),
// so these flags say whether such a kernel could run here, not that one does.
#pragma once

namespace cs::cpu {

struct Bf16Support {
  bool avx512_bf16;  // VDPBF16PS (Cooper Lake, Sapphire Rapids, Zen 4 and later)
  bool amx_bf16;     // AMX tiles with TDPBF16PS (Sapphire Rapids and later), OS-enabled
};

Bf16Support cpu_bf16_support();

}  // namespace cs::cpu
