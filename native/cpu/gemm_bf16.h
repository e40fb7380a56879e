// GEMM with bf16 operands and fp32 accumulation, what a GPU's bf16 tensor cores compute and
// what clipscale's bf16 mode means on the CPU:
//   C[M×N] = alpha · bf16(op(A)) · bf16(op(B)) + beta · C (+ bias on every row) [rounded to bf16]
// Operands are rounded to bf16 (nearest even, as round_bf16) while they are converted into
// pairs along k, the layout AVX-512 BF16's VDPBF16PS multiplies: 32 products per instruction
// where an fp32 FMA does 16. Where the CPU lacks the instruction, the same driver runs a
// portable kernel of the same arithmetic (for tests); the bf16 mode then rounds operands
// around the fp32 GEMM instead (bf16_operands.h), which is faster there.
#pragma once
#include <cstdint>

namespace cs::cpu {

enum class Bf16Kernel { kBest, kAvx512Bf16, kPortable };

// Whether this CPU (and build) runs the AVX-512 BF16 kernel.
bool bf16_kernel_native();

// round_c: the stored C is rounded to bf16 (an activation as a bf16 GPU would store it).
// Runs on the thread pool. kBest: the AVX-512 BF16 kernel where the CPU has it, else portable.
void gemm_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
               const float* B, int64_t ldb, float beta, float* C, int64_t ldc, const float* bias = nullptr,
               bool round_c = false, Bf16Kernel kernel = Bf16Kernel::kBest);

// gemm_bf16 without bias or rounding, with sgemm's signature (callers that pick one of the two).
void gemm_bf16_plain(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                     int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// Whether the bf16 mode's matrix products use gemm_bf16's native kernel (the CPU has AVX-512
// BF16 and the native path is not switched off by set_bf16_native / CLIPSCALE_CPU_BF16=emulate),
// rather than rounding operands around the fp32 GEMM.
bool bf16_native_products();
// Switches the bf16 mode's products: on = native kernel (refused, returning false, where the CPU
// lacks it), off = rounded operands around the fp32 GEMM. For tests and comparisons.
bool set_bf16_native(bool on);

}  // namespace cs::cpu
