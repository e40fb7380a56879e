#include "core/elementwise_checks.h"

#include <cmath>
#include <initializer_list>

namespace cs {

void check_fill(DeviceCheck device, const Tensor& x, double value) {
  device("fill", "x", x);
  if ((x.dtype == DType::I32 || x.dtype == DType::I64) && value != std::floor(value))
    fail("fill: ", x.dtype == DType::I32 ? "i32" : "i64", " tensor cannot hold ", value);
}

void check_copy(DeviceCheck device, const Tensor& src, const Tensor& dst) {
  device("copy", "src", src);
  device("copy", "dst", dst);
  if (src.dtype != dst.dtype)
    fail("copy: src and dst must have the same dtype, got ", src.describe(), " and ", dst.describe(), " (use convert)");
  if (src.numel() != dst.numel())
    fail("copy: src and dst must have the same number of elements, got ", src.describe(), " and ", dst.describe());
}

void check_scale(DeviceCheck device, const Tensor& x) { check_f32(device, "scale", "x", x); }

void check_clamp(DeviceCheck device, const Tensor& x, double lo, double hi) {
  check_f32(device, "clamp", "x", x);
  if (!(lo <= hi)) fail("clamp: the bounds must satisfy lo <= hi, got lo ", lo, " and hi ", hi);
}

void check_axpy(DeviceCheck device, const Tensor& x, const Tensor& y) {
  device("axpy", "x", x);
  device("axpy", "y", y);
  check_dtype("axpy", "x", x, DType::F32);
  check_dtype("axpy", "y", y, DType::F32);
  if (x.numel() != y.numel())
    fail("axpy: x and y must have the same number of elements, got ", x.describe(), " and ", y.describe());
  check_same_or_disjoint("axpy", "y", y, "x", x);  // threads read x's elements while writing y's
}

void check_add(DeviceCheck device, const Tensor& a, const Tensor& b, const Tensor& out) {
  for (auto* t : {&a, &b}) check_f32(device, "add", "input", *t);
  check_dtype("add", "out", out, DType::F32);
  check_same_shape("add", "a", a, "b", b);
  check_same_shape("add", "a", a, "out", out);
  check_same_or_disjoint("add", "out", out, "a", a);  // in place, or apart: threads read while writing
  check_same_or_disjoint("add", "out", out, "b", b);
}

void check_convert(DeviceCheck device, const Tensor& src, const Tensor& dst) {
  device("convert", "src", src);
  device("convert", "dst", dst);
  if (src.numel() != dst.numel())
    fail("convert: src and dst must have the same number of elements, got ", src.describe(), " and ",
         dst.describe());
}

}  // namespace cs
