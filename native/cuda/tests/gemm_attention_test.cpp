// Native test of the GEMM and attention group (no Node): every op against a host loop
// with the CPU backend's bf16 emulation (operands rounded to bf16, sums in double here,
// outputs rounded where the CPU rounds). Outputs are poisoned with NaN first, NaN never
// passes, and the relative error ‖out − ref‖/‖ref‖ must be ≤ 1e-2.
// Argument errors are checked first and need no GPU; the rest exits 77 (skipped) when
// no GPU is found. Attention runs in each precision (bf16, fp16, fp32) against a reference
// that rounds where that precision rounds.
// Usage: gemm_attention_test [--quick] [--gemm-only | --attention-only] [--precision=bf16|fp16|fp32]
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cuda/abi.h"
#include "cuda/abi_attention.h"
#include "cuda/abi_gemm.h"

namespace {

int g_failures = 0, g_checks = 0;
std::mt19937 g_rng(1234);

float round_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return f;
  u += 0x7fffu + ((u >> 16) & 1u);
  u &= 0xffff0000u;
  float r;
  std::memcpy(&r, &u, 4);
  return r;
}

// IEEE half, round to nearest even (overflow to inf, subnormals kept), as numerics.cuh's
// round_f16: 10 fraction bits in the normal range, multiples of 2^-24 below 2^-14.
float round_f16(float f) {
  const float a = std::fabs(f);
  if (!(a < 65520.0f)) return std::isnan(f) ? f : std::copysign(INFINITY, f);
  if (a < 6.103515625e-05f) return std::nearbyint(f * 16777216.0f) / 16777216.0f;
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0xfffu + ((u >> 13) & 1u);
  u &= 0xffffe000u;
  float r;
  std::memcpy(&r, &u, 4);
  return r;
}
float round_none(float f) { return f; }

std::vector<float> randn(size_t n, float scale = 1.0f) {
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g_rng);
  return v;
}
std::vector<float> rounded(std::vector<float> v) {
  for (auto& x : v) x = round_bf16(x);
  return v;
}

void expect(bool ok, const std::string& what) {
  g_checks++;
  if (!ok) {
    g_failures++;
    std::printf("FAIL %s\n", what.c_str());
  }
}

void expect_rc(int rc, const std::string& what) {
  expect(rc == 0, what + (rc ? std::string(": ") + cs_cuda_last_error() : ""));
}

// relErr ≤ 1e-2 and no NaN (a NaN anywhere fails, even where ref is NaN).
// den_floor: a lower bound on ‖ref‖² (for parts that can be exactly zero).
double compare(const std::vector<float>& out, const std::vector<float>& ref, const std::string& what, double tol = 1e-2,
               double den_floor = 0) {
  double num = 0, den = 0;
  size_t nans = 0;
  for (size_t i = 0; i < out.size(); i++) {
    if (!std::isfinite(out[i])) nans++;
    const double e = double(out[i]) - ref[i];
    num += e * e;
    den += double(ref[i]) * ref[i];
  }
  den = std::max(den, den_floor);
  const double rel = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  const bool ok = nans == 0 && rel <= tol;
  g_checks++;
  if (!ok) g_failures++;
  std::printf("%s %-60s relErr %.2e%s\n", ok ? "ok  " : "FAIL", what.c_str(), rel,
              nans ? (" (" + std::to_string(nans) + " non-finite)").c_str() : "");
  return nans ? INFINITY : rel;
}

