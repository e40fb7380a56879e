#include "core/contrastive_loss_checks.h"

#include <cmath>
#include <initializer_list>
#include <tuple>

namespace cs {

LossDims check_contrastive_loss(DeviceCheck device, const Tensor& image, const Tensor& text,
                                const Tensor& logit_scale, int64_t r0, int64_t n, const Tensor* dimage,
                                const Tensor* dtext, const Tensor* dlogit_scale, const Tensor* loss_out,
                                const Tensor* workspace, float loss_scale) {
  const char* op = "contrastiveLoss";
  check_f32(device, op, "image", image);
  check_ndim(op, "image", image, 2);
  check_f32(device, op, "text", text);
  check_same_shape(op, "image", image, "text", text);
  check_f32(device, op, "logitScale", logit_scale);
  if (logit_scale.numel() != 1) fail(op, ": logitScale must hold one value, got ", logit_scale.describe());
  const int64_t N = image.dim(0), D = image.dim(1);
  if (N == 0) fail(op, ": the batch is empty (image is ", image.describe(), ")");
  if (r0 < 0 || n < 1 || r0 + n > N)
    fail(op, ": rows ", r0, " .. ", r0 + n, " (rowOffset, rowOffset + rowCount) must lie within the ", N,
         " gathered rows and hold at least one");
  if (!std::isfinite(loss_scale)) fail(op, ": lossScale must be finite, got ", loss_scale);
  for (auto [name, g, like] : {std::tuple<const char*, const Tensor*, const Tensor*>{"dImage", dimage, &image},
                               {"dText", dtext, &text}}) {
    if (!g) continue;
    check_f32(device, op, name, *g);
    check_same_shape(op, name, *g, "image", *like);
    check_no_alias(op, name, *g, "image", image);
    check_no_alias(op, name, *g, "text", text);
    check_no_alias(op, name, *g, "logitScale", logit_scale);
  }
  if (dimage && dtext) check_no_alias(op, "dImage", *dimage, "dText", *dtext);
  if (dlogit_scale) {
    check_f32(device, op, "dLogitScale", *dlogit_scale);
    if (dlogit_scale->numel() != 1) fail(op, ": dLogitScale must hold one value, got ", dlogit_scale->describe());
  }
  if (loss_out && (loss_out->dtype != DType::F32 || loss_out->numel() != 1))
    fail(op, ": lossOut must be a 1-element f32 tensor, got ", loss_out->describe());
  if (workspace) {
    check_f32(device, op, "workspace", *workspace);
    if (workspace->numel() < n * N)
      fail(op, ": workspace must hold at least rowCount × N = ", n * N, " values, got ", workspace->describe());
    for (const Tensor* t : {&image, &text, &logit_scale}) check_no_alias(op, "workspace", *workspace, "an input", *t);
    for (const Tensor* t : {dimage, dtext, dlogit_scale})
      if (t) check_no_alias(op, "workspace", *workspace, "a gradient", *t);
  }
  return {N, D};
}

}  // namespace cs
