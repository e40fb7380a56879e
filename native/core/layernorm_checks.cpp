#include "core/layernorm_checks.h"

#include <initializer_list>
#include <utility>

namespace cs {

namespace {

RowDims check_forward(DeviceCheck device, const char* op, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                      const Tensor& out, const Tensor& mean, const Tensor& rstd, bool out16) {
  check_f32(device, op, "x", x);
  int64_t w = row_width(op, "x", x);
  check_f32(device, op, "gamma", gamma);
  check_shape(op, "gamma", gamma, {w});
  check_f32(device, op, "beta", beta);
  check_shape(op, "beta", beta, {w});
  if (out16) {
    device(op, "out", out);
    if (out.dtype != DType::BF16 && out.dtype != DType::F16) fail(op, ": out must be bf16 or f16, got ", out.describe());
  } else {
    check_f32(device, op, "out", out);
  }
  check_same_shape(op, "x", x, "out", out);
  int64_t rows = row_count(x);
  check_per_row(device, op, "mean", mean, rows);
  check_per_row(device, op, "rstd", rstd, rows);
  if (out16) check_no_alias(op, "out", out, "x", x);
  else check_same_or_disjoint(op, "out", out, "x", x);
  // Each thread reads gamma and beta for its rows while others write theirs.
  check_no_alias(op, "out", out, "gamma", gamma);
  check_no_alias(op, "out", out, "beta", beta);
  for (const Tensor* in : std::initializer_list<const Tensor*>{&x, &gamma, &beta, &out}) {
    check_no_alias(op, "mean", mean, "another argument", *in);
    check_no_alias(op, "rstd", rstd, "another argument", *in);
  }
  check_outputs_apart(op, "mean", mean, "rstd", rstd);
  return {rows, w};
}

void check_eps(const char* op, float eps) {
  if (!(eps > 0)) fail(op, ": eps must be positive, got ", eps);
}

}  // namespace

RowDims check_layernorm_forward(DeviceCheck device, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                const Tensor& out, const Tensor& mean, const Tensor& rstd, float eps, bool out16) {
  const char* op = "layernormForward";
  RowDims d = check_forward(device, op, x, gamma, beta, out, mean, rstd, out16);
  check_eps(op, eps);
  return d;
}

RowDims check_residual_layernorm_forward(DeviceCheck device, const Tensor& x, const Tensor& residual,
                                         const Tensor& sum_out, const Tensor& gamma, const Tensor& beta,
                                         const Tensor& out, const Tensor& mean, const Tensor& rstd, float eps,
                                         bool out16) {
  const char* op = "residualLayernormForward";
  check_f32(device, op, "residual", residual);
  check_f32(device, op, "sumOut", sum_out);
  check_same_shape(op, "x", x, "residual", residual);
  check_same_shape(op, "x", x, "sumOut", sum_out);
  RowDims d = check_forward(device, op, x, gamma, beta, out, mean, rstd, out16);
  check_eps(op, eps);
  check_same_or_disjoint(op, "sumOut", sum_out, "x", x);
  check_same_or_disjoint(op, "sumOut", sum_out, "residual", residual);
  // out is written after sum_out is read, so it must not share memory with sum_out.
  check_no_alias(op, "out", out, "sumOut", sum_out);
  check_same_or_disjoint(op, "out", out, "residual", residual);
  check_no_alias(op, "sumOut", sum_out, "gamma", gamma);
  check_no_alias(op, "sumOut", sum_out, "beta", beta);
  check_outputs_apart(op, "sumOut", sum_out, "mean", mean);
  check_outputs_apart(op, "sumOut", sum_out, "rstd", rstd);
  return d;
}

RowDims check_layernorm_backward(DeviceCheck device, const Tensor& dout, const Tensor& x, const Tensor& gamma,
                                 const Tensor& mean, const Tensor& rstd, const Tensor& dx, const Tensor* dgamma,
                                 const Tensor* dbeta, const Tensor* dadd) {
  const char* op = "layernormBackward";
  check_f32(device, op, "dout", dout);
  check_f32(device, op, "x", x);
  int64_t w = row_width(op, "x", x);
  check_same_shape(op, "dout", dout, "x", x);
  check_f32(device, op, "gamma", gamma);
  check_shape(op, "gamma", gamma, {w});
  int64_t rows = row_count(x);
  check_per_row(device, op, "mean", mean, rows);
  check_per_row(device, op, "rstd", rstd, rows);
  check_f32(device, op, "dx", dx);
  check_same_shape(op, "dx", dx, "x", x);
  check_same_or_disjoint(op, "dx", dx, "dout", dout);
  check_no_alias(op, "dx", dx, "x", x);
  for (auto [name, t] : {std::pair<const char*, const Tensor*>{"dgamma", dgamma}, {"dbeta", dbeta}}) {
    if (!t) continue;
    check_f32(device, op, name, *t);
    check_shape(op, name, *t, {w});
    check_no_alias(op, name, *t, "dout", dout);
    check_no_alias(op, name, *t, "x", x);
    check_no_alias(op, name, *t, "dx", dx);
  }
  if (dgamma && dbeta) check_no_alias(op, "dgamma", *dgamma, "dbeta", *dbeta);
  if (dadd) {
    check_f32(device, op, "dadd", *dadd);
    check_same_shape(op, "dadd", *dadd, "x", x);
    check_same_or_disjoint(op, "dx", dx, "dadd", *dadd);
    for (auto [name, t] : {std::pair<const char*, const Tensor*>{"dgamma", dgamma}, {"dbeta", dbeta}})
      if (t) check_no_alias(op, name, *t, "dadd", *dadd);
  }
  return {rows, w};
}

}  // namespace cs
