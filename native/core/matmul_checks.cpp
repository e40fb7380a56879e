#include "core/matmul_checks.h"

namespace cs {

MatmulDims check_matmul(const Tensor& a, const Tensor& b, const Tensor& c, bool ta, bool tb, const char* op) {
  check_dtype(op, "a", a, DType::F32);
  check_dtype(op, "b", b, DType::F32);
  check_dtype(op, "c", c, DType::F32);
  if (a.ndim() != 2 && a.ndim() != 3) fail(op, ": a must have 2 or 3 dimensions, got ", a.describe());
  const bool batched = a.ndim() == 3;
  if (batched && b.ndim() != 2 && b.ndim() != 3)
    fail(op, ": b must have 3 dimensions (or 2, shared by the batch) like a ", a.describe(), ", got ", b.describe());
  if (!batched) check_ndim(op, "b", b, 2);

  const int64_t batch = batched ? a.dim(0) : 1;
  const int64_t M = ta ? a.dim(-1) : a.dim(-2);
  const int64_t K = ta ? a.dim(-2) : a.dim(-1);
  const bool b_shared = batched && b.ndim() == 2;
  Shape want_b = tb ? Shape{-1, K} : Shape{K, -1};
  if (batched && !b_shared) want_b.insert(want_b.begin(), batch);
  check_shape(op, "b", b, want_b);
  const int64_t N = tb ? b.dim(-2) : b.dim(-1);
  check_shape(op, "c", c, batched ? Shape{batch, M, N} : Shape{M, N});
  check_no_alias(op, "c", c, "a", a);
  check_no_alias(op, "c", c, "b", b);
  return {batch, M, N, K, b_shared};
}

}  // namespace cs
