#include "core/numerics.h"

#include <atomic>

namespace cs {

static std::atomic<bool> g_bf16_emulation{false};

bool bf16_emulation() { return g_bf16_emulation.load(std::memory_order_relaxed); }
void set_bf16_emulation(bool on) { g_bf16_emulation.store(on, std::memory_order_relaxed); }

}  // namespace cs
