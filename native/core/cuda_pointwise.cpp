#include "core/cuda_pointwise.h"

#include <cmath>
#include <initializer_list>
#include <string>
#include <tuple>
#include <utility>

#include "core/checks.h"
#include "core/cuda_backend.h"
#include "cuda/abi_pointwise.h"

namespace cs::cuda {

namespace {

// The CPU ops' checks (cpu/pointwise_checks.h) without the "on the CPU" part: on_cuda
// has already put every tensor of the op on one CUDA device.
void f32(const char* op, const char* arg, const Tensor& t) { check_dtype(op, arg, t, DType::F32); }
void i32(const char* op, const char* arg, const Tensor& t) { check_dtype(op, arg, t, DType::I32); }

int64_t row_width(const char* op, const char* arg, const Tensor& t) {
  if (t.ndim() < 1) fail(op, ": ", arg, " must have at least 1 dimension, got ", t.describe());
  return t.dim(-1);
}

int64_t row_count(const Tensor& t) {
  int64_t w = t.dim(-1);
  int64_t rows = 1;
  for (int i = 0; i + 1 < t.ndim(); i++) rows *= t.shape[i];
  return w ? t.numel() / w : rows;
}

void per_row(const char* op, const char* arg, const Tensor& t, int64_t rows) {
  f32(op, arg, t);
  if (t.numel() != rows) fail(op, ": ", arg, " must hold one value per row (", rows, "), got ", t.describe());
}

void same_or_disjoint(const char* op, const char* out_name, const Tensor& out, const char* in_name, const Tensor& in) {
  if (out.raw() == in.raw()) return;
  check_no_alias(op, out_name, out, in_name, in);
}

Shape with_width(const Shape& s, int64_t w) {
  Shape r = s;
  r.push_back(w);
  return r;
}

float* F(const Tensor& t) { return t.data<float>(); }
float* F(const Tensor* t) { return t ? t->data<float>() : nullptr; }
const int32_t* I(const Tensor& t) { return t.data<int32_t>(); }

// Calls cs_cuda_<name> and turns a failure into the op's error.
#define CS_CUDA_CALL(op, name, ...) cuda_check(op, cuda_fn<decltype(cs_cuda_##name)>(#name, op)(__VA_ARGS__))

}  // namespace

// ── element-wise ──

void fill(Tensor& x, double value) {
  if ((x.dtype == DType::I32 || x.dtype == DType::I64) && value != std::floor(value))
    fail("fill: ", x.dtype == DType::I32 ? "i32" : "i64", " tensor cannot hold ", value);
  CS_CUDA_CALL("fill", fill, x.raw(), x.numel(), static_cast<int>(x.dtype), value);
}

void copy(const Tensor& src, Tensor& dst) {
  if (src.dtype != dst.dtype)
    fail("copy: src and dst must have the same dtype, got ", src.describe(), " and ", dst.describe(), " (use convert)");
  if (src.numel() != dst.numel())
    fail("copy: src and dst must have the same number of elements, got ", src.describe(), " and ", dst.describe());
  if (src.raw() == dst.raw() || src.nbytes() == 0) return;
  // cudaMemcpy does not handle partial overlap (the CPU's memmove does).
  check_no_alias("copy", "dst", dst, "src", src);
  cuda_memcpy_d2d("copy", dst.raw(), src.raw(), src.nbytes(), dst.device().index);
}

void scale(Tensor& x, float alpha) {
  check_dtype("scale", "x", x, DType::F32);
  CS_CUDA_CALL("scale", scale, F(x), x.numel(), alpha);
}

void axpy(float alpha, const Tensor& x, Tensor& y) {
  check_dtype("axpy", "x", x, DType::F32);
  check_dtype("axpy", "y", y, DType::F32);
  if (x.numel() != y.numel())
    fail("axpy: x and y must have the same number of elements, got ", x.describe(), " and ", y.describe());
  CS_CUDA_CALL("axpy", axpy, alpha, F(x), F(y), x.numel());
}

void add(const Tensor& a, const Tensor& b, Tensor& out) {
  for (auto* t : {&a, &b}) check_dtype("add", "input", *t, DType::F32);
  check_dtype("add", "out", out, DType::F32);
  check_same_shape("add", "a", a, "b", b);
  check_same_shape("add", "a", a, "out", out);
  CS_CUDA_CALL("add", add, F(a), F(b), F(out), a.numel());
}

void convert(const Tensor& src, Tensor& dst) {
  if (src.numel() != dst.numel())
    fail("convert: src and dst must have the same number of elements, got ", src.describe(), " and ", dst.describe());
  if (src.dtype == dst.dtype) {
    copy(src, dst);
    return;
  }
  check_no_alias("convert", "dst", dst, "src", src);
  CS_CUDA_CALL("convert", convert, src.raw(), static_cast<int>(src.dtype), dst.raw(), static_cast<int>(dst.dtype),
               src.numel());
}

// ── layernorm ──

namespace {
struct Dims {
  int64_t rows, width;
};
Dims check_ln_forward(const char* op, const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& out,
                      const Tensor& mean, const Tensor& rstd) {
  f32(op, "x", x);
  int64_t w = row_width(op, "x", x);
  f32(op, "gamma", gamma);
  check_shape(op, "gamma", gamma, {w});
  f32(op, "beta", beta);
  check_shape(op, "beta", beta, {w});
  f32(op, "out", out);
  check_same_shape(op, "x", x, "out", out);
  int64_t rows = row_count(x);
  per_row(op, "mean", mean, rows);
  per_row(op, "rstd", rstd, rows);
  same_or_disjoint(op, "out", out, "x", x);
  for (const Tensor* in : std::initializer_list<const Tensor*>{&x, &gamma, &beta, &out}) {
    check_no_alias(op, "mean", mean, "another argument", *in);
    check_no_alias(op, "rstd", rstd, "another argument", *in);
  }
  return {rows, w};
}
}  // namespace

void layernorm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& out, Tensor& mean,
                       Tensor& rstd, float eps) {
  const char* op = "layernormForward";
  Dims d = check_ln_forward(op, x, gamma, beta, out, mean, rstd);
  if (!(eps > 0)) fail(op, ": eps must be positive, got ", eps);
  CS_CUDA_CALL(op, layernorm_forward, F(x), F(gamma), F(beta), F(out), F(mean), F(rstd), d.rows, d.width, eps);
}

