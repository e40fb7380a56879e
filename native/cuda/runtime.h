// Internal helpers of the CUDA library shared by every kernel file (not part of the
// C ABI): the per-thread error message, the current device's stream, launch checks,
// stream-ordered scratch memory and errors recorded by kernels.
#pragma once
#include <cuda_runtime.h>
#include <stdint.h>

#include <cstddef>

namespace cs_cuda {

// Sets this thread's last error (printf-style) and returns 1, for `return fail(...)`.
int fail(const char* fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

// Returns 0, or fails with "<op>: <what>: <CUDA's message>" when e is an error.
int check(cudaError_t e, const char* op, const char* what);
// After a kernel launch: fails when the launch was rejected.
int launched(const char* op);

// The calling thread's current device (set by cs_cuda_init) and its stream.
int current_device();
cudaStream_t stream();

// The operand precision chosen by cs_cuda_set_precision (abi.h); kernels round their
// operands and stored values to it (fp32: no rounding).
enum class Precision : int { F32 = 0, BF16 = 1, F16 = 2 };
Precision precision();

// An error found inside a kernel (a bad id, an overflow), kept on the device until the
// next synchronisation reports it. Codes: see runtime.cu (kernel_error_message).
struct KernelError {
  int code;
  int pad;
  long long a, b, c;
};
enum KernelErrorCode : int {
  kEmbeddingForwardId = 1,
  kEmbeddingBackwardId = 2,
  kGatherRowsIndex = 3,
  kGatherRowsBackwardIndex = 4,
  kLogitScaleOverflow = 5,
};
// The current device's error slot (device memory).
KernelError* kernel_error_slot();

#if defined(__CUDACC__) || defined(CLIPSCALE_EMULATED_DEVICE)
// Records the first error of its kind until the next synchronisation.
__device__ inline void record_kernel_error(KernelError* e, int code, long long a, long long b, long long c) {
  if (atomicCAS(&e->code, 0, -1) == 0) {
    e->a = a;
    e->b = b;
    e->c = c;
    __threadfence();
    atomicExch(&e->code, code);
  }
}
#endif

// Device memory from the caching allocator for the length of an op; freed in stream
// order (a later op on the same stream may reuse it), so no synchronisation.
class Scratch {
 public:
  Scratch() = default;
  ~Scratch();
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  // Returns 0 or fails (out of memory) with the op's name.
  int allocate(size_t bytes, const char* op);
  void* get() const { return ptr_; }
  template <typename T>
  T* as() const { return static_cast<T*>(ptr_); }

 private:
  void* ptr_ = nullptr;
  int device_ = -1;
};

// Blocks for a grid-stride loop over n items with `threads` per block.
inline unsigned grid_for(int64_t n, int threads) {
  int64_t b = (n + threads - 1) / threads;
  if (b < 1) b = 1;
  if (b > 65535LL * 16) b = 65535LL * 16;
  return static_cast<unsigned>(b);
}

}  // namespace cs_cuda
