#include "cpu/zero_rows.h"

#include <algorithm>
#include <cstring>

#include "core/env_switch.h"
#include "core/thread_pool.h"

namespace cs::cpu {

bool skip_zero_rows_enabled() {
  static const bool on = env_switch_on("CLIPSCALE_SKIP_ZERO_ROWS");
  return on;
}

// Bit patterns with only the sign bit, at most. The OR of 16 values at a time vectorises and a
// non-zero row usually stops at its first block.
bool row_is_zero(const float* row, int64_t cols) {
  int64_t c = 0;
  for (; c + 16 <= cols; c += 16) {
    uint32_t any = 0;
    for (int i = 0; i < 16; i++) {
      uint32_t bits;
      std::memcpy(&bits, row + c + i, sizeof bits);
      any |= bits & 0x7fffffffu;
    }
    if (any) return false;
  }
  for (; c < cols; c++) {
    uint32_t bits;
    std::memcpy(&bits, row + c, sizeof bits);
    if (bits & 0x7fffffffu) return false;
  }
  return true;
}

namespace {

// Work per thread chunk: about 32K values (rows of the wider of the two matrices).
int64_t rows_grain(int64_t cols) { return std::max<int64_t>(1, (int64_t{1} << 15) / std::max<int64_t>(cols, 1)); }

}  // namespace

void nonzero_rows(const float* src, int64_t rows, int64_t cols, int64_t ld, std::vector<int32_t>& out) {
  out.clear();
  if (rows <= 0) return;
  static thread_local std::vector<uint8_t> flags;  // kept: a training step repeats its sizes
  flags.resize(static_cast<size_t>(rows));
  uint8_t* const f = flags.data();  // the workers' own thread_local would be another vector
  parallel_for(rows, rows_grain(cols), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) f[r] = row_is_zero(src + r * ld, cols) ? 0 : 1;
  });
  for (int64_t r = 0; r < rows; r++)
    if (f[r]) out.push_back(static_cast<int32_t>(r));
}

void gather_rows(const float* src, int64_t ld, int64_t cols, const int32_t* index, int64_t count, float* dst) {
  parallel_for(count, rows_grain(cols), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) std::memcpy(dst + i * cols, src + index[i] * ld, static_cast<size_t>(cols) * sizeof(float));
  });
}

void scatter_rows(const float* src, int64_t cols, const int32_t* index, int64_t count, int64_t rows, float* dst,
                  int64_t ld) {
  // Row r of dst: the next listed row's values if r is listed, else zeros. Each thread takes a
  // range of dst's rows and finds where its listed rows start by binary search.
  parallel_for(rows, rows_grain(cols), [&](int64_t r0, int64_t r1) {
    int64_t i = std::lower_bound(index, index + count, static_cast<int32_t>(r0)) - index;
    for (int64_t r = r0; r < r1; r++) {
      float* d = dst + r * ld;
      if (i < count && index[i] == r) std::memcpy(d, src + (i++) * cols, static_cast<size_t>(cols) * sizeof(float));
      else std::fill(d, d + cols, 0.0f);
    }
  });
}

}  // namespace cs::cpu
