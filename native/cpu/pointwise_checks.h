// Argument checks shared by the pointwise-group CPU ops (layernorm, activations,
// embeddings, pooling, normalisation, contrastive loss, AdamW).
#pragma once
#include "core/checks.h"

namespace cs::cpu {

// A CPU f32 tensor.
inline void check_f32(const char* op, const char* arg, const Tensor& t) {
  check_cpu(op, arg, t);
  check_dtype(op, arg, t, DType::F32);
}

// A CPU i32 tensor.
inline void check_i32(const char* op, const char* arg, const Tensor& t) {
  check_cpu(op, arg, t);
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
inline void check_per_row(const char* op, const char* arg, const Tensor& t, int64_t rows) {
  check_f32(op, arg, t);
  if (t.numel() != rows) fail(op, ": ", arg, " must hold one value per row (", rows, "), got ", t.describe());
}

// Outputs may be the very same buffer as an input (in place) but must not partly overlap it.
inline void check_same_or_disjoint(const char* op, const char* out_name, const Tensor& out, const char* in_name,
                                   const Tensor& in) {
  if (out.raw() == in.raw()) return;
  check_no_alias(op, out_name, out, in_name, in);
}

}  // namespace cs::cpu
