#include "cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/target_clones.h"
#include "core/attention_checks.h"
#include "core/exp_math.h"
#include "core/lane_fold.h"
#include "core/numerics.h"
#include "core/thread_pool.h"
#include "cpu/attention_columns.h"
#include "cpu/bf16_operands.h"
#include "cpu/gemm.h"
#include "cpu/zero_rows.h"

namespace cs::cpu {

namespace {


// The row work of a head (softmax, the backward's recomputed probabilities, row dots, dS) runs
// in one function per head built for each instruction set (CS_TARGET_CLONES), with the helpers
// below inlined into it. As separate per-row functions, a call each through the clones' resolver,
// with their lanes folded through the stack, they cost a third of a tiny head's forward.

// Row reductions in 16 lanes, one vector value (core/lane_fold.h), folded in halves: at S = 32
// a loop-carried chain through every element cost more than the head's products.
constexpr int kLanes = 16;

// Always inlined: the clones of a caller pass vector values differently, so an out-of-line copy
// shared between them would be called with the wrong ABI (hence also no -Wpsabi here).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"

// row[j] = e^(row[j] − shift) for j < n (exp_nonpositive is plain arithmetic, so the loop vectorises).
inline void exp_shifted(float* row, int64_t n, float shift) {
  for (int64_t j = 0; j < n; j++) row[j] = exp_nonpositive(row[j] - shift);
}

// The largest of x[0:n], NaN entries skipped (as std::fmax does); -inf when n = 0. The 16 lanes as
// two halves (f32x16p): one f32x16 value went through the stack in the AVX2 clone.
inline float row_max(const float* x, int64_t n) {
  const float ninf = -std::numeric_limits<float>::infinity();
  const f32x8 all_ninf = {ninf, ninf, ninf, ninf, ninf, ninf, ninf, ninf};
  f32x16p lane = {all_ninf, all_ninf};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    const f32x16p v = load16p(x + j);
    lane.lo = v.lo > lane.lo ? v.lo : lane.lo;
    lane.hi = v.hi > lane.hi ? v.hi : lane.hi;
  }
  float m = fold_max(lane);
  for (; j < n; j++) m = x[j] > m ? x[j] : m;
  return m;
}

// Σ a[j]·b[j] (b = nullptr: Σ a[j]) over 16 lanes, the lanes folded pairwise, then the tail in order.
inline float row_dot(const float* a, const float* b, int64_t n) {
  f32x16p lane = {};
  int64_t j = 0;
  if (b) {
    for (; j + kLanes <= n; j += kLanes) {
      const f32x16p x = load16p(a + j), y = load16p(b + j);
      lane.lo += x.lo * y.lo;
      lane.hi += x.hi * y.hi;
    }
  } else {
    for (; j + kLanes <= n; j += kLanes) {
      const f32x16p x = load16p(a + j);
      lane.lo += x.lo;
      lane.hi += x.hi;
    }
  }
  float s = fold_sum(lane);
  for (; j < n; j++) s += b ? a[j] * b[j] : a[j];
  return s;
}
#pragma GCC diagnostic pop

// Turns each row r of scores[rows×S] into probabilities in place, row r being query query[r]
// (query = nullptr: query r; causal: entries after it are masked to 0), and stores the log-sum-exp
// of its unmasked scores in lse[r] (lse nullable). Masked entries become -inf first, so every row
// runs the full-width vector loops (e^-inf = 0 adds nothing): a causal row's short, varying length
// left most of its work to scalar tails.
CS_TARGET_CLONES void softmax_rows(float* probs, int64_t rows, int64_t S, bool causal, bool emu, const int32_t* query,
                                   float* lse) {
  for (int64_t r = 0; r < rows; r++) {
    float* row = probs + r * S;
    const int64_t n = causal ? (query ? query[r] : r) + 1 : S;
    for (int64_t j = n; j < S; j++) row[j] = -std::numeric_limits<float>::infinity();
    const float m = row_max(row, S);
    exp_shifted(row, S, m);
    const float sum = row_dot(row, nullptr, S);
    const float inv = 1.0f / sum;
    if (emu)
      for (int64_t j = 0; j < S; j++) row[j] = round_bf16(row[j] * inv);
    else
      for (int64_t j = 0; j < S; j++) row[j] = row[j] * inv;
    for (int64_t j = n; j < S; j++) row[j] = 0.0f;  // exactly 0 even in a NaN row (-inf − NaN is NaN)
    if (lse) lse[r] = m + std::log(sum);
  }
}

// P[S×S] recomputed in place from the scores and the saved log-sum-exp l[0:S].
CS_TARGET_CLONES void probs_from_lse(float* probs, int64_t S, bool causal, const float* l) {
  for (int64_t i = 0; i < S; i++) {
    float* row = probs + i * S;
    if (causal)  // masked entries to -inf: the full-width loop gives them e^-inf = 0
      for (int64_t j = i + 1; j < S; j++) row[j] = -std::numeric_limits<float>::infinity();
    exp_shifted(row, S, l[i]);
    if (causal)  // exactly 0 even when l is NaN
      for (int64_t j = i + 1; j < S; j++) row[j] = 0.0f;
  }
}

// out[i] = Σ_c a[i·lda + c]·b[i·ldb + c] for i < S, c < d.
CS_TARGET_CLONES void row_dots(const float* a, int64_t lda, const float* b, int64_t ldb, int64_t S, int64_t d,
                               float* out) {
  for (int64_t i = 0; i < S; i++) out[i] = row_dot(a + i * lda, b + i * ldb, d);
}

// dS = P∘(dP − D) in place over dscores[S×S], D_i = rowdot[i].
CS_TARGET_CLONES void score_gradient(float* dscores, const float* probs, const float* rowdot, int64_t S, bool emu) {
  for (int64_t i = 0; i < S; i++) {
    float* row = dscores + i * S;
    const float* prow = probs + i * S;
    const float di = rowdot[i];
    if (emu)
      for (int64_t j = 0; j < S; j++) row[j] = round_bf16(prow[j] * (row[j] - di));
    else
      for (int64_t j = 0; j < S; j++) row[j] = prow[j] * (row[j] - di);
  }
}

// The column kernels (attention_columns.h) of the GEMM kernel's instruction set, where this CPU has
// them: AVX-512 with the AVX-512 GEMM, AVX2 with the AVX2 one; setGemmKernel('portable') gives the
// row-wise path, so tests reach every path. bf16 emulation keeps the row-wise path, which rounds
// where the GPU does. nullptr: row-wise.
const attention_detail::ColumnKernels* column_kernels(bool emu) {
  if (emu) return nullptr;
  const char* gemm = gemm_kernel_name();
  if (std::strcmp(gemm, "avx512") == 0) return attention_detail::avx512_column_kernels();
  if (std::strcmp(gemm, "avx2") == 0) return attention_detail::avx2_column_kernels();
  return nullptr;
}

// Per-thread scratch kept between calls (pool threads live for the process), so a
// training step does not allocate once sizes are steady.
struct Scratch {
  std::vector<float> probs, dscores, probs_bf16, rowdot, o_row, q, k, v, dout;
  std::vector<int32_t> query_rows;
};

Scratch& thread_scratch() {
  static thread_local Scratch s;
  return s;
}

float* grow(std::vector<float>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
  return v.data();
}

}  // namespace

