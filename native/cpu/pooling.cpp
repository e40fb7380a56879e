#include "cpu/pooling.h"

#include <algorithm>
#include <cstring>

#include "core/numerics.h"
#include "core/thread_pool.h"
#include "core/pooling_checks.h"

namespace cs::cpu {

namespace {

// The index values (their dtype and shape are checked already).
void check_index_range(const char* op, const Tensor& index, int64_t batch, int64_t s) {
  const int32_t* ip = index.data<int32_t>();
  for (int64_t b = 0; b < batch; b++)
    if (ip[b] < 0 || ip[b] >= s) fail(op, ": index[", b, "] = ", ip[b], " is out of range for ", s, " rows");
}

}  // namespace

void gather_rows(const Tensor& x, const Tensor& index, Tensor& out) {
  const TokenDims d = check_gather_rows(check_cpu, x, index, out);
  const int64_t batch = d.batch, s = d.tokens, w = d.width;
  check_index_range("gatherRows", index, batch, s);
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
  const TokenDims d = check_gather_rows_backward(check_cpu, dout, index, dx);
  const int64_t batch = d.batch, s = d.tokens, w = d.width;
  check_index_range("gatherRowsBackward", index, batch, s);
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
  const IdRows d = check_argmax_ids(check_cpu, ids, out);
  const int64_t batch = d.batch, s = d.tokens;
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
