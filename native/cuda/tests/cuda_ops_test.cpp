// Native tests of the CUDA library through its C ABI, against simple host loops; no
// Node needed. Exit code 0: all passed; 1: a failure; 77: no GPU (skipped, reason printed).
//   build-cuda/cuda_ops_test
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cuda/abi.h"
#include "cuda/abi_pointwise.h"

namespace {

int g_failures = 0;
std::mt19937 g_rng(std::random_device{}());

#define CHECK_RC(call)                                                                        \
  do {                                                                                        \
    if ((call) != 0) {                                                                        \
      std::printf("FAIL %s:%d %s: %s\n", __FILE__, __LINE__, #call, cs_cuda_last_error());   \
      g_failures++;                                                                           \
      return;                                                                                 \
    }                                                                                         \
  } while (0)

std::vector<float> randn(size_t n, float scale = 1.f) {
  std::normal_distribution<float> d(0.f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g_rng);
  return v;
}

float round_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return f;
  u += 0x7fffu + ((u >> 16) & 1u);
  u &= 0xffff0000u;
  std::memcpy(&f, &u, 4);
  return f;
}

// Device buffer holding a copy of host values, or n NaNs (poisoned output).
struct Buf {
  void* p = nullptr;
  size_t bytes = 0;
  explicit Buf(size_t b) : bytes(b) {
    if (cs_cuda_malloc(&p, b, 0) != 0) std::printf("malloc failed: %s\n", cs_cuda_last_error());
  }
  template <typename T>
  static Buf of(const std::vector<T>& v) {
    Buf b(v.size() * sizeof(T));
    cs_cuda_memcpy_h2d(b.p, v.data(), b.bytes, 0);
    return b;
  }
  static Buf poisoned(size_t n) {
    std::vector<float> nan(n, std::nanf(""));
    return of(nan);
  }
  template <typename T>
  std::vector<T> get() const {
    std::vector<T> v(bytes / sizeof(T));
    if (cs_cuda_memcpy_d2h(v.data(), p, bytes, 0) != 0) std::printf("copy back failed: %s\n", cs_cuda_last_error());
    return v;
  }
  float* f() const { return static_cast<float*>(p); }
  ~Buf() { cs_cuda_free(p, 0); }
  Buf(const Buf&) = delete;
  Buf(Buf&& o) noexcept : p(o.p), bytes(o.bytes) { o.p = nullptr; }
};

// ‖got − want‖ / ‖want‖; NaN anywhere fails.
void expect_close(const char* what, const std::vector<float>& got, const std::vector<double>& want, double tol = 1e-2) {
  double num = 0, den = 0;
  bool finite = got.size() == want.size();
  for (size_t i = 0; finite && i < got.size(); i++) {
    if (!std::isfinite(got[i])) finite = false;
    num += (got[i] - want[i]) * (got[i] - want[i]);
    den += want[i] * want[i];
  }
  const double err = finite ? std::sqrt(num) / std::max(std::sqrt(den), 1e-30) : INFINITY;
  const bool ok = err <= tol;
  std::printf("%s %-40s rel err %.3g\n", ok ? "ok  " : "FAIL", what, err);
  if (!ok) g_failures++;
}

void test_elementwise() {
  const int64_t n = 100003;
  auto a = randn(n), b = randn(n);
  Buf da = Buf::of(a), db = Buf::of(b), out = Buf::poisoned(n);
  CHECK_RC(cs_cuda_add(da.f(), db.f(), out.f(), n));
  CHECK_RC(cs_cuda_axpy(0.5f, da.f(), out.f(), n));
  CHECK_RC(cs_cuda_scale(out.f(), n, -2.f));
  std::vector<double> want(n);
  for (int64_t i = 0; i < n; i++) want[i] = -2.0 * (a[i] + b[i] + 0.5 * a[i]);
  expect_close("add, axpy, scale", out.get<float>(), want, 1e-6);
  Buf bf(n * 2), back = Buf::poisoned(n);
  CHECK_RC(cs_cuda_convert(da.p, 0, bf.p, 1, n));
  CHECK_RC(cs_cuda_convert(bf.p, 1, back.p, 0, n));
  for (int64_t i = 0; i < n; i++) want[i] = round_bf16(a[i]);
  expect_close("convert f32 → bf16 → f32 (exact)", back.get<float>(), want, 0.0);
  CHECK_RC(cs_cuda_fill(out.p, n, 0, 2.5));
  for (auto& w : want) w = 2.5;
  expect_close("fill", out.get<float>(), want, 0.0);
}

void test_layernorm(int64_t rows, int64_t w) {
  auto x = randn(rows * w, 3.f), g = randn(w), b = randn(w), dout = randn(rows * w);
  Buf dx_ = Buf::of(x), dg = Buf::of(g), dbeta = Buf::of(b), out = Buf::poisoned(rows * w), mean = Buf::poisoned(rows),
      rstd = Buf::poisoned(rows);
  CHECK_RC(cs_cuda_layernorm_forward(dx_.f(), dg.f(), dbeta.f(), out.f(), mean.f(), rstd.f(), rows, w, 1e-5f));
  std::vector<double> want(rows * w), m(rows), rs(rows), dxw(rows * w), dgw(w, 0), dbw(w, 0);
  for (int64_t r = 0; r < rows; r++) {
    double s = 0, ss = 0;
    for (int64_t j = 0; j < w; j++) s += x[r * w + j];
    m[r] = s / w;
    for (int64_t j = 0; j < w; j++) ss += (x[r * w + j] - m[r]) * (x[r * w + j] - m[r]);
    rs[r] = 1 / std::sqrt(ss / w + 1e-5);
    double sg = 0, sgx = 0;
    for (int64_t j = 0; j < w; j++) {
      const double xh = (x[r * w + j] - m[r]) * rs[r];
      want[r * w + j] = xh * g[j] + b[j];
      const double gj = dout[r * w + j] * g[j];
      sg += gj;
      sgx += gj * xh;
      dgw[j] += dout[r * w + j] * xh;
      dbw[j] += dout[r * w + j];
    }
    for (int64_t j = 0; j < w; j++) {
      const double xh = (x[r * w + j] - m[r]) * rs[r];
      dxw[r * w + j] = rs[r] * (dout[r * w + j] * g[j] - sg / w - xh * sgx / w);
    }
  }
  char name[64];
  std::snprintf(name, sizeof name, "layernormForward %lldx%lld", (long long)rows, (long long)w);
  expect_close(name, out.get<float>(), want);
  expect_close("  mean", mean.get<float>(), m, 1e-5);
  expect_close("  rstd", rstd.get<float>(), rs, 1e-5);
  Buf dd = Buf::of(dout), gx = Buf::poisoned(rows * w), gg = Buf::poisoned(w), gb = Buf::poisoned(w);
  CHECK_RC(cs_cuda_layernorm_backward(dd.f(), dx_.f(), dg.f(), mean.f(), rstd.f(), gx.f(), gg.f(), gb.f(), rows, w));
  expect_close("layernormBackward dx", gx.get<float>(), dxw);
  expect_close("  dgamma", gg.get<float>(), dgw);
  expect_close("  dbeta", gb.get<float>(), dbw);
}

void test_embedding_and_errors() {
  const int64_t V = 300, W = 64, n = 1000;
  std::vector<int32_t> ids(n);
  for (auto& i : ids) i = static_cast<int32_t>(g_rng() % V);
  auto table = randn(V * W);
  Buf di = Buf::of(ids), dt = Buf::of(table), out = Buf::poisoned(n * W);
  CHECK_RC(cs_cuda_embedding_forward(static_cast<int32_t*>(di.p), n, dt.f(), V, W, out.f()));
  std::vector<double> want(n * W);
  for (int64_t t = 0; t < n; t++)
    for (int64_t j = 0; j < W; j++) want[t * W + j] = round_bf16(table[ids[t] * W + j]);
  expect_close("embeddingForward (exact)", out.get<float>(), want, 0.0);
  ids[17] = static_cast<int32_t>(V + 5);
  Buf bad = Buf::of(ids);
  CHECK_RC(cs_cuda_embedding_forward(static_cast<int32_t*>(bad.p), n, dt.f(), V, W, out.f()));
  const int rc = cs_cuda_synchronize(0);
  const std::string msg = cs_cuda_last_error();
  const bool ok = rc != 0 && msg.find("embeddingForward") != std::string::npos && msg.find("305") != std::string::npos;
  std::printf("%s bad id reported at sync: %s\n", ok ? "ok  " : "FAIL", msg.c_str());
  if (!ok) g_failures++;
  CHECK_RC(cs_cuda_synchronize(0));  // reported once, then clear
}

void test_contrastive(int64_t N, int64_t D, int64_t r0, int64_t n) {
  auto img = randn(N * D), txt = randn(N * D);
  for (auto* f : {&img, &txt})
    for (int64_t i = 0; i < N; i++) {
      double s = 0;
      for (int64_t j = 0; j < D; j++) s += (*f)[i * D + j] * (*f)[i * D + j];
      for (int64_t j = 0; j < D; j++) (*f)[i * D + j] = static_cast<float>((*f)[i * D + j] / std::sqrt(s));
    }
  const float t = std::log(1 / 0.07f);
  const double s = std::exp(static_cast<double>(t));
  // Host reference in double: this rank's contribution and its gradients.
  std::vector<double> L(N * N), gI(N * D, 0), gT(N * D, 0);
  for (int64_t i = 0; i < N; i++)
    for (int64_t j = 0; j < N; j++) {
      double a = 0;
      for (int64_t k = 0; k < D; k++) a += static_cast<double>(img[i * D + k]) * txt[j * D + k];
      L[i * N + j] = s * a;
    }
  double loss = 0, dls = 0;
  const double c = 1.0 / (2.0 * N);
  for (int dir = 0; dir < 2; dir++)
    for (int64_t i = r0; i < r0 + n; i++) {
      auto at = [&](int64_t j) { return dir == 0 ? L[i * N + j] : L[j * N + i]; };
      double mx = -INFINITY, sum = 0;
      for (int64_t j = 0; j < N; j++) mx = std::max(mx, at(j));
      for (int64_t j = 0; j < N; j++) sum += std::exp(at(j) - mx);
      const double lse = mx + std::log(sum);
      loss += (lse - at(i)) * c;
      for (int64_t j = 0; j < N; j++) {
        const double gl = c * (std::exp(at(j) - lse) - (j == i ? 1 : 0));
        dls += gl * at(j);
        const int64_t ii = dir == 0 ? i : j, jj = dir == 0 ? j : i;  // logits index (image ii, text jj)
        for (int64_t k = 0; k < D; k++) {
          gI[ii * D + k] += s * gl * txt[jj * D + k];
          gT[jj * D + k] += s * gl * img[ii * D + k];
        }
      }
    }
  Buf bi = Buf::of(img), bt = Buf::of(txt), bs = Buf::of(std::vector<float>{t}), dI = Buf::poisoned(N * D),
      dT = Buf::poisoned(N * D), dS = Buf::poisoned(1), lo = Buf::poisoned(1);
  double got = 0;
  CHECK_RC(cs_cuda_contrastive_loss(bi.f(), bt.f(), bs.f(), N, D, r0, n, dI.f(), dT.f(), dS.f(), lo.f(), nullptr, 1.0f,
                                    &got));
  char name[96];
  std::snprintf(name, sizeof name, "contrastiveLoss N=%lld rows %lld..%lld: loss", (long long)N, (long long)r0,
                (long long)(r0 + n));
  expect_close(name, {static_cast<float>(got)}, {loss}, 1e-4);
  expect_close("  lossOut", lo.get<float>(), {loss}, 1e-4);
  expect_close("  dImage", dI.get<float>(), gI, 1e-3);
  expect_close("  dText", dT.get<float>(), gT, 1e-3);
  expect_close("  dLogitScale", dS.get<float>(), {dls}, 1e-3);
}

void test_adamw_and_norms() {
  const int64_t n = 200001;
  auto p = randn(n), g = randn(n), m = randn(n, 0.1f), v0 = randn(n, 0.1f);
  for (auto& x : v0) x *= x;
  Buf bp = Buf::of(p), bg = Buf::of(g), bm = Buf::of(m), bv = Buf::of(v0), bb(n * 2);
  const double lr = 1e-3, b1 = 0.9, b2 = 0.98, eps = 1e-6, wd = 0.2;
  const int64_t step = 3;
  CHECK_RC(cs_cuda_adamw_step(bp.f(), bg.f(), bm.f(), bv.f(), static_cast<uint16_t*>(bb.p), n, lr, b1, b2, eps, wd, step, 1.0));
  std::vector<double> wp(n);
  for (int64_t i = 0; i < n; i++) {
    const double mi = b1 * m[i] + (1 - b1) * g[i], vi = b2 * v0[i] + (1 - b2) * g[i] * g[i];
    wp[i] = p[i] * (1 - lr * wd) - lr / (1 - std::pow(b1, step)) * mi / (std::sqrt(vi / (1 - std::pow(b2, step))) + eps);
  }
  expect_close("adamwStep param", bp.get<float>(), wp, 1e-6);
  Buf back = Buf::poisoned(n);
  CHECK_RC(cs_cuda_convert(bb.p, 1, back.p, 0, n));
  expect_close("  bf16 copy", back.get<float>(), wp, 1e-2);
  // Norm over two tensors, then clipping to a tenth of it. bm holds the first moment
  // adamwStep just updated, not m: the norm is of what the device holds now.
  double want = 0;
  for (float x : g) want += static_cast<double>(x) * x;
  for (float x : bm.get<float>()) want += static_cast<double>(x) * x;
  want = std::sqrt(want);
  const float* ts[] = {bg.f(), bm.f()};
  const int64_t sizes[] = {n, n};
  double got = 0;
  CHECK_RC(cs_cuda_grad_norm(ts, sizes, 2, nullptr, &got));
  expect_close("gradNorm", {static_cast<float>(got)}, {want}, 1e-6);
  float* wts[] = {bg.f(), bm.f()};
  CHECK_RC(cs_cuda_clip_grad_norm(wts, sizes, 2, want / 10, &got));
  CHECK_RC(cs_cuda_grad_norm(ts, sizes, 2, nullptr, &got));
  expect_close("clipGradNorm leaves norm/10", {static_cast<float>(got)}, {want / 10}, 1e-4);
}

void test_out_of_memory() {
  void* p = nullptr;
  const size_t huge = static_cast<size_t>(1) << 50;  // 1 PiB
  const int rc = cs_cuda_malloc(&p, huge, 0);
  const std::string msg = cs_cuda_last_error();
  const bool ok = rc != 0 && p == nullptr && msg.find("out of GPU memory") != std::string::npos &&
                  msg.find(std::to_string(huge)) != std::string::npos && msg.find("free") != std::string::npos;
  std::printf("%s out of memory: %s\n", ok ? "ok  " : "FAIL", msg.c_str());
  if (!ok) g_failures++;
}

}  // namespace

