// Argument checks of matmul, shared by the CPU binding and the CUDA dispatch (both run
// them after the tensors' common device is known, so they check no device).
#pragma once
#include "core/checks.h"

namespace cs {

struct MatmulDims {
  int64_t batch, M, N, K;
  bool b_shared;  // a 2-D b used by every batch entry
};

// c = op(a) · op(b): a [M, K] (ta: [K, M]), b [K, N] (tb: [N, K]), c [M, N]; or the
// same with a leading batch dimension (b may stay 2-D). f32, c overlapping neither. Errors name `op`.
MatmulDims check_matmul(const Tensor& a, const Tensor& b, const Tensor& c, bool ta, bool tb, const char* op = "matmul");

}  // namespace cs
