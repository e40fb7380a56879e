// Which backend runs an op: the device of its tensors. All tensors of one op must
// share a device. Until the CUDA backend library is loaded, CUDA tensors cannot
// exist, so every op runs on the CPU backend.
#pragma once
#include <initializer_list>

#include "core/error.h"
#include "core/tensor.h"

namespace cs {

// Checks that every non-null tensor is on the same device and returns it.
inline Device common_device(const char* op, std::initializer_list<const Tensor*> ts) {
  const Tensor* first = nullptr;
  for (const Tensor* t : ts) {
    if (!t) continue;
    if (!first) first = t;
    else if (t->device() != first->device())
      fail(op, ": tensors are on different devices (", first->describe(), " and ", t->describe(), ")");
  }
  return first ? first->device() : Device{};
}

inline void require_cpu_backend(const char* op, std::initializer_list<const Tensor*> ts) {
  Device d = common_device(op, ts);
  if (!d.is_cpu()) fail(op, ": no backend for ", d.str(), " in this build (the CUDA backend is not loaded)");
}

}  // namespace cs
