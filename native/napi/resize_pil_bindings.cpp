// resizePil(src, width, height, channels, outWidth, outHeight, filter, box, premultiplyAlpha, window?)
//   src: Uint8Array (interleaved, `channels` per pixel) or Uint16Array (one channel, mode I;16)
//   filter: 'bicubic' | 'bilinear' | 'nearest'; box: [left, top, right, bottom] or null (whole image)
//   window: [x, y, width, height] of the output to compute (8-bit only), or null: all of it
//   → a new array of the same kind holding the window's (or outWidth·outHeight's) samples.
// Synchronous: decode workers call it on their own threads.
#include <string>

#include "core/error.h"
#include "cpu/resize_pil.h"
#include "napi/args.h"
#include "napi/registry.h"

namespace cs::napi {

static Napi::Value ResizePil(const Napi::CallbackInfo& info) {
  const char* op = "resizePil";
  Napi::Env env = info.Env();
  if (info.Length() < 9) fail(op, ": expected 9 arguments, got ", info.Length());
  if (!info[0].IsTypedArray()) fail(op, ": src must be a Uint8Array or Uint16Array");
  auto src = info[0].As<Napi::TypedArray>();
  const int width = static_cast<int>(arg_int(info, 1, op, "width"));
  const int height = static_cast<int>(arg_int(info, 2, op, "height"));
  const int channels = static_cast<int>(arg_int(info, 3, op, "channels"));
  const int out_w = static_cast<int>(arg_int(info, 4, op, "outWidth"));
  const int out_h = static_cast<int>(arg_int(info, 5, op, "outHeight"));
  const std::string filter_name = arg_string(info, 6, op, "filter");
  const bool premultiply = arg_bool(info, 8, op, "premultiplyAlpha");
  cpu::ResampleFilter filter;
  if (filter_name == "bicubic") filter = cpu::ResampleFilter::Bicubic;
  else if (filter_name == "bilinear") filter = cpu::ResampleFilter::Bilinear;
  else if (filter_name == "nearest") filter = cpu::ResampleFilter::Nearest;
  else fail(op, ": filter must be 'bicubic', 'bilinear' or 'nearest', got '", filter_name, "'");
  if (width < 1 || height < 1 || out_w < 1 || out_h < 1 || out_w > 1 << 15 || out_h > 1 << 15)
    fail(op, ": sizes must be positive (output at most 32768), got ", width, "x", height, " -> ", out_w, "x", out_h);
  cpu::ResampleBox box{0.0, 0.0, static_cast<double>(width), static_cast<double>(height)};
  if (!info[7].IsNull() && !info[7].IsUndefined()) {
    if (!info[7].IsArray() || info[7].As<Napi::Array>().Length() != 4) fail(op, ": box must be [left, top, right, bottom] or null");
    auto a = info[7].As<Napi::Array>();
    double v[4];
    for (uint32_t i = 0; i < 4; i++) {
      Napi::Value e = a.Get(i);
      if (!e.IsNumber()) fail(op, ": box[", i, "] must be a number");
      v[i] = e.As<Napi::Number>().DoubleValue();
    }
    box = {v[0], v[1], v[2], v[3]};
  }
  bool has_window = info.Length() > 9 && !info[9].IsNull() && !info[9].IsUndefined();
  cpu::ResampleWindow window{0, 0, out_w, out_h};
  if (has_window) {
    if (!info[9].IsArray() || info[9].As<Napi::Array>().Length() != 4) fail(op, ": window must be [x, y, width, height] or null");
    auto a = info[9].As<Napi::Array>();
    int v[4];
    for (uint32_t i = 0; i < 4; i++) {
      Napi::Value e = a.Get(i);
      if (!e.IsNumber()) fail(op, ": window[", i, "] must be a number");
      v[i] = e.As<Napi::Number>().Int32Value();
    }
    window = {v[0], v[1], v[2], v[3]};
  }
  const size_t expected = static_cast<size_t>(width) * height * channels;
  const size_t out_len = static_cast<size_t>(window.w > 0 ? window.w : 0) * (window.h > 0 ? window.h : 0) * channels;
  if (src.TypedArrayType() == napi_uint8_array) {
    if (src.ElementLength() != expected)
      fail(op, ": src holds ", src.ElementLength(), " bytes, a ", width, "x", height, "x", channels, " image needs ", expected);
    auto out = Napi::Uint8Array::New(env, out_len);
    cpu::resize_pil_u8(static_cast<const uint8_t*>(src.ArrayBuffer().Data()) + src.ByteOffset(), width, height, channels,
                       out.Data(), out_w, out_h, filter, box, premultiply, &window);
    return out;
  }
  if (src.TypedArrayType() == napi_uint16_array) {
    if (channels != 1) fail(op, ": 16-bit images must have one channel (mode I;16), got ", channels);
    if (has_window) fail(op, ": a window is for 8-bit images only");
    if (src.ElementLength() != expected)
      fail(op, ": src holds ", src.ElementLength(), " samples, a ", width, "x", height, " image needs ", expected);
    auto out = Napi::Uint16Array::New(env, out_len);
    cpu::resize_pil_u16(reinterpret_cast<const uint16_t*>(static_cast<const uint8_t*>(src.ArrayBuffer().Data()) + src.ByteOffset()),
                        width, height, out.Data(), out_w, out_h, filter, box);
    return out;
  }
  fail(op, ": src must be a Uint8Array or Uint16Array");
}
CS_BINDING("resizePil", ResizePil);

}  // namespace cs::napi
