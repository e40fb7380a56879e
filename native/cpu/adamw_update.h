// The AdamW update of elements [b, e) (adamw.cpp prepares the scalars and splits the range).
#pragma once
#include <cstdint>

namespace cs::cpu {

struct AdamWScalars {
  float b1, b2, decay, step_size, inv_sqrt_bc2, eps, grad_scale;
};

// m, v, p updated in place; pb (nullable) receives p's bf16 (or f16 when f16) bits.
void adamw_update_range(const AdamWScalars& s, float* p, const float* g, float* m, float* v, uint16_t* pb, bool f16,
                        int64_t b, int64_t e);

}  // namespace cs::cpu
