#include "cpu/patch_embed.h"

#include <algorithm>
#include <vector>

#include "core/patch_embed_checks.h"
#include "core/numerics.h"
#include "core/thread_pool.h"
#include "cpu/bf16_operands.h"
#include "cpu/gemm.h"
#include "cpu/gemm_bf16.h"
#include "cpu/linear.h"

namespace cs::cpu {

namespace {

// Moves pixels between NCHW images and rows [first, first + count) of the im2col matrix
// [rows, cols], held in `cols` from row `first` on. Stride equals the kernel, so every
// pixel belongs to exactly one patch: the map is a permutation.
template <bool ToCols>
void permute_patches(const PatchGeometry& g, float* img, float* cols, int64_t first, int64_t count, bool round) {
  const int64_t P = g.P, ncols = g.cols();
  parallel_for(count, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = first + r0; r < first + r1; r++) {
      int64_t b = r / g.patches(), p = r % g.patches();
      int64_t y0 = (p / g.gw) * P, x0 = (p % g.gw) * P;
      float* row = cols + (r - first) * ncols;
      for (int64_t c = 0; c < g.C; c++)
        for (int64_t ky = 0; ky < P; ky++) {
          float* pix = img + ((b * g.C + c) * g.H + y0 + ky) * g.W + x0;
          float* col = row + (c * P + ky) * P;
          for (int64_t kx = 0; kx < P; kx++) {
            if (ToCols) col[kx] = round ? round_bf16(pix[kx]) : pix[kx];
            else pix[kx] = round ? round_bf16(col[kx]) : col[kx];
          }
        }
    }
  });
}

// The im2col matrix is made a block of rows at a time in a buffer kept per thread, so
// memory stays bounded (16 MiB) at any batch size and a training step does not allocate.
constexpr int64_t kScratchFloats = int64_t{1} << 22;

int64_t block_rows(const PatchGeometry& g) { return std::max<int64_t>(1, kScratchFloats / std::max<int64_t>(g.cols(), 1)); }

float* scratch(int64_t floats) {
  static thread_local std::vector<float> buf;
  if (static_cast<int64_t>(buf.size()) < floats) buf.resize(static_cast<size_t>(floats));
  return buf.data();
}

}  // namespace

void patch_embed_forward(const Tensor& images, const Tensor& weight, Tensor& out, const Tensor* packed) {
  const char* op = "patchEmbedForward";
  const PatchGeometry g = check_patch_embed_forward(check_cpu, images, weight, out);
  const int64_t M = g.rows(), N = g.width, K = g.cols();
  const float* panels = packed_weight_for(op, packed, "weight", weight, N, K, {{"out", &out}});
  if (M == 0 || N == 0) return;

  const bool emu = bf16_emulation();
  if (emu) panels = nullptr;  // emulation multiplies the rounded weight
  // bf16 on the AVX-512 BF16 kernel: it rounds the weight as it converts it, and the output as it stores it.
  const bool native16 = emu && K > 0 && bf16_native_products();
  std::vector<float> ws;
  MatrixRef Wm = matmul_operand(weight.data<float>(), N, K, K, emu && !native16, ws);
  const int64_t rows = std::min(M, block_rows(g));
  float* cols = scratch(rows * K);
  for (int64_t r0 = 0; r0 < M; r0 += rows) {
    const int64_t n = std::min(rows, M - r0);
    permute_patches<true>(g, images.data<float>(), cols, r0, n, emu);
    if (native16) {
      gemm_bf16(false, true, n, N, K, 1.0f, cols, K, Wm.ptr, Wm.ld, 0.0f, out.data<float>() + r0 * N, N, nullptr, true);
      continue;
    }
    // out[r0:r0+n, :] = cols[n×K] · weightᵀ
    if (panels) sgemm_bias(false, true, n, N, K, 1.0f, cols, K, Wm.ptr, Wm.ld, nullptr, out.data<float>() + r0 * N, N, panels);
    else sgemm(false, true, n, N, K, 1.0f, cols, K, Wm.ptr, Wm.ld, 0.0f, out.data<float>() + r0 * N, N);
  }
  if (emu && !native16) round_bf16_block(out.data<float>(), M, N, N);
}

void patch_embed_backward(const Tensor& images, const Tensor& weight, const Tensor& dout, Tensor* dweight,
                          Tensor* dimages, bool accumulate) {
  const PatchGeometry g = check_patch_embed_backward(check_cpu, images, weight, dout, dweight, dimages);
  const int64_t M = g.rows(), N = g.width, K = g.cols();
  const bool emu = bf16_emulation();
  // bf16 on the AVX-512 BF16 kernel: it rounds dout and the weight as it converts them.
  const bool native16 = emu && M > 0 && N > 0 && K > 0 && bf16_native_products();
  auto product = native16 ? gemm_bf16_plain : sgemm;
  std::vector<float> dos;
  MatrixRef dO = matmul_operand(dout.data<float>(), M, N, N, emu && !native16, dos);

  if (dweight) {
    float* dwp = dweight->data<float>();
    if (M > 0 && N > 0 && K > 0) {
      const int64_t rows = std::min(M, block_rows(g));
      float* cols = scratch(rows * K);
      for (int64_t r0 = 0; r0 < M; r0 += rows) {
        const int64_t n = std::min(rows, M - r0);
        permute_patches<true>(g, images.data<float>(), cols, r0, n, emu);
        // dweight[N×K] (+)= dout[r0:r0+n, :]ᵀ · cols[n×K]; blocks after the first add on. In fp32, as
        // a linear layer's weight gradient (its rows split between the threads).
        const bool add = accumulate || r0 > 0;
        if (!emu)
          weight_gradient_product(dO.ptr + r0 * dO.ld, dO.ld, cols, K, n, N, K, dwp, add);
        else
          product(true, false, N, K, n, 1.0f, dO.ptr + r0 * dO.ld, dO.ld, cols, K, add ? 1.0f : 0.0f, dwp, K);
      }
    } else if (!accumulate) {
      for (int64_t i = 0; i < N * K; i++) dwp[i] = 0.0f;
    }
  }
  if (dimages) {
    float* dip = dimages->data<float>();
    if (M > 0 && K > 0 && N > 0) {
      std::vector<float> ws;
      MatrixRef Wm = matmul_operand(weight.data<float>(), N, K, K, emu && !native16, ws);
      const int64_t rows = std::min(M, block_rows(g));
      float* dcols = scratch(rows * K);
      for (int64_t r0 = 0; r0 < M; r0 += rows) {
        const int64_t n = std::min(rows, M - r0);
        // dcols[n×K] = dout[r0:r0+n, :] · weight[N×K]
        product(false, false, n, K, N, 1.0f, dO.ptr + r0 * dO.ld, dO.ld, Wm.ptr, Wm.ld, 0.0f, dcols, K);
        permute_patches<false>(g, dip, dcols, r0, n, emu);
      }
    } else {
      for (int64_t i = 0; i < dimages->numel(); i++) dip[i] = 0.0f;
    }
  }
}

}  // namespace cs::cpu