namespace {

// The sequences of a forward: `count` of them, every one `length` tokens and back to back (a
// batch), or, packed, lengths[i] tokens from token starts[i] of the qkv/out rows.
struct Sequences {
  int64_t count = 0;
  int64_t length = 0;
  const int32_t* lengths = nullptr;
  const int64_t* starts = nullptr;
  int64_t len(int64_t i) const { return lengths ? lengths[i] : length; }
  int64_t start(int64_t i) const { return starts ? starts[i] : i * length; }
};

// Each sequence's first token, from the lengths (checked non-negative, summing to T).
// Kept per calling thread: a training step allocates nothing.
const int64_t* sequence_starts(const Tensor& lengths) {
  static thread_local std::vector<int64_t> starts;
  const int32_t* len = lengths.data<int32_t>();
  starts.resize(static_cast<size_t>(lengths.numel()));
  for (int64_t i = 0, first = 0; i < lengths.numel(); first += len[i], i++) starts[static_cast<size_t>(i)] = first;
  return starts.data();
}

// The query rows a forward computes: `count` global token rows, ascending (nullptr: every row).
struct QueryRows {
  const int32_t* rows = nullptr;
  int64_t count = 0;
};

// Only the listed queries of one sequence and head (local indices query[0:n], ascending): their rows
// of Q gathered, then the same products and softmax as for every row, over n columns (or rows) of
// scores instead of S, so each listed row's out and lse are the same bits.
void listed_queries_forward(int64_t S, int64_t d, int64_t W, float scale, bool causal,
                            const attention_detail::ColumnKernels* columns, const MatrixRef& Q,
                            const MatrixRef& K, const MatrixRef& V, const int32_t* query, int64_t n, Scratch& sc,
                            float* o, float* lse_row) {
  float* q_rows = grow(sc.q, n * d);
  for (int64_t r = 0; r < n; r++)
    std::memcpy(q_rows + r * d, Q.ptr + query[r] * Q.ld, static_cast<size_t>(d) * sizeof(float));
  float* o_rows = grow(sc.o_row, n * d);
  float* lse_rows = grow(sc.rowdot, n);
  if (columns) {
    const int64_t ldn = attention_detail::padded_queries(n);
    float* probs = grow(sc.probs, S * ldn);
    sgemm(false, true, S, n, d, scale, K.ptr, K.ld, q_rows, d, 0.0f, probs, ldn);
    columns->softmax(probs, S, n, ldn, causal, query, lse_rows);
    sgemm(true, false, n, d, S, 1.0f, probs, ldn, V.ptr, V.ld, 0.0f, o_rows, d);
  } else {
    float* probs = grow(sc.probs, n * S);
    sgemm(false, true, n, S, d, scale, q_rows, d, K.ptr, K.ld, 0.0f, probs, S);
    softmax_rows(probs, n, S, causal, false, query, lse_rows);
    sgemm(false, false, n, d, S, 1.0f, probs, S, V.ptr, V.ld, 0.0f, o_rows, d);
  }
  for (int64_t r = 0; r < n; r++) {
    std::memcpy(o + query[r] * W, o_rows + r * d, static_cast<size_t>(d) * sizeof(float));
    if (lse_row) lse_row[query[r]] = lse_rows[r];
  }
}

void forward_sequences(const AttentionGeometry& g, const Sequences& seqs, const float* qkvp, float* outp, float* lsep,
                       bool causal, QueryRows listed) {
  const int64_t d = g.d, W = g.W, ld = g.ld();
  const bool emu = bf16_emulation();
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const attention_detail::ColumnKernels* columns = column_kernels(emu);
  // Listed queries only where the backward multiplies only them too (see attention.h).
  if (emu || !skip_zero_rows_enabled()) listed = QueryRows{};
  // Sequence × head items taken one at a time (see parallel_for_balanced): with fixed halves, a
  // core that ran slower left the other waiting long enough to fall asleep, and the next op's
  // threads then started tens of microseconds apart.
  parallel_for_balanced(seqs.count * g.heads, [&](int64_t t) {
    Scratch& sc = thread_scratch();
    const int64_t b = t / g.heads, h = t % g.heads;
    const int64_t S = seqs.len(b), first = seqs.start(b);
    if (S == 0) return;
    const float* base = qkvp + first * ld + h * d;
    float* o = outp + first * W + h * d;
    // lse: each sequence's heads × its length, from heads·(its first token): [B, heads, S] when
    // every sequence has S tokens.
    float* lse_row = lsep ? lsep + first * g.heads + h * S : nullptr;
    if (listed.rows) {
      const int32_t* end = listed.rows + listed.count;
      const int32_t* from = std::lower_bound(listed.rows, end, static_cast<int32_t>(first));
      const int32_t* to = std::lower_bound(from, end, static_cast<int32_t>(first + S));
      const int64_t n = to - from;
      if (n == 0) return;
      if (n < S) {
        std::vector<int32_t>& query = sc.query_rows;
        query.resize(static_cast<size_t>(n));
        for (int64_t r = 0; r < n; r++) query[static_cast<size_t>(r)] = from[r] - static_cast<int32_t>(first);
        listed_queries_forward(S, d, W, scale, causal, columns, MatrixRef{base, ld}, MatrixRef{base + W, ld},
                               MatrixRef{base + 2 * W, ld}, query.data(), n, sc, o, lse_row);
        return;
      }
    }
    const int64_t ldS = attention_detail::padded_queries(S);
    float* probs = grow(sc.probs, columns ? S * ldS : S * S);
    MatrixRef Q = matmul_operand(base, S, d, ld, emu, sc.q);
    MatrixRef K = matmul_operand(base + W, S, d, ld, emu, sc.k);
    MatrixRef V = matmul_operand(base + 2 * W, S, d, ld, emu, sc.v);
    if (columns) {
      // scoresᵀ[S keys × S queries] = K·Qᵀ/√d, each query's softmax down its column, out = (Pᵀ)ᵀ·V
      sgemm(false, true, S, S, d, scale, K.ptr, K.ld, Q.ptr, Q.ld, 0.0f, probs, ldS);
      columns->softmax(probs, S, S, ldS, causal, nullptr, lse_row);
      sgemm(true, false, S, d, S, 1.0f, probs, ldS, V.ptr, V.ld, 0.0f, o, W);
      return;
    }
    // scores[S×S] = Q·Kᵀ/√d, then softmax row by row
    sgemm(false, true, S, S, d, scale, Q.ptr, Q.ld, K.ptr, K.ld, 0.0f, probs, S);
    softmax_rows(probs, S, S, causal, emu, nullptr, lse_row);
    // out[S×d] (head h's columns) = P·V
    sgemm(false, false, S, d, S, 1.0f, probs, S, V.ptr, V.ld, 0.0f, o, W);
    if (emu) round_bf16_block(o, S, d, W);
  });
}

}  // namespace

