// Argument checks shared by every op. Each failure names the op, the argument,
// what was expected and what was given.
#pragma once
#include <initializer_list>
#include <string>

#include "core/error.h"
#include "core/tensor.h"

namespace cs {

inline void check_dtype(const char* op, const char* arg, const Tensor& t, DType want) {
  if (t.dtype != want)
    fail(op, ": ", arg, " must be ", dtype_name(want), ", got ", t.describe());
}

inline void check_ndim(const char* op, const char* arg, const Tensor& t, int ndim) {
  if (t.ndim() != ndim)
    fail(op, ": ", arg, " must have ", ndim, " dimensions, got ", t.describe());
}

// Dimensions given as -1 match anything.
inline void check_shape(const char* op, const char* arg, const Tensor& t, const Shape& want) {
  bool ok = t.ndim() == static_cast<int>(want.size());
  for (size_t i = 0; ok && i < want.size(); i++) ok = want[i] < 0 || want[i] == t.shape[i];
  if (!ok) {
    std::string w = "[";
    for (size_t i = 0; i < want.size(); i++) w += (i ? ", " : "") + (want[i] < 0 ? std::string("*") : std::to_string(want[i]));
    w += "]";
    fail(op, ": ", arg, " must have shape ", w, ", got ", t.describe());
  }
}

inline void check_same_shape(const char* op, const char* a_name, const Tensor& a, const char* b_name, const Tensor& b) {
  if (a.shape != b.shape)
    fail(op, ": ", a_name, " and ", b_name, " must have the same shape, got ", a.describe(), " and ", b.describe());
}

inline void check_cpu(const char* op, const char* arg, const Tensor& t) {
  if (!t.device().is_cpu())
    fail(op, ": ", arg, " is on ", t.device().str(), " but this op ran on the CPU backend; move it with .to('cpu')");
}

// Two buffers must not overlap when an op writes one while reading the other.
inline void check_no_alias(const char* op, const char* out_name, const Tensor& out, const char* in_name, const Tensor& in) {
  const char* o0 = static_cast<const char*>(out.raw());
  const char* i0 = static_cast<const char*>(in.raw());
  if (o0 < i0 + in.nbytes() && i0 < o0 + out.nbytes())
    fail(op, ": output ", out_name, " overlaps input ", in_name, "; pass a separate tensor");
}

}  // namespace cs
