// The rows of a gradient that are not all zero, and copies of matrices' rows at those rows.
//
// A CLIP text tower's gradient is exactly zero at every position after a caption's end token
// (attention is causal: those positions reach nothing the loss reads), and the last block of each
// tower gets gradient only at the pooled row (the end token, or the class token). For a linear
// layer's backward a zero row of dY adds nothing to dW = dYᵀ·X or to db, and its row of
// dX = dY·W is zero: so the layer can multiply only the other rows (linear.cpp).
#pragma once
#include <cstdint>
#include <vector>

namespace cs::cpu {

// CLIPSCALE_SKIP_ZERO_ROWS=0 multiplies every row of a gradient, zero or not, in the linear and
// attention backward ops (for A/B comparisons and for measuring the GEMMs' rate on whole layers).
bool skip_zero_rows_enabled();

// Whether row[0:cols] holds only +0 and -0 (NaN and infinities are not zero).
bool row_is_zero(const float* row, int64_t cols);

// Indices, in order, of the rows of src [rows × cols] (row stride ld) holding a value other than
// ±0. NaN and infinities count as non-zero, so they still reach the products.
void nonzero_rows(const float* src, int64_t rows, int64_t cols, int64_t ld, std::vector<int32_t>& out);

// dst[i, :] = src[index[i], :] for i < count; dst is count × cols, contiguous.
void gather_rows(const float* src, int64_t ld, int64_t cols, const int32_t* index, int64_t count, float* dst);

// dst [rows × cols] (row stride ld): row index[i] = src[i, :] (src contiguous), every other row zero.
void scatter_rows(const float* src, int64_t cols, const int32_t* index, int64_t count, int64_t rows, float* dst,
                  int64_t ld);

}  // namespace cs::cpu
