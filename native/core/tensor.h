// The tensor: a shape, a dtype, a device and a reference to storage.
// Tensors are always contiguous and row-major; views share storage.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace cs {

enum class DeviceKind : int { CPU = 0, CUDA = 1 };

struct Device {
  DeviceKind kind = DeviceKind::CPU;
  int index = 0;
  bool is_cpu() const { return kind == DeviceKind::CPU; }
  bool operator==(const Device& o) const { return kind == o.kind && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
  std::string str() const;
};

bool parse_device(const std::string& s, Device* out);

// Owned memory. CPU storage is 64-byte aligned so vector kernels can use aligned loads.
struct Storage {
  void* data = nullptr;
  size_t bytes = 0;
  Device device;
  ~Storage();
  Storage() = default;
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};

std::shared_ptr<Storage> allocate_storage(size_t bytes, Device device);

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);
int64_t shape_numel(const Shape& s);

struct Tensor {
  std::shared_ptr<Storage> storage;
  size_t offset = 0;  // bytes into storage
  Shape shape;
  DType dtype = DType::F32;

  const Device& device() const { return storage->device; }
  int64_t numel() const { return shape_numel(shape); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
  int64_t dim(int i) const { return shape[i < 0 ? shape.size() + i : i]; }
  int ndim() const { return static_cast<int>(shape.size()); }
  void* raw() const { return static_cast<char*>(storage->data) + offset; }
  template <typename T>
  T* data() const { return reinterpret_cast<T*>(raw()); }
  std::string describe() const;  // e.g. "f32[4, 8] on cpu"
};

Tensor make_tensor(const Shape& shape, DType dtype, Device device);

}  // namespace cs
