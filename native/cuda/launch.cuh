// Kernel launches and dynamic shared memory in a form both builds accept: nvcc's
// `kernel<<<grid, block, smem, stream>>>(args)` and the emulated device's launch
// (emu/cuda_runtime.h), where the same sources are compiled as host C++.
//
//   CS_LAUNCH(kernel, grid, block, smem, stream, args...);   then check with launched(op)
//   CS_DYNAMIC_SMEM(uint16_t, smem);                          extern __shared__ T smem[]
//
// `kernel` must be one token list without a top-level comma: name a template
// instance through a variable first (auto k = my_kernel<4, true>;).
#pragma once
#include <cuda_runtime.h>

#if defined(__CUDACC__)
#define CS_LAUNCH(kernel, grid, block, smem, stream, ...) kernel<<<(grid), (block), (smem), (stream)>>>(__VA_ARGS__)
#define CS_DYNAMIC_SMEM(T, name) extern __shared__ __align__(16) T name[]
#else
#define CS_LAUNCH(kernel, grid, block, smem, stream, ...) \
  ::cs_emu::launch_kernel(#kernel, kernel, dim3(grid), dim3(block), (smem), (stream), __VA_ARGS__)
#define CS_DYNAMIC_SMEM(T, name) T* name = static_cast<T*>(::cs_emu::dynamic_shared())
#endif