struct Dev {
  float* p = nullptr;
  size_t n = 0;
  explicit Dev(size_t count) : n(count) {
    if (cs_cuda_malloc(reinterpret_cast<void**>(&p), std::max<size_t>(n, 1) * 4, 0)) {
      std::printf("cs_cuda_malloc failed: %s\n", cs_cuda_last_error());
      std::exit(1);
    }
  }
  Dev(const std::vector<float>& v) : Dev(v.size()) { set(v); }
  ~Dev() { cs_cuda_free(p, 0); }
  void set(const std::vector<float>& v) { cs_cuda_memcpy_h2d(p, v.data(), v.size() * 4, 0); }
  void poison() { set(std::vector<float>(n, NAN)); }
  std::vector<float> get() const {
    std::vector<float> v(n);
    if (cs_cuda_memcpy_d2h(v.data(), p, n * 4, 0)) std::printf("copy back failed: %s\n", cs_cuda_last_error());
    return v;
  }
};

// ── host references ──

// C = alpha·op(A)·op(B) + beta·C, rounded; op per the ABI (row-major).
std::vector<float> ref_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const std::vector<float>& A,
                            const std::vector<float>& B, float beta, const std::vector<float>& C0, int64_t batch,
                            bool b_shared) {
  std::vector<float> C(static_cast<size_t>(batch * M * N));
  for (int64_t b = 0; b < batch; b++) {
    const float* a = A.data() + b * M * K;
    const float* bb = B.data() + (b_shared ? 0 : b * K * N);
    for (int64_t m = 0; m < M; m++)
      for (int64_t n = 0; n < N; n++) {
        double s = 0;
        for (int64_t k = 0; k < K; k++) {
          const float av = ta ? a[k * M + m] : a[m * K + k];
          const float bv = tb ? bb[n * K + k] : bb[k * N + n];
          s += double(round_bf16(av)) * round_bf16(bv);
        }
        const size_t i = static_cast<size_t>(b * M * N + m * N + n);
        C[i] = round_bf16(float(alpha * s + (beta != 0 ? beta * C0[i] : 0.0)));
      }
  }
  return C;
}

float gelu_tanh(float x) { return 0.5f * x * (1.0f + std::tanh(0.7978845608028654f * (x + 0.044715f * x * x * x))); }

// The emulated device (libclipscale_cuda_emu.so): smaller sizes, same tile edges.
bool g_emulated = false;

void test_gemm(const char* engine, bool quick) {
  struct Case { int64_t M, N, K, batch; bool ta, tb, shared; float alpha, beta; };
  std::vector<Case> cases = {{1, 1, 1, 1, false, false, false, 1, 0},      {50, 77, 64, 1, false, true, false, 1, 0},
                             {130, 200, 37, 1, true, false, false, 0.7f, 0}, {64, 96, 72, 3, true, true, false, 1, 0.5f},
                             {77, 77, 64, 4, false, true, false, 0.125f, 0}, {33, 65, 129, 5, false, false, true, 1, 0},
                             {512, 768, 768, 1, false, true, false, 1, 1}};
  // The emulated device (CPU) is ~10^4 times slower: a smaller GEMM that still crosses every tile edge.
  if (g_emulated) cases.back() = {130, 200, 136, 1, false, true, false, 1, 1};
  if (!quick && !g_emulated) cases.push_back({1600, 2304, 768, 1, false, true, false, 1, 0});
  for (const Case& c : cases) {
    const int64_t bA = c.batch, bB = c.shared ? 1 : c.batch;
    auto A = randn(static_cast<size_t>(bA * c.M * c.K)), B = randn(static_cast<size_t>(bB * c.K * c.N));
    auto C0 = randn(static_cast<size_t>(c.batch * c.M * c.N));
    Dev dA(A), dB(B), dC(C0);
    if (c.beta == 0) dC.poison();
    const int rc = cs_cuda_gemm(c.ta, c.tb, c.M, c.N, c.K, c.alpha, dA.p, c.ta ? c.M : c.K, c.M * c.K, dB.p,
                                c.tb ? c.K : c.N, c.shared ? 0 : c.K * c.N, c.beta, dC.p, c.N, c.M * c.N, c.batch);
    char what[160];
    std::snprintf(what, sizeof what, "[%s] gemm %lldx%lldx%lld batch %lld ta %d tb %d shared %d beta %g", engine,
                  (long long)c.M, (long long)c.N, (long long)c.K, (long long)c.batch, c.ta, c.tb, c.shared, c.beta);
    expect_rc(rc, what);
    compare(dC.get(), ref_gemm(c.ta, c.tb, c.M, c.N, c.K, c.alpha, A, B, c.beta, C0, c.batch, c.shared), what);
  }
}

