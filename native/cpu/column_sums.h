// acc[n] += Σ_m rows[m·ld + n] over m in order (a bias gradient's sum of dY's rows), vectorised
// across the columns: every column still adds its rows one after another, so the sums are the
// same on every instruction set and as the plain loop's.
#pragma once
#include <cstdint>

namespace cs::cpu {

void add_rows(const float* rows, int64_t ld, int64_t m, int64_t n, float* acc);

// The same sums of the values rounded to bf16 (round_bf16, nearest even, NaN kept), without a
// rounded copy: the bf16 mode's bias gradient.
void add_rows_bf16(const float* rows, int64_t ld, int64_t m, int64_t n, float* acc);

// acc[j] (+)= Σ_t partials[t·n + j], the threads' partial sums added in thread order onto acc (or
// onto zero): the last step of every bias gradient, so each path gives the same sums.
inline void add_partials(float* acc, const float* partials, int count, int64_t n, bool accumulate) {
  if (!accumulate)
    for (int64_t j = 0; j < n; j++) acc[j] = 0.0f;
  for (int t = 0; t < count; t++)
    for (int64_t j = 0; j < n; j++) acc[j] += partials[t * n + j];
}

}  // namespace cs::cpu
