#include "cpu/column_sums.h"

#include "core/dtype.h"
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

CS_TARGET_CLONES void add_rows_bf16(const float* rows, int64_t ld, int64_t m, int64_t n, float* acc) {
  for (int64_t r = 0; r < m; r++) {
    const float* row = rows + r * ld;
    for (int64_t j = 0; j < n; j++) acc[j] += round_bf16(row[j]);
  }
}

}  // namespace cs::cpu