void test_linear(const char* engine) {
  const std::vector<std::array<int64_t, 3>> shapes = {{1, 1, 1}, {100, 64, 192}, {257, 80, 37}};
  for (const auto& [M, K, N] : shapes) {
    auto x = randn(M * K), w = randn(N * K, 0.2f), b = randn(N), dy = randn(M * N);
    auto xr = rounded(x), wr = rounded(w), br = rounded(b), dyr = rounded(dy);
    std::vector<float> y(M * N), yg(M * N), dx(M * K), dw(N * K), db(N);
    for (int64_t m = 0; m < M; m++)
      for (int64_t n = 0; n < N; n++) {
        double s = br[n];
        for (int64_t k = 0; k < K; k++) s += double(xr[m * K + k]) * wr[n * K + k];
        y[m * N + n] = round_bf16(float(s));
        yg[m * N + n] = round_bf16(gelu_tanh(float(s)));
      }
    for (int64_t m = 0; m < M; m++)
      for (int64_t k = 0; k < K; k++) {
        double s = 0;
        for (int64_t n = 0; n < N; n++) s += double(dyr[m * N + n]) * wr[n * K + k];
        dx[m * K + k] = round_bf16(float(s));
      }
    for (int64_t n = 0; n < N; n++) {
      double sb = 0;
      for (int64_t m = 0; m < M; m++) sb += dyr[m * N + n];
      db[n] = float(sb);
      for (int64_t k = 0; k < K; k++) {
        double s = 0;
        for (int64_t m = 0; m < M; m++) s += double(dyr[m * N + n]) * xr[m * K + k];
        dw[n * K + k] = float(s);
      }
    }
    Dev dX(x), dW(w), dB(b), dY(M * N), dDY(dy), dDX(M * K), dDW(N * K), dDB(N);
    char what[120];
    std::snprintf(what, sizeof what, "[%s] linear %lldx%lld -> %lld", engine, (long long)M, (long long)K, (long long)N);
    dY.poison();
    expect_rc(cs_cuda_linear_forward(dX.p, dW.p, dB.p, dY.p, M, K, N, 0), what);
    compare(dY.get(), y, std::string(what) + " forward");
    dY.poison();
    expect_rc(cs_cuda_linear_forward(dX.p, dW.p, dB.p, dY.p, M, K, N, 1), what);
    compare(dY.get(), yg, std::string(what) + " forward+gelu");
    dDX.poison(), dDW.poison(), dDB.poison();
    expect_rc(cs_cuda_linear_backward(dX.p, dW.p, dDY.p, dDX.p, dDW.p, dDB.p, M, K, N, 0), what);
    compare(dDX.get(), dx, std::string(what) + " dx");
    compare(dDW.get(), dw, std::string(what) + " dw");
    compare(dDB.get(), db, std::string(what) + " db");
    // accumulate: a second pass doubles dw and db
    expect_rc(cs_cuda_linear_backward(dX.p, dW.p, dDY.p, nullptr, dDW.p, dDB.p, M, K, N, 1), what);
    for (auto& v : dw) v *= 2;
    for (auto& v : db) v *= 2;
    compare(dDW.get(), dw, std::string(what) + " dw accumulated");
    compare(dDB.get(), db, std::string(what) + " db accumulated");
  }
}

