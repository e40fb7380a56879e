#include "core/backend.h"
#include "core/error.h"
#include "cuda_dispatch/cuda_layers.h"
#include "cpu/patch_embed.h"
#include "napi/args.h"
#include "napi/registry.h"

namespace cs::napi {

// patchEmbedForward(images, weight, out, packed?): packed (CPU) is weight viewed as [width, C·P·P]
// and prepacked by packLinearWeight, read instead of packing the weight per call.
static Napi::Value PatchEmbedForward(const Napi::CallbackInfo& info) {
  const char* op = "patchEmbedForward";
  Tensor& images = arg_tensor(info, 0, op, "images");
  Tensor& weight = arg_tensor(info, 1, op, "weight");
  Tensor& out = arg_tensor(info, 2, op, "out");
  Tensor* packed = arg_optional_tensor(info, 3, op, "packed");
  if (on_cuda(op, {&images, &weight, &out, packed})) {
    if (packed) fail(op, ": packed weights are for the CPU backend");
    cuda::patch_embed_forward(images, weight, out);
  } else {
    cpu::patch_embed_forward(images, weight, out, packed);
  }
  return info.Env().Undefined();
}
CS_BINDING("patchEmbedForward", PatchEmbedForward);

// patchEmbedBackward(images, weight, dout, dweight | null, dimages | null, accumulate)
static Napi::Value PatchEmbedBackward(const Napi::CallbackInfo& info) {
  const char* op = "patchEmbedBackward";
  Tensor& images = arg_tensor(info, 0, op, "images");
  Tensor& weight = arg_tensor(info, 1, op, "weight");
  Tensor& dout = arg_tensor(info, 2, op, "dout");
  Tensor* dweight = arg_optional_tensor(info, 3, op, "dweight");
  Tensor* dimages = arg_optional_tensor(info, 4, op, "dimages");
  bool accumulate = arg_bool(info, 5, op, "accumulate");
  if (on_cuda(op, {&images, &weight, &dout, dweight, dimages}))
    cuda::patch_embed_backward(images, weight, dout, dweight, dimages, accumulate);
  else
    cpu::patch_embed_backward(images, weight, dout, dweight, dimages, accumulate);
  return info.Env().Undefined();
}
CS_BINDING("patchEmbedBackward", PatchEmbedBackward);

}  // namespace cs::napi
