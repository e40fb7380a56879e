#include "core/backend.h"
#include "cuda_dispatch/cuda_pointwise.h"
#include "cpu/pooling.h"
#include "napi/args.h"
#include "napi/registry.h"

namespace cs::napi {

// gatherRows(x, index, out)
static Napi::Value GatherRows(const Napi::CallbackInfo& info) {
  const char* op = "gatherRows";
  Tensor& x = arg_tensor(info, 0, op, "x");
  Tensor& index = arg_tensor(info, 1, op, "index");
  Tensor& out = arg_tensor(info, 2, op, "out");
  if (on_cuda(op, {&x, &index, &out}))
    cuda::gather_rows(x, index, out);
  else
    cpu::gather_rows(x, index, out);
  return info.Env().Undefined();
}
CS_BINDING("gatherRows", GatherRows);

// gatherRowsBackward(dout, index, dx)
static Napi::Value GatherRowsBackward(const Napi::CallbackInfo& info) {
  const char* op = "gatherRowsBackward";
  Tensor& dout = arg_tensor(info, 0, op, "dout");
  Tensor& index = arg_tensor(info, 1, op, "index");
  Tensor& dx = arg_tensor(info, 2, op, "dx");
  if (on_cuda(op, {&dout, &index, &dx}))
    cuda::gather_rows_backward(dout, index, dx);
  else
    cpu::gather_rows_backward(dout, index, dx);
  return info.Env().Undefined();
}
CS_BINDING("gatherRowsBackward", GatherRowsBackward);

// argmaxIds(ids, out)
static Napi::Value ArgmaxIds(const Napi::CallbackInfo& info) {
  const char* op = "argmaxIds";
  Tensor& ids = arg_tensor(info, 0, op, "ids");
  Tensor& out = arg_tensor(info, 1, op, "out");
  if (on_cuda(op, {&ids, &out}))
    cuda::argmax_ids(ids, out);
  else
    cpu::argmax_ids(ids, out);
  return info.Env().Undefined();
}
CS_BINDING("argmaxIds", ArgmaxIds);

}  // namespace cs::napi
