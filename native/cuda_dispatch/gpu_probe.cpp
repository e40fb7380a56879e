#include "cuda_dispatch/gpu_probe.h"

#include <dlfcn.h>

#include <cstdlib>
#include <sstream>

namespace cs {

namespace {

// Tries each name as given (the loader's search path), then under each directory
// of the colon-separated list in `env_var`.
void* open_first(const std::vector<std::string>& names, const char* env_var, std::string* path, std::string* error) {
  std::vector<std::string> candidates;
  if (const char* dirs = env_var ? std::getenv(env_var) : nullptr) {
    std::stringstream ss(dirs);
    std::string dir;
    while (std::getline(ss, dir, ':'))
      if (!dir.empty())
        for (const auto& n : names) candidates.push_back(dir + "/" + n);
  }
  for (const auto& n : names) candidates.push_back(n);
  std::string last;
  for (const auto& c : candidates) {
    void* h = dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (h) { *path = c; return h; }
    const char* e = dlerror();
    last = e ? e : "not found";
  }
  *error = "not found (tried " + names.front() + (names.size() > 1 ? " and others" : "") + "): " + last;
  return nullptr;
}

}  // namespace

GpuProbe probe_gpu() {
  GpuProbe p;
  std::string path;
  if (void* cuda = open_first({"libcuda.so.1", "libcuda.so"}, nullptr, &path, &p.driver_error)) {
    using InitFn = int (*)(unsigned);
    using CountFn = int (*)(int*);
    using GetFn = int (*)(int*, int);
    using NameFn = int (*)(char*, int, int);
    using VerFn = int (*)(int*);
    using AttrFn = int (*)(int*, int, int);
    using MemFn = int (*)(size_t*, int);
    auto init = reinterpret_cast<InitFn>(dlsym(cuda, "cuInit"));
    auto count = reinterpret_cast<CountFn>(dlsym(cuda, "cuDeviceGetCount"));
    auto get = reinterpret_cast<GetFn>(dlsym(cuda, "cuDeviceGet"));
    auto name = reinterpret_cast<NameFn>(dlsym(cuda, "cuDeviceGetName"));
    auto ver = reinterpret_cast<VerFn>(dlsym(cuda, "cuDriverGetVersion"));
    auto attr = reinterpret_cast<AttrFn>(dlsym(cuda, "cuDeviceGetAttribute"));
    auto mem = reinterpret_cast<MemFn>(dlsym(cuda, "cuDeviceTotalMem_v2"));
    if (!init || !count || !get || !name) {
      p.driver_error = "libcuda found at " + path + " but lacks the driver API entry points";
    } else if (int rc = init(0); rc != 0) {
      p.driver_error = "cuInit failed with CUDA error " + std::to_string(rc) + (rc == 100 ? " (no CUDA-capable device)" : "");
    } else {
      p.driver_found = true;
      if (ver) ver(&p.driver_version);
      int n = 0;
      count(&n);
      for (int i = 0; i < n; i++) {
        int dev = 0;
        char buf[256] = {0};
        get(&dev, i);
        name(buf, sizeof buf, dev);
        p.devices.push_back(buf);
        int major = 0, minor = 0;
        // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75, _MINOR = 76
        if (attr) { attr(&major, 75, dev); attr(&minor, 76, dev); }
        p.device_capabilities.push_back(std::to_string(major) + "." + std::to_string(minor));
        size_t bytes = 0;
        if (mem) mem(&bytes, dev);
        p.device_memory_gib.push_back(static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0));
      }
      if (n == 0) p.driver_error = "the driver reports no devices";
    }
    // The driver stays loaded: unloading libcuda after cuInit is unsafe.
  }
  if (void* lt = open_first({"libcublasLt.so.13", "libcublasLt.so.12"}, "CLIPSCALE_CUBLASLT_PATH", &p.cublaslt_path, &p.cublaslt_error)) {
    using VerFn = size_t (*)();
    if (auto v = reinterpret_cast<VerFn>(dlsym(lt, "cublasLtGetVersion"))) p.cublaslt_version = v();
  } else {
    p.cublaslt_path.clear();
  }
  if (void* nccl = open_first({"libnccl.so.2"}, "CLIPSCALE_NCCL_PATH", &p.nccl_path, &p.nccl_error)) {
    using VerFn = int (*)(int*);
    if (auto v = reinterpret_cast<VerFn>(dlsym(nccl, "ncclGetVersion"))) v(&p.nccl_version);
  } else {
    p.nccl_path.clear();
  }
  return p;
}

}  // namespace cs
