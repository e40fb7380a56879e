#include "core/sigmoid_loss_checks.h"

#include <cmath>
#include <vector>

namespace cs {

SigmoidLossDims check_sigmoid_loss(DeviceCheck device, const Tensor& image, const Tensor& text,
                                   const Tensor& logit_scale, const Tensor& logit_bias, int64_t positive_offset,
                                   const Tensor* dimage, const Tensor* dtext, const Tensor* dlogit_scale,
                                   const Tensor* dlogit_bias, const Tensor* loss_out, const Tensor* workspace,
                                   float grad_scale) {
  const char* op = "sigmoidLoss";
  check_f32(device, op, "image", image);
  check_ndim(op, "image", image, 2);
  check_f32(device, op, "text", text);
  check_ndim(op, "text", text, 2);
  const int64_t R = image.dim(0), D = image.dim(1), C = text.dim(0);
  if (text.dim(1) != D)
    fail(op, ": image ", image.describe(), " and text ", text.describe(), " must have the same feature width");
  if (R == 0 || C == 0) fail(op, ": the batch is empty (image ", image.describe(), ", text ", text.describe(), ")");
  for (auto [name, t] : {std::pair<const char*, const Tensor*>{"logitScale", &logit_scale}, {"logitBias", &logit_bias}}) {
    check_f32(device, op, name, *t);
    if (t->numel() != 1) fail(op, ": ", name, " must hold one value, got ", t->describe());
  }
  if (positive_offset < -1 || (positive_offset >= 0 && positive_offset + R > C))
    fail(op, ": positiveOffset ", positive_offset, " puts the positives (j = i + offset for the ", R,
         " image rows) outside the ", C, " text rows; use 0 .. ", C - R, ", or -1 for none");
  if (!std::isfinite(grad_scale)) fail(op, ": gradScale must be finite, got ", grad_scale);
  const std::vector<const Tensor*> inputs = {&image, &text, &logit_scale, &logit_bias};
  auto check_out = [&](const char* name, const Tensor* g) {
    if (!g) return;
    check_f32(device, op, name, *g);
    for (const Tensor* in : inputs) check_no_alias(op, name, *g, "an input", *in);
  };
  check_out("dImage", dimage);
  check_out("dText", dtext);
  check_out("dLogitScale", dlogit_scale);
  check_out("dLogitBias", dlogit_bias);
  if (dimage) check_same_shape(op, "dImage", *dimage, "image", image);
  if (dtext) check_same_shape(op, "dText", *dtext, "text", text);
  if (dlogit_scale && dlogit_scale->numel() != 1) fail(op, ": dLogitScale must hold one value, got ", dlogit_scale->describe());
  if (dlogit_bias && dlogit_bias->numel() != 1) fail(op, ": dLogitBias must hold one value, got ", dlogit_bias->describe());
  const std::vector<std::pair<const char*, const Tensor*>> outs = {
      {"dImage", dimage}, {"dText", dtext}, {"dLogitScale", dlogit_scale}, {"dLogitBias", dlogit_bias}};
  for (size_t a = 0; a < outs.size(); a++)
    for (size_t b = a + 1; b < outs.size(); b++)
      if (outs[a].second && outs[b].second) check_no_alias(op, outs[a].first, *outs[a].second, outs[b].first, *outs[b].second);
  if (loss_out && (loss_out->dtype != DType::F32 || loss_out->numel() != 1))
    fail(op, ": lossOut must be a 1-element f32 tensor, got ", loss_out->describe());
  if (workspace) {
    check_f32(device, op, "workspace", *workspace);
    if (workspace->numel() < R * C)
      fail(op, ": workspace must hold at least R × C = ", R * C, " values, got ", workspace->describe());
    for (const Tensor* in : inputs) check_no_alias(op, "workspace", *workspace, "an input", *in);
    for (auto [name, g] : outs)
      if (g) check_no_alias(op, "workspace", *workspace, name, *g);
  }
  return {R, C, D};
}

}  // namespace cs
