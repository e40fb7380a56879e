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
#include "cpu/gemm_bf16.h"
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
  if (emulate && cpu::bf16_native_products()) {
    // bf16 products on the AVX-512 BF16 kernel: operands rounded as they are converted, c rounded as stored.
    const float *pa = a.data<float>(), *pb = b.data<float>();
    float* pc = c.data<float>();
    if (b_shared && !ta) {
      cpu::gemm_bf16(false, tb, batch * M, N, K, alpha, pa, a.dim(-1), pb, b.dim(-1), beta, pc, N, nullptr, true);
    } else {
      for (int64_t i = 0; i < batch; i++)
        cpu::gemm_bf16(ta, tb, M, N, K, alpha, pa + i * M * K, a.dim(-1), pb + (b_shared ? 0 : i * K * N), b.dim(-1),
                       beta, pc + i * M * N, N, nullptr, true);
    }
    return info.Env().Undefined();
  }
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

// cpuBf16Support(): { avx512bf16, amxBf16, speedMode, note }. What this CPU has for bf16 matrix
// work (run-time detection), and whether the bf16 mode's products run on the AVX-512 BF16 kernel
// (speedMode) or round their operands around the fp32 GEMM (the emulation, the fallback).
static Napi::Value CpuBf16Support(const Napi::CallbackInfo& info) {
  const cpu::Bf16Support s = cpu::cpu_bf16_support();
  const bool speed = cpu::bf16_native_products();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("avx512bf16", s.avx512_bf16);
  o.Set("amxBf16", s.amx_bf16);
  o.Set("speedMode", speed);
  std::string note;
  if (speed)
    note = "bf16 matrix products run on the AVX-512 BF16 kernel (VDPBF16PS: bf16 operands, fp32 accumulation)";
  else if (cpu::bf16_kernel_native())
    note = "this CPU has AVX-512 BF16, but the bf16 kernel is switched off (CLIPSCALE_CPU_BF16=emulate or "
           "setCpuBf16Native(false)): bf16 is emulated (fp32 math, rounded as on the GPU)";
  else
    note = "this CPU has no AVX-512 BF16: bf16 on the CPU is emulated (fp32 math, rounded as on the GPU)";
  o.Set("note", note);
  return o;
}
CS_BINDING("cpuBf16Support", CpuBf16Support);

// setCpuBf16Native(on): the bf16 mode's products on the AVX-512 BF16 kernel (true) or emulated
// around the fp32 GEMM (false); returns whether the kernel is now in use. For tests and comparisons.
static Napi::Value SetCpuBf16Native(const Napi::CallbackInfo& info) {
  const bool on = arg_bool(info, 0, "setCpuBf16Native", "on");
  if (!cpu::set_bf16_native(on))
    fail("setCpuBf16Native: this CPU (or this build) has no AVX-512 BF16; bf16 stays emulated");
  return Napi::Boolean::New(info.Env(), cpu::bf16_native_products());
}
CS_BINDING("setCpuBf16Native", SetCpuBf16Native);

// matmulBf16(a, b, c, transA, transB, alpha, beta, bias, roundC, kernel): the bf16 GEMM itself,
// 2-D f32 tensors as matmul's: c = alpha · bf16(op(a)) · bf16(op(b)) + beta · c + bias (null or
// [N]), rounded to bf16 where roundC. kernel: "best" | "avx512bf16" | "portable" (the same
// arithmetic, scalar: runs on any CPU). Whatever the bf16 mode is.
static Napi::Value MatmulBf16(const Napi::CallbackInfo& info) {
  const char* op = "matmulBf16";
  Tensor& a = arg_tensor(info, 0, op, "a");
  Tensor& b = arg_tensor(info, 1, op, "b");
  Tensor& c = arg_tensor(info, 2, op, "c");
  const bool ta = arg_bool(info, 3, op, "transA");
  const bool tb = arg_bool(info, 4, op, "transB");
  const float alpha = static_cast<float>(arg_number(info, 5, op, "alpha"));
  const float beta = static_cast<float>(arg_number(info, 6, op, "beta"));
  Tensor* bias = arg_optional_tensor(info, 7, op, "bias");
  const bool round_c = arg_bool(info, 8, op, "roundC");
  const std::string kernel = arg_string(info, 9, op, "kernel");
  require_cpu_backend(op, {&a, &b, &c});
  if (a.ndim() != 2 || b.ndim() != 2 || c.ndim() != 2)
    fail(op, ": a, b and c must be 2-D, got ", a.describe(), ", ", b.describe(), ", ", c.describe());
  const MatmulDims d = check_matmul(a, b, c, ta, tb, op);
  if (bias && (bias->dtype != DType::F32 || bias->ndim() != 1 || bias->dim(0) != d.N ||
               !bias->device().is_cpu()))
    fail(op, ": bias must be f32 [", d.N, "] on the CPU, got ", bias->describe());
  if (bias) check_no_alias(op, "c", c, "bias", *bias);
  cpu::Bf16Kernel k;
  if (kernel == "best") k = cpu::Bf16Kernel::kBest;
  else if (kernel == "portable") k = cpu::Bf16Kernel::kPortable;
  else if (kernel == "avx512bf16") k = cpu::Bf16Kernel::kAvx512Bf16;
  else fail(op, ": kernel must be best, avx512bf16 or portable, got '", kernel, "'");
  if (k == cpu::Bf16Kernel::kAvx512Bf16 && !cpu::bf16_kernel_native())
    fail(op, ": this CPU (or this build) has no AVX-512 BF16 for the 'avx512bf16' kernel");
  cpu::gemm_bf16(ta, tb, d.M, d.N, d.K, alpha, a.data<float>(), a.dim(-1), b.data<float>(), b.dim(-1), beta,
                 c.data<float>(), d.N, bias ? bias->data<float>() : nullptr, round_c, k);
  return info.Env().Undefined();
}
CS_BINDING("matmulBf16", MatmulBf16);

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
