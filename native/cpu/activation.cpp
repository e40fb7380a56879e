#include "cpu/activation.h"

#include <algorithm>
#include <cmath>

#include "core/numerics.h"
#include "core/thread_pool.h"
#include "core/activation_checks.h"

namespace cs::cpu {

namespace {

constexpr int64_t kGrain = 1 << 14;
constexpr float kInvSqrt2 = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;
constexpr float kQuickGeluAlpha = 1.702f;

// erf as a rational function on [-4, 4] (the coefficients of Eigen's and XLA's float
// erf; a few ulp, and erf(±4) rounds to ±1 in fp32). Plain arithmetic, so the
// compiler vectorises the loops, unlike a call to std::erf.
inline float erf_f32(float a) {
  const float x = std::min(4.0f, std::max(-4.0f, a));
  const float x2 = x * x;
  float p = x2 * -2.72614225801306e-10f + 2.77068142495902e-08f;
  p = p * x2 + -2.10102402082508e-06f;
  p = p * x2 + -5.69250639462346e-05f;
  p = p * x2 + -7.34990630326855e-04f;
  p = p * x2 + -2.95459980854025e-03f;
  p = p * x2 + -1.60960333262415e-02f;
  p = p * x;
  float q = x2 * -1.45660718464996e-05f + -2.13374055278905e-04f;
  q = q * x2 + -1.68282697438203e-03f;
  q = q * x2 + -7.37332916720468e-03f;
  q = q * x2 + -1.42647390514189e-02f;
  return p / q;
}

inline float gelu(float x) { return 0.5f * x * (1.0f + erf_f32(x * kInvSqrt2)); }
inline float gelu_grad(float x) {
  return 0.5f * (1.0f + erf_f32(x * kInvSqrt2)) + x * kInvSqrt2Pi * std::exp(-0.5f * x * x);
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

void gelu_forward(const Tensor& x, Tensor& out) { forward<gelu>("geluForward", x, out); }
void gelu_backward(const Tensor& x, const Tensor& dout, Tensor& dx) { backward<gelu_grad>("geluBackward", x, dout, dx); }
void quick_gelu_forward(const Tensor& x, Tensor& out) { forward<quick_gelu>("quickGeluForward", x, out); }
void quick_gelu_backward(const Tensor& x, const Tensor& dout, Tensor& dx) {
  backward<quick_gelu_grad>("quickGeluBackward", x, dout, dx);
}

}  // namespace cs::cpu
