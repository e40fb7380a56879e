// C ABI of the pointwise group: element-wise ops, layernorm, activations, embeddings,
// pooling, L2 normalisation, the fused contrastive loss, AdamW and gradient norms.
// Each equals the CPU op of the same name (native/cpu/*.h): same argument meanings,
// same overwrite/accumulate rules. Shapes, dtypes and aliasing are checked by the
// addon before the call (native/core/cuda_pointwise.cpp); these take sizes as given.
// All pointers are device pointers on the calling thread's current device unless named
// *_host. See abi.h for errors, streams and the rounding points.
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// ── element-wise (n elements) ──
int cs_cuda_fill(void* x, int64_t n, int dtype, double value);
int cs_cuda_scale(float* x, int64_t n, float alpha);                        // x *= alpha
int cs_cuda_clamp(float* x, int64_t n, float lo, float hi);                 // x = min(max(x, lo), hi); NaN stays
int cs_cuda_axpy(float alpha, const float* x, float* y, int64_t n);         // y += alpha·x
int cs_cuda_add(const float* a, const float* b, float* out, int64_t n);     // out may alias a or b
// Any dtype to any other; bf16 rounds to nearest even, float to integer truncates.
int cs_cuda_convert(const void* src, int src_dtype, void* dst, int dst_dtype, int64_t n);

// ── layernorm over rows of `width` values; mean/rstd one f32 per row; out rounded to bf16 ──
int cs_cuda_layernorm_forward(const float* x, const float* gamma, const float* beta, float* out, float* mean,
                              float* rstd, int64_t rows, int64_t width, float eps);
// sum_out = bf16(x + residual), out = layernorm(sum_out); sum_out may be x or residual.
int cs_cuda_residual_layernorm_forward(const float* x, const float* residual, float* sum_out, const float* gamma,
                                       const float* beta, float* out, float* mean, float* rstd, int64_t rows,
                                       int64_t width, float eps);
// Either of the two with out in the precision's 16-bit type (bf16/fp16 runs; an error in fp32):
// residual null: layernorm(x); else sum_out = round(x + residual), out16 = layernorm(sum_out).
int cs_cuda_layernorm_forward16(const float* x, const float* residual, float* sum_out, const float* gamma,
                                const float* beta, uint16_t* out16, float* mean, float* rstd, int64_t rows,
                                int64_t width, float eps);
// dx (may be dout), dgamma/dbeta (nullable) OVERWRITTEN.
int cs_cuda_layernorm_backward(const float* dout, const float* x, const float* gamma, const float* mean,
                               const float* rstd, float* dx, float* dgamma, float* dbeta, int64_t rows,
                               int64_t width);

// ── activations: out rounded to bf16; dx = dout·f'(x), may be dout ──
int cs_cuda_gelu_forward(const float* x, float* out, int64_t n);
int cs_cuda_gelu_backward(const float* x, const float* dout, float* dx, int64_t n);
// GELU's tanh form (nn.GELU(approximate='tanh')): forward rounded as the others, backward fp32.
int cs_cuda_gelu_tanh_forward(const float* x, float* out, int64_t n);
int cs_cuda_gelu_tanh_backward(const float* x, const float* dout, float* dx, int64_t n);
int cs_cuda_quick_gelu_forward(const float* x, float* out, int64_t n);
int cs_cuda_quick_gelu_backward(const float* x, const float* dout, float* dx, int64_t n);

// ── embeddings ──
// out[i, :] = bf16(table[ids[i], :]) for i < n. An id outside [0, vocab) gives a NaN row
// and an error at the next synchronisation.
int cs_cuda_embedding_forward(const int32_t* ids, int64_t n, const float* table, int64_t vocab, int64_t width,
                              float* out);
// dtable = 0, then dtable[ids[i]] += dout[i] (atomics; summation order is not fixed).
int cs_cuda_embedding_backward(const int32_t* ids, int64_t n, const float* dout, float* dtable, int64_t vocab,
                               int64_t width);
// out = bf16(x + pos); x [batch, seq_width], pos [seq_width]; out may be x.
int cs_cuda_pos_embed_forward(const float* x, const float* pos, float* out, int64_t batch, int64_t seq_width);
// dpos = Σ_b dout[b]
int cs_cuda_pos_embed_backward(const float* dout, float* dpos, int64_t batch, int64_t seq_width);
// x [batch, seq, width], cls [width] → out [batch, seq + 1, width] (bf16-rounded)
int cs_cuda_class_token_concat(const float* x, const float* cls, float* out, int64_t batch, int64_t seq,
                               int64_t width);
// dout [batch, seq + 1, width] → dx [batch, seq, width], dcls [width] = Σ_b dout[b, 0]
int cs_cuda_class_token_concat_backward(const float* dout, float* dx, float* dcls, int64_t batch, int64_t seq,
                                        int64_t width);

// ── pooling ──
// out[b] = bf16(x[b, index[b]]); x [batch, seq, width]. An index outside [0, seq) gives a
// NaN row and an error at the next synchronisation.
int cs_cuda_gather_rows(const float* x, const int32_t* index, float* out, int64_t batch, int64_t seq,
                        int64_t width);
// dx (all of it) = 0 except dx[b, index[b]] = dout[b].
int cs_cuda_gather_rows_backward(const float* dout, const int32_t* index, float* dx, int64_t batch, int64_t seq,
                                 int64_t width);
