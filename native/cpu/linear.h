// Fully connected layer with PyTorch's weight layout: w is [out, in].
//   forward:  y = x·wᵀ + b            x [..., in], y [..., out] (leading dimensions flattened)
//   backward: dx = dy·w, dw = dyᵀ·x, db = Σ_rows dy
// dx is always overwritten. dw and db are overwritten, or added to when `accumulate`
// is set (gradient accumulation over micro-batches).
// With bf16 emulation on, x, w, b and dy are rounded to bf16 before use, y and dx are
// stored rounded, and dw, db stay fp32 (the GPU keeps parameter gradients in fp32).
#pragma once
#include <initializer_list>

#include "core/tensor.h"

namespace cs::cpu {

// `packed` (nullable, inference): w prepacked by packLinearWeight (cpu/gemm.h pack_weight) for the
// active GEMM kernel; the GEMM reads it instead of packing w. The result is the same bit for bit.
// Ignored under bf16 emulation (which multiplies rounded copies of w).
void linear_forward(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& y, const Tensor* packed = nullptr);

// The panels of `packed` for w (nullptr when packed is null); fails, naming `op` and the argument
// `w_name`, when it is not w packed for the active kernel. N, K: the matrix [N, K] w multiplies as
// (its own dims for a 2-D w; a convolution's weight [out, C, P, P] is viewed as [out, C·P·P]).
// `outputs`: the op's outputs, which must not share memory with the panels they are computed from.
struct NamedTensor {
  const char* name;
  const Tensor* tensor;
};
const float* packed_weight_for(const char* op, const Tensor* packed, const char* w_name, const Tensor& w, int64_t N,
                               int64_t K, std::initializer_list<NamedTensor> outputs);

// packLinearWeight: w [N, K] f32 → a new f32 tensor holding it packed for the active kernel.
Tensor pack_linear_weight(const Tensor& w);

// dW[N×K] (+)= dYᵀ·X over M rows (fp32; row strides ldy, ldx), computed as linear_backward computes a
// weight gradient (a narrow result over many rows: each thread a slice of the rows and a partial of
// its own, the partials added in thread order). For the ops whose weight gradient is a linear
// layer's: the patch embedding's, over its im2col rows (as one narrow GEMM, tiny's op took 366 µs
// instead of 227).
void weight_gradient_product(const float* dy, int64_t ldy, const float* x, int64_t ldx, int64_t M, int64_t N, int64_t K,
                             float* dw, bool accumulate);

// fp32: rows of dy that are all zero (an eighth of them or more) are not multiplied (zero_rows.h).
void linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx, Tensor* dw, Tensor* db,
                     bool accumulate);

}  // namespace cs::cpu
