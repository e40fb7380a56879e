// The pointwise group's ops on the CUDA backend: the same signatures, argument checks
// and error messages as the CPU ops (native/cpu/*.h), then a call into the CUDA
// library (native/cuda/abi_pointwise.h). The bindings call these when on_cuda(...) is
// true. Differences from the CPU ops, all from not waiting for the GPU:
//  - ids/indices out of range are found by the kernel and reported by the next
//    synchronisation (a copy to the CPU, a returned number), naming the op;
//  - an overflowing exp(logitScale) likewise (the loss returns a number, so that call
//    synchronises and reports it itself).
#pragma once
#include <vector>

#include "core/tensor.h"
#include "core/adamw_checks.h"

namespace cs::cuda {

void fill(Tensor& x, double value);
void copy(const Tensor& src, Tensor& dst);
void scale(Tensor& x, float alpha);
void clamp(Tensor& x, float lo, float hi);
void axpy(float alpha, const Tensor& x, Tensor& y);
void add(const Tensor& a, const Tensor& b, Tensor& out);
void convert(const Tensor& src, Tensor& dst);

void layernorm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& out, Tensor& mean,
                       Tensor& rstd, float eps);
void residual_layernorm_forward(const Tensor& x, const Tensor& residual, Tensor& sum_out, const Tensor& gamma,
                                const Tensor& beta, Tensor& out, Tensor& mean, Tensor& rstd, float eps);
void layernorm_backward(const Tensor& dout, const Tensor& x, const Tensor& gamma, const Tensor& mean,
                        const Tensor& rstd, Tensor& dx, Tensor* dgamma, Tensor* dbeta);

void gelu_forward(const Tensor& x, Tensor& out);
void gelu_backward(const Tensor& x, const Tensor& dout, Tensor& dx);
void gelu_tanh_forward(const Tensor& x, Tensor& out);
void gelu_tanh_backward(const Tensor& x, const Tensor& dout, Tensor& dx);
void quick_gelu_forward(const Tensor& x, Tensor& out);
void quick_gelu_backward(const Tensor& x, const Tensor& dout, Tensor& dx);

void embedding_forward(const Tensor& ids, const Tensor& table, Tensor& out);
void embedding_backward(const Tensor& ids, const Tensor& dout, Tensor& dtable);
void pos_embed_forward(const Tensor& x, const Tensor& pos, Tensor& out);
void pos_embed_backward(const Tensor& dout, Tensor& dpos);
void class_token_concat(const Tensor& x, const Tensor& cls, Tensor& out);
void class_token_concat_backward(const Tensor& dout, Tensor& dx, Tensor& dcls);

void gather_rows(const Tensor& x, const Tensor& index, Tensor& out);
void gather_rows_backward(const Tensor& dout, const Tensor& index, Tensor& dx);
void argmax_ids(const Tensor& ids, Tensor& out);

void l2normalize_forward(const Tensor& x, Tensor& out, Tensor& norms);
void l2normalize_backward(const Tensor& dout, const Tensor& out, const Tensor& norms, Tensor& dx);

// Returns the loss (waits for the GPU: the caller asked for a number).
// read_back false: the loss stays in loss_out on the device and NaN is returned (no wait).
double contrastive_loss(const Tensor& image, const Tensor& text, const Tensor& logit_scale, int64_t row_offset,
                        int64_t row_count, Tensor* dimage, Tensor* dtext, Tensor* dlogit_scale, Tensor* loss_out,
                        Tensor* workspace, float loss_scale, bool read_back = true);

void adamw_step(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, Tensor* param_bf16,
                const AdamWConfig& cfg, const AdamWGate* gate = nullptr);
void adamw_commit(const AdamWGate& gate);
// Dynamic loss scaling on the device: state is a 2-element i64 tensor holding two f64s (scale, good steps).
void loss_scale_apply(const std::vector<Tensor*>& tensors, const Tensor& state, bool invert);
void loss_scale_update(Tensor& state, const Tensor& loss, const Tensor& norm, double growth, double backoff,
                       int64_t interval, double min_scale, double max_scale);
// The norm into norm_out (i64 [1] holding an f64) on the device, nothing read back.
void grad_norm_into(const std::vector<const Tensor*>& grads, Tensor& norm_out);
void clip_grad_norm_into(const std::vector<Tensor*>& grads, double max_norm, Tensor& norm_out);
double grad_norm(const std::vector<const Tensor*>& grads, const char* op = "gradNorm");
double clip_grad_norm(const std::vector<Tensor*>& grads, double max_norm);

}  // namespace cs::cuda