void residual_layernorm_forward(const Tensor& x, const Tensor& residual, Tensor& sum_out, const Tensor& gamma,
                                const Tensor& beta, Tensor& out, Tensor& mean, Tensor& rstd, float eps) {
  const char* op = "residualLayernormForward";
  f32(op, "residual", residual);
  f32(op, "sumOut", sum_out);
  check_same_shape(op, "x", x, "residual", residual);
  check_same_shape(op, "x", x, "sumOut", sum_out);
  Dims d = check_ln_forward(op, x, gamma, beta, out, mean, rstd);
  if (!(eps > 0)) fail(op, ": eps must be positive, got ", eps);
  same_or_disjoint(op, "sumOut", sum_out, "x", x);
  same_or_disjoint(op, "sumOut", sum_out, "residual", residual);
  check_no_alias(op, "out", out, "sumOut", sum_out);
  same_or_disjoint(op, "out", out, "residual", residual);
  CS_CUDA_CALL(op, residual_layernorm_forward, F(x), F(residual), F(sum_out), F(gamma), F(beta), F(out), F(mean),
               F(rstd), d.rows, d.width, eps);
}

void layernorm_backward(const Tensor& dout, const Tensor& x, const Tensor& gamma, const Tensor& mean,
                        const Tensor& rstd, Tensor& dx, Tensor* dgamma, Tensor* dbeta) {
  const char* op = "layernormBackward";
  f32(op, "dout", dout);
  f32(op, "x", x);
  int64_t w = row_width(op, "x", x);
  check_same_shape(op, "dout", dout, "x", x);
  f32(op, "gamma", gamma);
  check_shape(op, "gamma", gamma, {w});
  int64_t rows = row_count(x);
  per_row(op, "mean", mean, rows);
  per_row(op, "rstd", rstd, rows);
  f32(op, "dx", dx);
  check_same_shape(op, "dx", dx, "x", x);
  same_or_disjoint(op, "dx", dx, "dout", dout);
  check_no_alias(op, "dx", dx, "x", x);
  for (auto [name, t] : {std::pair<const char*, Tensor*>{"dgamma", dgamma}, {"dbeta", dbeta}}) {
    if (!t) continue;
    f32(op, name, *t);
    check_shape(op, name, *t, {w});
    check_no_alias(op, name, *t, "dout", dout);
    check_no_alias(op, name, *t, "x", x);
    check_no_alias(op, name, *t, "dx", dx);
  }
  if (dgamma && dbeta) check_no_alias(op, "dgamma", *dgamma, "dbeta", *dbeta);
  CS_CUDA_CALL(op, layernorm_backward, F(dout), F(x), F(gamma), F(mean), F(rstd), F(dx), F(dgamma), F(dbeta), rows, w);
}

