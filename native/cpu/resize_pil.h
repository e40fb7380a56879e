// Image resampling exactly as Pillow does it (Resample.c, Pillow 9-12), so that images
// preprocessed here equal OpenCLIP's PIL + torchvision preprocessing byte for byte:
// separable convolution, horizontal pass first into an 8-bit image, filter support scaled
// by the downscale factor (antialiasing), coefficients normalised to sum 1 and rounded to
// 22-bit fixed point, and each output rounded and clamped to a byte. Nearest neighbour as
// Pillow's affine transform samples it. 16-bit single-channel images (mode I;16) use
// Pillow's 16bpc path (double coefficients, rounded per pass).
#pragma once
#include <cstdint>

namespace cs::cpu {

enum class ResampleFilter { Nearest, Bilinear, Bicubic };

/** Source box in source pixels (Pillow's `box`): left, top, right, bottom. */
struct ResampleBox {
  double left, top, right, bottom;
};

/** The part of the output to compute (the centre crop): x, y, width, height in output pixels. */
struct ResampleWindow {
  int x, y, w, h;
};

// Interleaved 8-bit pixels, `channels` per pixel (1..4), rows packed. `dst` holds
// out_w·out_h·channels bytes. With premultiply_alpha the last channel is alpha and the colour
// channels are premultiplied before and divided after, as Pillow resizes RGBA/LA (via RGBa/La).
// With a window only that part of the out_w × out_h result is computed into dst (window.w ·
// window.h · channels bytes), each pixel exactly as in the whole result.
void resize_pil_u8(const uint8_t* src, int width, int height, int channels, uint8_t* dst, int out_w, int out_h,
                   ResampleFilter filter, const ResampleBox& box, bool premultiply_alpha,
                   const ResampleWindow* window = nullptr);

// One channel of 16-bit samples (native byte order), as Pillow resizes mode I;16.
void resize_pil_u16(const uint16_t* src, int width, int height, uint16_t* dst, int out_w, int out_h, ResampleFilter filter,
                    const ResampleBox& box);

}  // namespace cs::cpu
