#include "cuda_dispatch/cuda_layers.h"

#include <cstdint>
#include <utility>

#include "core/attention_checks.h"
#include "cuda_dispatch/cuda_backend.h"
#include "cuda_dispatch/cuda_precision.h"
#include "core/error.h"
#include "core/linear_checks.h"
#include "core/matmul_checks.h"
#include "core/patch_embed_checks.h"

namespace cs::cuda {

namespace {

// The library's entry points (native/cuda/abi_gemm.h, abi_attention.h), declared by type.
using GemmFn = int(int, int, int64_t, int64_t, int64_t, float, const float*, int64_t, int64_t, const float*, int64_t,
                   int64_t, float, float*, int64_t, int64_t, int64_t);
using LinearForwardFn = int(const float*, const float*, const float*, float*, int64_t, int64_t, int64_t, int);
using LinearExFn = int(const float*, const uint16_t*, const float*, const uint16_t*, const float*, float*, float*,
                       uint16_t*, int64_t, int64_t, int64_t, int);
using CountersFn = int(long long*, long long*);
using LinearBackwardExFn = int(const float*, const uint16_t*, const float*, const uint16_t*, const float*, float*,
                               float*, float*, int64_t, int64_t, int64_t, int);
using LinearBackwardFn = int(const float*, const float*, const float*, float*, float*, float*, int64_t, int64_t,
                             int64_t, int);
using PatchForwardFn = int(const float*, const float*, float*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t);
using PatchBackwardFn = int(const float*, const float*, const float*, float*, float*, int64_t, int64_t, int64_t,
                            int64_t, int64_t, int64_t, int);
using AttentionForwardFn = int(const float*, float*, float*, int64_t, int64_t, int64_t, int64_t, int);
using AttentionForward16Fn = int(const float*, const uint16_t*, float*, uint16_t*, float*, int64_t, int64_t, int64_t,
                                 int64_t, int);
using AttentionBackward16Fn = int(const float*, const uint16_t*, const float*, const uint16_t*, const float*,
                                  const float*, float*, int64_t, int64_t, int64_t, int64_t, int);
using AttentionBackwardFn = int(const float*, const float*, const float*, const float*, float*, int64_t, int64_t,
                                int64_t, int64_t, int);
using BackendNameFn = const char*();
using BackendInfoFn = int(char*, int);
using SetBackendFn = int(const char*);

// The ops' checks are the CPU ops' (core/*_checks.h); on_cuda has already put every
// tensor of the op on one CUDA device, so they check no device here.
constexpr DeviceCheck kDevice = on_one_cuda_device;

const float* f(const Tensor& t) { return t.data<float>(); }
float* f(Tensor& t) { return t.data<float>(); }
const float* f(const Tensor* t) { return t ? t->data<float>() : nullptr; }
float* f(Tensor* t) { return t ? t->data<float>() : nullptr; }

}  // namespace

void matmul(const Tensor& a, const Tensor& b, Tensor& c, bool ta, bool tb, float alpha, float beta) {
  const char* op = "matmul";
  const MatmulDims d = check_matmul(a, b, c, ta, tb);
  const int64_t batch = d.batch, M = d.M, N = d.N, K = d.K;
  const bool b_shared = d.b_shared;
  cuda_check(op, cuda_fn<GemmFn>("gemm", op)(ta, tb, M, N, K, alpha, f(a), a.dim(-1), M * K, f(b), b.dim(-1),
                                              b_shared ? 0 : K * N, beta, f(c), N, M * N, batch));
}

// The 16-bit copy of w must be w's shape, on its device, in the precision's 16-bit type (bf16,
// or f16 in fp16); in fp32 it is not read.
static const uint16_t* checked_w16(const char* op, const Tensor& w, const Tensor* w16) {
  if (!w16) return nullptr;
  if ((w16->dtype != DType::BF16 && w16->dtype != DType::F16) || w16->shape != w.shape ||
      !(w16->device() == w.device()))
    fail(op, ": w16 must be a bf16 or f16 tensor of w's shape ", shape_str(w.shape), " on w's device, got ",
         dtype_name(w16->dtype), " ", shape_str(w16->shape));
  const std::string p = precision();
  if (p == "fp32") return nullptr;
  if ((w16->dtype == DType::F16) != (p == "fp16"))
    fail(op, ": w16 is ", dtype_name(w16->dtype), " but the CUDA precision is ", p, " (its copies are ",
         p == "fp16" ? "f16" : "bf16", ")");
  return w16->data<uint16_t>();
}

static bool is16(const Tensor& t) { return t.dtype == DType::BF16 || t.dtype == DType::F16; }

// A 16-bit activation (x, or the GELU output y): the precision's 16-bit type, on w's device.
static uint16_t* activation16(const char* op, const char* name, const Tensor& t, const Tensor& w) {
  const std::string p = precision();
  const DType want = p == "fp16" ? DType::F16 : DType::BF16;
  if (p == "fp32" || t.dtype != want)
    fail(op, ": ", name, " is ", t.describe(), " but the CUDA precision ", p, " takes ",
         p == "fp32" ? "f32" : dtype_name(want), " activations");
  if (!(t.device() == w.device())) fail(op, ": ", name, " (", t.describe(), ") is not on w's device");
  return t.data<uint16_t>();
}

// The dims of a linear whose x is 16-bit: x [..., K], w f32 [N, K], b f32 [N] or null, and
// `out` [..., N] with x's rows (f32, or 16-bit when out16).
static LinearDims dims_x16(const char* op, const Tensor& x, const Tensor& w, const Tensor* b, const Tensor& out,
                           const char* out_name, bool out16) {
  if (w.dtype != DType::F32 || w.ndim() != 2) fail(op, ": w must be f32 [out, in], got ", w.describe());
  const int64_t K = w.dim(1), N = w.dim(0);
  if (x.ndim() < 1 || x.dim(-1) != K) fail(op, ": x must be [..., ", K, "] (w's in-features), got ", x.describe());
  const int64_t M = K ? x.numel() / K : 0;
  if (b && (b->dtype != DType::F32 || b->numel() != N)) fail(op, ": b must be f32 [", N, "], got ", b->describe());
  if ((out16 ? !is16(out) : out.dtype != DType::F32) || out.ndim() < 1 || out.dim(-1) != N || out.numel() != M * N)
    fail(op, ": ", out_name, " must be ", out16 ? "16-bit" : "f32", " [..., ", N, "] with x's rows, got ", out.describe());
  return LinearDims{M, K, N};
}

void linear_forward(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& y, const Tensor* w16) {
  const char* op = "linearForward";
  const bool x16 = is16(x), y16 = is16(y);
  if (!x16 && y16 && x.dtype != DType::F32) fail(op, ": x must be f32 or 16-bit, got ", x.describe());
  if (y16 && !(y.device() == w.device())) fail(op, ": y (", y.describe(), ") is not on w's device");
  // y16: the output stored in the precision's 16-bit type (an activation only 16-bit readers take).
  const LinearDims d = x16 || y16 ? dims_x16(op, x, w, b, y, "y", y16) : check_linear_forward(kDevice, x, w, b, y);
  if (y16 && !x16 && !(x.device() == w.device())) fail(op, ": x (", x.describe(), ") is not on w's device");
  const uint16_t* w16p = checked_w16(op, w, w16);
  if (!w16p && !x16 && !y16) {
    cuda_check(op, cuda_fn<LinearForwardFn>("linear_forward", op)(f(x), f(w), f(b), f(y), d.M, d.K, d.N, 0));
    return;
  }
  cuda_check(op, cuda_fn<LinearExFn>("linear_forward_ex", op)(
                     x16 ? nullptr : f(x), x16 ? activation16(op, "x", x, w) : nullptr, f(w), w16p, f(b), nullptr,
                     y16 ? nullptr : f(y), y16 ? activation16(op, "y", y, w) : nullptr, d.M, d.K, d.N, 0));
}

void gemm_counters(long long* conversions, long long* gemms) {
  const char* op = "cudaGemmCounters";
  cuda_check(op, cuda_fn<CountersFn>("gemm_counters", op)(conversions, gemms));
}

void linear_gelu_forward(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& pre, Tensor& y, int form,
                         const Tensor* w16) {
  const char* op = "linearGeluForward";
  const bool x16 = is16(x), y16 = is16(y);
  const LinearDims d = x16 ? dims_x16(op, x, w, b, pre, "pre", false) : check_linear_forward(kDevice, x, w, b, pre);
  if (y16) {
    if (y.shape != pre.shape) fail(op, ": y must have pre's shape ", shape_str(pre.shape), ", got ", y.describe());
  } else {
    x16 ? dims_x16(op, x, w, b, y, "y", false) : check_linear_forward(kDevice, x, w, b, y);
  }
  cuda_check(op, cuda_fn<LinearExFn>("linear_forward_ex", op)(
                     x16 ? nullptr : f(x), x16 ? activation16(op, "x", x, w) : nullptr, f(w), checked_w16(op, w, w16),
                     f(b), y16 ? nullptr : f(pre), y16 ? f(pre) : f(y), y16 ? activation16(op, "y", y, w) : nullptr, d.M,
                     d.K, d.N, form));
}

void linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx, Tensor* dw, Tensor* db,
                     bool accumulate, const Tensor* w16) {
  const char* op = "linearBackward";
  const bool x16 = is16(x);
  LinearDims d;
  if (x16) {
    d = dims_x16(op, x, w, nullptr, dy, "dy", false);
    if (dx && (dx->dtype != DType::F32 || dx->numel() != d.M * d.K)) fail(op, ": dx must be f32 like x, got ", dx->describe());
    if (dw && (dw->dtype != DType::F32 || dw->shape != w.shape)) fail(op, ": dw must be f32 like w, got ", dw->describe());
    if (db && (db->dtype != DType::F32 || db->numel() != d.N)) fail(op, ": db must be f32 [", d.N, "], got ", db->describe());
  } else {
    d = check_linear_backward(kDevice, x, w, dy, dx, dw, db);
  }
  const uint16_t* w16p = checked_w16(op, w, w16);
  if (w16p || x16) {
    cuda_check(op, cuda_fn<LinearBackwardExFn>("linear_backward_ex", op)(
                       x16 ? nullptr : f(x), x16 ? activation16(op, "x", x, w) : nullptr, f(w), w16p, f(dy), f(dx), f(dw),
                       f(db), d.M, d.K, d.N, accumulate ? 1 : 0));
    return;
  }
  cuda_check(op, cuda_fn<LinearBackwardFn>("linear_backward", op)(f(x), f(w), f(dy), f(dx), f(dw), f(db), d.M, d.K,
                                                                   d.N, accumulate ? 1 : 0));
}