// ── activations ──

namespace {
void check_act_forward(const char* op, const Tensor& x, const Tensor& out) {
  f32(op, "x", x);
  f32(op, "out", out);
  check_same_shape(op, "x", x, "out", out);
  same_or_disjoint(op, "out", out, "x", x);
}
void check_act_backward(const char* op, const Tensor& x, const Tensor& dout, const Tensor& dx) {
  f32(op, "x", x);
  f32(op, "dout", dout);
  f32(op, "dx", dx);
  check_same_shape(op, "x", x, "dout", dout);
  check_same_shape(op, "x", x, "dx", dx);
  same_or_disjoint(op, "dx", dx, "dout", dout);
  same_or_disjoint(op, "dx", dx, "x", x);
}
}  // namespace

void gelu_forward(const Tensor& x, Tensor& out) {
  check_act_forward("geluForward", x, out);
  CS_CUDA_CALL("geluForward", gelu_forward, F(x), F(out), x.numel());
}
void gelu_backward(const Tensor& x, const Tensor& dout, Tensor& dx) {
  check_act_backward("geluBackward", x, dout, dx);
  CS_CUDA_CALL("geluBackward", gelu_backward, F(x), F(dout), F(dx), x.numel());
}
void quick_gelu_forward(const Tensor& x, Tensor& out) {
  check_act_forward("quickGeluForward", x, out);
  CS_CUDA_CALL("quickGeluForward", quick_gelu_forward, F(x), F(out), x.numel());
}
void quick_gelu_backward(const Tensor& x, const Tensor& dout, Tensor& dx) {
  check_act_backward("quickGeluBackward", x, dout, dx);
  CS_CUDA_CALL("quickGeluBackward", quick_gelu_backward, F(x), F(dout), F(dx), x.numel());
}

// ── embeddings ──

void embedding_forward(const Tensor& ids, const Tensor& table, Tensor& out) {
  const char* op = "embeddingForward";
  i32(op, "ids", ids);
  f32(op, "table", table);
  check_ndim(op, "table", table, 2);
  f32(op, "out", out);
  const int64_t v = table.dim(0), w = table.dim(1);
  check_shape(op, "out", out, with_width(ids.shape, w));
  check_no_alias(op, "out", out, "table", table);
  check_no_alias(op, "out", out, "ids", ids);
  CS_CUDA_CALL(op, embedding_forward, I(ids), ids.numel(), F(table), v, w, F(out));
}

void embedding_backward(const Tensor& ids, const Tensor& dout, Tensor& dtable) {
  const char* op = "embeddingBackward";
  i32(op, "ids", ids);
  f32(op, "dout", dout);
  f32(op, "dtable", dtable);
  check_ndim(op, "dtable", dtable, 2);
  const int64_t v = dtable.dim(0), w = dtable.dim(1);
  check_shape(op, "dout", dout, with_width(ids.shape, w));
  check_no_alias(op, "dtable", dtable, "dout", dout);
  check_no_alias(op, "dtable", dtable, "ids", ids);
  CS_CUDA_CALL(op, embedding_backward, I(ids), ids.numel(), F(dout), F(dtable), v, w);
}

void pos_embed_forward(const Tensor& x, const Tensor& pos, Tensor& out) {
  const char* op = "posEmbedForward";
  f32(op, "x", x);
  check_ndim(op, "x", x, 3);
  f32(op, "pos", pos);
  check_shape(op, "pos", pos, {x.dim(1), x.dim(2)});
  f32(op, "out", out);
  check_same_shape(op, "x", x, "out", out);
  same_or_disjoint(op, "out", out, "x", x);
  check_no_alias(op, "out", out, "pos", pos);
  CS_CUDA_CALL(op, pos_embed_forward, F(x), F(pos), F(out), x.dim(0), pos.numel());
}

