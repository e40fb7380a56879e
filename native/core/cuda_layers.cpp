#include "core/cuda_layers.h"

#include <cstdint>
#include <utility>

#include "core/checks.h"
#include "core/cuda_backend.h"
#include "core/error.h"

namespace cs::cuda {

namespace {

// The library's entry points (native/cuda/abi_gemm.h, abi_attention.h), declared by type.
using GemmFn = int(int, int, int64_t, int64_t, int64_t, float, const float*, int64_t, int64_t, const float*, int64_t,
                   int64_t, float, float*, int64_t, int64_t, int64_t);
using LinearForwardFn = int(const float*, const float*, const float*, float*, int64_t, int64_t, int64_t, int);
using LinearBackwardFn = int(const float*, const float*, const float*, float*, float*, float*, int64_t, int64_t,
                             int64_t, int);
using PatchForwardFn = int(const float*, const float*, float*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t);
using PatchBackwardFn = int(const float*, const float*, const float*, float*, float*, int64_t, int64_t, int64_t,
                            int64_t, int64_t, int64_t, int);
using AttentionForwardFn = int(const float*, float*, float*, int64_t, int64_t, int64_t, int64_t, int);
using AttentionBackwardFn = int(const float*, const float*, const float*, const float*, float*, int64_t, int64_t,
                                int64_t, int64_t, int);
using BackendNameFn = const char*();
using BackendInfoFn = int(char*, int);
using SetBackendFn = int(const char*);

void check_f32(const char* op, const char* name, const Tensor& t) { check_dtype(op, name, t, DType::F32); }

const float* f(const Tensor& t) { return t.data<float>(); }
float* f(Tensor& t) { return t.data<float>(); }
const float* f(const Tensor* t) { return t ? t->data<float>() : nullptr; }
float* f(Tensor* t) { return t ? t->data<float>() : nullptr; }

int64_t leading_rows(const char* op, const Tensor& x) {
  check_f32(op, "x", x);
  if (x.ndim() < 1) fail(op, ": x must have at least 1 dimension [..., in], got ", x.describe());
  int64_t rows = 1;
  for (int i = 0; i + 1 < x.ndim(); i++) rows *= x.shape[i];
  return rows;
}

void check_rows_like(const char* op, const char* name, const Tensor& t, const Tensor& x, int64_t last) {
  Shape want(x.shape.begin(), x.shape.end() - 1);
  want.push_back(last);
  check_shape(op, name, t, want);
}

struct PatchGeometry {
  int64_t B, C, H, W, P, width;
};

PatchGeometry patch_geometry(const char* op, const Tensor& images, const Tensor& weight) {
  check_f32(op, "images", images);
  check_f32(op, "weight", weight);
  check_ndim(op, "images", images, 4);
  check_ndim(op, "weight", weight, 4);
  PatchGeometry g{images.dim(0), images.dim(1), images.dim(2), images.dim(3), weight.dim(2), weight.dim(0)};
  check_shape(op, "weight", weight, {-1, g.C, g.P, g.P});
  if (g.P == 0) fail(op, ": weight's patch size must be positive, got ", weight.describe());
  if (g.H % g.P != 0 || g.W % g.P != 0)
    fail(op, ": image height ", g.H, " and width ", g.W, " must be multiples of the patch size ", g.P, ", got images ",
         images.describe(), " and weight ", weight.describe());
  return g;
}

struct AttentionGeometry {
  int64_t B, S, W;
};

AttentionGeometry attention_geometry(const char* op, const Tensor& qkv, int64_t heads) {
  check_f32(op, "qkv", qkv);
  if (qkv.ndim() != 3) fail(op, ": qkv must have shape [batch, tokens, 3·width], got ", qkv.describe());
  if (heads < 1) fail(op, ": heads must be at least 1, got ", heads);
  if (qkv.dim(2) % 3 != 0)
    fail(op, ": qkv's last dimension must be 3·width (Q, K and V packed), got ", qkv.describe());
  const int64_t W = qkv.dim(2) / 3;
  if (W == 0 || W % heads != 0)
    fail(op, ": width ", W, " must be a positive multiple of heads (", heads, "), got qkv ", qkv.describe());
  return {qkv.dim(0), qkv.dim(1), W};
}

}  // namespace

void matmul(const Tensor& a, const Tensor& b, Tensor& c, bool ta, bool tb, float alpha, float beta) {
  const char* op = "matmul";
  check_f32(op, "a", a);
  check_f32(op, "b", b);
  check_f32(op, "c", c);
  if (a.ndim() != 2 && a.ndim() != 3) fail(op, ": a must have 2 or 3 dimensions, got ", a.describe());
  const bool batched = a.ndim() == 3;
  if (batched && b.ndim() != 2 && b.ndim() != 3)
    fail(op, ": b must have 3 dimensions (or 2, shared by the batch) like a ", a.describe(), ", got ", b.describe());
  if (!batched) check_ndim(op, "b", b, 2);
  const int64_t batch = batched ? a.dim(0) : 1;
  const int64_t M = ta ? a.dim(-1) : a.dim(-2);
  const int64_t K = ta ? a.dim(-2) : a.dim(-1);
  const bool b_shared = batched && b.ndim() == 2;
  Shape want_b = tb ? Shape{-1, K} : Shape{K, -1};
  if (batched && !b_shared) want_b.insert(want_b.begin(), batch);
  check_shape(op, "b", b, want_b);
  const int64_t N = tb ? b.dim(-2) : b.dim(-1);
  check_shape(op, "c", c, batched ? Shape{batch, M, N} : Shape{M, N});
  check_no_alias(op, "c", c, "a", a);
  check_no_alias(op, "c", c, "b", b);
  cuda_check(op, cuda_fn<GemmFn>("gemm", op)(ta, tb, M, N, K, alpha, f(a), a.dim(-1), M * K, f(b), b.dim(-1),
                                              b_shared ? 0 : K * N, beta, f(c), N, M * N, batch));
}

void linear_forward(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& y) {
  const char* op = "linearForward";
  const int64_t M = leading_rows(op, x), K = x.dim(-1);
  check_f32(op, "w", w);
  check_shape(op, "w", w, {-1, K});
  const int64_t N = w.dim(0);
  if (b) {
    check_f32(op, "b", *b);
    check_shape(op, "b", *b, {N});
  }
  check_f32(op, "y", y);
  check_rows_like(op, "y", y, x, N);
  check_no_alias(op, "y", y, "x", x);
  check_no_alias(op, "y", y, "w", w);
  if (b) check_no_alias(op, "y", y, "b", *b);
  cuda_check(op, cuda_fn<LinearForwardFn>("linear_forward", op)(f(x), f(w), f(b), f(y), M, K, N, 0));
}

void linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx, Tensor* dw, Tensor* db,
                     bool accumulate) {
  const char* op = "linearBackward";
  const int64_t M = leading_rows(op, x), K = x.dim(-1);
  check_f32(op, "w", w);
  check_shape(op, "w", w, {-1, K});
  const int64_t N = w.dim(0);
  check_f32(op, "dy", dy);
  check_rows_like(op, "dy", dy, x, N);
  if (dx) {
    check_f32(op, "dx", *dx);
    check_same_shape(op, "dx", *dx, "x", x);
    check_no_alias(op, "dx", *dx, "dy", dy);
    check_no_alias(op, "dx", *dx, "w", w);
  }
  if (dw) {
    check_f32(op, "dw", *dw);
    check_same_shape(op, "dw", *dw, "w", w);
    check_no_alias(op, "dw", *dw, "dy", dy);
    check_no_alias(op, "dw", *dw, "x", x);
  }
  if (db) {
    check_f32(op, "db", *db);
    check_shape(op, "db", *db, {N});
    check_no_alias(op, "db", *db, "dy", dy);
  }
  cuda_check(op, cuda_fn<LinearBackwardFn>("linear_backward", op)(f(x), f(w), f(dy), f(dx), f(dw), f(db), M, K, N,
                                                                   accumulate ? 1 : 0));
}

