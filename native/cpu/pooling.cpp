#include "cpu/pooling.h"

#include <algorithm>
#include <cstring>

#include "core/numerics.h"
#include "core/thread_pool.h"
#include "cpu/pointwise_checks.h"

namespace cs::cpu {

namespace {

void check_index(const char* op, const Tensor& index, int64_t batch, int64_t s) {
  check_i32(op, "index", index);
  check_shape(op, "index", index, {batch});
  const int32_t* ip = index.data<int32_t>();
  for (int64_t b = 0; b < batch; b++)
    if (ip[b] < 0 || ip[b] >= s) fail(op, ": index[", b, "] = ", ip[b], " is out of range for ", s, " rows");
}

}  // namespace

void gather_rows(const Tensor& x, const Tensor& index, Tensor& out) {
  const char* op = "gatherRows";
  check_f32(op, "x", x);
  check_ndim(op, "x", x, 3);
  const int64_t batch = x.dim(0), s = x.dim(1), w = x.dim(2);
  check_f32(op, "out", out);
  check_shape(op, "out", out, {batch, w});
  check_no_alias(op, "out", out, "x", x);
  check_no_alias(op, "out", out, "index", index);
  check_index(op, index, batch, s);
  const bool emulate = bf16_emulation();
  const int32_t* ip = index.data<int32_t>();
  const float* xp = x.data<float>();
  float* o = out.data<float>();
  for (int64_t b = 0; b < batch; b++) {
    const float* src = xp + (b * s + ip[b]) * w;
    for (int64_t j = 0; j < w; j++) o[b * w + j] = maybe_round_bf16(src[j], emulate);
  }
}

void gather_rows_backward(const Tensor& dout, const Tensor& index, Tensor& dx) {
  const char* op = "gatherRowsBackward";
  check_f32(op, "dx", dx);
  check_ndim(op, "dx", dx, 3);
  const int64_t batch = dx.dim(0), s = dx.dim(1), w = dx.dim(2);
  check_f32(op, "dout", dout);
  check_shape(op, "dout", dout, {batch, w});
  check_no_alias(op, "dx", dx, "dout", dout);
  check_no_alias(op, "dx", dx, "index", index);
  check_index(op, index, batch, s);
  const int32_t* ip = index.data<int32_t>();
  const float* dp = dout.data<float>();
  float* gp = dx.data<float>();
  parallel_for(batch, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; b++) {
      float* db = gp + b * s * w;
      std::fill(db, db + s * w, 0.0f);
      if (w) std::memcpy(db + ip[b] * w, dp + b * w, sizeof(float) * w);
    }
  });
}

void argmax_ids(const Tensor& ids, Tensor& out) {
  const char* op = "argmaxIds";
  check_i32(op, "ids", ids);
  check_ndim(op, "ids", ids, 2);
  const int64_t batch = ids.dim(0), s = ids.dim(1);
  if (s == 0) fail(op, ": ids must have at least one token a row, got ", ids.describe());
  check_i32(op, "out", out);
  check_shape(op, "out", out, {batch});
  check_no_alias(op, "out", out, "ids", ids);
  const int32_t* ip = ids.data<int32_t>();
  int32_t* o = out.data<int32_t>();
  for (int64_t b = 0; b < batch; b++) {
    const int32_t* row = ip + b * s;
    int64_t best = 0;
    for (int64_t i = 1; i < s; i++)
      if (row[i] > row[best]) best = i;
    o[b] = static_cast<int32_t>(best);
  }
}

}  // namespace cs::cpu
