// exp for non-positive arguments (softmax's s − max, GELU′'s −x²/2) in plain arithmetic, so the
// loops that call it vectorise; std::exp is a libm call, which keeps a loop scalar. So is
// std::nearbyint in a baseline x86-64 build (SSE2 has no rounding instruction): call it from loops
// built per instruction set (CS_TARGET_CLONES, core/target_clones.h).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace cs {

// t = n·ln2 + r with |r| <= ln2/2 (Cody–Waite split of ln2), e^r by its degree-6 Taylor
// polynomial (truncation < 2e-8 relative), 2^n put into the exponent bits. Within ~2 ulp of
// std::exp; t below -87 (e^t under FLT_MIN) gives 0 (so x = ±inf still gives inf·0 = NaN as before).
// A t a rounding error above 0 (softmax's s − lse) is as exact. NaN stays NaN, as with std::exp, so
// a NaN score is not silently turned into a probability.
inline float exp_nonpositive(float t) {
  const bool nan = t != t;
  const bool underflow = t < -87.0f;
  const float tc = nan || underflow ? -87.0f : t;  // the integer conversion below never sees NaN
  const float n = std::nearbyint(tc * 1.44269504088896341f);
  const float r = (tc - n * 0.693145751953125f) - n * 1.42860682030941723212e-6f;
  float p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, 4);
  return nan ? t : underflow ? 0.0f : p * scale;
}

}  // namespace cs