void pos_embed_backward(const Tensor& dout, Tensor& dpos) {
  const char* op = "posEmbedBackward";
  f32(op, "dout", dout);
  check_ndim(op, "dout", dout, 3);
  f32(op, "dpos", dpos);
  check_shape(op, "dpos", dpos, {dout.dim(1), dout.dim(2)});
  check_no_alias(op, "dpos", dpos, "dout", dout);
  CS_CUDA_CALL(op, pos_embed_backward, F(dout), F(dpos), dout.dim(0), dpos.numel());
}

void class_token_concat(const Tensor& x, const Tensor& cls, Tensor& out) {
  const char* op = "classTokenConcat";
  f32(op, "x", x);
  check_ndim(op, "x", x, 3);
  const int64_t batch = x.dim(0), s = x.dim(1), w = x.dim(2);
  f32(op, "cls", cls);
  check_shape(op, "cls", cls, {w});
  f32(op, "out", out);
  check_shape(op, "out", out, {batch, s + 1, w});
  check_no_alias(op, "out", out, "x", x);
  check_no_alias(op, "out", out, "cls", cls);
  CS_CUDA_CALL(op, class_token_concat, F(x), F(cls), F(out), batch, s, w);
}

void class_token_concat_backward(const Tensor& dout, Tensor& dx, Tensor& dcls) {
  const char* op = "classTokenConcatBackward";
  f32(op, "dout", dout);
  check_ndim(op, "dout", dout, 3);
  const int64_t batch = dout.dim(0), s = dout.dim(1) - 1, w = dout.dim(2);
  if (s < 0) fail(op, ": dout must have at least one token (the class token), got ", dout.describe());
  f32(op, "dx", dx);
  check_shape(op, "dx", dx, {batch, s, w});
  f32(op, "dcls", dcls);
  check_shape(op, "dcls", dcls, {w});
  check_no_alias(op, "dx", dx, "dout", dout);
  check_no_alias(op, "dcls", dcls, "dout", dout);
  check_no_alias(op, "dcls", dcls, "dx", dx);
  CS_CUDA_CALL(op, class_token_concat_backward, F(dout), F(dx), F(dcls), batch, s, w);
}

// ── pooling ──

void gather_rows(const Tensor& x, const Tensor& index, Tensor& out) {
  const char* op = "gatherRows";
  f32(op, "x", x);
  check_ndim(op, "x", x, 3);
  const int64_t batch = x.dim(0), s = x.dim(1), w = x.dim(2);
  f32(op, "out", out);
  check_shape(op, "out", out, {batch, w});
  check_no_alias(op, "out", out, "x", x);
  check_no_alias(op, "out", out, "index", index);
  i32(op, "index", index);
  check_shape(op, "index", index, {batch});
  CS_CUDA_CALL(op, gather_rows, F(x), I(index), F(out), batch, s, w);
}

void gather_rows_backward(const Tensor& dout, const Tensor& index, Tensor& dx) {
  const char* op = "gatherRowsBackward";
  f32(op, "dx", dx);
  check_ndim(op, "dx", dx, 3);
  const int64_t batch = dx.dim(0), s = dx.dim(1), w = dx.dim(2);
  f32(op, "dout", dout);
  check_shape(op, "dout", dout, {batch, w});
  check_no_alias(op, "dx", dx, "dout", dout);
  check_no_alias(op, "dx", dx, "index", index);
  i32(op, "index", index);
  check_shape(op, "index", index, {batch});
  CS_CUDA_CALL(op, gather_rows_backward, F(dout), I(index), F(dx), batch, s, w);
}

void argmax_ids(const Tensor& ids, Tensor& out) {
  const char* op = "argmaxIds";
  i32(op, "ids", ids);
  check_ndim(op, "ids", ids, 2);
  const int64_t batch = ids.dim(0), s = ids.dim(1);
  if (s == 0) fail(op, ": ids must have at least one token a row, got ", ids.describe());
  i32(op, "out", out);
  check_shape(op, "out", out, {batch});
  check_no_alias(op, "out", out, "ids", ids);
  CS_CUDA_CALL(op, argmax_ids, I(ids), out.data<int32_t>(), batch, s);
}

// ── L2 normalisation ──

