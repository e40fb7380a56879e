// libjpeg reports errors through error_exit, which must not return; its default calls exit().
// We do not link libjpeg's default error manager (jerror.c) at all: its message printer writes to
// stderr through a data relocation that keeps the static libjpeg.a out of a shared object. Our
// manager formats libjpeg's own message table (jerror.h) and prints nothing.
// Ours records the message and longjmps back to decode_into(), which releases everything
// (jpeg_destroy_decompress, the output) and returns the message. Between setjmp and longjmp
// only C-style state lives on the stack (no C++ object needs a destructor there), so the jump
// skips nothing; the C++ error is thrown only after the jump, outside libjpeg's frames.
#include "cpu/jpeg_decode.h"

#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/error.h"

#ifdef CLIPSCALE_WITH_JPEG
extern "C" {
#include <jpeglib.h>
#include <jerror.h>
}
#endif

namespace cs::cpu {

#ifdef CLIPSCALE_WITH_JPEG
namespace {

// Progressive JPEGs may hold any number of scans, each a pass over the whole coefficient
// buffer; a few hundred bytes can ask for millions of passes. libjpeg-turbo's TurboJPEG API
// stops at 500 (TJFLAG_LIMITSCANS); so do we.
constexpr int kMaxScans = 500;

struct ErrorManager {
  jpeg_error_mgr pub;  // first: libjpeg hands back &pub
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX + 64];
};

struct Progress {
  jpeg_progress_mgr pub;
  ErrorManager* err;
};

// libjpeg's message strings, from its public header, indexed by message code.
// (JVERSION and JCOPYRIGHT_SHORT live in libjpeg's private jversion.h: not needed here.)
#define JVERSION "libjpeg-turbo"
#define JCOPYRIGHT_SHORT "libjpeg-turbo"
#define JMESSAGE(code, string) string,
const char* const kMessages[] = {
#include <jerror.h>
    nullptr};
#undef JMESSAGE
#undef JVERSION
#undef JCOPYRIGHT_SHORT
constexpr int kLastMessage = static_cast<int>(sizeof kMessages / sizeof kMessages[0]) - 2;

extern "C" void format_message(j_common_ptr cinfo, char* buffer) {
  const jpeg_error_mgr* e = cinfo->err;
  const int code = e->msg_code;
  const char* format = code > 0 && code <= kLastMessage ? kMessages[code] : nullptr;
  if (!format) {
    std::snprintf(buffer, JMSG_LENGTH_MAX, "unknown libjpeg message code %d", code);
    return;
  }
  // A message takes either one string parameter or up to eight integers.
  if (std::strstr(format, "%s")) {
    std::snprintf(buffer, JMSG_LENGTH_MAX, format, e->msg_parm.s);
  } else {
    const int* p = e->msg_parm.i;
    std::snprintf(buffer, JMSG_LENGTH_MAX, format, p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7]);
  }
}

extern "C" void output_nothing(j_common_ptr) {}

extern "C" void reset_error_mgr(j_common_ptr cinfo) {
  cinfo->err->num_warnings = 0;
  cinfo->err->msg_code = 0;
}

[[noreturn]] void jump_with(j_common_ptr cinfo, const char* prefix) {
  auto* e = reinterpret_cast<ErrorManager*>(cinfo->err);
  char text[JMSG_LENGTH_MAX];
  (*cinfo->err->format_message)(cinfo, text);
  // Some of libjpeg's warnings already begin "Corrupt JPEG data: ".
  if (std::strncmp(text, "Corrupt JPEG data", 17) == 0) prefix = "";
  std::snprintf(e->message, sizeof e->message, "%s%s", prefix, text);
  std::longjmp(e->jump, 1);
}

extern "C" void on_error_exit(j_common_ptr cinfo) { jump_with(cinfo, ""); }

// Level −1 is a warning: corrupt or truncated data that libjpeg would patch over (grey for
// missing rows). sharp's default (failOn 'warning'), which decodes JPEGs elsewhere in
// clipscale, refuses such images too, so both paths skip the same samples.
extern "C" void on_emit_message(j_common_ptr cinfo, int msg_level) {
  if (msg_level < 0) jump_with(cinfo, "corrupt JPEG data: ");
}

extern "C" void on_progress(j_common_ptr cinfo) {
  auto* p = reinterpret_cast<Progress*>(cinfo->progress);
  auto* d = reinterpret_cast<j_decompress_ptr>(cinfo);
  if (d->input_scan_number > kMaxScans) {
    std::snprintf(p->err->message, sizeof p->err->message, "progressive JPEG has more than %d scans", kMaxScans);
    std::longjmp(p->err->jump, 1);
  }
}

struct Output {
  int width, height, channels;
  uint8_t* pixels;  // malloc'd; owned by the caller on success
};

