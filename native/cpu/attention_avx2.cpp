// Attention's column kernels (attention_columns.h) in AVX2 + FMA intrinsics: the AVX-512 kernels'
// steps on 8 lanes, so a block of 16 queries (kQueryLanes, the layout both share) is two vectors,
// and each lane computes what it computes there, bit for bit. Masks are lane vectors (all ones or
// zero) rather than mask registers. Compiled with a function-level target, as the AVX-512 file is.

#include "cpu/attention_columns.h"

#include <cmath>
#include <limits>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define CS_AVX2 __attribute__((target("avx2,fma")))

namespace cs::cpu::attention_detail {

namespace {

constexpr int64_t kLanes8 = 8;

// exp_nonpositive on 8 lanes: the steps of exp_nonpositive16 (attention_avx512.cpp).
CS_AVX2 inline __m256 exp_nonpositive8(__m256 t) {
  const __m256 nan = _mm256_cmp_ps(t, t, _CMP_UNORD_Q);
  const __m256 underflow = _mm256_cmp_ps(t, _mm256_set1_ps(-87.0f), _CMP_LT_OQ);
  const __m256 tc = _mm256_blendv_ps(t, _mm256_set1_ps(-87.0f), _mm256_or_ps(nan, underflow));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(tc, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.42860682030941723212e-6f),
                                    _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), tc));
  __m256 p = _mm256_set1_ps(1.0f / 720.0f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(n), _mm256_set1_epi32(127)), 23);
  const __m256 e = _mm256_andnot_ps(underflow, _mm256_mul_ps(p, _mm256_castsi256_ps(bits)));
  return _mm256_blendv_ps(e, t, nan);
}

// The indices i0 … i0+7 of a block's lanes.
CS_AVX2 inline __m256i lane_indices(int64_t i0) {
  return _mm256_add_epi32(_mm256_set1_epi32(static_cast<int32_t>(i0)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// All ones in the lanes < n of a block at i0 (n − i0 of them, at most 8).
CS_AVX2 inline __m256i lanes_below(int64_t n, int64_t i0) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int32_t>(n)), lane_indices(i0));
}

// Causal: all ones in the lanes whose query (index in lane_query) comes before key j, which it does
// not see; zero when not causal.
CS_AVX2 inline __m256 masked_keys(bool causal, __m256i lane_query, int64_t j) {
  if (!causal) return _mm256_setzero_ps();
  return _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int32_t>(j)), lane_query));
}

CS_AVX2 void softmax_columns(float* sT, int64_t keys, int64_t queries, int64_t ldS, bool causal, const int32_t* query,
                             float* lse) {
  const __m256 ninf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  for (int64_t i0 = 0; i0 < ldS; i0 += kLanes8) {
    // Each lane's query index: consecutive from i0, or the listed ones (lanes past `queries` unread).
    const __m256i lane_query =
        query ? _mm256_maskload_epi32(query + i0, lanes_below(queries, i0)) : lane_indices(i0);
    // max over the keys; a NaN score loses (max_ps returns its second operand when either is NaN)
    __m256 m = ninf;
    for (int64_t j = 0; j < keys; j++)
      m = _mm256_max_ps(_mm256_blendv_ps(_mm256_loadu_ps(sT + j * ldS + i0), ninf, masked_keys(causal, lane_query, j)), m);
    __m256 sum = _mm256_setzero_ps();
    for (int64_t j = 0; j < keys; j++) {
      float* row = sT + j * ldS + i0;
      const __m256 v = _mm256_blendv_ps(_mm256_loadu_ps(row), ninf, masked_keys(causal, lane_query, j));
      const __m256 e = exp_nonpositive8(_mm256_sub_ps(v, m));
      _mm256_storeu_ps(row, e);
      sum = _mm256_add_ps(sum, e);
    }
    const __m256 inv = _mm256_div_ps(_mm256_set1_ps(1.0f), sum);
    for (int64_t j = 0; j < keys; j++) {
      float* row = sT + j * ldS + i0;
      // masked entries exactly 0, even in a NaN column (-inf − NaN is NaN)
      _mm256_storeu_ps(row, _mm256_andnot_ps(masked_keys(causal, lane_query, j), _mm256_mul_ps(_mm256_loadu_ps(row), inv)));
    }
    if (lse) {
      alignas(32) float mv[8], sv[8];
      _mm256_store_ps(mv, m);
      _mm256_store_ps(sv, sum);
      for (int64_t l = 0; l < kLanes8 && i0 + l < queries; l++) lse[i0 + l] = mv[l] + std::log(sv[l]);
    }
  }
}

CS_AVX2 void probs_from_lse_columns(float* sT, int64_t S, int64_t ldS, bool causal, const float* l) {
  for (int64_t i0 = 0; i0 < ldS; i0 += kLanes8) {
    // lanes past S: +inf, so their (unread) values stay in exp's domain whatever the buffer held
    const __m256i valid = lanes_below(S, i0);
    const __m256 lanes = _mm256_blendv_ps(_mm256_set1_ps(std::numeric_limits<float>::infinity()),
                                          _mm256_maskload_ps(l + i0, valid), _mm256_castsi256_ps(valid));
    const __m256i queries = lane_indices(i0);
    for (int64_t j = 0; j < S; j++) {
      float* row = sT + j * ldS + i0;
      const __m256 e = exp_nonpositive8(_mm256_sub_ps(_mm256_loadu_ps(row), lanes));
      _mm256_storeu_ps(row, _mm256_andnot_ps(masked_keys(causal, queries, j), e));
    }
  }
}

CS_AVX2 void score_gradient_columns(float* dsT, const float* pT, const float* rowdot, int64_t S, int64_t ldS) {
  for (int64_t i0 = 0; i0 < ldS; i0 += kLanes8) {
    const __m256 lanes = _mm256_maskload_ps(rowdot + i0, lanes_below(S, i0));
    for (int64_t j = 0; j < S; j++) {
      float* row = dsT + j * ldS + i0;
      _mm256_storeu_ps(row, _mm256_mul_ps(_mm256_loadu_ps(pT + j * ldS + i0), _mm256_sub_ps(_mm256_loadu_ps(row), lanes)));
    }
  }
}

}  // namespace

const ColumnKernels* avx2_column_kernels() {
  static const ColumnKernels kernels{softmax_columns, probs_from_lse_columns, score_gradient_columns};
  static const bool available = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return available ? &kernels : nullptr;
}

}  // namespace cs::cpu::attention_detail

#else  // not x86-64 with GCC/clang: the row-wise path everywhere

namespace cs::cpu::attention_detail {
const ColumnKernels* avx2_column_kernels() { return nullptr; }
}  // namespace cs::cpu::attention_detail

#endif
