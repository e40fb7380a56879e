// The bf16 GEMM's micro-kernels and operand conversions, one set per instruction set; the
// driver in gemm_bf16.cpp converts, blocks and threads.
//
// Operands are held as pairs along k: a uint32 whose low half is the bf16 of op(X)[·, 2p] and
// whose high half that of op(X)[·, 2p+1] (zero past K), VDPBF16PS's layout. A micro-kernel
// computes one 14×32 tile of C over kcp pairs:
//   a: 14 pairs per p, at a[p·a_ks + r] (pairs of rows) or a[r·a_ks + p] (rows)
//   b: 32 pairs per p, at b[p·b_ks + j]
//   C[r, j] = alpha · Σ_p (a_hi·b_hi + a_lo·b_lo) + beta · C[r, j] + bias[j]
// each pair added to the fp32 accumulator high product first, then low, each addition rounded
// (VDPBF16PS's order; products of bf16 values are exact in fp32). beta == 0 does not read C;
// round_c rounds what is stored to bf16.
#pragma once
#include <cstdint>

namespace cs::cpu::gemm_bf16_detail {

constexpr int kMR = 14;
constexpr int kNR = 32;

using Bf16MicroKernel = void (*)(int64_t kcp, const uint32_t* a, int64_t a_ks, const uint32_t* b, int64_t b_ks,
                                 float* c, int64_t ldc, float alpha, float beta, const float* bias, bool round_c);
// dst[p] = pair(src[2p], src[2p+1]) for p < ceil(k/2) (odd k: the last high half is 0).
using PairAlongRow = void (*)(const float* src, int64_t k, uint32_t* dst);
// dst[j] = pair(lo[j], hi[j]) for j < n (hi null: every high half 0).
using PairTwoRows = void (*)(const float* lo, const float* hi, int64_t n, uint32_t* dst);

// A B panel of op(B) = Wᵀ (W row-major [N, K], rows ldw apart): panel[p·panel_ks + j] = pair(W[j, 2p],
// W[j, 2p+1]) for the panel's nv ≤ 32 rows of W, zero for j < 32 past nv. rows: scratch of 32·ceil(k/2).
using PackTransposedPanel = void (*)(const float* w, int64_t ldw, int64_t nv, int64_t k, uint32_t* rows,
                                     uint32_t* panel, int64_t panel_ks);

struct Bf16KernelSpec {
  const char* name;
  Bf16MicroKernel fn;         // a in packed panels
  Bf16MicroKernel fn_a_rows;  // a read as rows
  PairAlongRow pair_along_row;
  PairTwoRows pair_two_rows;
  PackTransposedPanel pack_transposed_panel;
};

Bf16KernelSpec bf16_portable_kernel();
Bf16KernelSpec bf16_avx512_kernel();  // only where bf16_avx512_built()
bool bf16_avx512_built();

}  // namespace cs::cpu::gemm_bf16_detail