void patch_embed_forward(const Tensor& images, const Tensor& weight, Tensor& out) {
  const char* op = "patchEmbedForward";
  const PatchGeometry g = check_patch_embed_forward(kDevice, images, weight, out);
  cuda_check(op, cuda_fn<PatchForwardFn>("patch_embed_forward", op)(f(images), f(weight), f(out), g.B, g.C, g.H, g.W,
                                                                     g.P, g.width));
}

void patch_embed_backward(const Tensor& images, const Tensor& weight, const Tensor& dout, Tensor* dweight,
                          Tensor* dimages, bool accumulate) {
  const char* op = "patchEmbedBackward";
  const PatchGeometry g = check_patch_embed_backward(kDevice, images, weight, dout, dweight, dimages);
  cuda_check(op, cuda_fn<PatchBackwardFn>("patch_embed_backward", op)(f(images), f(weight), f(dout), f(dweight),
                                                                       f(dimages), g.B, g.C, g.H, g.W, g.P, g.width,
                                                                       accumulate ? 1 : 0));
}

void attention_forward(const Tensor& qkv, Tensor& out, Tensor* lse, int64_t heads, bool causal) {
  const char* op = "attentionForward";
  const bool out16 = is16(out), qkv16 = is16(qkv);
  const AttentionGeometry g = check_attention_forward(kDevice, qkv, out, lse, heads, out16, qkv16);
  if (out16 || qkv16) {
    cuda_check(op, cuda_fn<AttentionForward16Fn>("attention_forward16", op)(
                       qkv16 ? nullptr : f(qkv), qkv16 ? activation16(op, "qkv", qkv, qkv) : nullptr,
                       out16 ? nullptr : f(out), out16 ? activation16(op, "out", out, qkv) : nullptr, f(lse), g.B, g.S,
                       g.W, heads, causal ? 1 : 0));
    return;
  }
  cuda_check(op, cuda_fn<AttentionForwardFn>("attention_forward", op)(f(qkv), f(out), f(lse), g.B, g.S, g.W, heads,
                                                                       causal ? 1 : 0));
}

