#include "cpu/column_sums.h"

#include <cstdint>
#include <cstring>

#include "core/target_clones.h"

namespace cs::cpu {

// Built for AVX-512, AVX2 and baseline x86-64: compiled once for the baseline, the loop summed
// four columns a step and was most of a narrow layer's weight-gradient region besides the GEMM.
CS_TARGET_CLONES void add_rows(const float* rows, int64_t ld, int64_t m, int64_t n, float* acc) {
  for (int64_t r = 0; r < m; r++) {
    const float* row = rows + r * ld;
    for (int64_t j = 0; j < n; j++) acc[j] += row[j];
  }
}

// round_bf16 without branches, so the loop vectorises as add_rows does.
static inline float rounded_bf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  const bool nan = (u & 0x7fffffffu) > 0x7f800000u;
  const uint32_t r = (nan ? (u | 0x00400000u) : u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
  float f;
  std::memcpy(&f, &r, 4);
  return f;
}

CS_TARGET_CLONES void add_rows_bf16(const float* rows, int64_t ld, int64_t m, int64_t n, float* acc) {
  for (int64_t r = 0; r < m; r++) {
    const float* row = rows + r * ld;
    for (int64_t j = 0; j < n; j++) acc[j] += rounded_bf16(row[j]);
  }
}

}  // namespace cs::cpu
