// Many f32 tensors in one kernel launch: up to kTensorsPerLaunch pointers and sizes passed by
// value as a kernel argument (no host→device copy, no synchronisation); blockIdx.y picks the
// tensor. Used by the gradient clipping and the loss scale, which touch every gradient.
#pragma once
#include <cstdint>

namespace cs_cuda {

constexpr int kTensorsPerLaunch = 32;

struct TensorList {
  float* p[kTensorsPerLaunch];
  int64_t n[kTensorsPerLaunch];
};

// Calls launch(list, tensors_in_list, largest_size) for each run of up to kTensorsPerLaunch
// tensors (runs whose tensors are all empty are skipped); returns the first nonzero result.
template <class Launch>
int for_each_tensor_list(float* const* tensors, const int64_t* sizes, int count, Launch&& launch) {
  for (int k0 = 0; k0 < count; k0 += kTensorsPerLaunch) {
    TensorList list{};
    int64_t most = 0;
    const int in_list = count - k0 < kTensorsPerLaunch ? count - k0 : kTensorsPerLaunch;
    for (int k = 0; k < in_list; k++) {
      list.p[k] = tensors[k0 + k];
      list.n[k] = sizes[k0 + k];
      if (sizes[k0 + k] > most) most = sizes[k0 + k];
    }
    if (most == 0) continue;
    if (int rc = launch(list, in_list, most)) return rc;
  }
  return 0;
}

}  // namespace cs_cuda
