#include "cpu/column_sums.h"

#include <algorithm>
#include <cstring>

#include "core/dtype.h"
#include "core/target_clones.h"

namespace cs::cpu {

namespace {

// 16 floats: one AVX-512 register, two AVX2 ones, four SSE ones (GCC and clang lower the width).
typedef float Lanes __attribute__((vector_size(64)));
constexpr int64_t kLanes = 16;
constexpr int kMaxVectors = 8;  // 128 columns a pass: eight accumulators of AVX-512's 32 registers

// Vectors a pass for this CPU: eight take 16 of AVX2's 16 ymm registers (32 of SSE's 16 xmm), and
// the AVX2 clone kept its sums on the stack, loading and storing each one every row. A column's
// sum runs over the rows in order whatever the pass width, so every width gives the same bits.
int max_vectors() {
#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
  static const int n = __builtin_cpu_supports("avx512f") ? 8 : __builtin_cpu_supports("avx2") ? 4 : 2;
  return n;
#else
  return kMaxVectors;
#endif
}

// acc[0, 16·V) += Σ_r rows[r·ld + j], the partial sums held in V registers over every row.
template <int V>
__attribute__((always_inline)) inline void add_rows_in_registers(const float* rows, int64_t ld, int64_t m, float* acc) {
  Lanes sum[V];
  for (int v = 0; v < V; v++) std::memcpy(&sum[v], acc + v * kLanes, sizeof(Lanes));
  for (int64_t r = 0; r < m; r++) {
    const float* row = rows + r * ld;
    for (int v = 0; v < V; v++) {
      Lanes x;
      std::memcpy(&x, row + v * kLanes, sizeof(Lanes));
      sum[v] += x;
    }
  }
  for (int v = 0; v < V; v++) std::memcpy(acc + v * kLanes, &sum[v], sizeof(Lanes));
}

}  // namespace

// Built for AVX-512, AVX2 and baseline x86-64. The sums stay in registers across the rows, up to
// 128 columns a pass: a loop that added each row into acc in memory (acc may alias the rows, so
// the compiler kept it there) took 28-55 µs of a narrow layer's 200-800 µs backward op, summing
// half a batch's 2,048 rows of 64-192 columns.
CS_TARGET_CLONES void add_rows(const float* rows, int64_t ld, int64_t m, int64_t n, float* acc) {
  const int most = max_vectors();
  int64_t j = 0;
  for (; j + kLanes <= n; ) {
    const int vectors = static_cast<int>(std::min<int64_t>(most, (n - j) / kLanes));
    const float* r = rows + j;
    float* a = acc + j;
    switch (vectors) {
      case 8: add_rows_in_registers<8>(r, ld, m, a); break;
      case 7: add_rows_in_registers<7>(r, ld, m, a); break;
      case 6: add_rows_in_registers<6>(r, ld, m, a); break;
      case 5: add_rows_in_registers<5>(r, ld, m, a); break;
      case 4: add_rows_in_registers<4>(r, ld, m, a); break;
      case 3: add_rows_in_registers<3>(r, ld, m, a); break;
      case 2: add_rows_in_registers<2>(r, ld, m, a); break;
      default: add_rows_in_registers<1>(r, ld, m, a); break;
    }
    j += vectors * kLanes;
  }
  if (j == n) return;
  for (int64_t r = 0; r < m; r++) {  // the last n mod 16 columns
    const float* row = rows + r * ld;
    for (int64_t c = j; c < n; c++) acc[c] += row[c];
  }
}

CS_TARGET_CLONES void add_rows_bf16(const float* rows, int64_t ld, int64_t m, int64_t n, float* acc) {
  for (int64_t r = 0; r < m; r++) {
    const float* row = rows + r * ld;
    for (int64_t j = 0; j < n; j++) acc[j] += round_bf16(row[j]);
  }
}

}  // namespace cs::cpu
