#include "cuda_dispatch/cuda_sigmoid_loss.h"

#include <cmath>

#include "core/sigmoid_loss_checks.h"
#include "cuda/abi_sigmoid_loss.h"
#include "cuda_dispatch/cuda_backend.h"

namespace cs::cuda {

namespace {
float* F(const Tensor* t) { return t ? t->data<float>() : nullptr; }
}  // namespace

double sigmoid_loss(const Tensor& image, const Tensor& text, const Tensor& logit_scale, const Tensor& logit_bias,
                    int64_t off, Tensor* dimage, Tensor* dtext, Tensor* dlogit_scale, Tensor* dlogit_bias,
                    Tensor* loss_out, Tensor* workspace, float grad_scale, bool read_back) {
  const char* op = "sigmoidLoss";
  // on_cuda has put every tensor on one device already.
  const SigmoidLossDims d = check_sigmoid_loss(on_one_cuda_device, image, text, logit_scale, logit_bias, off, dimage,
                                               dtext, dlogit_scale, dlogit_bias, loss_out, workspace, grad_scale);
  if (!read_back && !loss_out) fail(op, ": a loss left on the device needs lossOut");
  double loss = read_back ? 0 : std::nan("");
  auto fn = cuda_fn<decltype(cs_cuda_sigmoid_loss)>("sigmoid_loss", op);
  cuda_check(op, fn(F(&image), F(&text), F(&logit_scale), F(&logit_bias), d.R, d.C, d.D, off, F(dimage), F(dtext),
                    F(dlogit_scale), F(dlogit_bias), F(loss_out), F(workspace), grad_scale, read_back ? &loss : nullptr));
  return loss;
}

}  // namespace cs::cuda