int main() {
  int count = 0;
  if (cs_cuda_device_count(&count) != 0 || count == 0) {
    std::printf("SKIP: no usable GPU (%s)\n", count == 0 && !*cs_cuda_last_error() ? "no devices" : cs_cuda_last_error());
    return 77;
  }
  char name[256];
  cs_cuda_device_name(0, name, sizeof name);
  std::printf("device 0: %s (ABI %d)\n", name, cs_cuda_abi_version());
  if (cs_cuda_init(0) != 0) {
    std::printf("FAIL init: %s\n", cs_cuda_last_error());
    return 1;
  }
  test_elementwise();
  test_layernorm(77 * 4, 768);
  test_layernorm(33, 100);
  test_embedding_and_errors();
  test_contrastive(200, 64, 0, 200);
  test_contrastive(200, 64, 50, 70);
  // The column log-sum-exp's row chunks (256 rows each): one, several, a partial last one.
  for (int64_t N : {1, 33, 256, 1000}) test_contrastive(N, 32, 0, N);
  test_adamw_and_norms();
  test_out_of_memory();
  if (cs_cuda_synchronize(0) != 0) {
    std::printf("FAIL final synchronize: %s\n", cs_cuda_last_error());
    g_failures++;
  }
  std::printf("%s: %d failure(s)\n", g_failures ? "FAILED" : "PASSED", g_failures);
  return g_failures ? 1 : 0;
}
