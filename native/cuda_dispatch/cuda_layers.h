// The GEMM and attention group's ops on the CUDA backend: the same signatures, argument
// checks and error messages as the CPU ops (native/cpu/{linear,patch_embed,attention}.h
// and the matmul binding), then a call into the CUDA library (native/cuda/abi_gemm.h,
// abi_attention.h). The bindings call these when on_cuda(...) is true. The GPU always
// computes as the CPU does with bf16 emulation on (bf16 operands, fp32 accumulation).
#pragma once
#include <string>

#include "core/tensor.h"

namespace cs::cuda {

// c = alpha·op(a)·op(b) + beta·c, 2-D or batched 3-D (b may be 2-D, shared), as `matmul`.
void matmul(const Tensor& a, const Tensor& b, Tensor& c, bool trans_a, bool trans_b, float alpha, float beta);

// w16 (or null): the bf16 copy of w, read in place of converting w in a bf16 run.
void linear_forward(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& y, const Tensor* w16 = nullptr);
// y = GELU(h), pre = h = x·wᵀ + b, in one GEMM (the GELU in its epilogue); form 1 erf, 2 tanh.
void linear_gelu_forward(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& pre, Tensor& y, int form,
                         const Tensor* w16 = nullptr);
// The GEMM layer's counters: operand conversion passes and GEMMs since the library loaded.
void gemm_counters(long long* conversions, long long* gemms);
void linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx, Tensor* dw, Tensor* db,
                     bool accumulate, const Tensor* w16 = nullptr);

void patch_embed_forward(const Tensor& images, const Tensor& weight, Tensor& out);
void patch_embed_backward(const Tensor& images, const Tensor& weight, const Tensor& dout, Tensor* dweight,
                          Tensor* dimages, bool accumulate);

void attention_forward(const Tensor& qkv, Tensor& out, Tensor* lse, int64_t heads, bool causal);
void attention_backward(const Tensor& qkv, const Tensor& out, const Tensor& dout, const Tensor& lse, Tensor& dqkv,
                        int64_t heads, bool causal);

// The GEMM engine in use ("cublaslt" or "own"), and a line describing it for `clipscale info`.
std::string gemm_backend_name();
std::string gemm_backend_info();
// "own", "cublaslt" or "auto"; returns the engine now in use.
std::string set_gemm_backend(const std::string& name);

}  // namespace cs::cuda
