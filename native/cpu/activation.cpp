// The GELU loops below are also built for AVX2/AVX-512, where GCC would fuse a*b+c into one FMA
// (one rounding instead of two); kept off so every target computes what the baseline build does.
#pragma GCC optimize("fp-contract=off")

#include "cpu/activation.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "core/target_clones.h"
#include "core/numerics.h"
#include "core/thread_pool.h"
#include "core/activation_checks.h"
#include "core/exp_math.h"
#include "core/gelu_math.h"

namespace cs::cpu {

namespace {

constexpr int64_t kGrain = 1 << 14;
using gelu_math::erf_f32;
using gelu_math::kInvSqrt2;
using gelu_math::kInvSqrt2Pi;
using gelu_math::kQuickGeluAlpha;

inline float gelu(float x) { return 0.5f * x * (1.0f + erf_f32(x * kInvSqrt2)); }
inline float gelu_grad(float x) {
  return 0.5f * (1.0f + erf_f32(x * kInvSqrt2)) + x * kInvSqrt2Pi * exp_nonpositive(-0.5f * x * x);
}

// round_bf16 without branches (same rounding: nearest even, NaN stays NaN), so loops using it vectorise.
inline float round_bf16_branchless(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint32_t rounded = ((u + 0x7fffu + ((u >> 16) & 1u)) >> 16) << 16;
  const uint32_t nan = ((u >> 16) | 0x40u) << 16;
  const uint32_t r = (u & 0x7fffffffu) > 0x7f800000u ? nan : rounded;
  float out;
  std::memcpy(&out, &r, 4);
  return out;
}

// The GELU loops, built for AVX-512, AVX2 and baseline x86-64 and picked at load time; with
// fp-contract off (top of file) every multiply and add rounds as in the baseline build.

CS_TARGET_CLONES void gelu_range(const float* x, float* out, int64_t n, bool emulate) {
  if (emulate) {
    for (int64_t i = 0; i < n; i++) out[i] = round_bf16_branchless(gelu(x[i]));
  } else {
    for (int64_t i = 0; i < n; i++) out[i] = gelu(x[i]);
  }
}

CS_TARGET_CLONES void gelu_grad_range(const float* x, const float* dout, float* dx, int64_t n) {
  for (int64_t i = 0; i < n; i++) dx[i] = dout[i] * gelu_grad(x[i]);
}
inline float sigmoid(float z) { return 1.0f / (1.0f + std::exp(-z)); }
inline float quick_gelu(float x) { return x * sigmoid(kQuickGeluAlpha * x); }
inline float quick_gelu_grad(float x) {
  const float s = sigmoid(kQuickGeluAlpha * x);
  return s + kQuickGeluAlpha * x * s * (1.0f - s);
}

template <float (*F)(float)>
void forward(const char* op, const Tensor& x, Tensor& out) {
  check_activation_forward(check_cpu, op, x, out);
  const bool emulate = bf16_emulation();
  const float* xp = x.data<float>();
  float* op_ = out.data<float>();
  parallel_for(x.numel(), kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) op_[i] = maybe_round_bf16(F(xp[i]), emulate);
  });
}

template <float (*G)(float)>
void backward(const char* op, const Tensor& x, const Tensor& dout, Tensor& dx) {
  check_activation_backward(check_cpu, op, x, dout, dx);
  const float* xp = x.data<float>();
  const float* dp = dout.data<float>();
  float* gp = dx.data<float>();
  parallel_for(x.numel(), kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) gp[i] = dp[i] * G(xp[i]);
  });
}

}  // namespace

void gelu_forward(const Tensor& x, Tensor& out) {
  check_activation_forward(check_cpu, "geluForward", x, out);
  const bool emulate = bf16_emulation();
  const float* xp = x.data<float>();
  float* op_ = out.data<float>();
  parallel_for(x.numel(), kGrain, [&](int64_t b, int64_t e) { gelu_range(xp + b, op_ + b, e - b, emulate); });
}
void gelu_backward(const Tensor& x, const Tensor& dout, Tensor& dx) {
  check_activation_backward(check_cpu, "geluBackward", x, dout, dx);
  const float* xp = x.data<float>();
  const float* dp = dout.data<float>();
  float* gp = dx.data<float>();
  parallel_for(x.numel(), kGrain, [&](int64_t b, int64_t e) { gelu_grad_range(xp + b, dp + b, gp + b, e - b); });
}
void activation_span(Activation kind, const float* x, float* out, int64_t n) {
  if (kind == Activation::Gelu) {
    gelu_range(x, out, n, false);
    return;
  }
  for (int64_t i = 0; i < n; i++) out[i] = quick_gelu(x[i]);
}
void activation_grad_span(Activation kind, const float* x, const float* dout, float* dx, int64_t n) {
  if (kind == Activation::Gelu) {
    gelu_grad_range(x, dout, dx, n);
    return;
  }
  for (int64_t i = 0; i < n; i++) dx[i] = dout[i] * quick_gelu_grad(x[i]);
}
void quick_gelu_forward(const Tensor& x, Tensor& out) { forward<quick_gelu>("quickGeluForward", x, out); }
void quick_gelu_backward(const Tensor& x, const Tensor& dout, Tensor& dx) {
  backward<quick_gelu_grad>("quickGeluBackward", x, dout, dx);
}

}  // namespace cs::cpu
