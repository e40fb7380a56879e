#include "cuda_dispatch/cuda_backend.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "cuda/abi.h"

namespace cs {

namespace {

const char* kLibName = "libclipscale_cuda.so";
const char* kEmuLibName = "libclipscale_cuda_emu.so";  // the emulated device (CLIPSCALE_CUDA=emulate)

// CLIPSCALE_CUDA=emulate asks for the emulated device; unset or "gpu" for the real one.
bool emulation_requested() {
  const char* e = std::getenv("CLIPSCALE_CUDA");
  return e && std::string(e) == "emulate";
}

std::string dirname_of(const std::string& p) {
  size_t slash = p.find_last_of('/');
  return slash == std::string::npos ? "." : p.substr(0, slash);
}

bool file_exists(const std::string& p) { return access(p.c_str(), F_OK) == 0; }

// The addon's own file, from the address of a function inside it.
std::string addon_path() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&addon_path), &info) && info.dli_fname) return info.dli_fname;
  return "";
}

std::vector<std::string> candidates(std::string* from_env) {
  std::vector<std::string> out;
  if (const char* env = std::getenv("CLIPSCALE_CUDA_LIB"); env && *env) {
    *from_env = env;
    out.push_back(env);
    return out;  // an explicit choice is the only one tried
  }
  const bool emu = emulation_requested();
  const char* name = emu ? kEmuLibName : kLibName;
  const std::string folder = emu ? "/build-cuda-emu/" : "/build-cuda/";
  const std::string self = addon_path();
  if (self.empty()) {
    out.push_back(name);  // the dynamic loader's search path
    return out;
  }
  // build/Release/clipscale.node, prebuilds/<platform>/clipscale.node, …: walk up to the
  // folder with package.json (the package root) and look in its build-cuda/ (build-cuda-emu/).
  std::string dir = dirname_of(self);
  for (int up = 0; up < 6 && dir != "/" && dir != "."; up++) {
    dir = dirname_of(dir);
    if (file_exists(dir + folder + name) || file_exists(dir + "/package.json")) {
      out.push_back(dir + folder + name);
      break;
    }
  }
  out.push_back(dirname_of(self) + "/" + name);
  return out;
}

CudaBackendStatus g_status;
void* g_handle = nullptr;
std::once_flag g_once;

using LastErrorFn = const char* (*)();

void load() {
  std::string from_env;
  std::vector<std::string> paths = candidates(&from_env);
  for (size_t i = 0; i < paths.size(); i++) g_status.searched += (i ? ", " : "") + paths[i];
  std::string last;
  for (const auto& p : paths) {
    if (!from_env.empty() || file_exists(p)) {
      g_status.path = p;
      g_handle = dlopen(p.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (g_handle) break;
      const char* e = dlerror();
      last = e ? e : "dlopen failed";
    }
  }
  if (!g_handle) {
    if (!from_env.empty())
      g_status.reason = "CLIPSCALE_CUDA_LIB=" + from_env + " could not be loaded: " + (last.empty() ? "no such file" : last);
    else if (!last.empty())
      g_status.reason = "the CUDA backend library " + g_status.path + " could not be loaded: " + last;
    else if (emulation_requested())
      g_status.reason = "CLIPSCALE_CUDA=emulate but the emulated CUDA device library is not built (looked for " +
                        g_status.searched + "); build it with 'npm run build:cuda-emu' (needs only g++)";
    else
      g_status.reason = "the CUDA backend library is not built (looked for " + g_status.searched +
                        "); build it with 'npm run build:cuda' (needs the CUDA toolkit's nvcc and cmake)";
    return;
  }
  auto version = reinterpret_cast<int (*)()>(dlsym(g_handle, "cs_cuda_abi_version"));
  if (!version) {
    g_status.reason = g_status.path + " is not a clipscale CUDA backend (no cs_cuda_abi_version)";
    return;
  }
  g_status.abi_version = version();
  if (g_status.abi_version != CS_CUDA_ABI_VERSION) {
    g_status.reason = g_status.path + " has C ABI version " + std::to_string(g_status.abi_version) +
                      " but this addon needs " + std::to_string(CS_CUDA_ABI_VERSION) + "; rebuild it with 'npm run build:cuda'";
    return;
  }
  g_status.loaded = true;
  auto emulated = reinterpret_cast<int (*)()>(dlsym(g_handle, "cs_cuda_emulated"));
  g_status.emulated = emulated && emulated() != 0;
  if (emulation_requested() && !g_status.emulated) {
    g_status.loaded = false;
    g_status.reason = "CLIPSCALE_CUDA=emulate but " + g_status.path + " is not the emulated device's library";
    return;
  }
  auto count = reinterpret_cast<int (*)(int*)>(dlsym(g_handle, "cs_cuda_device_count"));
  auto last_error = reinterpret_cast<LastErrorFn>(dlsym(g_handle, "cs_cuda_last_error"));
  int n = 0;
  if (!count || !last_error) {
    g_status.device_error = "the library lacks cs_cuda_device_count";
  } else if (count(&n) != 0) {
    g_status.device_error = last_error();
  } else if (n == 0) {
    g_status.device_error = "the CUDA driver reports no GPU";
  } else {
    g_status.devices_ok = true;
    g_status.device_count = n;
  }
}

std::string library_message() {
  auto last_error = reinterpret_cast<LastErrorFn>(g_handle ? dlsym(g_handle, "cs_cuda_last_error") : nullptr);
  const char* m = last_error ? last_error() : nullptr;
  return m && *m ? m : "failed without a message";
}

}  // namespace

