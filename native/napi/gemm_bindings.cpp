// matmul and the GEMM kernel controls.
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/matmul_checks.h"
#include "cuda_dispatch/cuda_layers.h"
#include "core/numerics.h"
#include "core/thread_pool.h"
#include "cpu/cpu_bf16.h"
#include "cpu/gemm.h"
#include "napi/args.h"
#include "napi/registry.h"

namespace cs::napi {

namespace {

// The operand as the GEMM reads it: bf16-rounded into `scratch` when emulating the
// GPU (bf16 operands, fp32 accumulation), the tensor's own memory otherwise.
const float* operand(const Tensor& t, bool emulate, std::vector<float>& scratch) {
  const float* p = t.data<float>();
  if (!emulate) return p;
  scratch.resize(static_cast<size_t>(t.numel()));
  float* d = scratch.data();
  parallel_for(t.numel(), 1 << 16, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) d[i] = round_bf16(p[i]);
  });
  return d;
}

}  // namespace

// matmul(a, b, c, transA, transB, alpha, beta): c = alpha · op(a) · op(b) + beta · c
//   2-D: a [M, K] (transA: [K, M]), b [K, N] (transB: [N, K]), c [M, N]
//   3-D: the same with a leading batch dimension on a, b and c; b may also be 2-D,
//        one matrix shared by every batch entry.
// beta = 0 overwrites c without reading it.
static Napi::Value Matmul(const Napi::CallbackInfo& info) {
  const char* op = "matmul";
  Tensor& a = arg_tensor(info, 0, op, "a");
  Tensor& b = arg_tensor(info, 1, op, "b");
  Tensor& c = arg_tensor(info, 2, op, "c");
  const bool ta = arg_bool(info, 3, op, "transA");
  const bool tb = arg_bool(info, 4, op, "transB");
  const float alpha = static_cast<float>(arg_number(info, 5, op, "alpha"));
  const float beta = static_cast<float>(arg_number(info, 6, op, "beta"));

  if (on_cuda(op, {&a, &b, &c})) {
    cuda::matmul(a, b, c, ta, tb, alpha, beta);
    return info.Env().Undefined();
  }
  const MatmulDims d = check_matmul(a, b, c, ta, tb);
  const int64_t batch = d.batch, M = d.M, N = d.N, K = d.K;
  const bool b_shared = d.b_shared;

  const bool emulate = bf16_emulation();
  // Kept between calls: a training step's matmuls reuse the same sizes.
  static thread_local std::vector<float> a_round, b_round;
  const float* pa = operand(a, emulate, a_round);
  const float* pb = operand(b, emulate, b_round);
  float* pc = c.data<float>();

  const int64_t lda = a.dim(-1), ldb = b.dim(-1), ldc = N;
  if (b_shared && !ta) {
    // [batch·M, K] · [K, N]: one tall product uses the threads better than `batch` short ones.
    cpu::sgemm(false, tb, batch * M, N, K, alpha, pa, lda, pb, ldb, beta, pc, ldc);
  } else {
    cpu::sgemm_batched(ta, tb, M, N, K, alpha, pa, lda, M * K, pb, ldb, b_shared ? 0 : K * N, beta, pc, ldc, M * N,
                       batch);
  }
  if (emulate)
    parallel_for(c.numel(), 1 << 16, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; i++) pc[i] = round_bf16(pc[i]);
    });
  return info.Env().Undefined();
}
CS_BINDING("matmul", Matmul);

// gemmKernel(): the micro-kernel in use ("avx512", "avx2" or "portable").
static Napi::Value GemmKernel(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), cpu::gemm_kernel_name());
}
CS_BINDING("gemmKernel", GemmKernel);

// setGemmKernel(name): "avx512" | "avx2" | "portable" | "best"; returns the kernel now in use.
static Napi::Value SetGemmKernel(const Napi::CallbackInfo& info) {
  const std::string name = arg_string(info, 0, "setGemmKernel", "name");
  if (!cpu::set_gemm_kernel(name.c_str())) {
    if (name == "avx512" || name == "avx2")
      fail("setGemmKernel: this CPU (or this build) cannot run the '", name, "' kernel; '",
           cpu::gemm_kernel_name(), "' stays in use");
    fail("setGemmKernel: unknown kernel '", name, "'; choose avx512, avx2, portable or best");
  }
  return Napi::String::New(info.Env(), cpu::gemm_kernel_name());
}
CS_BINDING("setGemmKernel", SetGemmKernel);

// cpuBf16Support(): { avx512bf16, amxBf16, speedMode, note }. What this CPU could run for bf16
// matrix work, detected at run time. speedMode is false: no bf16 speed kernel exists yet, and
// bf16 on the CPU is the rounding emulation over the fp32 kernels (the tested fallback).
static Napi::Value CpuBf16Support(const Napi::CallbackInfo& info) {
  const cpu::Bf16Support s = cpu::cpu_bf16_support();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("avx512bf16", s.avx512_bf16);
  o.Set("amxBf16", s.amx_bf16);
  o.Set("speedMode", false);
  o.Set("note", std::string(s.avx512_bf16 || s.amx_bf16
                                ? "this CPU has bf16 matrix instructions, but clipscale has no bf16 CPU kernel yet: "
                                  "bf16 is emulated (fp32 math, rounded as on the GPU)"
                                : "this CPU has no AVX-512 BF16 or AMX: bf16 on the CPU is emulated (fp32 math, "
                                  "rounded as on the GPU)"));
  return o;
}
CS_BINDING("cpuBf16Support", CpuBf16Support);

// cudaGemmBackend(): the GPU GEMM engine in use, "cublaslt" or "own" (loads the CUDA backend).
static Napi::Value CudaGemmBackend(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), cuda::gemm_backend_name());
}
CS_BINDING("cudaGemmBackend", CudaGemmBackend);

// cudaGemmBackendInfo(): one line about the GPU GEMM engine (path, version, or why cuBLASLt is not used).
static Napi::Value CudaGemmBackendInfo(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), cuda::gemm_backend_info());
}
CS_BINDING("cudaGemmBackendInfo", CudaGemmBackendInfo);

// cudaGemmCounters(): { conversions, gemms } since the CUDA library loaded — operand conversion
// passes into 16-bit scratch (one per operand converted) and GEMMs run.
static Napi::Value CudaGemmCounters(const Napi::CallbackInfo& info) {
  long long conversions = 0, gemms = 0;
  cuda::gemm_counters(&conversions, &gemms);
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("conversions", static_cast<double>(conversions));
  o.Set("gemms", static_cast<double>(gemms));
  return o;
}
CS_BINDING("cudaGemmCounters", CudaGemmCounters);

// setCudaGemmBackend(name): "own" | "cublaslt" | "auto"; returns the engine now in use.
static Napi::Value SetCudaGemmBackend(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), cuda::set_gemm_backend(arg_string(info, 0, "setCudaGemmBackend", "name")));
}
CS_BINDING("setCudaGemmBackend", SetCudaGemmBackend);

}  // namespace cs::napi
