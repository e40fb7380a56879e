#include "core/backend.h"
#include "cuda_dispatch/cuda_pointwise.h"
#include "cpu/contrastive_loss.h"
#include "napi/args.h"
#include "napi/registry.h"

namespace cs::napi {

// contrastiveLoss(image, text, logitScale, dImage | null, dText | null, dLogitScale | null,
//                 lossOut | null, workspace | null, rowOffset, rowCount, lossScale [, deferLoss]) → loss
// deferLoss (a GPU with lossOut): the loss stays in lossOut, nothing waits, NaN is returned.
static Napi::Value ContrastiveLoss(const Napi::CallbackInfo& info) {
  const char* op = "contrastiveLoss";
  Tensor& image = arg_tensor(info, 0, op, "image");
  Tensor& text = arg_tensor(info, 1, op, "text");
  Tensor& scale = arg_tensor(info, 2, op, "logitScale");
  Tensor* di = arg_optional_tensor(info, 3, op, "dImage");
  Tensor* dt = arg_optional_tensor(info, 4, op, "dText");
  Tensor* ds = arg_optional_tensor(info, 5, op, "dLogitScale");
  Tensor* loss_out = arg_optional_tensor(info, 6, op, "lossOut");
  Tensor* ws = arg_optional_tensor(info, 7, op, "workspace");
  int64_t r0 = arg_int(info, 8, op, "rowOffset");
  int64_t n = arg_int(info, 9, op, "rowCount");
  double loss_scale = arg_number(info, 10, op, "lossScale");
  const bool defer = info.Length() > 11 && !info[11].IsUndefined() && arg_bool(info, 11, op, "deferLoss");
  if (on_cuda(op, {&image, &text, &scale, di, dt, ds, loss_out, ws})) {
    // lossOut is written on the device; the returned number waits for the GPU unless deferred.
    double loss = cuda::contrastive_loss(image, text, scale, r0, n, di, dt, ds, loss_out, ws,
                                         static_cast<float>(loss_scale), !defer);
    return Napi::Number::New(info.Env(), loss);
  }
  if (loss_out) {
    if (loss_out->dtype != DType::F32 || loss_out->numel() != 1)
      fail(op, ": lossOut must be a 1-element f32 tensor, got ", loss_out->describe());
  }
  double loss = cpu::contrastive_loss(image, text, scale, r0, n, di, dt, ds, ws, static_cast<float>(loss_scale));
  if (loss_out) loss_out->data<float>()[0] = static_cast<float>(loss);
  return Napi::Number::New(info.Env(), loss);
}
CS_BINDING("contrastiveLoss", ContrastiveLoss);

}  // namespace cs::napi
