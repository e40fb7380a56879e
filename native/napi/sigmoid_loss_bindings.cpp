#include "core/backend.h"
#include "cpu/sigmoid_loss.h"
#include "cuda_dispatch/cuda_sigmoid_loss.h"
#include "napi/args.h"
#include "napi/registry.h"

namespace cs::napi {

// sigmoidLoss(image, text, logitScale, logitBias, positiveOffset, dImage | null, dText | null,
//             dLogitScale | null, dLogitBias | null, lossOut | null, workspace | null, gradScale
//             [, deferLoss]) → loss
// deferLoss (a GPU with lossOut): the loss stays in lossOut, nothing waits, NaN is returned.
static Napi::Value SigmoidLoss(const Napi::CallbackInfo& info) {
  const char* op = "sigmoidLoss";
  Tensor& image = arg_tensor(info, 0, op, "image");
  Tensor& text = arg_tensor(info, 1, op, "text");
  Tensor& scale = arg_tensor(info, 2, op, "logitScale");
  Tensor& bias = arg_tensor(info, 3, op, "logitBias");
  const int64_t off = arg_int(info, 4, op, "positiveOffset");
  Tensor* di = arg_optional_tensor(info, 5, op, "dImage");
  Tensor* dt = arg_optional_tensor(info, 6, op, "dText");
  Tensor* ds = arg_optional_tensor(info, 7, op, "dLogitScale");
  Tensor* db = arg_optional_tensor(info, 8, op, "dLogitBias");
  Tensor* loss_out = arg_optional_tensor(info, 9, op, "lossOut");
  Tensor* ws = arg_optional_tensor(info, 10, op, "workspace");
  const double grad_scale = arg_number(info, 11, op, "gradScale");
  const bool defer = info.Length() > 12 && !info[12].IsUndefined() && arg_bool(info, 12, op, "deferLoss");
  if (on_cuda(op, {&image, &text, &scale, &bias, di, dt, ds, db, loss_out, ws})) {
    const double loss = cuda::sigmoid_loss(image, text, scale, bias, off, di, dt, ds, db, loss_out, ws,
                                           static_cast<float>(grad_scale), !defer);
    return Napi::Number::New(info.Env(), loss);
  }
  if (loss_out && (loss_out->dtype != DType::F32 || loss_out->numel() != 1))
    fail(op, ": lossOut must be a 1-element f32 tensor, got ", loss_out->describe());
  const double loss = cpu::sigmoid_loss(image, text, scale, bias, off, di, dt, ds, db, ws, static_cast<float>(grad_scale));
  if (loss_out) loss_out->data<float>()[0] = static_cast<float>(loss);
  return Napi::Number::New(info.Env(), loss);
}
CS_BINDING("sigmoidLoss", SigmoidLoss);

}  // namespace cs::napi
