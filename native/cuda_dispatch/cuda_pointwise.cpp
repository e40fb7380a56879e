#include "cuda_dispatch/cuda_pointwise.h"

#include <cmath>
#include <initializer_list>
#include <string>
#include <tuple>
#include <utility>

#include "core/activation_checks.h"
#include "core/adamw_checks.h"
#include "core/contrastive_loss_checks.h"
#include "core/elementwise_checks.h"
#include "core/embedding_checks.h"
#include "core/layernorm_checks.h"
#include "core/normalize_checks.h"
#include "core/pooling_checks.h"
#include "cuda_dispatch/cuda_backend.h"
#include "cuda_dispatch/cuda_precision.h"
#include "cuda/abi_pointwise.h"

namespace cs::cuda {

namespace {

// The ops' checks are the CPU ops' (core/*_checks.h); on_cuda has already put every
// tensor of the op on one CUDA device, so they check no device here.
constexpr DeviceCheck kDevice = on_one_cuda_device;

float* F(const Tensor& t) { return t.data<float>(); }
float* F(const Tensor* t) { return t ? t->data<float>() : nullptr; }
const int32_t* I(const Tensor& t) { return t.data<int32_t>(); }
// A 1-element i64 tensor that holds an f64 (tensors have no f64 dtype).
const double* gate_norm(const Tensor& t) { return t.data<double>(); }

// Calls cs_cuda_<name> and turns a failure into the op's error.
#define CS_CUDA_CALL(op, name, ...) cuda_check(op, cuda_fn<decltype(cs_cuda_##name)>(#name, op)(__VA_ARGS__))

}  // namespace

// ── element-wise ──

void fill(Tensor& x, double value) {
  check_fill(kDevice, x, value);
  CS_CUDA_CALL("fill", fill, x.raw(), x.numel(), static_cast<int>(x.dtype), value);
}

void copy(const Tensor& src, Tensor& dst) {
  check_copy(kDevice, src, dst);
  if (src.raw() == dst.raw() || src.nbytes() == 0) return;
  // cudaMemcpy does not handle partial overlap (the CPU's memmove does).
  check_no_alias("copy", "dst", dst, "src", src);
  cuda_memcpy_d2d("copy", dst.raw(), src.raw(), src.nbytes(), dst.device().index);
}

void scale(Tensor& x, float alpha) {
  check_scale(kDevice, x);
  CS_CUDA_CALL("scale", scale, F(x), x.numel(), alpha);
}

void clamp(Tensor& x, float lo, float hi) {
  check_clamp(kDevice, x, lo, hi);
  CS_CUDA_CALL("clamp", clamp, F(x), x.numel(), lo, hi);
}

void axpy(float alpha, const Tensor& x, Tensor& y) {
  check_axpy(kDevice, x, y);
  CS_CUDA_CALL("axpy", axpy, alpha, F(x), F(y), x.numel());
}

void add(const Tensor& a, const Tensor& b, Tensor& out) {
  check_add(kDevice, a, b, out);
  CS_CUDA_CALL("add", add, F(a), F(b), F(out), a.numel());
}

void convert(const Tensor& src, Tensor& dst) {
  check_convert(kDevice, src, dst);
  if (src.dtype == dst.dtype) {
    copy(src, dst);
    return;
  }
  check_no_alias("convert", "dst", dst, "src", src);
  CS_CUDA_CALL("convert", convert, src.raw(), static_cast<int>(src.dtype), dst.raw(), static_cast<int>(dst.dtype),
               src.numel());
}

// ── layernorm ──

static bool is_16bit(const Tensor& t) { return t.dtype == DType::BF16 || t.dtype == DType::F16; }

// A 16-bit layernorm output must be the precision's 16-bit type (the linear reading it takes that).
static uint16_t* out16_bits(const char* op, const Tensor& out) {
  const std::string p = precision();
  const DType want = p == "fp16" ? DType::F16 : DType::BF16;
  if (p == "fp32" || out.dtype != want)
    fail(op, ": out is ", out.describe(), " but the CUDA precision ", p, " stores ",
         p == "fp32" ? "f32" : dtype_name(want), " activations");
  return out.data<uint16_t>();
}

void layernorm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& out, Tensor& mean,
                       Tensor& rstd, float eps) {
  const char* op = "layernormForward";
  const bool out16 = is_16bit(out);
  const RowDims d = check_layernorm_forward(kDevice, x, gamma, beta, out, mean, rstd, eps, out16);
  if (out16) {
    CS_CUDA_CALL(op, layernorm_forward16, F(x), nullptr, nullptr, F(gamma), F(beta), out16_bits(op, out), F(mean),
                 F(rstd), d.rows, d.width, eps);
    return;
  }
  CS_CUDA_CALL(op, layernorm_forward, F(x), F(gamma), F(beta), F(out), F(mean), F(rstd), d.rows, d.width, eps);
}

