// Internal GEMM layer of the CUDA backend (not part of the C ABI).
//
// Every GEMM here is "NT" on bf16 operands that are K-major in device memory:
//   C[b][m][n] = alpha · Σ_k A[b][m][k]·B[b][n][k] + beta · C[b][m][n]  (+ bias[n]) (GELU) (bf16 rounding)
// The f32 tensors of the ops are first converted (rounded to nearest even, as the CPU's
// bf16 emulation does) into that layout, transposing where the op needs it, with the
// row length padded to a multiple of 8 with zeros (16-byte rows for cp.async and cuBLASLt).
// Two engines run it: cuBLASLt (dlopen'ed) and our own mma.sync kernel.
#pragma once
#include <cuda_runtime.h>
#include <stdint.h>

#include <string>

namespace cs_cuda {

// Row length (elements) of a K-major bf16 matrix with K columns.
inline int64_t kmajor_ld(int64_t K) { return (K + 7) / 8 * 8; }

struct KMajor {
  const uint16_t* ptr;  // bf16 bits
  int64_t ld;           // multiple of 8
  int64_t stride;       // between batch entries (0 = shared)
};

// Writes dst[b][r][0..ld) = bf16(element (r, k) of src batch entry b), zero for k ≥ K, where
// element (r, k) is src[r·src_ld + k] (transposed = false) or src[k·src_ld + r] (true).
int to_kmajor_bf16(const char* op, const float* src, int64_t src_ld, int64_t src_stride, bool transposed,
                   int64_t rows, int64_t K, int64_t batch, uint16_t* dst, int64_t ld, cudaStream_t stream);

struct Epilogue {
  float alpha = 1.0f;
  float beta = 0.0f;            // 0: C is not read
  const float* bias = nullptr;  // f32 [N], added after alpha/beta
  bool gelu = false;            // tanh GELU after the bias
  bool round = false;           // store bf16-rounded values
};

enum class GemmEngine { Own = 0, CublasLt = 1 };

// The engine in use: CLIPSCALE_GEMM=own|cublaslt|auto at first use (auto: cuBLASLt when it
// loads), or what set_gemm_engine chose. Fails when cuBLASLt was forced but cannot load.
int gemm_engine(const char* op, GemmEngine* engine);
// "own", "cublaslt" or "auto"; fails for another name or a cuBLASLt that does not load.
int set_gemm_engine(const char* name);
const char* gemm_engine_name();
// "" or what the own kernel did in cuBLASLt's place (GEMMs cuBLASLt had no algorithm for).
std::string gemm_fallback_note();

// C (f32, ldc, batch stride sc) per the epilogue; M, N ≥ 1, K ≥ 0, batch ≥ 1.
int gemm_nt(const char* op, int64_t M, int64_t N, int64_t K, KMajor A, KMajor B, float* C, int64_t ldc, int64_t sc,
            int64_t batch, const Epilogue& ep);

// Our own tensor-core kernel (gemm_own.cu), same contract as gemm_nt.
int own_gemm_nt(const char* op, int64_t M, int64_t N, int64_t K, KMajor A, KMajor B, float* C, int64_t ldc,
                int64_t sc, int64_t batch, const Epilogue& ep, cudaStream_t stream);

// Rounds a rows×cols block (row stride ld, batch stride) to bf16 in place.
int round_bf16_inplace(const char* op, float* C, int64_t rows, int64_t cols, int64_t ld, int64_t stride,
                       int64_t batch, cudaStream_t stream);

}  // namespace cs_cuda