void patch_embed_forward(const Tensor& images, const Tensor& weight, Tensor& out) {
  const char* op = "patchEmbedForward";
  PatchGeometry g = patch_geometry(op, images, weight);
  check_f32(op, "out", out);
  check_shape(op, "out", out, {g.B, (g.H / g.P) * (g.W / g.P), g.width});
  check_no_alias(op, "out", out, "images", images);
  check_no_alias(op, "out", out, "weight", weight);
  cuda_check(op, cuda_fn<PatchForwardFn>("patch_embed_forward", op)(f(images), f(weight), f(out), g.B, g.C, g.H, g.W,
                                                                     g.P, g.width));
}

void patch_embed_backward(const Tensor& images, const Tensor& weight, const Tensor& dout, Tensor* dweight,
                          Tensor* dimages, bool accumulate) {
  const char* op = "patchEmbedBackward";
  PatchGeometry g = patch_geometry(op, images, weight);
  check_f32(op, "dout", dout);
  check_shape(op, "dout", dout, {g.B, (g.H / g.P) * (g.W / g.P), g.width});
  if (dweight) {
    check_f32(op, "dweight", *dweight);
    check_same_shape(op, "dweight", *dweight, "weight", weight);
    check_no_alias(op, "dweight", *dweight, "dout", dout);
    check_no_alias(op, "dweight", *dweight, "images", images);
  }
  if (dimages) {
    check_f32(op, "dimages", *dimages);
    check_same_shape(op, "dimages", *dimages, "images", images);
    check_no_alias(op, "dimages", *dimages, "dout", dout);
    check_no_alias(op, "dimages", *dimages, "weight", weight);
  }
  cuda_check(op, cuda_fn<PatchBackwardFn>("patch_embed_backward", op)(f(images), f(weight), f(dout), f(dweight),
                                                                       f(dimages), g.B, g.C, g.H, g.W, g.P, g.width,
                                                                       accumulate ? 1 : 0));
}

