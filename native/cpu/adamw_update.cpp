// Built for AVX-512, AVX2 and baseline x86-64 (compiled once for the baseline, the update ran four
// elements a step, its square root and division included). With fp-contract off, every target
// rounds each multiply and add as the baseline does, so the update is the same bit for bit on
// every machine, as before.
#pragma GCC optimize("fp-contract=off")

#include "cpu/adamw_update.h"

#include <cmath>

#include "core/dtype.h"
#include "core/target_clones.h"

namespace cs::cpu {

CS_TARGET_CLONES void adamw_update_range(const AdamWScalars& s, float* p, const float* g, float* m, float* v,
                                         uint16_t* pb, bool f16, int64_t b, int64_t e) {
  const float b1 = s.b1, b2 = s.b2, decay = s.decay, step_size = s.step_size, inv_sqrt_bc2 = s.inv_sqrt_bc2,
              eps = s.eps, gs = s.grad_scale;
  for (int64_t i = b; i < e; i++) {
    const float gi = g[i] * gs;
    const float mi = b1 * m[i] + (1.0f - b1) * gi;
    const float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * decay - step_size * mi / (std::sqrt(vi) * inv_sqrt_bc2 + eps);
  }
  if (pb)
    for (int64_t i = b; i < e; i++) pb[i] = f16 ? f32_to_f16_bits(p[i]) : f32_to_bf16_bits(p[i]);
}

}  // namespace cs::cpu
