// cuBLASLt, loaded at run time (libcublasLt.so.13, then .so.12), for the GEMMs (fp32, bf16, fp16).
// Search order: each directory of $CLIPSCALE_CUBLASLT_PATH (colon-separated), then the
// dynamic loader's own path (LD_LIBRARY_PATH, rpath, ld.so.cache), then the usual
// CUDA install directories.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace cs::cuda {

// Loads cuBLASLt once; true when it is usable. `why` gets the reason when it is not.
bool cublaslt_load(std::string* why);
// The file that was loaded ("" when none) and its version (cublasLtGetVersion, 0 when none).
std::string cublaslt_loaded_path();
size_t cublaslt_version();

// Row-major "NT":
//   C[b][m][n] = alpha · Σ_k A[b][m][k]·B[b][n][k] + beta · C[b][m][n] (+ bias[n]) (then tanh-GELU)
// type: 0 f32 (CUBLAS_COMPUTE_32F: true fp32, not TF32), 1 bf16, 2 fp16 (fp32 accumulation).
// Element (r, k) of an operand is at ptr[r·ld + k] when kmajor, else ptr[k·ld + r]; leading
// dimensions ld (elements; multiples of 8 for 16-bit) and batch strides sa, sb (0 = shared);
// C: f32, ldc, sc. bias: f32 [N] or null. `stream` is a cudaStream_t.
// Returns "" on success, else what failed; *no_algorithm (when given) is set when the
// failure is that cuBLASLt has no algorithm for the problem (nothing was written to C).
std::string cublaslt_gemm_nt(void* stream, int64_t M, int64_t N, int64_t K, float alpha, int type, const void* A,
                             int64_t lda, int64_t sa, bool a_kmajor, const void* B, int64_t ldb, int64_t sb,
                             bool b_kmajor, float beta, float* C, int64_t ldc, int64_t sc, int64_t batch,
                             const float* bias, bool gelu, void* workspace, size_t workspace_bytes,
                             bool* no_algorithm = nullptr);

}  // namespace cs::cuda
