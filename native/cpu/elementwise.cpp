#include "cpu/elementwise.h"

#include <cmath>
#include <cstring>

#include "core/elementwise_checks.h"
#include "core/thread_pool.h"

namespace cs::cpu {

static constexpr int64_t kGrain = 1 << 15;

void fill(Tensor& x, double value) {
  check_fill(check_cpu, x, value);
  int64_t n = x.numel();
  switch (x.dtype) {
    case DType::F32: {
      float v = static_cast<float>(value);
      float* p = x.data<float>();
      parallel_for(n, kGrain, [&](int64_t b, int64_t e) { for (int64_t i = b; i < e; i++) p[i] = v; });
      break;
    }
    case DType::BF16:
    case DType::F16: {
      uint16_t v = x.dtype == DType::F16 ? f32_to_f16_bits(static_cast<float>(value))
                                         : f32_to_bf16_bits(static_cast<float>(value));
      uint16_t* p = x.data<uint16_t>();
      parallel_for(n, kGrain, [&](int64_t b, int64_t e) { for (int64_t i = b; i < e; i++) p[i] = v; });
      break;
    }
    case DType::I32: {
      int32_t v = static_cast<int32_t>(value);
      int32_t* p = x.data<int32_t>();
      for (int64_t i = 0; i < n; i++) p[i] = v;
      break;
    }
    case DType::I64: {
      int64_t v = static_cast<int64_t>(value);
      int64_t* p = x.data<int64_t>();
      for (int64_t i = 0; i < n; i++) p[i] = v;
      break;
    }
  }
}

void copy(const Tensor& src, Tensor& dst) {
  check_copy(check_cpu, src, dst);
  if (src.raw() != dst.raw() && src.nbytes()) std::memmove(dst.raw(), src.raw(), src.nbytes());
}

void scale(Tensor& x, float alpha) {
  check_scale(check_cpu, x);
  float* p = x.data<float>();
  parallel_for(x.numel(), kGrain, [&](int64_t b, int64_t e) { for (int64_t i = b; i < e; i++) p[i] *= alpha; });
}

void clamp(Tensor& x, float lo, float hi) {
  check_clamp(check_cpu, x, lo, hi);
  float* p = x.data<float>();
  parallel_for(x.numel(), kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) p[i] = p[i] < lo ? lo : (p[i] > hi ? hi : p[i]);
  });
}

void axpy(float alpha, const Tensor& x, Tensor& y) {
  check_axpy(check_cpu, x, y);
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
  parallel_for(x.numel(), kGrain, [&](int64_t b, int64_t e) { for (int64_t i = b; i < e; i++) yp[i] += alpha * xp[i]; });
}

void add(const Tensor& a, const Tensor& b, Tensor& out) {
  check_add(check_cpu, a, b, out);
  const float* ap = a.data<float>();
  const float* bp = b.data<float>();
  float* op = out.data<float>();
  parallel_for(a.numel(), kGrain, [&](int64_t s, int64_t e) { for (int64_t i = s; i < e; i++) op[i] = ap[i] + bp[i]; });
}

template <typename T>
static double load(const void* p, int64_t i) { return static_cast<double>(static_cast<const T*>(p)[i]); }

void convert(const Tensor& src, Tensor& dst) {
  check_convert(check_cpu, src, dst);
  if (src.dtype == dst.dtype) { copy(src, dst); return; }
  check_no_alias("convert", "dst", dst, "src", src);
  int64_t n = src.numel();
  const void* s = src.raw();
  void* d = dst.raw();
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) {
      double v;
      switch (src.dtype) {
        case DType::F32: v = load<float>(s, i); break;
        case DType::BF16: v = bf16_bits_to_f32(static_cast<const uint16_t*>(s)[i]); break;
        case DType::F16: v = f16_bits_to_f32(static_cast<const uint16_t*>(s)[i]); break;
        case DType::I32: v = load<int32_t>(s, i); break;
        default: v = load<int64_t>(s, i); break;
      }
      switch (dst.dtype) {
        case DType::F32: static_cast<float*>(d)[i] = static_cast<float>(v); break;
        case DType::BF16: static_cast<uint16_t*>(d)[i] = f32_to_bf16_bits(static_cast<float>(v)); break;
        case DType::F16: static_cast<uint16_t*>(d)[i] = f32_to_f16_bits(static_cast<float>(v)); break;
        // Float to integer truncates toward zero, as a C cast and torch's .to() do.
        case DType::I32: static_cast<int32_t*>(d)[i] = static_cast<int32_t>(v); break;
        case DType::I64: static_cast<int64_t*>(d)[i] = static_cast<int64_t>(v); break;
      }
    }
  });
}

}  // namespace cs::cpu
