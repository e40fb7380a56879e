// Which backend runs an op: the device of its tensors. All tensors of one op must
// share a device. Bindings dispatch with
//   if (on_cuda(op, {&x, &out})) cuda::op(...); else cpu::op(...);
// CUDA tensors exist only once the CUDA backend library is loaded (cuda_dispatch/cuda_backend.h).
#pragma once
#include <initializer_list>

#include "cuda_dispatch/cuda_backend.h"
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

// True when the op's tensors are all on one CUDA device (made current for this
// thread); false when they are all on the CPU; an error when they are mixed.
inline bool on_cuda(const char* op, std::initializer_list<const Tensor*> ts) {
  Device d = common_device(op, ts);
  if (d.is_cpu()) return false;
  cuda_use_device(op, d.index);
  return true;
}

// For ops that have no CUDA implementation yet.
inline void require_cpu_backend(const char* op, std::initializer_list<const Tensor*> ts) {
  Device d = common_device(op, ts);
  if (!d.is_cpu())
    fail(op, ": not implemented on the CUDA backend yet (tensors on ", d.str(), "); move them with .to('cpu')");
}

}  // namespace cs
