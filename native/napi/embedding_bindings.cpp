#include "core/backend.h"
#include "cuda_dispatch/cuda_pointwise.h"
#include "cpu/embedding.h"
#include "napi/args.h"
#include "napi/registry.h"

namespace cs::napi {

// embeddingForward(ids, table, out)
static Napi::Value EmbeddingForward(const Napi::CallbackInfo& info) {
  const char* op = "embeddingForward";
  Tensor& ids = arg_tensor(info, 0, op, "ids");
  Tensor& table = arg_tensor(info, 1, op, "table");
  Tensor& out = arg_tensor(info, 2, op, "out");
  if (on_cuda(op, {&ids, &table, &out}))
    cuda::embedding_forward(ids, table, out);
  else
    cpu::embedding_forward(ids, table, out);
  return info.Env().Undefined();
}
CS_BINDING("embeddingForward", EmbeddingForward);

// embeddingBackward(ids, dout, dtable)
static Napi::Value EmbeddingBackward(const Napi::CallbackInfo& info) {
  const char* op = "embeddingBackward";
  Tensor& ids = arg_tensor(info, 0, op, "ids");
  Tensor& dout = arg_tensor(info, 1, op, "dout");
  Tensor& dtable = arg_tensor(info, 2, op, "dtable");
  if (on_cuda(op, {&ids, &dout, &dtable}))
    cuda::embedding_backward(ids, dout, dtable);
  else
    cpu::embedding_backward(ids, dout, dtable);
  return info.Env().Undefined();
}
CS_BINDING("embeddingBackward", EmbeddingBackward);

// posEmbedForward(x, pos, out)
static Napi::Value PosEmbedForward(const Napi::CallbackInfo& info) {
  const char* op = "posEmbedForward";
  Tensor& x = arg_tensor(info, 0, op, "x");
  Tensor& pos = arg_tensor(info, 1, op, "pos");
  Tensor& out = arg_tensor(info, 2, op, "out");
  if (on_cuda(op, {&x, &pos, &out}))
    cuda::pos_embed_forward(x, pos, out);
  else
    cpu::pos_embed_forward(x, pos, out);
  return info.Env().Undefined();
}
CS_BINDING("posEmbedForward", PosEmbedForward);

// posEmbedBackward(dout, dpos)
static Napi::Value PosEmbedBackward(const Napi::CallbackInfo& info) {
  const char* op = "posEmbedBackward";
  Tensor& dout = arg_tensor(info, 0, op, "dout");
  Tensor& dpos = arg_tensor(info, 1, op, "dpos");
  if (on_cuda(op, {&dout, &dpos}))
    cuda::pos_embed_backward(dout, dpos);
  else
    cpu::pos_embed_backward(dout, dpos);
  return info.Env().Undefined();
}
CS_BINDING("posEmbedBackward", PosEmbedBackward);

// classTokenConcat(x, cls, out)
static Napi::Value ClassTokenConcat(const Napi::CallbackInfo& info) {
  const char* op = "classTokenConcat";
  Tensor& x = arg_tensor(info, 0, op, "x");
  Tensor& cls = arg_tensor(info, 1, op, "cls");
  Tensor& out = arg_tensor(info, 2, op, "out");
  if (on_cuda(op, {&x, &cls, &out}))
    cuda::class_token_concat(x, cls, out);
  else
    cpu::class_token_concat(x, cls, out);
  return info.Env().Undefined();
}
CS_BINDING("classTokenConcat", ClassTokenConcat);

// classTokenConcatBackward(dout, dx, dcls)
static Napi::Value ClassTokenConcatBackward(const Napi::CallbackInfo& info) {
  const char* op = "classTokenConcatBackward";
  Tensor& dout = arg_tensor(info, 0, op, "dout");
  Tensor& dx = arg_tensor(info, 1, op, "dx");
  Tensor& dcls = arg_tensor(info, 2, op, "dcls");
  if (on_cuda(op, {&dout, &dx, &dcls}))
    cuda::class_token_concat_backward(dout, dx, dcls);
  else
    cpu::class_token_concat_backward(dout, dx, dcls);
  return info.Env().Undefined();
}
CS_BINDING("classTokenConcatBackward", ClassTokenConcatBackward);

}  // namespace cs::napi
