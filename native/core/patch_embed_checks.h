// Argument checks of the patch embedding (a stride-P, bias-free convolution), shared by
// the CPU ops and the CUDA dispatch.
#pragma once
#include "core/checks.h"

namespace cs {

struct PatchGeometry {
  int64_t B, C, H, W, P, width;
  int64_t gh, gw;  // patch grid
  int64_t patches() const { return gh * gw; }
  int64_t rows() const { return B * gh * gw; }  // im2col rows: one per patch
  int64_t cols() const { return C * P * P; }    // im2col columns: (c, ky, kx), as weight is laid out
};

// patchEmbedForward: images [B, C, H, W], weight [width, C, P, P] with P dividing H and W,
// out [B, patches, width].
PatchGeometry check_patch_embed_forward(DeviceCheck device, const Tensor& images, const Tensor& weight,
                                        const Tensor& out);

// patchEmbedBackward: dout [B, patches, width]; dweight like weight and dimages like images, each optional.
PatchGeometry check_patch_embed_backward(DeviceCheck device, const Tensor& images, const Tensor& weight,
                                         const Tensor& dout, const Tensor* dweight, const Tensor* dimages);

}  // namespace cs