const CudaBackendStatus& cuda_backend_status() {
  std::call_once(g_once, load);
  return g_status;
}

void* cuda_symbol(const char* op, const char* name) {
  const CudaBackendStatus& s = cuda_backend_status();
  if (!s.loaded) fail(op, ": CUDA backend: ", s.reason);
  const std::string sym = std::string("cs_cuda_") + name;
  void* f = dlsym(g_handle, sym.c_str());
  if (!f) fail(op, ": CUDA backend: ", s.path, " has no entry point ", sym, " (rebuild it with 'npm run build:cuda')");
  return f;
}

void cuda_check(const char* op, int rc) {
  if (rc != 0) {
    std::string m = library_message();
    // The library's messages usually start with an op name already; keep ours in front.
    fail(op, ": CUDA backend: ", m);
  }
}

void cuda_use_device(const char* op, int device) {
  const CudaBackendStatus& s = cuda_backend_status();
  if (!s.loaded) fail(op, ": CUDA backend: ", s.reason);
  if (!s.devices_ok) fail(op, ": CUDA backend: cuda:", device, " cannot be used: ", s.device_error);
  if (device >= s.device_count)
    fail(op, ": CUDA backend: cuda:", device, " does not exist (", s.device_count, " GPU",
         s.device_count == 1 ? "" : "s", " found)");
  // Cheap after the first call: marks the device current for this thread.
  thread_local int current = -1;
  if (current != device) {
    cuda_check(op, cuda_fn<decltype(cs_cuda_init)>("init", op)(device));
    current = device;
  }
}

void* cuda_malloc(const char* op, size_t bytes, int device) {
  cuda_use_device(op, device);
  void* p = nullptr;
  cuda_check(op, cuda_fn<decltype(cs_cuda_malloc)>("malloc", op)(&p, bytes, device));
  return p;
}

void cuda_free(void* ptr, int device) noexcept {
  if (!ptr || !g_handle) return;
  auto f = reinterpret_cast<decltype(&cs_cuda_free)>(dlsym(g_handle, "cs_cuda_free"));
  if (f) f(ptr, device);  // a failure here has nowhere to go; the block is leaked
}

void cuda_memcpy_h2d(const char* op, void* dst, const void* src, size_t bytes, int device) {
  cuda_use_device(op, device);
  cuda_check(op, cuda_fn<decltype(cs_cuda_memcpy_h2d)>("memcpy_h2d", op)(dst, src, bytes, device));
}

void cuda_memcpy_d2h(const char* op, void* dst, const void* src, size_t bytes, int device) {
  cuda_use_device(op, device);
  cuda_check(op, cuda_fn<decltype(cs_cuda_memcpy_d2h)>("memcpy_d2h", op)(dst, src, bytes, device));
}

void cuda_memcpy_d2d(const char* op, void* dst, const void* src, size_t bytes, int device) {
  cuda_use_device(op, device);
  cuda_check(op, cuda_fn<decltype(cs_cuda_memcpy_d2d)>("memcpy_d2d", op)(dst, src, bytes, device));
}

void cuda_synchronize(const char* op, int device) {
  cuda_use_device(op, device);
  cuda_check(op, cuda_fn<decltype(cs_cuda_synchronize)>("synchronize", op)(device));
}

}  // namespace cs
