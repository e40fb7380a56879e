#include "cuda_dispatch/cuda_precision.h"

#include "core/error.h"
#include "cuda_dispatch/cuda_backend.h"

namespace cs::cuda {

namespace {
using GetFn = int();
using SetFn = int(int);
const char* const kNames[] = {"fp32", "bf16", "fp16"};
}  // namespace

std::string precision() {
  const int p = cuda_fn<GetFn>("get_precision", "cudaPrecision")();
  return p >= 0 && p <= 2 ? kNames[p] : "unknown";
}

std::string set_precision(const std::string& name) {
  const char* op = "cudaSetPrecision";
  int code = -1;
  for (int i = 0; i < 3; i++)
    if (name == kNames[i]) code = i;
  if (code < 0) fail(op, ": precision must be 'fp32', 'bf16' or 'fp16', got '", name, "'");
  const std::string previous = precision();
  cuda_check(op, cuda_fn<SetFn>("set_precision", op)(code));
  return previous;
}

}  // namespace cs::cuda