void attention_forward(const Tensor& qkv, Tensor& out, Tensor* lse, int64_t heads, bool causal) {
  const char* op = "attentionForward";
  AttentionGeometry g = attention_geometry(op, qkv, heads);
  check_f32(op, "out", out);
  check_shape(op, "out", out, {g.B, g.S, g.W});
  check_no_alias(op, "out", out, "qkv", qkv);
  if (lse) {
    check_f32(op, "lse", *lse);
    check_shape(op, "lse", *lse, {g.B, heads, g.S});
    check_no_alias(op, "lse", *lse, "qkv", qkv);
    check_no_alias(op, "lse", *lse, "out", out);
  }
  cuda_check(op, cuda_fn<AttentionForwardFn>("attention_forward", op)(f(qkv), f(out), f(lse), g.B, g.S, g.W, heads,
                                                                       causal ? 1 : 0));
}

void attention_backward(const Tensor& qkv, const Tensor& out, const Tensor& dout, const Tensor& lse, Tensor& dqkv,
                        int64_t heads, bool causal) {
  const char* op = "attentionBackward";
  AttentionGeometry g = attention_geometry(op, qkv, heads);
  check_f32(op, "out", out);
  check_shape(op, "out", out, {g.B, g.S, g.W});
  check_f32(op, "dout", dout);
  check_shape(op, "dout", dout, {g.B, g.S, g.W});
  check_f32(op, "lse", lse);
  check_shape(op, "lse", lse, {g.B, heads, g.S});
  check_f32(op, "dqkv", dqkv);
  check_same_shape(op, "dqkv", dqkv, "qkv", qkv);
  for (const auto& [name, t] : {std::pair<const char*, const Tensor*>{"qkv", &qkv}, {"out", &out}, {"dout", &dout},
                                {"lse", &lse}})
    check_no_alias(op, "dqkv", dqkv, name, *t);
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
