#include "core/tensor.h"

#include <cstdlib>
#include <sstream>

#include "cuda_dispatch/cuda_backend.h"
#include "core/error.h"
#include "core/host_memory.h"

namespace cs {

std::string Device::str() const {
  if (kind == DeviceKind::CPU) return "cpu";
  return "cuda:" + std::to_string(index);
}

bool parse_device(const std::string& s, Device* out) {
  if (s == "cpu") { *out = Device{DeviceKind::CPU, 0}; return true; }
  if (s == "cuda") { *out = Device{DeviceKind::CUDA, 0}; return true; }
  if (s.rfind("cuda:", 0) == 0 && s.size() > 5) {
    char* end = nullptr;
    long idx = std::strtol(s.c_str() + 5, &end, 10);
    if (*end != '\0' || idx < 0 || idx > 1024) return false;
    *out = Device{DeviceKind::CUDA, static_cast<int>(idx)};
    return true;
  }
  return false;
}

Storage::~Storage() {
  if (!data) return;
  if (device.is_cpu()) host_free(data);
  else cuda_free(data, device.index);  // back to the CUDA library's cache
}

std::shared_ptr<Storage> allocate_storage(size_t bytes, Device device) {
  if (!device.is_cpu()) {
    // The caching allocator of the CUDA library (loaded at first use); the error says
    // why when it cannot be used (not built, no driver, no GPU, out of memory).
    const CudaBackendStatus& st = cuda_backend_status();
    if (!st.loaded) fail("allocate: device ", device.str(), " needs the CUDA backend: ", st.reason);
    if (!st.devices_ok)
      fail("allocate: device ", device.str(), " needs the CUDA backend, which finds no usable GPU: ", st.device_error);
    auto s = std::make_shared<Storage>();
    s->data = cuda_malloc("allocate", bytes, device.index);
    s->bytes = bytes;
    s->device = device;
    return s;
  }
  auto s = std::make_shared<Storage>();
  s->data = host_alloc(bytes);
  if (!s->data) fail("allocate: out of host memory asking for ", bytes, " bytes");
  s->bytes = bytes;
  s->device = device;
  return s;
}

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < s.size(); i++) os << (i ? ", " : "") << s[i];
  os << "]";
  return os.str();
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

std::string Tensor::describe() const {
  return std::string(dtype_name(dtype)) + shape_str(shape) + " on " + device().str();
}

Tensor make_tensor(const Shape& shape, DType dtype, Device device) {
  for (int64_t d : shape)
    if (d < 0) fail("tensor: negative dimension in shape ", shape_str(shape));
  Tensor t;
  t.shape = shape;
  t.dtype = dtype;
  t.storage = allocate_storage(static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype), device);
  return t;
}

}  // namespace cs
