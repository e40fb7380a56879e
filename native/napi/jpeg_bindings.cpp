// decodeJpeg(bytes, scale, maxPixels) → { width, height, channels, data }
//   bytes: Uint8Array of a JPEG file; scale: 1, 2, 4 or 8 (the DCT-domain reduction, as
//   Pillow's draft); maxPixels: refuse images whose stored width·height is larger.
//   data: Uint8Array, interleaved L (1), RGB (3) or CMYK (4) samples as Pillow holds them.
// Synchronous: decode workers call it on their own threads. Corrupt data becomes a JS Error.
#include <cstring>

#include "core/error.h"
#include "cpu/jpeg_decode.h"
#include "napi/args.h"
#include "napi/registry.h"

namespace cs::napi {

static Napi::Value DecodeJpeg(const Napi::CallbackInfo& info) {
  const char* op = "decodeJpeg";
  Napi::Env env = info.Env();
  if (info.Length() < 3) fail(op, ": expected 3 arguments (bytes, scale, maxPixels), got ", info.Length());
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    fail(op, ": bytes must be a Uint8Array");
  auto bytes = info[0].As<Napi::Uint8Array>();
  const int64_t scale = arg_int(info, 1, op, "scale");
  const double max_pixels = arg_number(info, 2, op, "maxPixels");
  if (!(max_pixels >= 1 && max_pixels <= 9.0e15)) fail(op, ": maxPixels must be a positive number, got ", max_pixels);
  cpu::DecodedJpeg im = cpu::decode_jpeg(bytes.Data(), bytes.ByteLength(), static_cast<int>(scale),
                                         static_cast<uint64_t>(max_pixels));
  const size_t n = static_cast<size_t>(im.width) * im.height * im.channels;
  auto data = Napi::Uint8Array::New(env, n);
  if (n > 0) std::memcpy(data.Data(), im.pixels.get(), n);
  auto out = Napi::Object::New(env);
  out.Set("width", im.width);
  out.Set("height", im.height);
  out.Set("channels", im.channels);
  out.Set("data", data);
  return out;
}
CS_BINDING("decodeJpeg", DecodeJpeg);

static Napi::Value JpegSupported(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), cpu::jpeg_supported()); }
CS_BINDING("jpegSupported", JpegSupported);

}  // namespace cs::napi
