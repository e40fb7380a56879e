// Register-tiled SGEMM micro-kernels, one per instruction set, and the packed
// panel layout they read. The driver in gemm.cpp packs, blocks and threads.
//
// A micro-kernel computes one MR×NR tile of C from two operands that each give, for every
// k, their values contiguously:
//   a: kc steps of MR values (column k of the MR rows of op(A)), a_ks floats apart
//   b: kc steps of NR values (row k of the NR columns of op(B)), b_ks floats apart
//   C[r, j] = alpha · Σ_k a[k·a_ks + r] · b[k·b_ks + j] + beta · C[r, j]
// Packed panels have a_ks = MR and b_ks = NR. The stride also lets the kernel read a plain
// B (row k of a row-major matrix) where it lies, with no packing: for narrow products
// packing costs about as much as the math.
// beta == 0 writes C without reading it. bias (nullable, NR values) is added to every row
// (a linear layer's bias as the epilogue, instead of a pass of its own). kc ≥ 1.
#pragma once
#include <cstdint>

namespace cs::cpu::gemm_detail {

using MicroKernel = void (*)(int64_t kc, const float* a, int64_t a_ks, const float* b, int64_t b_ks, float* c,
                             int64_t ldc, float alpha, float beta, const float* bias);

// Packs `rows` rows (of `width`, the rest zero) of a row-major matrix, kc columns from src,
// transposed: dst[k·width + r] = src[r·ld + k]. This is op(A) without a transpose, and
// op(B) with one (a PyTorch linear weight), packed for the micro-kernel.
using TransposePack = void (*)(const float* src, int64_t ld, int64_t rows, int64_t width, int64_t kc, float* dst);

// An edge tile in place: C[0:mv, 0:nv] (1 ≤ mv ≤ MR, 1 ≤ nv ≤ NR) from the same operands as a full
// tile (b still holds NR readable values per k), computing only the mv valid rows and touching
// only the valid part of C. Null where a kernel has none: the driver then computes a full tile
// into a buffer and copies its valid part out.
using EdgeKernel = void (*)(int64_t kc, const float* a, int64_t a_ks, const float* b, int64_t b_ks, float* c,
                            int64_t ldc, float alpha, float beta, const float* bias, int mv, int nv);

struct KernelSpec {
  const char* name;
  int mr, nr;
  MicroKernel fn;
  TransposePack transpose_pack;
  EdgeKernel edge = nullptr;
  // The same with op(A) read in place from a row-major matrix (no transpose): value (r, k) at
  // a[r·a_ks + k], a_ks the row stride. Null where a kernel has none (A is then packed).
  MicroKernel fn_a_rows = nullptr;
  EdgeKernel edge_a_rows = nullptr;
  // Loop order inside a work item: how many B panels (KC×NR) each A panel (MR×KC) runs through
  // before the next A panel. 1: one B panel stays in L1 while every A panel of the item streams
  // past it. More: the A panel stays in L1 and that many B panels stream from L2, for kernels whose
  // B panel is too large to share L1 with the A panels. Zen 3 (AVX2 kernel, 8): a ViT-B-32 encode
  // +2-4% over 1 (one process, alternating). The AVX-512 kernel keeps 1: no AVX-512 CPU to measure.
  int b_panels_at_once = 1;
};

void transpose_pack_portable(const float* src, int64_t ld, int64_t rows, int64_t width, int64_t kc, float* dst);
// 8×8 AVX transposes; needs AVX (only called where the AVX2 or AVX-512 kernel runs).
void transpose_pack_avx(const float* src, int64_t ld, int64_t rows, int64_t width, int64_t kc, float* dst);

// Each is defined in its own file and compiled with a function-level target
// attribute, so the addon itself needs no -m flags and runs on any x86-64.
KernelSpec avx512_kernel();
KernelSpec avx2_kernel();
KernelSpec portable_kernel();

// Whether this build contains the x86 kernels at all (false on ARM and others).
bool x86_kernels_built();

}  // namespace cs::cpu::gemm_detail
