// JPEG decoding with libjpeg-turbo (linked statically into the addon), with the DCT-domain
// scaling that Pillow's Image.draft uses (scale 1/1, 1/2, 1/4, 1/8: the IDCT itself outputs
// the smaller image, so decoding costs less). Samples come out as Pillow holds them: L for
// one component, RGB for three (YCbCr converted by libjpeg with its default IDCT, JDCT_ISLOW,
// and fancy upsampling, as Pillow's decoder leaves them), CMYK for four (YCCK converted to
// CMYK by libjpeg, then every sample inverted, as Pillow's rawmode "CMYK;I" does).
// Corrupt data, truncation and libjpeg's warnings are errors (cs::Error); libjpeg's own error
// handler, which calls exit(), is never reached.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>

namespace cs::cpu {

struct DecodedJpeg {
  int width = 0;
  int height = 0;
  /** 1 (L), 3 (RGB) or 4 (CMYK). */
  int channels = 0;
  /** Interleaved rows, width·height·channels bytes. */
  std::unique_ptr<uint8_t, decltype(&std::free)> pixels{nullptr, &std::free};
};

/**
 * Decodes `size` bytes at 1/scale_denom of the stored size (scale_denom 1, 2, 4 or 8; each
 * side ceil(stored / scale_denom), as libjpeg rounds). Images whose stored width·height exceeds
 * max_pixels are refused before any decoding (a progressive image holds all its coefficients,
 * whatever the scale). Throws cs::Error naming the problem.
 */
DecodedJpeg decode_jpeg(const uint8_t* data, size_t size, int scale_denom, uint64_t max_pixels);

/** Whether the addon was built with libjpeg-turbo (decode_jpeg throws otherwise). */
bool jpeg_supported();

}  // namespace cs::cpu