void test_patch_embed(const char* engine) {
  const int64_t B = 2, C = 3, H = 32, W = 48, P = 8, width = 40, gh = H / P, gw = W / P, M = B * gh * gw, K = C * P * P;
  auto img = randn(B * C * H * W), wt = randn(width * K, 0.1f), dout = randn(M * width);
  auto imgr = rounded(img), wr = rounded(wt), dor = rounded(dout);
  auto pix = [&](int64_t m, int64_t k) {
    const int64_t b = m / (gh * gw), p = m % (gh * gw), c = k / (P * P), ky = (k / P) % P, kx = k % P;
    return ((b * C + c) * H + (p / gw) * P + ky) * W + (p % gw) * P + kx;
  };
  std::vector<float> out(M * width), dw(width * K), dimg(B * C * H * W);
  for (int64_t m = 0; m < M; m++)
    for (int64_t n = 0; n < width; n++) {
      double s = 0;
      for (int64_t k = 0; k < K; k++) s += double(imgr[pix(m, k)]) * wr[n * K + k];
      out[m * width + n] = round_bf16(float(s));
    }
  for (int64_t n = 0; n < width; n++)
    for (int64_t k = 0; k < K; k++) {
      double s = 0;
      for (int64_t m = 0; m < M; m++) s += double(dor[m * width + n]) * imgr[pix(m, k)];
      dw[n * K + k] = float(s);
    }
  for (int64_t m = 0; m < M; m++)
    for (int64_t k = 0; k < K; k++) {
      double s = 0;
      for (int64_t n = 0; n < width; n++) s += double(dor[m * width + n]) * wr[n * K + k];
      dimg[pix(m, k)] = round_bf16(float(s));
    }
  Dev dI(img), dW(wt), dO(M * width), dDO(dout), dDW(width * K), dDI(B * C * H * W);
  const std::string what = std::string("[") + engine + "] patch embed 2x3x32x48 P8 width 40";
  dO.poison();
  expect_rc(cs_cuda_patch_embed_forward(dI.p, dW.p, dO.p, B, C, H, W, P, width), what);
  compare(dO.get(), out, what + " forward");
  dDW.poison(), dDI.poison();
  expect_rc(cs_cuda_patch_embed_backward(dI.p, dW.p, dDO.p, dDW.p, dDI.p, B, C, H, W, P, width, 0), what);
  compare(dDW.get(), dw, what + " dweight");
  compare(dDI.get(), dimg, what + " dimages");
}