void l2normalize_forward(const Tensor& x, Tensor& out, Tensor& norms) {
  const char* op = "l2normalizeForward";
  f32(op, "x", x);
  const int64_t w = row_width(op, "x", x);
  f32(op, "out", out);
  check_same_shape(op, "x", x, "out", out);
  same_or_disjoint(op, "out", out, "x", x);
  const int64_t rows = row_count(x);
  per_row(op, "norms", norms, rows);
  check_no_alias(op, "norms", norms, "x", x);
  check_no_alias(op, "norms", norms, "out", out);
  CS_CUDA_CALL(op, l2normalize_forward, F(x), F(out), F(norms), rows, w);
}

void l2normalize_backward(const Tensor& dout, const Tensor& out, const Tensor& norms, Tensor& dx) {
  const char* op = "l2normalizeBackward";
  f32(op, "dout", dout);
  f32(op, "out", out);
  const int64_t w = row_width(op, "out", out);
  check_same_shape(op, "dout", dout, "out", out);
  const int64_t rows = row_count(out);
  per_row(op, "norms", norms, rows);
  f32(op, "dx", dx);
  check_same_shape(op, "dx", dx, "out", out);
  same_or_disjoint(op, "dx", dx, "dout", dout);
  check_no_alias(op, "dx", dx, "out", out);
  check_no_alias(op, "dx", dx, "norms", norms);
  CS_CUDA_CALL(op, l2normalize_backward, F(dout), F(out), F(norms), F(dx), rows, w);
}

// ── contrastive loss ──

double contrastive_loss(const Tensor& image, const Tensor& text, const Tensor& logit_scale, int64_t r0, int64_t n,
                        Tensor* dimage, Tensor* dtext, Tensor* dlogit_scale, Tensor* loss_out, Tensor* workspace,
                        float loss_scale) {
  const char* op = "contrastiveLoss";
  f32(op, "image", image);
  check_ndim(op, "image", image, 2);
  f32(op, "text", text);
  check_same_shape(op, "image", image, "text", text);
  f32(op, "logitScale", logit_scale);
  if (logit_scale.numel() != 1) fail(op, ": logitScale must hold one value, got ", logit_scale.describe());
  const int64_t N = image.dim(0), D = image.dim(1);
  if (N == 0) fail(op, ": the batch is empty (image is ", image.describe(), ")");
  if (r0 < 0 || n < 1 || r0 + n > N)
    fail(op, ": rows ", r0, " .. ", r0 + n, " (rowOffset, rowOffset + rowCount) must lie within the ", N,
         " gathered rows and hold at least one");
  if (!std::isfinite(loss_scale)) fail(op, ": lossScale must be finite, got ", loss_scale);
  for (auto [name, g, like] : {std::tuple<const char*, Tensor*, const Tensor*>{"dImage", dimage, &image},
                               {"dText", dtext, &text}}) {
    if (!g) continue;
    f32(op, name, *g);
    check_same_shape(op, name, *g, "image", *like);
    check_no_alias(op, name, *g, "image", image);
    check_no_alias(op, name, *g, "text", text);
    check_no_alias(op, name, *g, "logitScale", logit_scale);
  }
  if (dimage && dtext) check_no_alias(op, "dImage", *dimage, "dText", *dtext);
  if (dlogit_scale) {
    f32(op, "dLogitScale", *dlogit_scale);
    if (dlogit_scale->numel() != 1) fail(op, ": dLogitScale must hold one value, got ", dlogit_scale->describe());
  }
  if (loss_out && (loss_out->dtype != DType::F32 || loss_out->numel() != 1))
    fail(op, ": lossOut must be a 1-element f32 tensor, got ", loss_out->describe());
  if (workspace) {
    f32(op, "workspace", *workspace);
    if (workspace->numel() < n * N)
      fail(op, ": workspace must hold at least rowCount × N = ", n * N, " values, got ", workspace->describe());
    for (const Tensor* t : {&image, &text, &logit_scale}) check_no_alias(op, "workspace", *workspace, "an input", *t);
    for (Tensor* t : {dimage, dtext, dlogit_scale})
      if (t) check_no_alias(op, "workspace", *workspace, "a gradient", *t);
  }
  double loss = 0;
  CS_CUDA_CALL(op, contrastive_loss, F(image), F(text), F(logit_scale), N, D, r0, n, F(dimage), F(dtext),
               F(dlogit_scale), F(loss_out), F(workspace), loss_scale, &loss);
  return loss;
}