void attention_forward(const Tensor& qkv, Tensor& out, Tensor* lse, int64_t heads, bool causal, const Tensor* rows) {
  const AttentionGeometry g = check_attention_forward(check_cpu, qkv, out, lse, heads);
  if (rows) check_query_rows("attentionForward", *rows, g.B * g.S);
  if (g.B == 0 || g.S == 0) return;
  forward_sequences(g, Sequences{g.B, g.S}, qkv.data<float>(), out.data<float>(), lse ? lse->data<float>() : nullptr,
                    causal, rows ? QueryRows{rows->data<int32_t>(), rows->numel()} : QueryRows{});
}

void attention_forward_packed(const Tensor& qkv, Tensor& out, Tensor* lse, const Tensor& lengths, int64_t heads,
                              bool causal, const Tensor* rows) {
  const AttentionGeometry g = check_attention_forward_packed(qkv, out, lse, lengths, heads);
  if (rows) check_query_rows("attentionForwardPacked", *rows, g.S);
  const int64_t* starts = sequence_starts(lengths);
  forward_sequences(g, Sequences{lengths.numel(), 0, lengths.data<int32_t>(), starts}, qkv.data<float>(),
                    out.data<float>(), lse ? lse->data<float>() : nullptr, causal,
                    rows ? QueryRows{rows->data<int32_t>(), rows->numel()} : QueryRows{});
}

