#include "core/attention_checks.h"

#include <utility>

namespace cs {

namespace {

void check_16(DeviceCheck device, const char* op, const char* name, const Tensor& t) {
  device(op, name, t);
  if (t.dtype != DType::BF16 && t.dtype != DType::F16) fail(op, ": ", name, " must be bf16 or f16, got ", t.describe());
}

AttentionGeometry check_qkv(DeviceCheck device, const char* op, const Tensor& qkv, int64_t heads, bool qkv16) {
  if (qkv16) check_16(device, op, "qkv", qkv);
  else check_f32(device, op, "qkv", qkv);
  if (qkv.ndim() != 3) fail(op, ": qkv must have shape [batch, tokens, 3·width], got ", qkv.describe());
  if (heads < 1) fail(op, ": heads must be at least 1, got ", heads);
  if (qkv.dim(2) % 3 != 0)
    fail(op, ": qkv's last dimension must be 3·width (Q, K and V packed), got ", qkv.describe());
  const int64_t W = qkv.dim(2) / 3;
  if (W == 0 || W % heads != 0)
    fail(op, ": width ", W, " must be a positive multiple of heads (", heads, "), got qkv ", qkv.describe());
  return {qkv.dim(0), qkv.dim(1), W, heads, W / heads};
}

void check_out(DeviceCheck device, const char* op, const Tensor& out, bool out16) {
  if (!out16) return check_f32(device, op, "out", out);
  check_16(device, op, "out", out);
}

}  // namespace

AttentionGeometry check_attention_forward(DeviceCheck device, const Tensor& qkv, const Tensor& out,
                                          const Tensor* lse, int64_t heads, bool out16, bool qkv16) {
  const char* op = "attentionForward";
  const AttentionGeometry g = check_qkv(device, op, qkv, heads, qkv16);
  check_out(device, op, out, out16);
  check_shape(op, "out", out, {g.B, g.S, g.W});
  check_no_alias(op, "out", out, "qkv", qkv);
  if (lse) {
    check_f32(device, op, "lse", *lse);
    check_shape(op, "lse", *lse, {g.B, g.heads, g.S});
    check_no_alias(op, "lse", *lse, "qkv", qkv);
    check_no_alias(op, "lse", *lse, "out", out);
  }
  return g;
}

namespace {

// lengths i32 [n], each ≥ 0, summing to the T tokens of qkv [1, T, 3·W].
void check_lengths(const char* op, const Tensor& qkv, const AttentionGeometry& g, const Tensor& lengths) {
  if (g.B != 1) fail(op, ": qkv must hold the packed sequences in one row, [1, tokens, 3·width], got ", qkv.describe());
  check_i32(check_cpu, op, "lengths", lengths);
  check_ndim(op, "lengths", lengths, 1);
  const int32_t* len = lengths.data<int32_t>();
  int64_t total = 0;
  for (int64_t i = 0; i < lengths.numel(); i++) {
    if (len[i] < 0) fail(op, ": lengths[", i, "] is ", len[i], "; a sequence's length must be ≥ 0");
    total += len[i];
  }
  if (total != g.S) fail(op, ": lengths sum to ", total, " tokens but qkv holds ", g.S, " (", qkv.describe(), ")");
}

void check_packed_lse(const char* op, const Tensor& lse, const AttentionGeometry& g) {
  check_f32(check_cpu, op, "lse", lse);
  check_shape(op, "lse", lse, {g.heads * g.S});
}

}  // namespace

void check_query_rows(const char* op, const Tensor& rows, int64_t total) {
  check_i32(check_cpu, op, "rows", rows);
  check_ndim(op, "rows", rows, 1);
  const int32_t* r = rows.data<int32_t>();
  for (int64_t i = 0; i < rows.numel(); i++) {
    if (r[i] < 0 || r[i] >= total)
      fail(op, ": rows[", i, "] is ", r[i], "; a query row must be in [0, ", total, ") (qkv's token rows)");
    if (i > 0 && r[i] <= r[i - 1])
      fail(op, ": rows must be strictly ascending, but rows[", i, "] = ", r[i], " follows ", r[i - 1]);
  }
}

AttentionGeometry check_attention_forward_packed(const Tensor& qkv, const Tensor& out, const Tensor* lse,
                                                 const Tensor& lengths, int64_t heads) {
  const char* op = "attentionForwardPacked";
  const AttentionGeometry g = check_qkv(check_cpu, op, qkv, heads, false);
  check_lengths(op, qkv, g, lengths);
  check_f32(check_cpu, op, "out", out);
  check_shape(op, "out", out, {1, g.S, g.W});
  check_no_alias(op, "out", out, "qkv", qkv);
  if (lse) {
    check_packed_lse(op, *lse, g);
    check_no_alias(op, "lse", *lse, "qkv", qkv);
    check_no_alias(op, "lse", *lse, "out", out);
  }
  return g;
}

AttentionGeometry check_attention_backward_packed(const Tensor& qkv, const Tensor& out, const Tensor& dout,
                                                  const Tensor& lse, const Tensor& dqkv, const Tensor& lengths,
                                                  int64_t heads) {
  const char* op = "attentionBackwardPacked";
  const AttentionGeometry g = check_qkv(check_cpu, op, qkv, heads, false);
  check_lengths(op, qkv, g, lengths);
  check_f32(check_cpu, op, "out", out);
  check_shape(op, "out", out, {1, g.S, g.W});
  check_f32(check_cpu, op, "dout", dout);
  check_shape(op, "dout", dout, {1, g.S, g.W});
  check_packed_lse(op, lse, g);
  check_f32(check_cpu, op, "dqkv", dqkv);
  check_same_shape(op, "dqkv", dqkv, "qkv", qkv);
  for (const auto& [name, t] : {std::pair<const char*, const Tensor*>{"qkv", &qkv}, {"out", &out}, {"dout", &dout},
                                {"lse", &lse}})
    check_no_alias(op, "dqkv", dqkv, name, *t);
  return g;
}

AttentionGeometry check_attention_backward(DeviceCheck device, const Tensor& qkv, const Tensor& out,
                                           const Tensor& dout, const Tensor& lse, const Tensor& dqkv, int64_t heads,
                                           bool out16, bool qkv16) {
  const char* op = "attentionBackward";
  const AttentionGeometry g = check_qkv(device, op, qkv, heads, qkv16);
  check_out(device, op, out, out16);
  check_shape(op, "out", out, {g.B, g.S, g.W});
  check_f32(device, op, "dout", dout);
  check_shape(op, "dout", dout, {g.B, g.S, g.W});
  check_f32(device, op, "lse", lse);
  check_shape(op, "lse", lse, {g.B, g.heads, g.S});
  check_f32(device, op, "dqkv", dqkv);
  check_same_shape(op, "dqkv", dqkv, "qkv", qkv);
  for (const auto& [name, t] : {std::pair<const char*, const Tensor*>{"qkv", &qkv}, {"out", &out}, {"dout", &dout},
                                {"lse", &lse}})
    check_no_alias(op, "dqkv", dqkv, name, *t);
  return g;
}

}  // namespace cs