// out[b] = first s with ids[b, s] maximal.
int cs_cuda_argmax_ids(const int32_t* ids, int32_t* out, int64_t batch, int64_t seq);

// ── L2 normalisation (fp32, no rounding) ──
int cs_cuda_l2normalize_forward(const float* x, float* out, float* norms, int64_t rows, int64_t width);
int cs_cuda_l2normalize_backward(const float* dout, const float* out, const float* norms, float* dx, int64_t rows,
                                 int64_t width);

// ── the fused CLIP contrastive loss (cpu/contrastive_loss.h), fp32 throughout ──
// image, text [n_total, dim]; logit_scale: device pointer to the log scale. This rank
// owns rows row_offset .. row_offset + row_count (all of them: the single-process loss).
// dimage, dtext, dlogit_scale, loss_out: nullable device outputs, OVERWRITTEN (the
// gradients multiplied by loss_scale). workspace: nullable, ≥ row_count·n_total floats
// (allocated for the call when null). loss_host: nullable; when given, the call waits
// for the device and stores the loss there (the one synchronisation, made on request).
int cs_cuda_contrastive_loss(const float* image, const float* text, const float* logit_scale, int64_t n_total,
                             int64_t dim, int64_t row_offset, int64_t row_count, float* dimage, float* dtext,
                             float* dlogit_scale, float* loss_out, float* workspace, float loss_scale,
                             double* loss_host);

// ── AdamW on fp32 master weights (torch.optim.AdamW), optional 16-bit copy of the result ──
// The copy (param_bf16) is written in the precision's 16-bit type (cs_cuda_set_precision):
// fp16 bits when it is fp16, bf16 bits otherwise (the caller passes a copy of that type).
int cs_cuda_adamw_step(float* param, const float* grad, float* m, float* v, uint16_t* param_bf16, int64_t n,
                       double lr, double beta1, double beta2, double eps, double weight_decay, int64_t step,
                       double grad_scale);

// The same step gated on the device (core/adamw_checks.h, AdamWGate): applied only when
// *loss and *norm are finite, at step number *applied + 1, which must be `step` or step + 1.
int cs_cuda_adamw_step_gated(float* param, const float* grad, float* m, float* v, uint16_t* param_bf16, int64_t n,
                             double lr, double beta1, double beta2, double eps, double weight_decay, int64_t step,
                             double grad_scale, const float* loss, const double* norm, const int64_t* applied);
// *applied += 1 when *loss and *norm are finite (after every gated update of a step).
int cs_cuda_adamw_commit(const float* loss, const double* norm, int64_t* applied);

// The gated step of a CUDA graph: every step-dependent value is read on the device from a
// schedule record (32 bytes of device memory) that cs_cuda_adamw_schedule writes before each
// replay (in stream order, from the host): lr, known = step - 1, and the bias corrections of
// steps `step` and step + 1 as cs_cuda_adamw_step_gated computes them (bit for bit the same update).
typedef struct CsAdamWSchedule {
  double lr;
  int64_t known;
  float step_size_a, inv_sqrt_bc2_a, step_size_b, inv_sqrt_bc2_b;
} CsAdamWSchedule;
int cs_cuda_adamw_schedule(CsAdamWSchedule* sched, double lr, double beta1, double beta2, int64_t step);
int cs_cuda_adamw_step_scheduled(float* param, const float* grad, float* m, float* v, uint16_t* param_bf16, int64_t n,
                                 double beta1, double beta2, double eps, double weight_decay, double grad_scale,
                                 const float* loss, const double* norm, const int64_t* applied,
                                 const CsAdamWSchedule* sched);

// ── dynamic loss scaling on the device (loss_scale.cu) ──
// state: 2 doubles of device memory, the scale and the finite steps since the last growth or skip.
// Multiplies every tensor by the scale (invert = 0) or by 1/scale rounded to f32 (invert = 1).
int cs_cuda_loss_scale_apply(float* const* tensors, const int64_t* sizes, int count, const double* state, int invert);
// The LossScaler rule after a step, from its loss and gradient norm: a non-finite loss changes
// nothing; a non-finite norm multiplies the scale by backoff (at least min_scale) and resets the
// count; else the count grows and, at `interval`, resets and the scale is multiplied by growth
// (at most max_scale).
int cs_cuda_loss_scale_update(double* state, const float* loss, const double* norm, double growth, double backoff,
                              int64_t interval, double min_scale, double max_scale);

// ── global gradient norm over `count` tensors (host arrays of device pointers and sizes) ──
// sqrt(Σ g²) summed in double, two passes with fixed chunking (deterministic).
// norm_device (nullable): a device double that receives the norm, no synchronisation.
// norm_host (nullable): waits and stores it on the host.
int cs_cuda_grad_norm(const float* const* tensors, const int64_t* sizes, int count, double* norm_device,
                      double* norm_host);
// Scales every tensor by min(1, max_norm / (norm + 1e-6)) on the device (no host round
// trip); a non-finite norm leaves them untouched. norm_host as above.
int cs_cuda_clip_grad_norm(float* const* tensors, const int64_t* sizes, int count, double max_norm,
                           double* norm_host);
// The same with the norm also left in norm_device (nullable), for a later kernel to read.
int cs_cuda_clip_grad_norm_device(float* const* tensors, const int64_t* sizes, int count, double max_norm,
                                  double* norm_device, double* norm_host);

#ifdef __cplusplus
}
#endif
