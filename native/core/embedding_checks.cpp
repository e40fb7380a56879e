#include "core/embedding_checks.h"

namespace cs {

namespace {

Shape with_width(const Shape& s, int64_t w) {
  Shape r = s;
  r.push_back(w);
  return r;
}

}  // namespace

TableDims check_embedding_forward(DeviceCheck device, const Tensor& ids, const Tensor& table, const Tensor& out) {
  const char* op = "embeddingForward";
  check_i32(device, op, "ids", ids);
  check_f32(device, op, "table", table);
  check_ndim(op, "table", table, 2);
  check_f32(device, op, "out", out);
  const int64_t v = table.dim(0), w = table.dim(1);
  check_shape(op, "out", out, with_width(ids.shape, w));
  check_no_alias(op, "out", out, "table", table);
  check_no_alias(op, "out", out, "ids", ids);
  return {v, w};
}

TableDims check_embedding_backward(DeviceCheck device, const Tensor& ids, const Tensor& dout, const Tensor& dtable) {
  const char* op = "embeddingBackward";
  check_i32(device, op, "ids", ids);
  check_f32(device, op, "dout", dout);
  check_f32(device, op, "dtable", dtable);
  check_ndim(op, "dtable", dtable, 2);
  const int64_t v = dtable.dim(0), w = dtable.dim(1);
  check_shape(op, "dout", dout, with_width(ids.shape, w));
  check_no_alias(op, "dtable", dtable, "dout", dout);
  check_no_alias(op, "dtable", dtable, "ids", ids);
  return {v, w};
}

void check_pos_embed_forward(DeviceCheck device, const Tensor& x, const Tensor& pos, const Tensor& out) {
  const char* op = "posEmbedForward";
  check_f32(device, op, "x", x);
  check_ndim(op, "x", x, 3);
  check_f32(device, op, "pos", pos);
  check_shape(op, "pos", pos, {x.dim(1), x.dim(2)});
  check_f32(device, op, "out", out);
  check_same_shape(op, "x", x, "out", out);
  check_same_or_disjoint(op, "out", out, "x", x);
  check_no_alias(op, "out", out, "pos", pos);
}

void check_pos_embed_backward(DeviceCheck device, const Tensor& dout, const Tensor& dpos) {
  const char* op = "posEmbedBackward";
  check_f32(device, op, "dout", dout);
  check_ndim(op, "dout", dout, 3);
  check_f32(device, op, "dpos", dpos);
  check_shape(op, "dpos", dpos, {dout.dim(1), dout.dim(2)});
  check_no_alias(op, "dpos", dpos, "dout", dout);
}

TokenDims check_class_token_concat(DeviceCheck device, const Tensor& x, const Tensor& cls, const Tensor& out) {
  const char* op = "classTokenConcat";
  check_f32(device, op, "x", x);
  check_ndim(op, "x", x, 3);
  const int64_t batch = x.dim(0), s = x.dim(1), w = x.dim(2);
  check_f32(device, op, "cls", cls);
  check_shape(op, "cls", cls, {w});
  check_f32(device, op, "out", out);
  check_shape(op, "out", out, {batch, s + 1, w});
  check_no_alias(op, "out", out, "x", x);
  check_no_alias(op, "out", out, "cls", cls);
  return {batch, s, w};
}

TokenDims check_class_token_concat_backward(DeviceCheck device, const Tensor& dout, const Tensor& dx,
                                            const Tensor& dcls) {
  const char* op = "classTokenConcatBackward";
  check_f32(device, op, "dout", dout);
  check_ndim(op, "dout", dout, 3);
  const int64_t batch = dout.dim(0), s = dout.dim(1) - 1, w = dout.dim(2);
  if (s < 0) fail(op, ": dout must have at least one token (the class token), got ", dout.describe());
  check_f32(device, op, "dx", dx);
  check_shape(op, "dx", dx, {batch, s, w});
  check_f32(device, op, "dcls", dcls);
  check_shape(op, "dcls", dcls, {w});
  check_no_alias(op, "dx", dx, "dout", dout);
  check_no_alias(op, "dcls", dcls, "dout", dout);
  check_no_alias(op, "dcls", dcls, "dx", dx);
  return {batch, s, w};
}

}  // namespace cs
