// Process-wide numeric mode. With bf16 emulation on, the CPU backend rounds to bf16
// at the points where the GPU stores bf16 (matmul operands, stored activations), so
// CPU runs predict GPU numerics.
#pragma once
#include "core/dtype.h"

namespace cs {

bool bf16_emulation();
void set_bf16_emulation(bool on);

// Round x when bf16 emulation is on; identity otherwise.
inline float maybe_round_bf16(float x, bool emulate) { return emulate ? round_bf16(x) : x; }

}  // namespace cs