void residual_layernorm_forward(const Tensor& x, const Tensor& residual, Tensor& sum_out, const Tensor& gamma,
                                const Tensor& beta, Tensor& out, Tensor& mean, Tensor& rstd, float eps) {
  const char* op = "residualLayernormForward";
  const bool out16 = is_16bit(out);
  const RowDims d =
      check_residual_layernorm_forward(kDevice, x, residual, sum_out, gamma, beta, out, mean, rstd, eps, out16);
  if (out16) {
    CS_CUDA_CALL(op, layernorm_forward16, F(x), F(residual), F(sum_out), F(gamma), F(beta), out16_bits(op, out),
                 F(mean), F(rstd), d.rows, d.width, eps);
    return;
  }
  CS_CUDA_CALL(op, residual_layernorm_forward, F(x), F(residual), F(sum_out), F(gamma), F(beta), F(out), F(mean),
               F(rstd), d.rows, d.width, eps);
}

void layernorm_backward(const Tensor& dout, const Tensor& x, const Tensor& gamma, const Tensor& mean,
                        const Tensor& rstd, Tensor& dx, Tensor* dgamma, Tensor* dbeta) {
  const char* op = "layernormBackward";
  const RowDims d = check_layernorm_backward(kDevice, dout, x, gamma, mean, rstd, dx, dgamma, dbeta);
  CS_CUDA_CALL(op, layernorm_backward, F(dout), F(x), F(gamma), F(mean), F(rstd), F(dx), F(dgamma), F(dbeta), d.rows,
               d.width);
}

// ── activations ──

void gelu_forward(const Tensor& x, Tensor& out) {
  check_activation_forward(kDevice, "geluForward", x, out);
  CS_CUDA_CALL("geluForward", gelu_forward, F(x), F(out), x.numel());
}
void gelu_backward(const Tensor& x, const Tensor& dout, Tensor& dx) {
  check_activation_backward(kDevice, "geluBackward", x, dout, dx);
  CS_CUDA_CALL("geluBackward", gelu_backward, F(x), F(dout), F(dx), x.numel());
}
void gelu_tanh_forward(const Tensor& x, Tensor& out) {
  check_activation_forward(kDevice, "geluTanhForward", x, out);
  CS_CUDA_CALL("geluTanhForward", gelu_tanh_forward, F(x), F(out), x.numel());
}
void gelu_tanh_backward(const Tensor& x, const Tensor& dout, Tensor& dx) {
  check_activation_backward(kDevice, "geluTanhBackward", x, dout, dx);
  CS_CUDA_CALL("geluTanhBackward", gelu_tanh_backward, F(x), F(dout), F(dx), x.numel());
}
void quick_gelu_forward(const Tensor& x, Tensor& out) {
  check_activation_forward(kDevice, "quickGeluForward", x, out);
  CS_CUDA_CALL("quickGeluForward", quick_gelu_forward, F(x), F(out), x.numel());
}
void quick_gelu_backward(const Tensor& x, const Tensor& dout, Tensor& dx) {
  check_activation_backward(kDevice, "quickGeluBackward", x, dout, dx);
  CS_CUDA_CALL("quickGeluBackward", quick_gelu_backward, F(x), F(dout), F(dx), x.numel());
}

// ── embeddings ──

void embedding_forward(const Tensor& ids, const Tensor& table, Tensor& out) {
  const char* op = "embeddingForward";
  const TableDims d = check_embedding_forward(kDevice, ids, table, out);
  CS_CUDA_CALL(op, embedding_forward, I(ids), ids.numel(), F(table), d.vocab, d.width, F(out));
}

void embedding_backward(const Tensor& ids, const Tensor& dout, Tensor& dtable) {
  const char* op = "embeddingBackward";
  const TableDims d = check_embedding_backward(kDevice, ids, dout, dtable);
  CS_CUDA_CALL(op, embedding_backward, I(ids), ids.numel(), F(dout), F(dtable), d.vocab, d.width);
}

void pos_embed_forward(const Tensor& x, const Tensor& pos, Tensor& out) {
  const char* op = "posEmbedForward";
  check_pos_embed_forward(kDevice, x, pos, out);
  CS_CUDA_CALL(op, pos_embed_forward, F(x), F(pos), F(out), x.dim(0), pos.numel());
}

void pos_embed_backward(const Tensor& dout, Tensor& dpos) {
  const char* op = "posEmbedBackward";
  check_pos_embed_backward(kDevice, dout, dpos);
  CS_CUDA_CALL(op, pos_embed_backward, F(dout), F(dpos), dout.dim(0), dpos.numel());
}

