// The addon's side of the CUDA backend: finds and dlopen's the CUDA library
// (build-cuda/libclipscale_cuda.so) at first use and looks its C entry points up by
// name. The addon has no build-time CUDA dependency; everything goes through here.
//
// Where the library is looked for, in order:
//   1. $CLIPSCALE_CUDA_LIB (a file path);
//   2. <package root>/build-cuda/libclipscale_cuda.so, the package root found from the
//      addon's own file (dladdr) by walking up from it;
//   3. libclipscale_cuda.so next to the addon.
// With CLIPSCALE_CUDA=emulate (and only then) it loads the emulated device instead:
// build-cuda-emu/libclipscale_cuda_emu.so, the same kernels compiled as host C++ on a
// fiber runtime (native/cuda/emu), one "GPU" with an H100's properties, for CI.
#pragma once
#include <cstddef>
#include <string>

#include "core/error.h"

namespace cs {

// False until the backend's tests have passed on a real GPU; `clipscale info` says so.
constexpr bool kCudaBackendVerifiedOnGpu = false;

struct CudaBackendStatus {
  bool loaded = false;        // the library was found and has the expected ABI
  bool emulated = false;      // it is the emulated device (CLIPSCALE_CUDA=emulate)
  std::string path;           // the file loaded (or the last one tried)
  std::string reason;         // why not loaded
  int abi_version = 0;
  bool devices_ok = false;    // the driver answered and has at least one device
  int device_count = 0;
  std::string device_error;   // why no device can be used (no driver, no GPU)
  std::string searched;       // where it looked, for messages
};

// Loads the library once (thread-safe) and reports what happened.
const CudaBackendStatus& cuda_backend_status();

// The library's `cs_cuda_<name>` or a cs::Error "<op>: CUDA backend: ...".
void* cuda_symbol(const char* op, const char* name);

// cuda_fn<decltype(cs_cuda_fill)>("fill", op): the typed entry point.
template <typename Sig>
Sig* cuda_fn(const char* name, const char* op) {
  return reinterpret_cast<Sig*>(cuda_symbol(op, name));
}

// Throws "<op>: CUDA backend: <the library's message>" when rc is nonzero.
void cuda_check(const char* op, int rc);

// Makes sure cuda:<device> can be used (library, driver, device) and is current for
// this thread; throws with the reason otherwise.
void cuda_use_device(const char* op, int device);

// Device memory through the library's caching allocator.
void* cuda_malloc(const char* op, size_t bytes, int device);
void cuda_free(void* ptr, int device) noexcept;

// Copies on the device's stream: h2d/d2d are queued, d2h waits for the device.
void cuda_memcpy_h2d(const char* op, void* dst, const void* src, size_t bytes, int device);
void cuda_memcpy_d2h(const char* op, void* dst, const void* src, size_t bytes, int device);
void cuda_memcpy_d2d(const char* op, void* dst, const void* src, size_t bytes, int device);
void cuda_synchronize(const char* op, int device);

}  // namespace cs
