// Attention's column kernels (attention_columns.h) in AVX-512 intrinsics, compiled with a
// function-level target so the addon itself needs no -m flags. The exponential is
// core/exp_math.h's exp_nonpositive, the same steps on 16 lanes.
// GCC 12 warns that its own intrinsics' _mm512_undefined_* "may be used uninitialized" (a false
// positive inside avx512fintrin.h); nothing here reads an undefined vector.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "cpu/attention_columns.h"

#include <cmath>
#include <limits>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define CS_AVX512 __attribute__((target("avx512f,fma")))

namespace cs::cpu::attention_detail {

namespace {

// exp_nonpositive on 16 lanes: t = n·ln2 + r (Cody–Waite), e^r by the degree-6 Taylor polynomial,
// 2^n into the exponent bits; t < -87 gives 0, NaN stays NaN.
CS_AVX512 inline __m512 exp_nonpositive16(__m512 t) {
  const __mmask16 nan = _mm512_cmp_ps_mask(t, t, _CMP_UNORD_Q);
  const __mmask16 underflow = _mm512_cmp_ps_mask(t, _mm512_set1_ps(-87.0f), _CMP_LT_OQ);
  const __m512 tc = _mm512_mask_mov_ps(t, nan | underflow, _mm512_set1_ps(-87.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(tc, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.42860682030941723212e-6f),
                                    _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), tc));
  __m512 p = _mm512_set1_ps(1.0f / 720.0f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  const __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvttps_epi32(n), _mm512_set1_epi32(127)), 23);
  const __m512 e = _mm512_mul_ps(p, _mm512_castsi512_ps(bits));
  return _mm512_mask_mov_ps(_mm512_maskz_mov_ps(static_cast<__mmask16>(~underflow), e), nan, t);
}

// Causal: the lanes of queries i0 … i0+15 that come before key j (i < j), a prefix of the lanes.
inline __mmask16 before_key(bool causal, int64_t j, int64_t i0) {
  if (!causal || j <= i0) return 0;
  const int64_t n = j - i0;
  return n >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << n) - 1u);
}

// The lanes < S of a block at i0.
inline __mmask16 valid_lanes(int64_t S, int64_t i0) {
  const int64_t n = S - i0;
  return n >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << n) - 1u);
}

// Causal: the lanes of a block whose query comes before key j (they see keys ≤ their own index):
// consecutive queries from i0 (before_key), or listed ones, whose indices lane_query holds.
CS_AVX512 inline __mmask16 masked_keys(bool causal, bool listed, __m512i lane_query, int64_t j, int64_t i0) {
  if (!causal) return 0;
  if (!listed) return before_key(true, j, i0);
  return _mm512_cmplt_epi32_mask(lane_query, _mm512_set1_epi32(static_cast<int32_t>(j)));
}

CS_AVX512 void softmax_columns(float* sT, int64_t keys, int64_t queries, int64_t ldS, bool causal,
                               const int32_t* query, float* lse) {
  const __m512 ninf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  for (int64_t i0 = 0; i0 < ldS; i0 += kQueryLanes) {
    // Causal: the lanes whose query comes before key j. Listed queries (query ≠ nullptr) compare
    // their indices; lanes past `queries` are unread.
    const bool listed = query != nullptr;
    const __m512i lane_query =
        listed ? _mm512_maskz_loadu_epi32(valid_lanes(queries, i0), query + i0) : _mm512_setzero_si512();
    // max over the keys; a NaN score loses (max_ps returns its second operand when either is NaN)
    __m512 m = ninf;
    for (int64_t j = 0; j < keys; j++) {
      const __mmask16 out = masked_keys(causal, listed, lane_query, j, i0);
      m = _mm512_max_ps(_mm512_mask_mov_ps(_mm512_loadu_ps(sT + j * ldS + i0), out, ninf), m);
    }
    __m512 sum = _mm512_setzero_ps();
    for (int64_t j = 0; j < keys; j++) {
      float* row = sT + j * ldS + i0;
      const __m512 v = _mm512_mask_mov_ps(_mm512_loadu_ps(row), masked_keys(causal, listed, lane_query, j, i0), ninf);
      const __m512 e = exp_nonpositive16(_mm512_sub_ps(v, m));
      _mm512_storeu_ps(row, e);
      sum = _mm512_add_ps(sum, e);
    }
    const __m512 inv = _mm512_div_ps(_mm512_set1_ps(1.0f), sum);
    for (int64_t j = 0; j < keys; j++) {
      float* row = sT + j * ldS + i0;
      // masked entries exactly 0, even in a NaN column (-inf − NaN is NaN)
      const __mmask16 kept = static_cast<__mmask16>(~masked_keys(causal, listed, lane_query, j, i0));
      _mm512_storeu_ps(row, _mm512_maskz_mul_ps(kept, _mm512_loadu_ps(row), inv));
    }
    if (lse) {
      alignas(64) float mv[16], sv[16];
      _mm512_store_ps(mv, m);
      _mm512_store_ps(sv, sum);
      for (int64_t l = 0; l < kQueryLanes && i0 + l < queries; l++) lse[i0 + l] = mv[l] + std::log(sv[l]);
    }
  }
}

CS_AVX512 void probs_from_lse_columns(float* sT, int64_t S, int64_t ldS, bool causal, const float* l) {
  for (int64_t i0 = 0; i0 < ldS; i0 += kQueryLanes) {
    // lanes past S: +inf, so their (unread) values stay in exp's domain whatever the buffer held
    const __m512 lanes = _mm512_mask_loadu_ps(_mm512_set1_ps(std::numeric_limits<float>::infinity()),
                                              valid_lanes(S, i0), l + i0);
    for (int64_t j = 0; j < S; j++) {
      float* row = sT + j * ldS + i0;
      const __m512 e = exp_nonpositive16(_mm512_sub_ps(_mm512_loadu_ps(row), lanes));
      _mm512_storeu_ps(row, _mm512_maskz_mov_ps(static_cast<__mmask16>(~before_key(causal, j, i0)), e));
    }
  }
}

CS_AVX512 void score_gradient_columns(float* dsT, const float* pT, const float* rowdot, int64_t S, int64_t ldS) {
  for (int64_t i0 = 0; i0 < ldS; i0 += kQueryLanes) {
    const __m512 lanes = _mm512_maskz_loadu_ps(valid_lanes(S, i0), rowdot + i0);
    for (int64_t j = 0; j < S; j++) {
      float* row = dsT + j * ldS + i0;
      _mm512_storeu_ps(row, _mm512_mul_ps(_mm512_loadu_ps(pT + j * ldS + i0), _mm512_sub_ps(_mm512_loadu_ps(row), lanes)));
    }
  }
}

}  // namespace

const ColumnKernels* avx512_column_kernels() {
  static const ColumnKernels kernels{softmax_columns, probs_from_lse_columns, score_gradient_columns};
  static const bool available = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
  }();
  return available ? &kernels : nullptr;
}

}  // namespace cs::cpu::attention_detail

#else  // not x86-64 with GCC/clang: the row-wise path everywhere

namespace cs::cpu::attention_detail {
const ColumnKernels* avx512_column_kernels() { return nullptr; }
}  // namespace cs::cpu::attention_detail

#endif
