// Matrices as a bf16 GPU would see them, for the layer ops (linear, patch embedding,
// attention). With bf16 emulation on, a matmul operand is a rounded copy and a stored
// output is rounded in place; with it off, operands are used where they lie and
// nothing is copied.
#pragma once
#include <cstdint>
#include <vector>

#include "core/dtype.h"
#include "core/thread_pool.h"

namespace cs::cpu {

// A row-major matrix view: element (r, c) at ptr[r * ld + c].
struct MatrixRef {
  const float* ptr;
  int64_t ld;
};

// Rounds every element of a rows×cols strided block in place.
inline void round_bf16_block(float* p, int64_t rows, int64_t cols, int64_t ld) {
  parallel_for(rows, (1 << 14) / (cols + 1) + 1, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++)
      for (int64_t c = 0; c < cols; c++) p[r * ld + c] = round_bf16(p[r * ld + c]);
  });
}

// The operand a matmul reads: `src` itself, or (emulating) a rounded contiguous copy in `scratch`.
inline MatrixRef matmul_operand(const float* src, int64_t rows, int64_t cols, int64_t ld, bool emulate,
                                std::vector<float>& scratch) {
  if (!emulate) return {src, ld};
  scratch.resize(static_cast<size_t>(rows * cols));
  float* dst = scratch.data();
  parallel_for(rows, (1 << 14) / (cols + 1) + 1, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++)
      for (int64_t c = 0; c < cols; c++) dst[r * cols + c] = round_bf16(src[r * ld + c]);
  });
  return {dst, cols};
}

}  // namespace cs::cpu
