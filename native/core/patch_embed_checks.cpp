#include "core/patch_embed_checks.h"

namespace cs {

namespace {

PatchGeometry check_geometry(DeviceCheck device, const char* op, const Tensor& images, const Tensor& weight) {
  check_f32(device, op, "images", images);
  check_f32(device, op, "weight", weight);
  check_ndim(op, "images", images, 4);
  check_ndim(op, "weight", weight, 4);
  PatchGeometry g{images.dim(0), images.dim(1), images.dim(2), images.dim(3), weight.dim(2), weight.dim(0), 0, 0};
  check_shape(op, "weight", weight, {-1, g.C, g.P, g.P});
  if (g.P == 0) fail(op, ": weight's patch size must be positive, got ", weight.describe());
  if (g.H % g.P != 0 || g.W % g.P != 0)
    fail(op, ": image height ", g.H, " and width ", g.W, " must be multiples of the patch size ", g.P, ", got images ",
         images.describe(), " and weight ", weight.describe());
  g.gh = g.H / g.P;
  g.gw = g.W / g.P;
  return g;
}

}  // namespace

PatchGeometry check_patch_embed_forward(DeviceCheck device, const Tensor& images, const Tensor& weight,
                                        const Tensor& out) {
  const char* op = "patchEmbedForward";
  const PatchGeometry g = check_geometry(device, op, images, weight);
  check_f32(device, op, "out", out);
  check_shape(op, "out", out, {g.B, g.patches(), g.width});
  check_no_alias(op, "out", out, "images", images);
  check_no_alias(op, "out", out, "weight", weight);
  return g;
}

PatchGeometry check_patch_embed_backward(DeviceCheck device, const Tensor& images, const Tensor& weight,
                                         const Tensor& dout, const Tensor* dweight, const Tensor* dimages) {
  const char* op = "patchEmbedBackward";
  const PatchGeometry g = check_geometry(device, op, images, weight);
  check_f32(device, op, "dout", dout);
  check_shape(op, "dout", dout, {g.B, g.patches(), g.width});
  if (dweight) {
    check_f32(device, op, "dweight", *dweight);
    check_same_shape(op, "dweight", *dweight, "weight", weight);
    check_no_alias(op, "dweight", *dweight, "dout", dout);
    check_no_alias(op, "dweight", *dweight, "images", images);
  }
  if (dimages) {
    check_f32(device, op, "dimages", *dimages);
    check_same_shape(op, "dimages", *dimages, "images", images);
    check_no_alias(op, "dimages", *dimages, "dout", dout);
    check_no_alias(op, "dimages", *dimages, "weight", weight);
    check_no_alias(op, "dimages", *dimages, "images", images);  // dweight reads images while dimages is written
    if (dweight) check_outputs_apart(op, "dweight", *dweight, "dimages", *dimages);
  }
  if (dweight) check_no_alias(op, "dweight", *dweight, "weight", weight);  // dimages reads weight
  return g;
}

}  // namespace cs
