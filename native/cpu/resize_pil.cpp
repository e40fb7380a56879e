#include "cpu/resize_pil.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/target_clones.h"
#include "core/error.h"

namespace cs::cpu {
namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;  // Pillow's PRECISION_BITS

double bicubic(double x) {  // Pillow: a = -0.5
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}
double bilinear(double x) {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}

// Pillow's precompute_coeffs: per output pixel, the first source index, the tap count, and
// ksize weights (normalised to sum 1).
struct Coeffs {
  int ksize = 0;
  std::vector<int> bounds;  // [xmin, count] per output pixel
  std::vector<double> k;
};

Coeffs precompute(int in_size, double in0, double in1, int out_size, ResampleFilter filter) {
  const double support0 = filter == ResampleFilter::Bicubic ? 2.0 : 1.0;
  double (*fn)(double) = filter == ResampleFilter::Bicubic ? bicubic : bilinear;
  double scale = (in1 - in0) / out_size;
  double filterscale = scale < 1.0 ? 1.0 : scale;
  double support = support0 * filterscale;
  Coeffs c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.bounds.resize(static_cast<size_t>(out_size) * 2);
  c.k.assign(static_cast<size_t>(out_size) * c.ksize, 0.0);
  for (int xx = 0; xx < out_size; xx++) {
    double center = in0 + (xx + 0.5) * scale;
    double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);  // C truncation, as Pillow
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double* k = &c.k[static_cast<size_t>(xx) * c.ksize];
    double ww = 0.0;
    for (int x = 0; x < xmax; x++) {
      double w = fn((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (int x = 0; x < xmax; x++)
      if (ww != 0.0) k[x] /= ww;
    c.bounds[xx * 2] = xmin;
    c.bounds[xx * 2 + 1] = xmax;
  }
  return c;
}

// normalize_coeffs_8bpc: to fixed point, rounding half away from zero.
std::vector<int32_t> fixed_point(const Coeffs& c) {
  std::vector<int32_t> out(c.k.size());
  for (size_t i = 0; i < c.k.size(); i++) {
    double v = c.k[i] * (1 << kPrecisionBits);
    out[i] = static_cast<int32_t>(c.k[i] < 0 ? -0.5 + v : 0.5 + v);
  }
  return out;
}

inline uint8_t clip8(int32_t v) {
  v >>= kPrecisionBits;
  return static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
}

// Pillow's MULDIV255 and its RGBa → RGBA division.
inline uint8_t muldiv255(unsigned a, unsigned b) {
  unsigned t = a * b + 128;
  return static_cast<uint8_t>(((t >> 8) + t) >> 8);
}

// Pillow's ImagingScaleAffine: source positions accumulated from the first pixel centre
// (x0 + sx/2, then += sx, in double), truncated; a position outside the source leaves 0.
std::vector<int> nearest_index(double start, double step, int count, int limit) {
  std::vector<int> idx(count);
  double pos = start + step * 0.5;
  for (int i = 0; i < count; i++) {
    int v = pos < 0.0 ? -1 : static_cast<int>(pos);
    idx[i] = v < limit ? v : -1;
    pos += step;
  }
  return idx;
}

template <typename Sample>
void resample_nearest(const Sample* src, int width, int height, int channels, Sample* dst, int out_w, int out_h,
                      const ResampleBox& box) {
  std::vector<int> xs = nearest_index(box.left, (box.right - box.left) / out_w, out_w, width);
  std::vector<int> ys = nearest_index(box.top, (box.bottom - box.top) / out_h, out_h, height);
  for (int y = 0; y < out_h; y++) {
    Sample* out = dst + static_cast<size_t>(y) * out_w * channels;
    if (ys[y] < 0) {
      std::fill(out, out + static_cast<size_t>(out_w) * channels, Sample(0));
      continue;
    }
    const Sample* row = src + static_cast<size_t>(ys[y]) * width * channels;
    for (int x = 0; x < out_w; x++)
      for (int c = 0; c < channels; c++) out[x * channels + c] = xs[x] < 0 ? Sample(0) : row[xs[x] * channels + c];
  }
}

void check(int width, int height, int channels, int out_w, int out_h, const ResampleBox& box) {
  if (width < 1 || height < 1 || out_w < 1 || out_h < 1)
    fail("resizePil: sizes must be positive, got ", width, "x", height, " -> ", out_w, "x", out_h);
  if (channels < 1 || channels > 4) fail("resizePil: channels must be 1..4, got ", channels);
  if (!(box.left >= 0 && box.top >= 0 && box.right <= width && box.bottom <= height && box.left < box.right && box.top < box.bottom))
    fail("resizePil: box (", box.left, ", ", box.top, ", ", box.right, ", ", box.bottom, ") is not inside the ", width, "x", height,
         " image");
}

// The vertical pass's inner loop, built for AVX-512, AVX2 and baseline x86-64 and picked at
// load time (integer arithmetic: every build gives the same sums).

CS_TARGET_CLONES void accumulate_row(int32_t* acc, const uint8_t* row, int32_t k, size_t n) {
  for (size_t i = 0; i < n; i++) acc[i] += row[i] * k;
}

CS_TARGET_CLONES void clip_row(uint8_t* out, const int32_t* acc, size_t n) {
  for (size_t i = 0; i < n; i++) {
    int32_t v = acc[i] >> kPrecisionBits;
    out[i] = static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
  }
}

// Horizontal pass for `rows` rows starting at source row `y0`, outputs [x0, x0 + w): C fixed.
template <int C>
void horizontal_pass(const uint8_t* src, int width, int y0, int rows, const Coeffs& ch, const std::vector<int32_t>& kh, int x0,
                     int w, uint8_t* out) {
  for (int y = 0; y < rows; y++) {
    const uint8_t* row = src + static_cast<size_t>(y + y0) * width * C;
    uint8_t* o = out + static_cast<size_t>(y) * w * C;
    for (int i = 0; i < w; i++) {
      const int xx = x0 + i;
      const int xmin = ch.bounds[xx * 2], count = ch.bounds[xx * 2 + 1];
      const int32_t* k = &kh[static_cast<size_t>(xx) * ch.ksize];
      const uint8_t* p = row + static_cast<size_t>(xmin) * C;
      int32_t acc[C];
      for (int c = 0; c < C; c++) acc[c] = 1 << (kPrecisionBits - 1);
      for (int x = 0; x < count; x++) {
        const int32_t kx = k[x];
        for (int c = 0; c < C; c++) acc[c] += p[x * C + c] * kx;
      }
      for (int c = 0; c < C; c++) o[i * C + c] = clip8(acc[c]);
    }
  }
}

}  // namespace

void resize_pil_u8(const uint8_t* src, int width, int height, int channels, uint8_t* dst, int out_w, int out_h,
                   ResampleFilter filter, const ResampleBox& box, bool premultiply_alpha, const ResampleWindow* window) {
  check(width, height, channels, out_w, out_h, box);
  const ResampleWindow win = window ? *window : ResampleWindow{0, 0, out_w, out_h};
  if (win.x < 0 || win.y < 0 || win.w < 1 || win.h < 1 || win.x + win.w > out_w || win.y + win.h > out_h)
    fail("resizePil: window (", win.x, ", ", win.y, ", ", win.w, "x", win.h, ") is not inside the ", out_w, "x", out_h, " output");
  const int C = channels;
  const size_t out_stride = static_cast<size_t>(win.w) * C;
  if (filter == ResampleFilter::Nearest) {
    std::vector<uint8_t> full(static_cast<size_t>(out_w) * out_h * C);
    resample_nearest(src, width, height, C, full.data(), out_w, out_h, box);
    for (int y = 0; y < win.h; y++)
      std::copy_n(full.data() + (static_cast<size_t>(win.y + y) * out_w + win.x) * C, out_stride, dst + y * out_stride);
    return;
  }
  // Pillow copies when nothing changes.
  if (out_w == width && out_h == height && box.left == 0 && box.top == 0 && box.right == width && box.bottom == height) {
    for (int y = 0; y < win.h; y++)
      std::copy_n(src + (static_cast<size_t>(win.y + y) * width + win.x) * C, out_stride, dst + y * out_stride);
    return;
  }
  std::vector<uint8_t> premul;
  if (premultiply_alpha && C >= 2) {
    const size_t pixels = static_cast<size_t>(width) * height;
    premul.resize(pixels * C);
    for (size_t p = 0; p < pixels; p++) {
      const uint8_t* s = src + p * C;
      uint8_t* d = premul.data() + p * C;
      unsigned a = s[C - 1];
      for (int c = 0; c < C - 1; c++) d[c] = muldiv255(s[c], a);
      d[C - 1] = static_cast<uint8_t>(a);
    }
    src = premul.data();
  }
  const bool need_h = out_w != width || box.left != 0 || box.right != out_w;
  const bool need_v = out_h != height || box.top != 0 || box.bottom != out_h;
  Coeffs ch = precompute(width, box.left, box.right, out_w, filter);
  Coeffs cv = precompute(height, box.top, box.bottom, out_h, filter);
  std::vector<int32_t> kh = fixed_point(ch), kv = fixed_point(cv);

  // The source rows the window needs: the vertical taps of its rows, or its rows themselves.
  const int y_first = need_v ? cv.bounds[win.y * 2] : win.y;
  const int last = win.y + win.h - 1;
  const int y_last = need_v ? cv.bounds[last * 2] + cv.bounds[last * 2 + 1] : win.y + win.h;
  // The horizontal pass (into 8 bits, as Pillow's intermediate image), or the source columns.
  std::vector<uint8_t> temp;
  const uint8_t* vin;
  size_t vin_stride;
  if (need_h) {
    const int rows = y_last - y_first;
    temp.resize(static_cast<size_t>(rows) * out_stride);
    switch (C) {
      case 1: horizontal_pass<1>(src, width, y_first, rows, ch, kh, win.x, win.w, temp.data()); break;
      case 2: horizontal_pass<2>(src, width, y_first, rows, ch, kh, win.x, win.w, temp.data()); break;
      case 3: horizontal_pass<3>(src, width, y_first, rows, ch, kh, win.x, win.w, temp.data()); break;
      default: horizontal_pass<4>(src, width, y_first, rows, ch, kh, win.x, win.w, temp.data()); break;
    }
    vin = temp.data();
    vin_stride = out_stride;
  } else {
    vin = src + (static_cast<size_t>(y_first) * width + win.x) * C;
    vin_stride = static_cast<size_t>(width) * C;
  }
  if (need_v) {
    // Row by row: every tap adds a whole source row to the accumulators (sequential, vectorisable).
    std::vector<int32_t> acc(out_stride);
    for (int y = 0; y < win.h; y++) {
      const int yy = win.y + y;
      const int ymin = cv.bounds[yy * 2] - y_first, count = cv.bounds[yy * 2 + 1];
      const int32_t* k = &kv[static_cast<size_t>(yy) * cv.ksize];
      std::fill(acc.begin(), acc.end(), 1 << (kPrecisionBits - 1));
      for (int t = 0; t < count; t++) accumulate_row(acc.data(), vin + static_cast<size_t>(ymin + t) * vin_stride, k[t], out_stride);
      clip_row(dst + y * out_stride, acc.data(), out_stride);
    }
  } else {
    for (int y = 0; y < win.h; y++) std::copy_n(vin + y * vin_stride, out_stride, dst + y * out_stride);
  }
  if (premultiply_alpha && C >= 2) {
    const size_t pixels = static_cast<size_t>(win.w) * win.h;
    for (size_t p = 0; p < pixels; p++) {
      uint8_t* d = dst + p * C;
      unsigned a = d[C - 1];
      if (a == 0 || a == 255) continue;
      for (int c = 0; c < C - 1; c++) {
        unsigned v = (255u * d[c]) / a;
        d[c] = static_cast<uint8_t>(v > 255 ? 255 : v);
      }
    }
  }
}

void resize_pil_u16(const uint16_t* src, int width, int height, uint16_t* dst, int out_w, int out_h, ResampleFilter filter,
                    const ResampleBox& box) {
  check(width, height, 1, out_w, out_h, box);
  if (filter == ResampleFilter::Nearest) {
    resample_nearest(src, width, height, 1, dst, out_w, out_h, box);
    return;
  }
  if (out_w == width && out_h == height && box.left == 0 && box.top == 0 && box.right == width && box.bottom == height) {
    std::copy(src, src + static_cast<size_t>(width) * height, dst);
    return;
  }
  // Pillow's 16bpc passes: double sums, rounded half away from zero, then split into bytes
  // and each byte clamped (so an undershoot gives 0 and an overshoot keeps its low byte).
  auto store = [](double ss) -> uint16_t {
    int v = static_cast<int>(ss >= 0.0 ? std::floor(ss + 0.5) : -std::floor(std::fabs(ss) + 0.5));
    int lo = v % 256, hi = v >> 8;
    lo = lo < 0 ? 0 : lo > 255 ? 255 : lo;
    hi = hi < 0 ? 0 : hi > 255 ? 255 : hi;
    return static_cast<uint16_t>(hi * 256 + lo);
  };
  const bool need_h = out_w != width || box.left != 0 || box.right != out_w;
  const bool need_v = out_h != height || box.top != 0 || box.bottom != out_h;
  Coeffs ch = precompute(width, box.left, box.right, out_w, filter);
  Coeffs cv = precompute(height, box.top, box.bottom, out_h, filter);
  const int y_first = cv.bounds[0];
  const int y_last = cv.bounds[(out_h - 1) * 2] + cv.bounds[(out_h - 1) * 2 + 1];
  std::vector<uint16_t> temp;
  const uint16_t* vin = src;
  int vin_w = width, y_offset = 0;
  if (need_h) {
    const int rows = y_last - y_first;
    temp.resize(static_cast<size_t>(rows) * out_w);
    for (int y = 0; y < rows; y++) {
      const uint16_t* row = src + static_cast<size_t>(y + y_first) * width;
      for (int xx = 0; xx < out_w; xx++) {
        const int xmin = ch.bounds[xx * 2], count = ch.bounds[xx * 2 + 1];
        const double* k = &ch.k[static_cast<size_t>(xx) * ch.ksize];
        double ss = 0.0;
        for (int x = 0; x < count; x++) ss += row[xmin + x] * k[x];
        temp[static_cast<size_t>(y) * out_w + xx] = store(ss);
      }
    }
    vin = temp.data();
    vin_w = out_w;
    y_offset = y_first;
  }
  if (need_v) {
    for (int yy = 0; yy < out_h; yy++) {
      const int ymin = cv.bounds[yy * 2] - y_offset, count = cv.bounds[yy * 2 + 1];
      const double* k = &cv.k[static_cast<size_t>(yy) * cv.ksize];
      for (int xx = 0; xx < vin_w; xx++) {
        double ss = 0.0;
        for (int y = 0; y < count; y++) ss += vin[static_cast<size_t>(ymin + y) * vin_w + xx] * k[y];
        dst[static_cast<size_t>(yy) * vin_w + xx] = store(ss);
      }
    }
  } else {
    std::copy(vin, vin + static_cast<size_t>(out_w) * out_h, dst);
  }
}

}  // namespace cs::cpu