void attention_backward(const Tensor& qkv, const Tensor& out, const Tensor& dout, const Tensor& lse, Tensor& dqkv,
                        int64_t heads, bool causal) {
  const char* op = "attentionBackward";
  const bool out16 = is16(out), qkv16 = is16(qkv);
  const AttentionGeometry g = check_attention_backward(kDevice, qkv, out, dout, lse, dqkv, heads, out16, qkv16);
  if (out16 || qkv16) {
    cuda_check(op, cuda_fn<AttentionBackward16Fn>("attention_backward16", op)(
                       qkv16 ? nullptr : f(qkv), qkv16 ? activation16(op, "qkv", qkv, qkv) : nullptr,
                       out16 ? nullptr : f(out), out16 ? activation16(op, "out", out, qkv) : nullptr, f(dout), f(lse),
                       f(dqkv), g.B, g.S, g.W, heads, causal ? 1 : 0));
    return;
  }
  cuda_check(op, cuda_fn<AttentionBackwardFn>("attention_backward", op)(f(qkv), f(out), f(dout), f(lse), f(dqkv), g.B,
                                                                         g.S, g.W, heads, causal ? 1 : 0));
}

std::string gemm_backend_name() {
  const char* op = "gemmBackend";
  return cuda_fn<BackendNameFn>("gemm_backend_name", op)();
}

std::string gemm_backend_info() {
  const char* op = "gemmBackend";
  char buf[1024] = {0};
  cuda_check(op, cuda_fn<BackendInfoFn>("gemm_backend_info", op)(buf, sizeof buf));
  return buf;
}

std::string set_gemm_backend(const std::string& name) {
  const char* op = "setGemmBackend";
  cuda_check(op, cuda_fn<SetBackendFn>("gemm_set_backend", op)(name.c_str()));
  return gemm_backend_name();
}

}  // namespace cs::cuda
