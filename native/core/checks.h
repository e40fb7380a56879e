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

// Whether two tensors' bytes share any memory.
inline bool overlaps(const Tensor& a, const Tensor& b) {
  const char* a0 = static_cast<const char*>(a.raw());
  const char* b0 = static_cast<const char*>(b.raw());
  return a0 < b0 + b.nbytes() && b0 < a0 + a.nbytes();
}

// Two buffers must not overlap when an op writes one while reading the other.
inline void check_no_alias(const char* op, const char* out_name, const Tensor& out, const char* in_name, const Tensor& in) {
  if (overlaps(out, in)) fail(op, ": output ", out_name, " overlaps input ", in_name, "; pass a separate tensor");
}

// Two outputs of one op must not share memory (each would overwrite the other's values).
inline void check_outputs_apart(const char* op, const char* a_name, const Tensor& a, const char* b_name, const Tensor& b) {
  if (overlaps(a, b)) fail(op, ": outputs ", a_name, " and ", b_name, " overlap; pass separate tensors");
}

// Outputs may be the very same buffer as an input (in place) but must not partly overlap it.
inline void check_same_or_disjoint(const char* op, const char* out_name, const Tensor& out, const char* in_name,
                                   const Tensor& in) {
  if (out.raw() == in.raw()) return;
  check_no_alias(op, out_name, out, in_name, in);
}

// How an op's shared checks (core/*_checks.h) confirm a tensor's device, called where
// the CPU ops always checked it. The CPU backend passes check_cpu; the CUDA dispatch
// passes on_one_cuda_device, because on_cuda has already put every tensor on one device.
using DeviceCheck = void (*)(const char* op, const char* arg, const Tensor& t);

inline void on_one_cuda_device(const char*, const char*, const Tensor&) {}

// An f32 / i32 tensor on the backend's device.
inline void check_f32(DeviceCheck device, const char* op, const char* arg, const Tensor& t) {
  device(op, arg, t);
  check_dtype(op, arg, t, DType::F32);
}

inline void check_i32(DeviceCheck device, const char* op, const char* arg, const Tensor& t) {
  device(op, arg, t);
  check_dtype(op, arg, t, DType::I32);
}

// The last dimension of a tensor whose leading dimensions are rows.
inline int64_t row_width(const char* op, const char* arg, const Tensor& t) {
  if (t.ndim() < 1) fail(op, ": ", arg, " must have at least 1 dimension, got ", t.describe());
  return t.dim(-1);
}

inline int64_t row_count(const Tensor& t) {
  int64_t w = t.dim(-1);
  int64_t rows = 1;
  for (int i = 0; i + 1 < t.ndim(); i++) rows *= t.shape[i];
  return w ? t.numel() / w : rows;
}

// A tensor holding one f32 value per row (any shape with that many elements).
inline void check_per_row(DeviceCheck device, const char* op, const char* arg, const Tensor& t, int64_t rows) {
  check_f32(device, op, arg, t);
  if (t.numel() != rows) fail(op, ": ", arg, " must hold one value per row (", rows, "), got ", t.describe());
}

// Rows of a given width: the sizes a row-wise kernel needs.
struct RowDims {
  int64_t rows, width;
};

// [batch, tokens, width] activations.
struct TokenDims {
  int64_t batch, tokens, width;
};

}  // namespace cs