// The CPU op's semantics (native/cpu/attention.cpp) in double, with operands rounded by
// rnd where the kernels round them (bf16: the CPU's bf16 emulation; f16 the same points;
// fp32: nowhere).
void ref_attention(const std::vector<float>& qkv, const std::vector<float>& dout, int64_t B, int64_t S, int64_t Wd,
                   int64_t heads, bool causal, float (*rnd)(float), std::vector<float>& out, std::vector<float>& lse,
                   std::vector<float>& dqkv) {
  const int64_t d = Wd / heads, ld = 3 * Wd;
  const double scale = 1.0 / std::sqrt(double(d));
  out.assign(B * S * Wd, 0.0f);
  lse.assign(B * heads * S, 0.0f);
  dqkv.assign(B * S * ld, 0.0f);
  std::vector<double> P(S * S), dP(S * S);
  for (int64_t b = 0; b < B; b++)
    for (int64_t h = 0; h < heads; h++) {
      auto q = [&](int64_t i, int64_t c) { return double(rnd(qkv[(b * S + i) * ld + h * d + c])); };
      auto k = [&](int64_t i, int64_t c) { return double(rnd(qkv[(b * S + i) * ld + Wd + h * d + c])); };
      auto v = [&](int64_t i, int64_t c) { return double(rnd(qkv[(b * S + i) * ld + 2 * Wd + h * d + c])); };
      auto dO = [&](int64_t i, int64_t c) { return double(rnd(dout[(b * S + i) * Wd + h * d + c])); };
      for (int64_t i = 0; i < S; i++) {
        const int64_t n = causal ? i + 1 : S;
        double mx = -INFINITY;
        for (int64_t j = 0; j < n; j++) {
          double s = 0;
          for (int64_t c = 0; c < d; c++) s += q(i, c) * k(j, c);
          P[i * S + j] = s * scale;
          mx = std::max(mx, P[i * S + j]);
        }
        double sum = 0;
        for (int64_t j = 0; j < n; j++) sum += std::exp(P[i * S + j] - mx);
        for (int64_t j = 0; j < S; j++) P[i * S + j] = j < n ? std::exp(P[i * S + j] - mx) / sum : 0.0;
        lse[(b * heads + h) * S + i] = float(mx + std::log(sum));
        for (int64_t c = 0; c < d; c++) {
          double o = 0;
          for (int64_t j = 0; j < n; j++) o += double(rnd(float(P[i * S + j]))) * v(j, c);
          out[(b * S + i) * Wd + h * d + c] = rnd(float(o));
        }
      }
      for (int64_t i = 0; i < S; i++) {
        double D = 0;
        for (int64_t c = 0; c < d; c++) D += dO(i, c) * rnd(out[(b * S + i) * Wd + h * d + c]);
        for (int64_t j = 0; j < S; j++) {
          double dp = 0;
          for (int64_t c = 0; c < d; c++) dp += dO(i, c) * v(j, c);
          dP[i * S + j] = rnd(float(P[i * S + j] * (dp - D)));  // dS, rounded as the CPU does
        }
      }
      for (int64_t i = 0; i < S; i++)
        for (int64_t c = 0; c < d; c++) {
          double dq = 0, dk = 0, dv = 0;
          for (int64_t j = 0; j < S; j++) {
            dq += dP[i * S + j] * k(j, c);
            dk += dP[j * S + i] * q(j, c);
            dv += double(rnd(float(P[j * S + i]))) * dO(j, c);
          }
          float* row = dqkv.data() + (b * S + i) * ld + h * d + c;
          row[0] = rnd(float(dq * scale));
          row[Wd] = rnd(float(dk * scale));
          row[2 * Wd] = rnd(float(dv));
        }
    }
}

struct PrecisionCase {
  int code;  // cs_cuda_set_precision's
  const char* name;
  float (*rnd)(float);
  double tol, lse_tol;
};
// Tolerances on ‖gpu − ref‖/‖ref‖: bf16 as the other ops; f16 keeps 3 more bits; fp32
// differs from the double reference by summation order only.
const PrecisionCase kPrecisions[] = {
    {1, "bf16", round_bf16, 1e-2, 1e-3},
    {2, "fp16", round_f16, 2e-3, 1e-4},
    {0, "fp32", round_none, 1e-5, 5e-6},
};

