#include "core/backend.h"
#include "core/error.h"
#include "cuda_dispatch/cuda_layers.h"
#include "cpu/attention.h"
#include "napi/args.h"
#include "napi/registry.h"

namespace cs::napi {

// attentionForward(qkv, out, lse | null, heads, causal, rows?): rows (CPU, i32, ascending token
// rows, null or absent: all) the only queries needed (cpu/attention.h).
static Napi::Value AttentionForward(const Napi::CallbackInfo& info) {
  const char* op = "attentionForward";
  Tensor& qkv = arg_tensor(info, 0, op, "qkv");
  Tensor& out = arg_tensor(info, 1, op, "out");
  Tensor* lse = arg_optional_tensor(info, 2, op, "lse");
  int64_t heads = arg_int(info, 3, op, "heads");
  bool causal = arg_bool(info, 4, op, "causal");
  Tensor* rows = arg_optional_tensor(info, 5, op, "rows");
  if (on_cuda(op, {&qkv, &out, lse})) {
    if (rows) fail(op, ": rows (the queries to compute) is for CPU tensors; on CUDA every row is computed, pass null");
    cuda::attention_forward(qkv, out, lse, heads, causal);
  } else {
    cpu::attention_forward(qkv, out, lse, heads, causal, rows);
  }
  return info.Env().Undefined();
}
CS_BINDING("attentionForward", AttentionForward);

// attentionForwardPacked(qkv, out, lengths, heads, causal, lse?, rows?): CPU only (packed text); lse
// [heads·T] for attentionBackwardPacked (null or absent at inference); rows as attentionForward's.
static Napi::Value AttentionForwardPacked(const Napi::CallbackInfo& info) {
  const char* op = "attentionForwardPacked";
  Tensor& qkv = arg_tensor(info, 0, op, "qkv");
  Tensor& out = arg_tensor(info, 1, op, "out");
  Tensor& lengths = arg_tensor(info, 2, op, "lengths");
  int64_t heads = arg_int(info, 3, op, "heads");
  bool causal = arg_bool(info, 4, op, "causal");
  Tensor* lse = arg_optional_tensor(info, 5, op, "lse");
  Tensor* rows = arg_optional_tensor(info, 6, op, "rows");
  cpu::attention_forward_packed(qkv, out, lse, lengths, heads, causal, rows);
  return info.Env().Undefined();
}
CS_BINDING("attentionForwardPacked", AttentionForwardPacked);

// attentionBackwardPacked(qkv, out, dout, lse, dqkv, lengths, heads, causal): CPU only.
static Napi::Value AttentionBackwardPacked(const Napi::CallbackInfo& info) {
  const char* op = "attentionBackwardPacked";
  Tensor& qkv = arg_tensor(info, 0, op, "qkv");
  Tensor& out = arg_tensor(info, 1, op, "out");
  Tensor& dout = arg_tensor(info, 2, op, "dout");
  Tensor& lse = arg_tensor(info, 3, op, "lse");
  Tensor& dqkv = arg_tensor(info, 4, op, "dqkv");
  Tensor& lengths = arg_tensor(info, 5, op, "lengths");
  int64_t heads = arg_int(info, 6, op, "heads");
  bool causal = arg_bool(info, 7, op, "causal");
  cpu::attention_backward_packed(qkv, out, dout, lse, dqkv, lengths, heads, causal);
  return info.Env().Undefined();
}
CS_BINDING("attentionBackwardPacked", AttentionBackwardPacked);

// attentionBackward(qkv, out, dout, lse, dqkv, heads, causal)
static Napi::Value AttentionBackward(const Napi::CallbackInfo& info) {
  const char* op = "attentionBackward";
  Tensor& qkv = arg_tensor(info, 0, op, "qkv");
  Tensor& out = arg_tensor(info, 1, op, "out");
  Tensor& dout = arg_tensor(info, 2, op, "dout");
  Tensor& lse = arg_tensor(info, 3, op, "lse");
  Tensor& dqkv = arg_tensor(info, 4, op, "dqkv");
  int64_t heads = arg_int(info, 5, op, "heads");
  bool causal = arg_bool(info, 6, op, "causal");
  if (on_cuda(op, {&qkv, &out, &dout, &lse, &dqkv})) cuda::attention_backward(qkv, out, dout, lse, dqkv, heads, causal);
  else cpu::attention_backward(qkv, out, dout, lse, dqkv, heads, causal);
  return info.Env().Undefined();
}
CS_BINDING("attentionBackward", AttentionBackward);

}  // namespace cs::napi
