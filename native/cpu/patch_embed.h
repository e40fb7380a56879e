// Patch embedding: a convolution with stride = kernel = P and no bias (CLIP's
// visual.conv1), done as im2col + one GEMM.
//   images [B, C, H, W] (NCHW), weight [width, C, P, P], out [B, (H/P)·(W/P), width]
// Patches are numbered row-major over the grid (py·(W/P) + px), as conv1's output
// flattened and transposed is in OpenCLIP. H and W must be multiples of P.
// Backward: dweight = Σ doutᵀ·patches (overwritten, or added to when `accumulate`);
// dimages (optional) is overwritten.
// With bf16 emulation on, images, weight and dout are rounded before the matmuls and
// out, dimages are stored rounded; dweight stays fp32.
// Scratch: im2col is made a block of rows at a time in a per-thread buffer of at most
// 16 MiB that is kept between calls (so steady-state calls do not allocate).
#pragma once
#include "core/tensor.h"

namespace cs::cpu {

// packed (optional): weight viewed as [width, C·P·P] and packed by packLinearWeight, read
// instead of packing it in every call (an inference scope's), with the same results bit for bit.
void patch_embed_forward(const Tensor& images, const Tensor& weight, Tensor& out, const Tensor* packed = nullptr);

void patch_embed_backward(const Tensor& images, const Tensor& weight, const Tensor& dout, Tensor* dweight,
                          Tensor* dimages, bool accumulate);

}  // namespace cs::cpu
