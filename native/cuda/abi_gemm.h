// C ABI of the GEMM group: matmul, linear and patch embedding on the GPU, in the precision
// set by cs_cuda_set_precision (abi.h). In bf16 each equals the CPU op of the same name
// (native/cpu/{gemm,linear,patch_embed}.h) with bf16 emulation on: operands rounded to bf16
// (nearest even), fp32 accumulation on bf16 tensor cores, outputs rounded where the CPU
// rounds them. fp16: the same with fp16 operands and roundings. fp32: fp32 operands and
// arithmetic (no TF32), nothing rounded — the CPU op without emulation. Below, "bf16(...)"
// means "rounded to the run's 16-bit type, or not in fp32". Shapes, dtypes and aliasing
// are checked by the addon before the call; these check only what they need to run.
// All pointers are device pointers on the calling thread's current device (abi.h).
//
// Two engines run the GEMMs: cuBLASLt, loaded at run time (libcublasLt.so.13, then
// .so.12, from $CLIPSCALE_CUBLASLT_PATH, the loader's path or /usr/local/cuda/lib64),
// and clipscale's own mma.sync kernel. CLIPSCALE_GEMM=own|cublaslt|auto picks one at
// first use (auto, the default: cuBLASLt when it loads).
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// "cublaslt", "own", or "unavailable" (CLIPSCALE_GEMM names an engine that cannot load).
const char* cs_cuda_gemm_backend_name(void);
// One line for `clipscale info`: the engine, cuBLASLt's path and version, or why it is not used.
int cs_cuda_gemm_backend_info(char* buf, int len);
// "own", "cublaslt" or "auto"; fails (changing nothing) when cuBLASLt is asked for and cannot load.
int cs_cuda_gemm_set_backend(const char* name);

// Row-major, batched: C[b] = bf16(alpha · op(A[b]) · op(B[b]) + beta · C[b]), b < batch.
// op(A) is M×K: A [M, lda ≥ K] or, with trans_a, A stored [K, lda ≥ M] (likewise B, K×N:
// B [K, ldb ≥ N] or, with trans_b, [N, ldb ≥ K]). stride_* are element strides between
// batch entries (0: one matrix shared by all). beta = 0 does not read C.
int cs_cuda_gemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                 int64_t stride_a, const float* B, int64_t ldb, int64_t stride_b, float beta, float* C, int64_t ldc,
                 int64_t stride_c, int64_t batch);

// y [M, N] = bf16(x [M, K] · wᵀ + bf16(b)), w [N, K], b [N] or null. gelu = 1 applies
// tanh-GELU before the rounding (cuBLASLt's GELU epilogue; the CPU linear has no GELU).
int cs_cuda_linear_forward(const float* x, const float* w, const float* b, float* y, int64_t M, int64_t K, int64_t N,
                           int gelu);
// y = GELU(h) and pre = h (pre may be null) where h = bf16(x · wᵀ + bf16(b)), both rounded;
// form 1 is the erf GELU (nn.GELU(), the model's, core/gelu_math.h), 2 the tanh form. On
// cuBLASLt: its bias epilogue then our GELU, or its GELU epilogue for the tanh form without pre.
int cs_cuda_linear_gelu_forward(const float* x, const float* w, const float* b, float* pre, float* y, int64_t M,
                                int64_t K, int64_t N, int form);
// linear_forward (gelu 0; pre unused) or linear_gelu_forward (gelu 1 erf, 2 tanh) with 16-bit
// operands and output where given (in the precision's 16-bit type; each may be null):
// w16, the copy of w (exactly bf16(w) or fp16(w), as AdamW's param_bf16 output keeps it), read
// in place of converting w when the precision is bf16 or fp16 and K is a multiple of 8;
// x16, the input in 16 bits, read in place of x (x null; needs the same); y16 (with gelu), the
// GELU output in 16 bits [M, N] — y then receives the pre-GELU value and pre is unused; y16
// without gelu: the output in 16 bits (y null; bf16/fp16 runs).
int cs_cuda_linear_forward_ex(const float* x, const uint16_t* x16, const float* w, const uint16_t* w16,
                              const float* b, float* pre, float* y, uint16_t* y16, int64_t M, int64_t K, int64_t N,
                              int gelu);
// linear_backward reading w16 (as above, or null) for dx = dy·w in place of converting wᵀ, and
// x16 (the input in 16 bits, x null) for dw = dyᵀ·x in place of converting xᵀ.
int cs_cuda_linear_backward_ex(const float* x, const uint16_t* x16, const float* w, const uint16_t* w16,
                               const float* dy, float* dx, float* dw, float* db, int64_t M, int64_t K, int64_t N,
                               int accumulate);
// Counts since the library loaded: operand conversion passes into 16-bit scratch (one per
// operand converted) and GEMMs run. Either pointer may be null.
int cs_cuda_gemm_counters(long long* conversions, long long* gemms);
// dx = bf16(dy·w) (overwritten), dw = dyᵀ·x and db = Σ_rows dy in fp32, overwritten or,
// with accumulate, added to. dx, dw, db may each be null.
int cs_cuda_linear_backward(const float* x, const float* w, const float* dy, float* dx, float* dw, float* db,
                            int64_t M, int64_t K, int64_t N, int accumulate);

// images [B, C, H, W], weight [width, C, P, P], out [B, (H/P)·(W/P), width] (bf16-rounded).
int cs_cuda_patch_embed_forward(const float* images, const float* weight, float* out, int64_t B, int64_t C, int64_t H,
                                int64_t W, int64_t P, int64_t width);
// dweight (fp32; overwritten or accumulated) and dimages (bf16-rounded, overwritten); either may be null.
int cs_cuda_patch_embed_backward(const float* images, const float* weight, const float* dout, float* dweight,
                                 float* dimages, int64_t B, int64_t C, int64_t H, int64_t W, int64_t P, int64_t width,
                                 int accumulate);

#ifdef __cplusplus
}
#endif
