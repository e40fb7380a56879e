// Internal GEMM layer of the CUDA backend (not part of the C ABI).
//
// Every GEMM here is "NT":
//   C[b][m][n] = alpha · Σ_k A[b][m][k]·B[b][n][k] + beta · C[b][m][n]  (+ bias[n]) (GELU) (rounding)
// in the run's precision (cs_cuda::precision()):
// - bf16 / fp16: both operands 16-bit and K-major in device memory (row length a multiple of 8,
//   16-byte rows for cp.async and cuBLASLt), multiplied on tensor cores with fp32 accumulation.
//   The f32 tensors of the ops are converted (rounded to nearest even, as the CPU's bf16
//   emulation does) into that layout, transposing where the op needs it.
// - fp32: f32 operands read where they are, K-major or not (no conversion), fp32 FMA
//   (cuBLASLt CUBLAS_COMPUTE_32F, not TF32; or our own SIMT kernel).
// Two engines run it: cuBLASLt (dlopen'ed) and our own kernels.
#pragma once
#include <cuda_runtime.h>
#include <stdint.h>

#include <string>

namespace cs_cuda {

// Row length (elements) of a K-major 16-bit matrix with K columns.
inline int64_t kmajor_ld(int64_t K) { return (K + 7) / 8 * 8; }

// Operand element types: the codes of Precision (runtime.h) — 0 f32, 1 bf16, 2 fp16.
enum OperandType : int { kF32 = 0, kBF16 = 1, kF16 = 2 };

// An operand of gemm_nt: element (r, k) of batch entry b is at
//   ptr[b·stride + r·ld + k] (kmajor) or ptr[b·stride + k·ld + r] (not kmajor: f32, or a 16-bit B).
struct Operand {
  const void* ptr;
  int64_t ld;
  int64_t stride;  // between batch entries (0 = shared)
  int type = kBF16;
  bool kmajor = true;
};

// Writes dst[b][r][0..ld) = element (r, k) of src batch entry b in 16-bit `type` (bf16 or
// fp16, rounded to nearest even), zero for k ≥ K, where element (r, k) is src[r·src_ld + k]
// (transposed = false) or src[k·src_ld + r] (true).
int to_kmajor_16(const char* op, const float* src, int64_t src_ld, int64_t src_stride, bool transposed, int64_t rows,
                 int64_t K, int64_t batch, uint16_t* dst, int64_t ld, int type, cudaStream_t stream);

// Calls counted since the library loaded (cs_cuda_gemm_counters): conversion passes into
// 16-bit scratch (to_kmajor_16 and im2col's, one per operand) and GEMMs run.
void count_conversion();
void count_gemm();
long long conversion_count();
long long gemm_count();

struct Epilogue {
  float alpha = 1.0f;
  float beta = 0.0f;            // 0: C is not read
  const float* bias = nullptr;  // f32 [N], added after alpha/beta
  int gelu = 0;                 // after the bias: 0 none, 1 GELU (erf form, the model's), 2 GELU (tanh form)
  float* pre_gelu = nullptr;    // with gelu: the value before it is stored here too (ldc, sc), rounded likewise
  uint16_t* act16 = nullptr;    // with 16-bit rounding: the GELU output goes here (16-bit, ldc, sc);
                                // without gelu, the output itself (C null, batch 1)
                                // and C receives the pre-GELU value (pre_gelu unused)
  int round = 0;                // stored values rounded: 0 no, 1 bf16, 2 fp16 (round_to)
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

// C (f32, ldc, batch stride sc) per the epilogue; M, N ≥ 1, K ≥ 0, batch ≥ 1. A and B have
// the same type; 16-bit operands have ld a multiple of 8, A K-major, B K-major or (with N a
// multiple of 8) MN-major.
int gemm_nt(const char* op, int64_t M, int64_t N, int64_t K, Operand A, Operand B, float* C, int64_t ldc, int64_t sc,
            int64_t batch, const Epilogue& ep);

// Our own kernels (gemm_own.cu: 16-bit tensor cores; gemm_simt.cu: fp32), same contract as gemm_nt.
int own_gemm_nt(const char* op, int64_t M, int64_t N, int64_t K, Operand A, Operand B, float* C, int64_t ldc,
                int64_t sc, int64_t batch, const Epilogue& ep, cudaStream_t stream);
int own_gemm_f32(const char* op, int64_t M, int64_t N, int64_t K, Operand A, Operand B, float* C, int64_t ldc,
                 int64_t sc, int64_t batch, const Epilogue& ep, cudaStream_t stream);

// Applies what cuBLASLt's epilogue could not (rounding; the erf GELU after its bias epilogue,
// keeping the pre-GELU value when asked) to a rows×cols block (row stride ld, batch stride).
int finish_epilogue(const char* op, float* C, int64_t rows, int64_t cols, int64_t ld, int64_t stride, int64_t batch,
                    int gelu, float* pre_gelu, uint16_t* act16, int round, cudaStream_t stream);

}  // namespace cs_cuda