namespace {

// y[0:n] += a·x[0:n]: y and x never overlap here (dQ, dK, dV and Q, K are disjoint blocks), which
// the compiler is told so that the loop vectorises.
[[gnu::always_inline]] inline void add_scaled(float* __restrict y, float a, const float* __restrict x, int64_t n) {
  for (int64_t c = 0; c < n; c++) y[c] += a * x[c];
}

// p[0:n] = 0 in vector stores: a head's rows are short (d = 32-128), and a memset call a row cost
// half of a listed-queries item.
[[gnu::always_inline]] inline void zero_span(float* p, int64_t n) {
  const f32x16 zero = {};
  int64_t c = 0;
  for (; c + kLanes <= n; c += kLanes) std::memcpy(p + c, &zero, sizeof zero);
  for (; c < n; c++) p[c] = 0.0f;
}

// A query row whose dO is all ±0 adds nothing to dK or dV, and its dQ is 0: its dP = dO·Vᵀ is 0
// and so is D = dO·O, so dS = P∘(dP − D) = 0. A tower's last block gets gradient at its pooled row
// only (the class token; a caption's end token), so there an item's products run over the listed
// query rows alone, in loops over [rows×S]: a tiny vision tower's last block (128 × 17 tokens, one
// row each) 245 → 74 µs standalone (GEMM calls on one row, the first try, gave 192). As with the
// linear layers' zero rows (cpu/zero_rows.h), a NaN or infinity in Q, K or V reaches the gradients
// only through the rows that are multiplied. Q, K, V, dq, dk, dv have row stride ld; dO and O, W.
CS_TARGET_CLONES void listed_queries_backward(int64_t S, int64_t d, int64_t ld, int64_t W, float scale, bool causal,
                                              const float* Q, const float* K, const float* V, const float* dO,
                                              const float* O, const float* lse_row, const int32_t* query,
                                              int64_t rows, float* probs, float* dscores, float* dq, float* dk,
                                              float* dv) {
  for (float* blk : {dq, dk, dv})
    for (int64_t i = 0; i < S; i++) zero_span(blk + i * ld, d);
  for (int64_t r = 0; r < rows; r++) {
    const int64_t i = query[r];
    const int64_t n = causal ? i + 1 : S;  // the keys query i sees
    const float* q = Q + i * ld;
    const float* dout = dO + i * W;
    float* p = probs + r * S;
    float* ds = dscores + r * S;
    // P's row, recomputed from the saved log-sum-exp
    for (int64_t j = 0; j < n; j++) p[j] = row_dot(q, K + j * ld, d) * scale;
    exp_shifted(p, n, lse_row[i]);
    // dS = P∘(dP − D), dP = dO·Vᵀ, D = dO·O
    const float D = row_dot(dout, O + i * W, d);
    for (int64_t j = 0; j < n; j++) ds[j] = p[j] * (row_dot(dout, V + j * ld, d) - D);
    // dV += Pᵀ·dO; dK += dSᵀ·Q (scaled below); dQ's row = dS·K/√d
    float* dqi = dq + i * ld;
    for (int64_t j = 0; j < n; j++) {
      add_scaled(dv + j * ld, p[j], dout, d);
      add_scaled(dk + j * ld, ds[j], q, d);
      add_scaled(dqi, ds[j], K + j * ld, d);
    }
    for (int64_t c = 0; c < d; c++) dqi[c] *= scale;
  }
  for (int64_t j = 0; j < S; j++)
    for (int64_t c = 0; c < d; c++) dk[j * ld + c] *= scale;
}

void backward_sequences(const AttentionGeometry& g, const Sequences& seqs, const float* qkvp, const float* outp,
                        const float* doutp, const float* lsep, float* dqkvp, bool causal) {
  const int64_t d = g.d, W = g.W, ld = g.ld();
  const bool emu = bf16_emulation();
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const attention_detail::ColumnKernels* columns = column_kernels(emu);
  const bool skip_zero_rows = !emu && skip_zero_rows_enabled();  // bf16 emulation keeps every row
  parallel_for_balanced(seqs.count * g.heads, [&](int64_t t) {  // items one at a time, as in the forward
    const int64_t b = t / g.heads, h = t % g.heads;
    const int64_t S = seqs.len(b), first = seqs.start(b);
    if (S == 0) return;
    Scratch& sc = thread_scratch();
    const int64_t ldS = attention_detail::padded_queries(S);
    float* probs = grow(sc.probs, columns ? S * ldS : S * S);
    float* dscores = grow(sc.dscores, columns ? S * ldS : S * S);
    float* rowdot = grow(sc.rowdot, S);
    float* probs_bf16 = emu ? grow(sc.probs_bf16, S * S) : nullptr;
    const float* base = qkvp + first * ld + h * d;
    MatrixRef Q = matmul_operand(base, S, d, ld, emu, sc.q);
    MatrixRef K = matmul_operand(base + W, S, d, ld, emu, sc.k);
    MatrixRef V = matmul_operand(base + 2 * W, S, d, ld, emu, sc.v);
    MatrixRef dO = matmul_operand(doutp + first * W + h * d, S, d, W, emu, sc.dout);
    const float* O = outp + first * W + h * d;
    const float* lse_row = lsep + first * g.heads + h * S;  // as the forward wrote it
    float* dq = dqkvp + first * ld + h * d;
    float* dk = dq + W;
    float* dv = dq + 2 * W;
    if (skip_zero_rows) {  // at most half the query rows with gradient: those alone (see listed_queries_backward)
      std::vector<int32_t>& query = sc.query_rows;
      query.clear();
      for (int64_t i = 0; i < S && 2 * static_cast<int64_t>(query.size()) <= S; i++)
        if (!row_is_zero(dO.ptr + i * dO.ld, d)) query.push_back(static_cast<int32_t>(i));
      if (2 * static_cast<int64_t>(query.size()) <= S) {
        const int64_t rows = static_cast<int64_t>(query.size());
        listed_queries_backward(S, d, ld, W, scale, causal, base, base + W, base + 2 * W, doutp + first * W + h * d, O,
                                lse_row, query.data(), rows, grow(sc.probs, rows * S), grow(sc.dscores, rows * S), dq,
                                dk, dv);
        return;
      }
    }
    // D_i = Σ_c dO_ic·O_ic equals Σ_j P_ij·dP_ij without forming the product.
    float* o_row = emu ? grow(sc.o_row, d) : nullptr;
    if (emu) {
      for (int64_t i = 0; i < S; i++) {
        for (int64_t c = 0; c < d; c++) o_row[c] = round_bf16(O[i * W + c]);
        row_dots(dO.ptr + i * dO.ld, dO.ld, o_row, d, 1, d, rowdot + i);
      }
    } else {
      row_dots(dO.ptr, dO.ld, O, W, S, d, rowdot);
    }
    if (columns) {
      // Pᵀ recomputed from the saved log-sum-exp (scores transposed, as in the forward)
      sgemm(false, true, S, S, d, scale, K.ptr, K.ld, Q.ptr, Q.ld, 0.0f, probs, ldS);
      columns->probs_from_lse(probs, S, ldS, causal, lse_row);
      // dV = Pᵀ·dO; dPᵀ = V·dOᵀ, then dSᵀ = Pᵀ∘(dPᵀ − D) in place
      sgemm(false, false, S, d, S, 1.0f, probs, ldS, dO.ptr, dO.ld, 0.0f, dv, ld);
      sgemm(false, true, S, S, d, 1.0f, V.ptr, V.ld, dO.ptr, dO.ld, 0.0f, dscores, ldS);
      columns->score_gradient(dscores, probs, rowdot, S, ldS);
      // dQ = (dSᵀ)ᵀ·K/√d, dK = dSᵀ·Q/√d
      sgemm(true, false, S, d, S, scale, dscores, ldS, K.ptr, K.ld, 0.0f, dq, ld);
      sgemm(false, false, S, d, S, scale, dscores, ldS, Q.ptr, Q.ld, 0.0f, dk, ld);
      return;
    }
    // P recomputed from the saved log-sum-exp.
    sgemm(false, true, S, S, d, scale, Q.ptr, Q.ld, K.ptr, K.ld, 0.0f, probs, S);
    probs_from_lse(probs, S, causal, lse_row);
    const float* P = probs;
    if (emu) {
      for (int64_t k = 0; k < S * S; k++) probs_bf16[k] = round_bf16(probs[k]);
      P = probs_bf16;
    }
    // dV = Pᵀ·dO
    sgemm(true, false, S, d, S, 1.0f, P, S, dO.ptr, dO.ld, 0.0f, dv, ld);
    // dP = dO·Vᵀ, then dS = P∘(dP − D) in place
    sgemm(false, true, S, S, d, 1.0f, dO.ptr, dO.ld, V.ptr, V.ld, 0.0f, dscores, S);
    score_gradient(dscores, probs, rowdot, S, emu);
    // dQ = dS·K/√d, dK = dSᵀ·Q/√d
    sgemm(false, false, S, d, S, scale, dscores, S, K.ptr, K.ld, 0.0f, dq, ld);
    sgemm(true, false, S, d, S, scale, dscores, S, Q.ptr, Q.ld, 0.0f, dk, ld);
    if (emu)
      for (float* blk : {dq, dk, dv}) round_bf16_block(blk, S, d, ld);
  });
}

}  // namespace

void attention_backward(const Tensor& qkv, const Tensor& out, const Tensor& dout, const Tensor& lse, Tensor& dqkv,
                        int64_t heads, bool causal) {
  const AttentionGeometry g = check_attention_backward(check_cpu, qkv, out, dout, lse, dqkv, heads);
  if (g.B == 0 || g.S == 0) return;
  backward_sequences(g, Sequences{g.B, g.S}, qkv.data<float>(), out.data<float>(), dout.data<float>(), lse.data<float>(),
                     dqkv.data<float>(), causal);
}

void attention_backward_packed(const Tensor& qkv, const Tensor& out, const Tensor& dout, const Tensor& lse,
                               Tensor& dqkv, const Tensor& lengths, int64_t heads, bool causal) {
  const AttentionGeometry g = check_attention_backward_packed(qkv, out, dout, lse, dqkv, lengths, heads);
  if (g.S == 0) return;
  const int64_t* starts = sequence_starts(lengths);
  backward_sequences(g, Sequences{lengths.numel(), 0, lengths.data<int32_t>(), starts}, qkv.data<float>(),
                     out.data<float>(), dout.data<float>(), lse.data<float>(), dqkv.data<float>(), causal);
}

}  // namespace cs::cpu