void class_token_concat(const Tensor& x, const Tensor& cls, Tensor& out) {
  const char* op = "classTokenConcat";
  const TokenDims d = check_class_token_concat(kDevice, x, cls, out);
  CS_CUDA_CALL(op, class_token_concat, F(x), F(cls), F(out), d.batch, d.tokens, d.width);
}

void class_token_concat_backward(const Tensor& dout, Tensor& dx, Tensor& dcls) {
  const char* op = "classTokenConcatBackward";
  const TokenDims d = check_class_token_concat_backward(kDevice, dout, dx, dcls);
  CS_CUDA_CALL(op, class_token_concat_backward, F(dout), F(dx), F(dcls), d.batch, d.tokens, d.width);
}

// ── pooling ──

void gather_rows(const Tensor& x, const Tensor& index, Tensor& out) {
  const char* op = "gatherRows";
  const TokenDims d = check_gather_rows(kDevice, x, index, out);
  CS_CUDA_CALL(op, gather_rows, F(x), I(index), F(out), d.batch, d.tokens, d.width);
}

void gather_rows_backward(const Tensor& dout, const Tensor& index, Tensor& dx) {
  const char* op = "gatherRowsBackward";
  const TokenDims d = check_gather_rows_backward(kDevice, dout, index, dx);
  CS_CUDA_CALL(op, gather_rows_backward, F(dout), I(index), F(dx), d.batch, d.tokens, d.width);
}

void argmax_ids(const Tensor& ids, Tensor& out) {
  const char* op = "argmaxIds";
  const IdRows d = check_argmax_ids(kDevice, ids, out);
  CS_CUDA_CALL(op, argmax_ids, I(ids), out.data<int32_t>(), d.batch, d.tokens);
}

// ── L2 normalisation ──

void l2normalize_forward(const Tensor& x, Tensor& out, Tensor& norms) {
  const char* op = "l2normalizeForward";
  const RowDims d = check_l2normalize_forward(kDevice, x, out, norms);
  CS_CUDA_CALL(op, l2normalize_forward, F(x), F(out), F(norms), d.rows, d.width);
}

void l2normalize_backward(const Tensor& dout, const Tensor& out, const Tensor& norms, Tensor& dx) {
  const char* op = "l2normalizeBackward";
  const RowDims d = check_l2normalize_backward(kDevice, dout, out, norms, dx);
  CS_CUDA_CALL(op, l2normalize_backward, F(dout), F(out), F(norms), F(dx), d.rows, d.width);
}

// ── contrastive loss ──

double contrastive_loss(const Tensor& image, const Tensor& text, const Tensor& logit_scale, int64_t r0, int64_t n,
                        Tensor* dimage, Tensor* dtext, Tensor* dlogit_scale, Tensor* loss_out, Tensor* workspace,
                        float loss_scale, bool read_back) {
  const char* op = "contrastiveLoss";
  const LossDims d = check_contrastive_loss(kDevice, image, text, logit_scale, r0, n, dimage, dtext, dlogit_scale,
                                            loss_out, workspace, loss_scale);
  if (!read_back && !loss_out) fail(op, ": a loss left on the device needs lossOut");
  double loss = read_back ? 0 : std::nan("");
  CS_CUDA_CALL(op, contrastive_loss, F(image), F(text), F(logit_scale), d.N, d.D, r0, n, F(dimage), F(dtext),
               F(dlogit_scale), F(loss_out), F(workspace), loss_scale, read_back ? &loss : nullptr);
  return loss;
}

// ── AdamW, gradient norm, clipping ──

void adamw_step(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, Tensor* param_bf16,
                const AdamWConfig& cfg, const AdamWGate* gate) {
  const char* op = "adamwStep";
  const int64_t n = check_adamw_step(kDevice, param, grad, m, v, param_bf16, cfg);
  // The library writes the copy in the CUDA precision's 16-bit type (f16 in fp16, else bf16).
  if (param_bf16 && (param_bf16->dtype == DType::F16) != (precision() == "fp16"))
    fail(op, ": paramBf16 is ", dtype_name(param_bf16->dtype), " but the CUDA precision is ", precision(),
         " (its 16-bit copies are ", precision() == "fp16" ? "f16" : "bf16", ")");
  uint16_t* pb = param_bf16 ? param_bf16->data<uint16_t>() : nullptr;
  if (gate) {
    check_adamw_gate(kDevice, op, *gate);
    CS_CUDA_CALL(op, adamw_step_gated, F(param), F(grad), F(m), F(v), pb, n, cfg.lr, cfg.beta1, cfg.beta2, cfg.eps,
                 cfg.weight_decay, cfg.step, cfg.grad_scale, F(*gate->loss), gate_norm(*gate->norm),
                 gate->applied->data<int64_t>());
    return;
  }
  CS_CUDA_CALL(op, adamw_step, F(param), F(grad), F(m), F(v), pb, n, cfg.lr, cfg.beta1, cfg.beta2, cfg.eps,
               cfg.weight_decay, cfg.step, cfg.grad_scale);
}