// Each precision against its reference; the largest error per quantity is printed.
// --quick on the emulated device (CI) runs CLIP's head dims at S 50, 77 causal, 197 and
// 257 causal (every tile edge) and a few small shapes in each precision; the full grid in
// bf16 also runs in test/cuda-layers.test.ts.
void test_attention(bool quick, const PrecisionCase& pc) {
  struct Case { int64_t B, S, heads, d; int causal; };  // causal -1: both
  std::vector<Case> cases;
  if (quick && g_emulated) {
    for (int64_t d : {64, 80, 88, 128})
      for (Case c : {Case{2, 50, 2, d, 0}, Case{2, 77, 2, d, 1}, Case{1, 197, 2, d, 0}, Case{1, 257, 2, d, 1}})
        cases.push_back(c);
    cases.push_back({2, 1, 2, 32, -1});
    cases.push_back({2, 70, 3, 16, -1});
  } else {
    for (int64_t d : {64, 80, 88, 128, 32, 16})
      for (int64_t S : {1, 50, 77, 197, 257}) cases.push_back({g_emulated && S > 100 ? 1 : 2, S, 2, d, -1});
    if (!quick && !g_emulated) cases.push_back({1, 1024, 2, 64, -1});
  }
  expect_rc(cs_cuda_set_precision(pc.code), std::string("set precision ") + pc.name);
  double worst[5] = {0, 0, 0, 0, 0};
  for (const Case& c : cases)
    for (bool causal : {false, true}) {
      if (c.causal >= 0 && causal != (c.causal == 1)) continue;
      const int64_t Wd = c.heads * c.d;
      auto qkv = randn(c.B * c.S * 3 * Wd), dout = randn(c.B * c.S * Wd);
      std::vector<float> out, lse, dqkv;
      ref_attention(qkv, dout, c.B, c.S, Wd, c.heads, causal, pc.rnd, out, lse, dqkv);
      Dev dQKV(qkv), dO(out.size()), dL(lse.size()), dDO(dout), dD(dqkv.size()), dOref(out);
      char what[120];
      std::snprintf(what, sizeof what, "[%s] attention B%lld S%lld heads %lld d%lld %s", pc.name, (long long)c.B,
                    (long long)c.S, (long long)c.heads, (long long)c.d, causal ? "causal" : "full");
      dO.poison(), dL.poison();
      expect_rc(cs_cuda_attention_forward(dQKV.p, dO.p, dL.p, c.B, c.S, Wd, c.heads, causal), what);
      worst[0] = std::max(worst[0], compare(dO.get(), out, std::string(what) + " out", pc.tol));
      worst[1] = std::max(worst[1], compare(dL.get(), lse, std::string(what) + " lse", pc.lse_tol));
      // Backward from the reference's out and lse, so only the backward is measured.
      dD.poison();
      Dev dLref(lse);
      expect_rc(cs_cuda_attention_backward(dQKV.p, dOref.p, dDO.p, dLref.p, dD.p, c.B, c.S, Wd, c.heads, causal), what);
      // dQ, dK and dV each on their own (a wrong dQ must not hide behind a right dV); dQ and
      // dK are exactly zero at S 1, so each is measured against at least the three parts'
      // root-mean-square norm.
      const std::vector<float> got = dD.get();
      double all = 0;
      for (float v : dqkv) all += double(v) * v;
      for (int part = 0; part < 3; part++) {
        std::vector<float> g, r;
        for (int64_t row = 0; row < c.B * c.S; row++)
          for (int64_t col = part * Wd; col < (part + 1) * Wd; col++) {
            g.push_back(got[row * 3 * Wd + col]);
            r.push_back(dqkv[row * 3 * Wd + col]);
          }
        const char* names[] = {" dq", " dk", " dv"};
        worst[2 + part] = std::max(worst[2 + part], compare(g, r, std::string(what) + names[part], pc.tol, all / 3));
      }
    }
  std::printf("attention %s: largest relErr out %.2e, lse %.2e, dq %.2e, dk %.2e, dv %.2e (tolerance %.0e, lse %.0e)\n",
              pc.name, worst[0], worst[1], worst[2], worst[3], worst[4], pc.tol, pc.lse_tol);
  expect_rc(cs_cuda_set_precision(1), "precision back to bf16");
}