// Returns true with `out` filled, or false with `message` set; never throws, never exits.
bool decode_into(const uint8_t* data, size_t size, int scale_denom, uint64_t max_pixels, Output* out, char* message,
                 size_t message_size) {
  jpeg_decompress_struct cinfo;
  std::memset(&cinfo, 0, sizeof cinfo);
  ErrorManager err;
  Progress progress;
  uint8_t* volatile pixels = nullptr;
  std::memset(&err.pub, 0, sizeof err.pub);
  err.pub.error_exit = on_error_exit;
  err.pub.emit_message = on_emit_message;
  err.pub.output_message = output_nothing;
  err.pub.format_message = format_message;
  err.pub.reset_error_mgr = reset_error_mgr;
  err.pub.jpeg_message_table = kMessages;
  err.pub.last_jpeg_message = kLastMessage;
  cinfo.err = &err.pub;
  err.message[0] = '\0';
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    std::free(pixels);
    std::snprintf(message, message_size, "%s", err.message);
    return false;
  }
  jpeg_create_decompress(&cinfo);
  progress.pub.progress_monitor = on_progress;
  progress.err = &err;
  cinfo.progress = &progress.pub;
  jpeg_mem_src(&cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(&cinfo, TRUE);

  const uint64_t stored = static_cast<uint64_t>(cinfo.image_width) * cinfo.image_height;
  if (stored > max_pixels) {
    std::snprintf(err.message, sizeof err.message, "JPEG of %ux%u (%llu pixels) is over the limit of %llu pixels",
                  cinfo.image_width, cinfo.image_height, static_cast<unsigned long long>(stored),
                  static_cast<unsigned long long>(max_pixels));
    std::longjmp(err.jump, 1);
  }
  switch (cinfo.num_components) {
    case 1: cinfo.out_color_space = JCS_GRAYSCALE; break;
    case 3: cinfo.out_color_space = JCS_RGB; break;
    case 4: cinfo.out_color_space = JCS_CMYK; break;
    default:
      std::snprintf(err.message, sizeof err.message, "JPEG with %d components (Pillow reads 1, 3 or 4)", cinfo.num_components);
      std::longjmp(err.jump, 1);
  }
  cinfo.scale_num = 1;
  cinfo.scale_denom = static_cast<unsigned>(scale_denom);
  jpeg_start_decompress(&cinfo);

  const int w = static_cast<int>(cinfo.output_width);
  const int h = static_cast<int>(cinfo.output_height);
  const int c = cinfo.output_components;
  const size_t stride = static_cast<size_t>(w) * c;
  pixels = static_cast<uint8_t*>(std::malloc(stride * h > 0 ? stride * h : 1));
  if (!pixels) {
    std::snprintf(err.message, sizeof err.message, "out of memory for a %dx%d decoded JPEG", w, h);
    std::longjmp(err.jump, 1);
  }
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW rows[4];
    const int n = static_cast<int>(cinfo.output_height - cinfo.output_scanline);
    const int batch = n < 4 ? n : 4;
    for (int k = 0; k < batch; k++) rows[k] = pixels + (cinfo.output_scanline + k) * stride;
    jpeg_read_scanlines(&cinfo, rows, static_cast<JDIMENSION>(batch));
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  if (c == 4) {
    // Pillow reads every four-component JPEG as Adobe-inverted CMYK ("CMYK;I").
    uint8_t* p = pixels;
    for (size_t i = 0, n = stride * h; i < n; i++) p[i] = static_cast<uint8_t>(255 - p[i]);
  }
  *out = {w, h, c, pixels};
  return true;
}

}  // namespace

DecodedJpeg decode_jpeg(const uint8_t* data, size_t size, int scale_denom, uint64_t max_pixels) {
  if (scale_denom != 1 && scale_denom != 2 && scale_denom != 4 && scale_denom != 8)
    fail("decodeJpeg: scale must be 1, 2, 4 or 8, got ", scale_denom);
  if (size == 0) fail("decodeJpeg: the image is empty (0 bytes)");
  Output out{};
  char message[JMSG_LENGTH_MAX + 64];
  if (!decode_into(data, size, scale_denom, max_pixels, &out, message, sizeof message)) fail("decodeJpeg: ", message);
  DecodedJpeg result;
  result.width = out.width;
  result.height = out.height;
  result.channels = out.channels;
  result.pixels.reset(out.pixels);
  return result;
}

bool jpeg_supported() { return true; }

#else  // built without libjpeg-turbo

DecodedJpeg decode_jpeg(const uint8_t*, size_t, int, uint64_t) {
  fail("decodeJpeg: this clipscale addon was built without libjpeg-turbo (install libjpeg62-turbo-dev or libjpeg-turbo8-dev, "
       "or set JPEG_PREFIX, and rebuild)");
}

bool jpeg_supported() { return false; }

#endif

}  // namespace cs::cpu