void adamw_commit(const AdamWGate& gate) {
  const char* op = "adamwCommit";
  check_adamw_gate(kDevice, op, gate);
  CS_CUDA_CALL(op, adamw_commit, F(*gate.loss), gate_norm(*gate.norm), gate.applied->data<int64_t>());
}

static void check_loss_scale_state(const char* op, const Tensor& state) {
  kDevice(op, "state", state);
  if (state.dtype != DType::I64 || state.numel() != 2)
    fail(op, ": state must be a 2-element i64 tensor (holding two f64s: scale, good steps), got ", state.describe());
}

void loss_scale_apply(const std::vector<Tensor*>& tensors, const Tensor& state, bool invert) {
  const char* op = "lossScaleApply";
  check_loss_scale_state(op, state);
  std::vector<float*> ptrs;
  std::vector<int64_t> sizes;
  for (size_t k = 0; k < tensors.size(); k++) {
    Tensor* t = tensors[k];
    kDevice(op, "tensors", *t);
    if (t->dtype != DType::F32) fail(op, ": tensors[", k, "] must be f32, got ", t->describe());
    ptrs.push_back(F(*t));
    sizes.push_back(t->numel());
  }
  CS_CUDA_CALL(op, loss_scale_apply, ptrs.data(), sizes.data(), static_cast<int>(ptrs.size()),
               state.data<double>(), invert ? 1 : 0);
}

void loss_scale_update(Tensor& state, const Tensor& loss, const Tensor& norm, double growth, double backoff,
                       int64_t interval, double min_scale, double max_scale) {
  const char* op = "lossScaleUpdate";
  check_loss_scale_state(op, state);
  kDevice(op, "loss", loss);
  kDevice(op, "norm", norm);
  if (loss.dtype != DType::F32 || loss.numel() != 1) fail(op, ": loss must be a 1-element f32 tensor, got ", loss.describe());
  if (norm.dtype != DType::I64 || norm.numel() != 1)
    fail(op, ": norm must be a 1-element i64 tensor (holding an f64, as gradNorm's normOut), got ", norm.describe());
  if (!(growth > 1) || !(backoff > 0 && backoff < 1) || interval < 1 || !(min_scale > 0) || !(max_scale >= min_scale))
    fail(op, ": need growth > 1, 0 < backoff < 1, interval >= 1 and 0 < minScale <= maxScale, got ", growth, ", ",
         backoff, ", ", interval, ", ", min_scale, ", ", max_scale);
  CS_CUDA_CALL(op, loss_scale_update, state.data<double>(), F(loss), gate_norm(norm), growth, backoff, interval,
               min_scale, max_scale);
}

static void check_norm_out(const char* op, const Tensor& t) {
  kDevice(op, "normOut", t);
  if (t.dtype != DType::I64 || t.numel() != 1) fail(op, ": normOut must be a 1-element i64 tensor (holding an f64), got ", t.describe());
}

void grad_norm_into(const std::vector<const Tensor*>& grads, Tensor& norm_out) {
  const char* op = "gradNorm";
  check_grads(kDevice, op, grads);
  check_norm_out(op, norm_out);
  std::vector<const float*> ptrs;
  std::vector<int64_t> sizes;
  for (const Tensor* t : grads) {
    ptrs.push_back(F(*t));
    sizes.push_back(t->numel());
  }
  CS_CUDA_CALL(op, grad_norm, ptrs.data(), sizes.data(), static_cast<int>(ptrs.size()),
               norm_out.data<double>(), nullptr);
}

void clip_grad_norm_into(const std::vector<Tensor*>& grads, double max_norm, Tensor& norm_out) {
  const char* op = "clipGradNorm";
  check_max_norm(max_norm);
  check_grads(kDevice, op, std::vector<const Tensor*>(grads.begin(), grads.end()));
  check_norm_out(op, norm_out);
  std::vector<float*> ptrs;
  std::vector<int64_t> sizes;
  for (Tensor* t : grads) {
    ptrs.push_back(F(*t));
    sizes.push_back(t->numel());
  }
  CS_CUDA_CALL(op, clip_grad_norm_device, ptrs.data(), sizes.data(), static_cast<int>(ptrs.size()), max_norm,
               norm_out.data<double>(), nullptr);
}

double grad_norm(const std::vector<const Tensor*>& grads, const char* op) {
  check_grads(kDevice, op, grads);
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
  check_max_norm(max_norm);
  check_grads(kDevice, op, std::vector<const Tensor*>(grads.begin(), grads.end()));
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