// Argument errors: checked before any device work, so they run without a GPU.
void test_argument_errors() {
  expect(cs_cuda_attention_forward(nullptr, nullptr, nullptr, 1, 4, 6, 4, 0) != 0 &&
             std::strstr(cs_cuda_last_error(), "multiple of heads"),
         std::string("attention: width not a multiple of heads -> ") + cs_cuda_last_error());
  expect(cs_cuda_attention_forward(nullptr, nullptr, nullptr, 1, 4, 256, 1, 0) != 0 &&
             std::strstr(cs_cuda_last_error(), "head dimension 256"),
         std::string("attention: head dim 256 -> ") + cs_cuda_last_error());
  expect(cs_cuda_attention_backward(nullptr, nullptr, nullptr, nullptr, nullptr, -1, 4, 8, 1, 0) != 0,
         std::string("attention backward: negative batch -> ") + cs_cuda_last_error());
  expect(cs_cuda_gemm(0, 0, -1, 2, 2, 1, nullptr, 2, 0, nullptr, 2, 0, 0, nullptr, 2, 0, 1) != 0 &&
             std::strstr(cs_cuda_last_error(), "negative"),
         std::string("gemm: negative M -> ") + cs_cuda_last_error());
  expect(cs_cuda_gemm(0, 0, 2, 3, 4, 1, nullptr, 4, 0, nullptr, 3, 0, 0, nullptr, 2, 0, 1) != 0 &&
             std::strstr(cs_cuda_last_error(), "ldc"),
         std::string("gemm: ldc < N -> ") + cs_cuda_last_error());
  expect(cs_cuda_patch_embed_forward(nullptr, nullptr, nullptr, 1, 3, 30, 32, 8, 4) != 0 &&
             std::strstr(cs_cuda_last_error(), "patches"),
         std::string("patch embed: 30 not a multiple of 8 -> ") + cs_cuda_last_error());
  expect(cs_cuda_gemm_set_backend("fastest") != 0 && std::strstr(cs_cuda_last_error(), "own, cublaslt or auto"),
         std::string("set backend 'fastest' -> ") + cs_cuda_last_error());
  const char* name = cs_cuda_gemm_backend_name();
  expect(std::strcmp(name, "own") == 0 || std::strcmp(name, "cublaslt") == 0 || std::strcmp(name, "unavailable") == 0,
         std::string("backend name is known: ") + name);
  char info[512];
  expect_rc(cs_cuda_gemm_backend_info(info, sizeof info), "backend info");
  std::printf("gemm backend: %s\n", info);
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, gemm_only = false, attention_only = false;
  const char* only_precision = nullptr;
  for (int i = 1; i < argc; i++) {
    quick |= std::strcmp(argv[i], "--quick") == 0;
    gemm_only |= std::strcmp(argv[i], "--gemm-only") == 0;  // GEMM, linear and patch embedding only
    attention_only |= std::strcmp(argv[i], "--attention-only") == 0;
    if (std::strncmp(argv[i], "--precision=", 12) == 0) only_precision = argv[i] + 12;  // bf16, fp16 or fp32
  }
  g_emulated = cs_cuda_emulated() == 1;
  test_argument_errors();
  int count = 0;
  if (cs_cuda_device_count(&count) != 0 || count == 0) {
    std::printf("%d argument checks, %d failed; GPU tests SKIPPED: %s\n", g_checks, g_failures,
                count == 0 && !*cs_cuda_last_error() ? "no CUDA device" : cs_cuda_last_error());
    return g_failures ? 1 : 77;
  }
  if (cs_cuda_init(0) != 0) {
    std::printf("cs_cuda_init(0) failed: %s\n", cs_cuda_last_error());
    return 1;
  }
  char name[256] = {0};
  cs_cuda_device_name(0, name, sizeof name);
  std::printf("device: %s%s\n", name, g_emulated ? " (emulated: the kernels run on the CPU)" : "");
  for (const char* engine : {"own", "cublaslt"}) {
    if (attention_only) break;
    if (cs_cuda_gemm_set_backend(engine) != 0) {
      std::printf("SKIP %s GEMM tests: %s\n", engine, cs_cuda_last_error());
      continue;
    }
    test_gemm(engine, quick);
    test_linear(engine);
    test_patch_embed(engine);
  }
  cs_cuda_gemm_set_backend("auto");
  if (!gemm_only)
    for (const PrecisionCase& pc : kPrecisions)
      if (!only_precision || std::strcmp(only_precision, pc.name) == 0) test_attention(quick, pc);
  expect_rc(cs_cuda_synchronize(0), "no kernel errors");
  std::printf("%d checks, %d failed\n", g_checks, g_failures);
  return g_failures ? 1 : 0;
}
