#include "cpu/embedding.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "core/numerics.h"
#include "core/thread_pool.h"
#include "core/embedding_checks.h"

namespace cs::cpu {

namespace {

constexpr int64_t kGrain = 1 << 14;

// "[b, s]" for flat index n of a tensor of the given shape.
std::string position_of(int64_t n, const Shape& shape) {
  std::string s = "]";
  for (int i = static_cast<int>(shape.size()) - 1; i >= 0; i--) {
    int64_t d = shape[i] ? shape[i] : 1;
    s = std::to_string(n % d) + (i + 1 < static_cast<int>(shape.size()) ? ", " : "") + s;
    n /= d;
  }
  return "[" + s;
}

void check_ids(const char* op, const Tensor& ids, int64_t vocab) {
  const int32_t* ip = ids.data<int32_t>();
  const int64_t n = ids.numel();
  for (int64_t i = 0; i < n; i++)
    if (ip[i] < 0 || ip[i] >= vocab)
      fail(op, ": ids", position_of(i, ids.shape), " = ", ip[i], " is out of range for a table of ", vocab,
           " rows");
}

}  // namespace

void embedding_forward(const Tensor& ids, const Tensor& table, Tensor& out) {
  const char* op = "embeddingForward";
  const TableDims d = check_embedding_forward(check_cpu, ids, table, out);
  const int64_t v = d.vocab, w = d.width;
  check_ids(op, ids, v);
  const bool emulate = bf16_emulation();
  const int32_t* ip = ids.data<int32_t>();
  const float* tp = table.data<float>();
  float* o = out.data<float>();
  parallel_for(ids.numel(), std::max<int64_t>(1, kGrain / std::max<int64_t>(w, 1)), [&](int64_t b, int64_t e) {
    for (int64_t n = b; n < e; n++) {
      const float* src = tp + static_cast<int64_t>(ip[n]) * w;
      float* dst = o + n * w;
      for (int64_t j = 0; j < w; j++) dst[j] = maybe_round_bf16(src[j], emulate);
    }
  });
}

void embedding_backward(const Tensor& ids, const Tensor& dout, Tensor& dtable) {
  const char* op = "embeddingBackward";
  const TableDims d = check_embedding_backward(check_cpu, ids, dout, dtable);
  const int64_t v = d.vocab, w = d.width;
  check_ids(op, ids, v);
  const int32_t* ip = ids.data<int32_t>();
  const float* dp = dout.data<float>();
  float* gp = dtable.data<float>();
  parallel_for(dtable.numel(), 1 << 16, [&](int64_t b, int64_t e) { std::fill(gp + b, gp + e, 0.0f); });
  // Threads own column ranges, so repeated ids never race and the sum order is fixed.
  const int64_t n = ids.numel();
  parallel_for(w, 16, [&](int64_t c0, int64_t c1) {
    for (int64_t t = 0; t < n; t++) {
      const float* src = dp + t * w;
      float* dst = gp + static_cast<int64_t>(ip[t]) * w;
      for (int64_t j = c0; j < c1; j++) dst[j] += src[j];
    }
  });
}

void pos_embed_forward(const Tensor& x, const Tensor& pos, Tensor& out) {
  check_pos_embed_forward(check_cpu, x, pos, out);
  const bool emulate = bf16_emulation();
  const int64_t sw = pos.numel();
  const float* xp = x.data<float>();
  const float* pp = pos.data<float>();
  float* o = out.data<float>();
  // In runs that end where the positional table wraps: one index division a run, not one an
  // element, and loops the compiler vectorises (x and out may be the same tensor).
  parallel_for(x.numel(), kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e;) {
      const int64_t k = i % sw, n = std::min(e - i, sw - k);
      const float* xr = xp + i;
      const float* pr = pp + k;
      float* orow = o + i;
      if (emulate)
        for (int64_t j = 0; j < n; j++) orow[j] = round_bf16(xr[j] + pr[j]);
      else
        for (int64_t j = 0; j < n; j++) orow[j] = xr[j] + pr[j];
      i += n;
    }
  });
}

void pos_embed_backward(const Tensor& dout, Tensor& dpos) {
  check_pos_embed_backward(check_cpu, dout, dpos);
  const int64_t batch = dout.dim(0), sw = dpos.numel();
  const float* dp = dout.data<float>();
  float* gp = dpos.data<float>();
  // Each value is summed over the batch in order, in double; a block of values at a time, the
  // batch in the outer loop, so the adds are vectors across the block and the rows are read
  // along (one value at a time down the batch was a chain of dependent adds at a stride of a
  // row: 270 µs for a tiny text batch, [128, 32, 64]).
  constexpr int64_t kBlock = 256;
  parallel_for(sw, 1024, [&](int64_t b, int64_t e) {
    double acc[kBlock];
    for (int64_t i0 = b; i0 < e; i0 += kBlock) {
      const int64_t n = std::min(kBlock, e - i0);
      for (int64_t j = 0; j < n; j++) acc[j] = 0.0;
      for (int64_t k = 0; k < batch; k++) {
        const float* row = dp + k * sw + i0;
        for (int64_t j = 0; j < n; j++) acc[j] += row[j];
      }
      for (int64_t j = 0; j < n; j++) gp[i0 + j] = static_cast<float>(acc[j]);
    }
  });
}

void class_token_concat(const Tensor& x, const Tensor& cls, Tensor& out) {
  const TokenDims d = check_class_token_concat(check_cpu, x, cls, out);
  const int64_t batch = d.batch, s = d.tokens, w = d.width;
  const bool emulate = bf16_emulation();
  const float* xp = x.data<float>();
  const float* cp = cls.data<float>();
  float* o = out.data<float>();
  parallel_for(batch, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; b++) {
      float* ob = o + b * (s + 1) * w;
      for (int64_t j = 0; j < w; j++) ob[j] = maybe_round_bf16(cp[j], emulate);
      const float* xb = xp + b * s * w;
      for (int64_t i = 0; i < s * w; i++) ob[w + i] = maybe_round_bf16(xb[i], emulate);
    }
  });
}

void class_token_concat_backward(const Tensor& dout, Tensor& dx, Tensor& dcls) {
  const TokenDims d = check_class_token_concat_backward(check_cpu, dout, dx, dcls);
  const int64_t batch = d.batch, s = d.tokens, w = d.width;
  const float* dp = dout.data<float>();
  float* xp = dx.data<float>();
  float* cp = dcls.data<float>();
  parallel_for(batch, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; b++)
      if (s > 0 && w > 0) std::memcpy(xp + b * s * w, dp + b * (s + 1) * w + w, sizeof(float) * s * w);
  });
  for (int64_t j = 0; j < w; j++) {
    double acc = 0;
    for (int64_t b = 0; b < batch; b++) acc += dp[b * (s + 1) * w + j];
    cp[j] = static_cast<float>(acc);
  }
}

}  // namespace cs::cpu
