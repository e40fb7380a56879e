// The bf16 GEMM's portable kernel and conversions: the same arithmetic as the AVX-512 BF16
// kernel, scalar. Each pair is added high product first, then low, each addition rounded —
// VDPBF16PS's order (measured bit for bit on AMD Zen 5 over a million random pairs; products of
// bf16 values are exact in fp32, so an FMA is one such addition). It runs where the CPU lacks
// the instruction, so the driver (conversion, blocking, threads) is tested everywhere.
#include <cmath>
#include <cstring>

#include "core/dtype.h"
#include "cpu/gemm_bf16_kernels.h"

namespace cs::cpu::gemm_bf16_detail {

namespace {

inline uint32_t pair(float lo, float hi) {
  return static_cast<uint32_t>(f32_to_bf16_bits(lo)) | (static_cast<uint32_t>(f32_to_bf16_bits(hi)) << 16);
}
inline float low_half(uint32_t p) { return bf16_bits_to_f32(static_cast<uint16_t>(p & 0xffffu)); }
inline float high_half(uint32_t p) { return bf16_bits_to_f32(static_cast<uint16_t>(p >> 16)); }

void pair_two_rows(const float* lo, const float* hi, int64_t n, uint32_t* dst) {
  for (int64_t j = 0; j < n; j++) dst[j] = pair(lo[j], hi ? hi[j] : 0.0f);
}

void pair_along_row(const float* src, int64_t k, uint32_t* dst) {
  for (int64_t p = 0; 2 * p < k; p++) dst[p] = pair(src[2 * p], 2 * p + 1 < k ? src[2 * p + 1] : 0.0f);
}

void pack_transposed_panel(const float* w, int64_t ldw, int64_t nv, int64_t k, uint32_t* rows, uint32_t* panel, int64_t panel_ks) {
  const int64_t kp = (k + 1) / 2;
  for (int64_t j = 0; j < nv; j++) pair_along_row(w + j * ldw, k, rows + j * kp);
  for (int64_t p = 0; p < kp; p++)
    for (int64_t j = 0; j < kNR; j++) panel[p * panel_ks + j] = j < nv ? rows[j * kp + p] : 0u;
}

template <bool ARows>
void tile(int64_t kcp, const uint32_t* a, int64_t a_ks, const uint32_t* b, int64_t b_ks, float* c, int64_t ldc,
          float alpha, float beta, const float* bias, bool round_c) {
  float acc[kMR][kNR] = {};
  for (int64_t p = 0; p < kcp; p++) {
    for (int r = 0; r < kMR; r++) {
      const uint32_t ap = ARows ? a[r * a_ks + p] : a[p * a_ks + r];
      const float a_lo = low_half(ap), a_hi = high_half(ap);
      for (int j = 0; j < kNR; j++) {
        const uint32_t bp = b[p * b_ks + j];
        acc[r][j] = std::fma(a_lo, low_half(bp), std::fma(a_hi, high_half(bp), acc[r][j]));
      }
    }
  }
  // The AVX-512 kernel's epilogue, operation for operation.
  for (int r = 0; r < kMR; r++)
    for (int j = 0; j < kNR; j++) {
      float* cr = c + r * ldc + j;
      const float bv = bias ? bias[j] : 0.0f;
      float v;
      if (bias) v = std::fma(alpha, acc[r][j], beta == 0.0f ? bv : std::fma(beta, *cr, bv));
      else if (beta == 0.0f) v = alpha * acc[r][j];
      else v = std::fma(alpha, acc[r][j], beta * *cr);
      *cr = round_c ? round_bf16(v) : v;
    }
}

void kernel_packed(int64_t kcp, const uint32_t* a, int64_t a_ks, const uint32_t* b, int64_t b_ks, float* c,
                   int64_t ldc, float alpha, float beta, const float* bias, bool round_c) {
  tile<false>(kcp, a, a_ks, b, b_ks, c, ldc, alpha, beta, bias, round_c);
}

void kernel_a_rows(int64_t kcp, const uint32_t* a, int64_t a_ks, const uint32_t* b, int64_t b_ks, float* c,
                   int64_t ldc, float alpha, float beta, const float* bias, bool round_c) {
  tile<true>(kcp, a, a_ks, b, b_ks, c, ldc, alpha, beta, bias, round_c);
}

}  // namespace

Bf16KernelSpec bf16_portable_kernel() {
  return {"portable", kernel_packed, kernel_a_rows, pair_along_row, pair_two_rows, pack_transposed_panel};
}

}  // namespace cs::cpu::gemm_bf16_detail