// ── AdamW, gradient norm, clipping ──

void adamw_step(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, Tensor* param_bf16,
                const cpu::AdamWConfig& cfg) {
  const char* op = "adamwStep";
  f32(op, "param", param);
  f32(op, "grad", grad);
  f32(op, "m", m);
  f32(op, "v", v);
  const int64_t n = param.numel();
  for (auto [name, t] : {std::pair<const char*, const Tensor*>{"grad", &grad}, {"m", &m}, {"v", &v}})
    if (t->numel() != n)
      fail(op, ": ", name, " must have as many elements as param (", param.describe(), "), got ", t->describe());
  check_no_alias(op, "param", param, "grad", grad);
  check_no_alias(op, "m", m, "grad", grad);
  check_no_alias(op, "v", v, "grad", grad);
  check_no_alias(op, "m", m, "param", param);
  check_no_alias(op, "v", v, "param", param);
  check_no_alias(op, "v", v, "m", m);
  if (param_bf16) {
    check_dtype(op, "paramBf16", *param_bf16, DType::BF16);
    if (param_bf16->numel() != n)
      fail(op, ": paramBf16 must have as many elements as param (", param.describe(), "), got ",
           param_bf16->describe());
    for (const Tensor* t : std::initializer_list<const Tensor*>{&param, &grad, &m, &v})
      check_no_alias(op, "paramBf16", *param_bf16, "another argument", *t);
  }
  if (cfg.step < 1) fail(op, ": step must be a 1-based step number, got ", cfg.step);
  if (!(cfg.lr >= 0) || !std::isfinite(cfg.lr)) fail(op, ": lr must be a finite number >= 0, got ", cfg.lr);
  if (!(cfg.beta1 >= 0 && cfg.beta1 < 1)) fail(op, ": beta1 must be in [0, 1), got ", cfg.beta1);
  if (!(cfg.beta2 >= 0 && cfg.beta2 < 1)) fail(op, ": beta2 must be in [0, 1), got ", cfg.beta2);
  if (!(cfg.eps > 0)) fail(op, ": eps must be positive, got ", cfg.eps);
  if (!(cfg.weight_decay >= 0) || !std::isfinite(cfg.weight_decay))
    fail(op, ": weightDecay must be a finite number >= 0, got ", cfg.weight_decay);
  if (!std::isfinite(cfg.grad_scale)) fail(op, ": gradScale must be finite, got ", cfg.grad_scale);
  uint16_t* pb = param_bf16 ? param_bf16->data<uint16_t>() : nullptr;
  CS_CUDA_CALL(op, adamw_step, F(param), F(grad), F(m), F(v), pb, n, cfg.lr, cfg.beta1, cfg.beta2, cfg.eps,
               cfg.weight_decay, cfg.step, cfg.grad_scale);
}

namespace {
void check_grads(const char* op, const std::vector<const Tensor*>& grads) {
  for (size_t k = 0; k < grads.size(); k++) {
    std::string name = "grads[" + std::to_string(k) + "]";
    f32(op, name.c_str(), *grads[k]);
  }
}
}  // namespace

double grad_norm(const std::vector<const Tensor*>& grads, const char* op) {
  check_grads(op, grads);
  std::vector<const float*> ptrs;
  std::vector<int64_t> sizes;
  for (const Tensor* t : grads) {
    ptrs.push_back(F(*t));
    sizes.push_back(t->numel());
  }
  double norm = 0;
  CS_CUDA_CALL(op, grad_norm, ptrs.data(), sizes.data(), static_cast<int>(ptrs.size()), nullptr, &norm);
  return norm;
}

double clip_grad_norm(const std::vector<Tensor*>& grads, double max_norm) {
  const char* op = "clipGradNorm";
  if (!(max_norm > 0)) fail(op, ": maxNorm must be positive, got ", max_norm);
  check_grads(op, std::vector<const Tensor*>(grads.begin(), grads.end()));
  std::vector<float*> ptrs;
  std::vector<int64_t> sizes;
  for (Tensor* t : grads) {
    ptrs.push_back(F(*t));
    sizes.push_back(t->numel());
  }
  double norm = 0;
  CS_CUDA_CALL(op, clip_grad_norm, ptrs.data(), sizes.data(), static_cast<int>(ptrs.size()), max_norm, &norm);
  return norm;
}

}  // namespace cs::cuda
