// Single-precision GEMM for the CPU backend, row-major:
//   C[M×N] = alpha · op(A)[M×K] · op(B)[K×N] + beta · C
// op(A) = A (lda ≥ K) or Aᵀ (A stored K×M, lda ≥ M); likewise for B.
// beta = 0 overwrites C without reading it (NaN in C does not propagate).
#pragma once
#include <cstdint>

namespace cs::cpu {

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// C = alpha · op(A) · op(B) + bias, the bias (N values, nullable) added to every row in the
// kernel's epilogue: a linear layer's forward in one pass over C.
// `packed_b` (nullable): op(B) = Wᵀ already packed by pack_weight (then B, ldb and trans_b = true
// describe the weight it was packed from; it is not read).
void sgemm_bias(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                const float* B, int64_t ldb, const float* bias, float* C, int64_t ldc, const float* packed_b = nullptr);

// Called on each finished block of C, rows [row0, row1) × columns [col0, col1), by the thread
// that computed it, while the block is still in cache (e.g. an activation of a linear layer).
struct GemmEpilogue {
  void (*fn)(void* ctx, int64_t row0, int64_t row1, int64_t col0, int64_t col1);
  void* ctx;
};

// sgemm_bias, then the epilogue over every block of C (each element exactly once).
void sgemm_bias_epilogue(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                         int64_t lda, const float* B, int64_t ldb, const float* bias, float* C, int64_t ldc,
                         const GemmEpilogue& epilogue, const float* packed_b = nullptr);

// ── prepacked weights (inference) ──
// A linear layer's weight W [N, K] (op(B) = Wᵀ) packed once the way each GEMM otherwise packs it
// per call: every k-block's NR-wide panels for the active kernel, after a header of
// kPackedWeightHeader floats that names the kernel and the shape, so that a copy packed for
// another kernel or shape is refused rather than misread.
constexpr int64_t kPackedWeightHeader = 16;  // 64 bytes: the panels stay 64-byte aligned
int64_t packed_weight_floats(int64_t N, int64_t K);  // header included
void pack_weight(const float* W, int64_t N, int64_t K, float* dst);
// The panels of `packed` (numel floats) if it is pack_weight's output for [N, K] under the active
// kernel, else nullptr.
const float* packed_weight_panels(const float* packed, int64_t numel, int64_t N, int64_t K);

// sgemm on the calling thread only (for callers that split the work between threads themselves).
void sgemm_serial(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                  const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// `batch` independent GEMMs with element strides between consecutive A, B and C.
void sgemm_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                   int64_t lda, int64_t stride_a, const float* B, int64_t ldb, int64_t stride_b, float beta, float* C,
                   int64_t ldc, int64_t stride_c, int64_t batch);

// dst[c·rows + r] = src[r·ld + c] for r < rows, c < cols: a row-major block transposed by the
// active kernel's packing routine (8×8 vector transposes where the CPU has them).
void transpose_block(const float* src, int64_t ld, int64_t rows, int64_t cols, float* dst);

// Whether sgemm reads a transposed A (op(A) = Aᵀ) where it lies, packing nothing, in a product of
// this many columns (C's width) on one thread: on a kernel with an edge variant (AVX-512), up to 512.
bool sgemm_reads_transposed_a_in_place(int64_t columns);

// The active micro-kernel's tile: MR rows by NR columns of C (callers that share a product
// between threads themselves cut it at whole tiles).
struct GemmTile {
  int mr, nr;
};
GemmTile gemm_tile();

// The name of the micro-kernel chosen at run time for this CPU (e.g. "avx512", "avx2", "portable").
const char* gemm_kernel_name();

// Switches the micro-kernel: "avx512", "avx2", "portable", or "best" (what this CPU
// runs fastest). Returns false, changing nothing, when this CPU or build cannot run
// it. For tests and benchmarks; CLIPSCALE_GEMM_KERNEL sets the initial choice.
bool set_gemm_kernel(const char* name);

}  // namespace cs::cpu
