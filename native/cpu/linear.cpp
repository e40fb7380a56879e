#include "cpu/linear.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "core/env_switch.h"
#include "core/linear_checks.h"
#include "core/numerics.h"
#include "core/thread_pool.h"
#include "cpu/bf16_operands.h"
#include "cpu/column_sums.h"
#include "cpu/gemm.h"
#include "cpu/gemm_bf16.h"
#include "cpu/gemm_blocking.h"
#include "cpu/zero_rows.h"

namespace cs::cpu {

namespace {

// db (+)= Σ_m dY[m, :]. Rows are split between threads (a layer has few output columns and
// many rows: splitting columns left one thread working for N ≤ 64); each thread sums its rows
// into a partial of its own, and the partials are added in thread order.
int bias_gradient_threads(int64_t M, int64_t N) {
  return static_cast<int>(std::min<int64_t>(num_threads(), std::max<int64_t>(1, M * N / (1 << 15))));
}

// round: sum dY's values rounded to bf16 (the bf16 mode on the AVX-512 BF16 kernel, whose GEMMs
// round dY as they read it rather than from a rounded copy).
void bias_gradient(const float* dy, int64_t ld, int64_t M, int64_t N, float* db, bool accumulate, bool round = false) {
  if (M <= 0 || N <= 0) {
    add_partials(db, nullptr, 0, N, accumulate);
    return;
  }
  const int nt = bias_gradient_threads(M, N);
  static thread_local std::vector<float> partial;  // kept: a training step reuses the sizes
  partial.assign(static_cast<size_t>(nt) * N, 0.0f);
  float* const part = partial.data();  // the workers' own thread_local would be a different vector
  auto rows = [&](int t, int n_threads) {
    const int64_t m0 = M * t / n_threads, m1 = M * (t + 1) / n_threads;
    (round ? add_rows_bf16 : add_rows)(dy + m0 * ld, ld, m1 - m0, N, part + t * N);
  };
  if (nt <= 1) rows(0, 1);
  else parallel_run(nt, rows);
  add_partials(db, part, nt, N, accumulate);
}

// dX[r0:r1, :] = dY[r0:r1, :]·W on the calling thread (a thread's share of the input gradient).
void input_gradient_rows(const MatrixRef& dY, const MatrixRef& W, int64_t r0, int64_t r1, int64_t N, int64_t K, float* dx) {
  sgemm_serial(false, false, r1 - r0, K, N, 1.0f, dY.ptr + r0 * dY.ld, dY.ld, W.ptr, W.ld, 0.0f, dx + r0 * K, K);
}

// One thread's dW over rows [m0, m1): dW[N×K] = dYᵀ·X, or its transpose dWᵀ[K×N] = Xᵀ·dY when
// `transposed`. A kernel that packs its A operand (dYᵀ or Xᵀ, a row of A per output row) uses
// each packed value for as many columns as the result has: so there the narrower of N and K goes
// in A (K < N: an MLP up-projection, qkv — the transposed form). A kernel that reads a transposed A
// in place (AVX-512) packs nothing, and the plain form needs no transposition of the partials after:
// qkv's and c_fc's ops 2-6% faster standalone, 4-5% in a tiny step (weight_gradient_transposed).
void weight_gradient_rows(const MatrixRef& dY, const MatrixRef& X, int64_t m0, int64_t m1, int64_t N, int64_t K,
                          bool transposed, float beta, float* out, bool serial) {
  auto gemm = serial ? sgemm_serial : sgemm;
  const float* dy = dY.ptr + m0 * dY.ld;
  const float* x = X.ptr + m0 * X.ld;
  if (transposed) gemm(true, false, K, N, m1 - m0, 1.0f, x, X.ld, dy, dY.ld, beta, out, N);
  else gemm(true, false, N, K, m1 - m0, 1.0f, dy, dY.ld, x, X.ld, beta, out, K);
}

// Whether dW's partials are computed as dWᵀ (see weight_gradient_rows).
bool weight_gradient_transposed(int64_t N, int64_t K) { return K < N && !sgemm_reads_transposed_a_in_place(K); }

// dW[N×K] (+)= dYᵀ·X, a product over every row of the batch (M) with a narrow result.
// A narrow result (a few hundred columns at most) gives too few tiles to share evenly between
// threads, while M is long: so each thread takes a slice of the rows and computes a whole
// partial dW of its own, and the partials are summed (N·K·threads adds against 2·M·N·K flops).
// A wide result splits into tiles as any GEMM.
// With db (nullable) given and the rows split, each thread also sums its rows of dY into a
// bias partial in the same parallel region (no second hand-off to the pool), the same sums as
// bias_gradient; and with dx (nullable) rows of dX = dY·W, its own first, while those rows of
// dY are still in its cache (the same values as one GEMM over every row: each element is the
// same sum). dX's rows go in blocks a thread that is done takes from the other's end: the dW
// halves are fixed (the partials must be the same sums whichever thread is late), and a worker
// that woke late or ran slower left the caller waiting a fifth of the op.
// Returns what it did of these (the caller does the rest).
struct SplitRowsDone {
  bool bias = false, dx = false;
};
SplitRowsDone weight_gradient(const MatrixRef& dY, const MatrixRef& X, int64_t M, int64_t N, int64_t K, float* dw,
                              bool accumulate, float* db, const MatrixRef* W, float* dx) {
  const bool transposed = weight_gradient_transposed(N, K);
  const int64_t out = N * K;
  const int nt = static_cast<int>(std::min<int64_t>(num_threads(), M / 256));
  const bool split_rows = nt > 1 && out <= (1 << 18) && 2.0 * M * out >= 4e6;
  if (!split_rows && !transposed) {
    weight_gradient_rows(dY, X, 0, M, N, K, false, accumulate ? 1.0f : 0.0f, dw, false);
    return {};
  }
  const int parts = split_rows ? nt : 1;
  // Only where bias_gradient would split the rows the same way, so db is the same sum either way.
  const bool bias = split_rows && db && bias_gradient_threads(M, N) == parts;
  static thread_local std::vector<float> scratch;  // kept: a training step reuses the sizes
  scratch.resize(static_cast<size_t>(parts) * (out + (bias ? N : 0)));
  float* const part = scratch.data();  // the workers' own thread_local would be a different vector
  float* const bias_part = part + static_cast<size_t>(parts) * out;
  const bool rows_of_dx = split_rows && W && dx;
  constexpr int64_t kDxBlockRows = 112;  // eight of the kernel's 14-row panels
  const int64_t dx_blocks = gemm_detail::ceil_div(M, kDxBlockRows);
  static thread_local gemm_detail::ItemQueues dx_queues;
  if (rows_of_dx)
    dx_queues.reset(parts, dx_blocks, 1, [&](int64_t, int64_t b) { return gemm_detail::row_owner(b * kDxBlockRows, M, parts); });
  gemm_detail::ItemQueues& dx_blocks_left = dx_queues;  // the workers' own thread_local would be another
  // dw[n, k] (+)= Σ_t part_t[n, k] (or part_t[k, n] when transposed) over dW's rows [n0, n1), the
  // partials in thread order: summed into the first partial along its rows (loops that vectorise),
  // or into a transposed copy of it (8×8 vector transposes: a strided element-by-element loop took
  // 14-21 µs of an MLP layer's 600-800 µs op, this 10-12), then stored onto dw.
  auto sum_partials = [&](int64_t n0, int64_t n1) {
    const int64_t count = (n1 - n0) * K;
    float* sum = part + n0 * K;
    if (!transposed) {
      for (int t = 1; t < parts; t++) {
        const float* p = part + t * out + n0 * K;
        for (int64_t i = 0; i < count; i++) sum[i] += p[i];
      }
    } else {
      static thread_local std::vector<float> rows_of;  // kept: a training step reuses the sizes
      rows_of.resize(static_cast<size_t>(2 * count));
      sum = rows_of.data();
      float* const next = sum + count;
      transpose_block(part + n0, N, K, n1 - n0, sum);
      for (int t = 1; t < parts; t++) {
        transpose_block(part + t * out + n0, N, K, n1 - n0, next);
        for (int64_t i = 0; i < count; i++) sum[i] += next[i];
      }
    }
    float* const d = dw + n0 * K;
    if (accumulate)
      for (int64_t i = 0; i < count; i++) d[i] += sum[i];
    else
      for (int64_t i = 0; i < count; i++) d[i] = sum[i];
  };
  if (split_rows) {
    // The partials are summed in the same region, in chunks of dW's rows taken by a thread done
    // with its dX blocks once every partial is written: the last thread to finish its partial
    // always sees that, so no chunk is left, and none waits for another (the threads may also run
    // one after another). As a step of its own the sums ran on one thread, 3-11 µs an op.
    const int64_t chunk_rows = transposed ? 16 : std::max<int64_t>(1, 2048 / K);
    const int64_t chunks = gemm_detail::ceil_div(N, chunk_rows);
    std::atomic<int> partials_done{0};
    std::atomic<int64_t> next_chunk{0};
    parallel_run(parts, [&](int t, int n_threads) {
      const int64_t m0 = M * t / n_threads, m1 = M * (t + 1) / n_threads;
      weight_gradient_rows(dY, X, m0, m1, N, K, transposed, 0.0f, part + t * out, true);
      if (bias) {
        float* acc = bias_part + t * N;
        for (int64_t n = 0; n < N; n++) acc[n] = 0.0f;
        add_rows(dY.ptr + m0 * dY.ld, dY.ld, m1 - m0, N, acc);
      }
      partials_done.fetch_add(1, std::memory_order_acq_rel);
      // dX[r0:r1, :] = dY[r0:r1, :]·W
      if (rows_of_dx)
        for (int64_t b; (b = dx_blocks_left.take(t)) >= 0;) {
          const int64_t r0 = b * kDxBlockRows, r1 = std::min(M, r0 + kDxBlockRows);
          input_gradient_rows(dY, *W, r0, r1, N, K, dx);
        }
      if (partials_done.load(std::memory_order_acquire) < parts) return;
      for (int64_t c; (c = next_chunk.fetch_add(1, std::memory_order_relaxed)) < chunks;)
        sum_partials(c * chunk_rows, std::min(N, (c + 1) * chunk_rows));
    });
  } else {
    weight_gradient_rows(dY, X, 0, M, N, K, true, 0.0f, part, false);
    parallel_for(N, std::max<int64_t>(16, (1 << 12) / K), sum_partials);  // dWᵀ transposed back
  }
  if (bias) add_partials(db, bias_part, parts, N, accumulate);  // as bias_gradient adds its partials
  return {bias, rows_of_dx};
}

// CLIPSCALE_SHORT_BATCH_REGION=0 runs a short batch's products one after another (A/B comparisons).
bool short_batch_products_enabled() {
  static const bool on = env_switch_on("CLIPSCALE_SHORT_BATCH_REGION");
  return on;
}

// A short batch (a tower's last block on its pooled rows: M = the batch's 128 rows) with dW, dX
// and db all wanted: the three products in one parallel region, each thread taking a share of
// each product's output (dW's longer side and dX's rows, cut at whole kernel tiles; db's columns).
// As separate products they were three or four regions of 5-20 µs each, every one waking the
// pool, one of them (db) serial. Each value is the same sum in the same order as when one GEMM
// computed it (dW[n, k] = Σ_m dY[m, n]·X[m, k] over every row, m in order; dX's rows over every
// column of dY), and db as bias_gradient sums it on one thread: only where it would (M·N < 2^16).
// Returns false (nothing done) where it does not apply: the caller then runs the products apart.
bool short_batch_products(const MatrixRef& dY, const MatrixRef& X, const MatrixRef& W, int64_t M, int64_t N, int64_t K,
                          float* dx, float* dw, float* db, bool accumulate) {
  // Below this (dW and dX 1 MFLOP each, 128×64×64: ~15 µs on one thread) waking the pool cost more
  // than it saved; the products apart then run on the calling thread (each under sgemm's 2 MFLOP).
  constexpr double kMinFlops = 4e6;
  const int nt = num_threads();
  if (!dx || !dw || nt <= 1 || M >= 512 || 4.0 * M * N * K < kMinFlops) return false;
  const bool bias = db && bias_gradient_threads(M, N) == 1;
  const GemmTile tile = gemm_tile();
  // dW [N×K]: its longer side cut at whole tiles (columns by NR, rows by MR).
  const bool dw_by_columns = K >= N;
  const int64_t dw_side = dw_by_columns ? K : N, dw_step = dw_by_columns ? tile.nr : tile.mr;
  const int64_t dw_units = gemm_detail::ceil_div(dw_side, dw_step), dx_units = gemm_detail::ceil_div(M, tile.mr);
  static thread_local std::vector<float> bias_sums;  // kept: a training step reuses the sizes
  if (bias) bias_sums.assign(static_cast<size_t>(N), 0.0f);
  float* const sums = bias_sums.data();  // the workers' own thread_local would be a different vector
  parallel_run(nt, [&](int t, int n_threads) {
    const float beta = accumulate ? 1.0f : 0.0f;
    const int64_t u0 = dw_units * t / n_threads, u1 = dw_units * (t + 1) / n_threads;
    const int64_t s0 = u0 * dw_step, s1 = std::min(dw_side, u1 * dw_step);
    if (s1 > s0) {
      if (dw_by_columns)  // dW[:, s0:s1] (+)= dYᵀ·X[:, s0:s1]
        sgemm_serial(true, false, N, s1 - s0, M, 1.0f, dY.ptr, dY.ld, X.ptr + s0, X.ld, beta, dw + s0, K);
      else  // dW[s0:s1, :] (+)= dY[:, s0:s1]ᵀ·X
        sgemm_serial(true, false, s1 - s0, K, M, 1.0f, dY.ptr + s0, dY.ld, X.ptr, X.ld, beta, dw + s0 * K, K);
    }
    if (bias) {  // its share of db's columns, every row in order
      const int64_t c0 = N * t / n_threads, c1 = N * (t + 1) / n_threads;
      if (c1 > c0) add_rows(dY.ptr + c0, dY.ld, M, c1 - c0, sums + c0);
    }
    const int64_t r0 = std::min(M, dx_units * t / n_threads * tile.mr), r1 = std::min(M, dx_units * (t + 1) / n_threads * tile.mr);
    if (r1 > r0) input_gradient_rows(dY, W, r0, r1, N, K, dx);
  });
  if (bias) add_partials(db, sums, 1, N, accumulate);  // as bias_gradient adds its one partial
  else if (db) bias_gradient(dY.ptr, dY.ld, M, N, db, accumulate);
  return true;
}

// A layer's three products over M rows (M, N, K > 0): dW (+)= dYᵀ·X, db (+)= Σ_rows dY,
// dX = dY·W, each skipped where its output is null.
void backward_products(const MatrixRef& dY, const MatrixRef& X, const MatrixRef& W, int64_t M, int64_t N, int64_t K,
                       float* dx, float* dw, float* db, bool accumulate) {
  if (short_batch_products_enabled() && short_batch_products(dY, X, W, M, N, K, dx, dw, db, accumulate)) return;
  SplitRowsDone done;  // the weight gradient's threads may sum db and compute dX on the way
  if (dw) done = weight_gradient(dY, X, M, N, K, dw, accumulate, db, dx ? &W : nullptr, dx);
  if (db && !done.bias) bias_gradient(dY.ptr, dY.ld, M, N, db, accumulate);
  // dX[M×K] = dY·W
  if (dx && !done.dx) sgemm(false, false, M, K, N, 1.0f, dY.ptr, dY.ld, W.ptr, W.ld, 0.0f, dx, K);
}

// The same over only the rows of dY that are not all zero, when at least an eighth are (see
// zero_rows.h: a text tower's rows past each caption's end, a last block's rows but the pooled
// one): those rows of dY and X are gathered, multiplied as above, and dX's rows scattered back,
// the others zero. dW and db are the same sums less terms that are exactly zero (0·x, for finite
// x), added in another grouping, so they agree to fp32 rounding, not bit for bit. Returns false
// (nothing done) when too few rows are zero.
bool backward_products_nonzero_rows(const MatrixRef& dY, const MatrixRef& X, const MatrixRef& W, int64_t M, int64_t N,
                                    int64_t K, float* dx, float* dw, float* db, bool accumulate) {
  if (!skip_zero_rows_enabled() || M > INT32_MAX) return false;
  static thread_local std::vector<int32_t> rows;
  nonzero_rows(dY.ptr, M, N, dY.ld, rows);
  const int64_t count = static_cast<int64_t>(rows.size());
  if (count * 8 > M * 7) return false;
  static thread_local gemm_detail::AlignedScratch<float> dy_rows("linearBackward: row scratch"),
      x_rows("linearBackward: row scratch"), dx_rows("linearBackward: row scratch");
  if (count > 0) {
    float* dyc = dy_rows.get(static_cast<size_t>(count * N));
    gather_rows(dY.ptr, dY.ld, N, rows.data(), count, dyc);
    float* xc = nullptr;
    if (dw) gather_rows(X.ptr, X.ld, K, rows.data(), count, xc = x_rows.get(static_cast<size_t>(count * K)));
    float* dxc = dx ? dx_rows.get(static_cast<size_t>(count * K)) : nullptr;
    backward_products({dyc, N}, {xc, K}, W, count, N, K, dxc, dw, db, accumulate);
  } else {  // dY is all zero: dW and db get nothing added
    if (dw && !accumulate) std::fill(dw, dw + N * K, 0.0f);
    if (db && !accumulate) std::fill(db, db + N, 0.0f);
  }
  if (dx) scatter_rows(count > 0 ? dx_rows.get(0) : nullptr, K, rows.data(), count, M, dx, K);
  return true;
}

}  // namespace

const float* packed_weight_for(const char* op, const Tensor* packed, const char* w_name, const Tensor& w, int64_t N,
                               int64_t K, std::initializer_list<NamedTensor> outputs) {
  if (!packed) return nullptr;
  check_f32(check_cpu, op, "packed", *packed);
  for (const NamedTensor& o : outputs) check_no_alias(op, o.name, *o.tensor, "packed", *packed);
  const float* panels = packed_weight_panels(packed->data<float>(), packed->numel(), N, K);
  if (panels) return panels;
  const std::string viewed =
      w.ndim() == 2 ? "" : " viewed as [" + std::to_string(N) + ", " + std::to_string(K) + "] and";
  fail(op, ": packed ", packed->describe(), " is not ", w_name, " ", w.describe(), viewed, " packed for the ",
       gemm_kernel_name(), " GEMM kernel (packLinearWeight makes it; pack again after switching kernels)");
}

void weight_gradient_product(const float* dy, int64_t ldy, const float* x, int64_t ldx, int64_t M, int64_t N, int64_t K,
                             float* dw, bool accumulate) {
  if (N <= 0 || K <= 0) return;
  if (M <= 0) {
    if (!accumulate) std::fill(dw, dw + N * K, 0.0f);
    return;
  }
  weight_gradient(MatrixRef{dy, ldy}, MatrixRef{x, ldx}, M, N, K, dw, accumulate, nullptr, nullptr, nullptr);
}

Tensor pack_linear_weight(const Tensor& w) {
  const char* op = "packLinearWeight";
  check_f32(check_cpu, op, "w", w);
  check_ndim(op, "w", w, 2);
  Tensor packed = make_tensor({packed_weight_floats(w.dim(0), w.dim(1))}, DType::F32, w.device());
  pack_weight(w.data<float>(), w.dim(0), w.dim(1), packed.data<float>());
  return packed;
}

void linear_forward(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& y, const Tensor* packed) {
  const LinearDims d = check_linear_forward(check_cpu, x, w, b, y);
  const float* panels = packed_weight_for("linearForward", packed, "w", w, d.N, d.K, {{"y", &y}});
  const int64_t M = d.M, K = d.K, N = d.N;
  if (M == 0 || N == 0) return;

  const bool emu = bf16_emulation();
  float* yp = y.data<float>();
  if (K > 0 && !emu) {
    // One pass over y: the GEMM's kernels add the bias as they store each tile.
    sgemm_bias(false, true, M, N, K, 1.0f, x.data<float>(), K, w.data<float>(), K, b ? b->data<float>() : nullptr, yp, N,
               panels);
    return;
  }
  if (K > 0 && bf16_native_products()) {
    // The AVX-512 BF16 kernel: operands rounded as it converts them, the bias rounded as the
    // emulation rounds it, y rounded as it is stored.
    static thread_local std::vector<float> rounded_bias;  // kept: a training step allocates nothing
    if (b) {
      rounded_bias.resize(static_cast<size_t>(N));
      for (int64_t n = 0; n < N; n++) rounded_bias[n] = round_bf16(b->data<float>()[n]);
    }
    gemm_bf16(false, true, M, N, K, 1.0f, x.data<float>(), K, w.data<float>(), K, 0.0f, yp, N,
              b ? rounded_bias.data() : nullptr, true);
    return;
  }
  // bf16 emulation rounds the bias first; it goes into y and the GEMM adds onto it (beta = 1).
  if (b) {
    const float* bp = b->data<float>();
    parallel_for(M, (1 << 14) / N + 1, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; r++)
        for (int64_t n = 0; n < N; n++) yp[r * N + n] = emu ? round_bf16(bp[n]) : bp[n];
    });
  }
  if (K > 0) {
    std::vector<float> xs, ws;
    MatrixRef X = matmul_operand(x.data<float>(), M, K, K, emu, xs);
    MatrixRef W = matmul_operand(w.data<float>(), N, K, K, emu, ws);
    sgemm(false, true, M, N, K, 1.0f, X.ptr, X.ld, W.ptr, W.ld, b ? 1.0f : 0.0f, yp, N);
  } else if (!b) {
    for (int64_t i = 0; i < M * N; i++) yp[i] = 0.0f;
  }
  if (emu) round_bf16_block(yp, M, N, N);
}

void linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx, Tensor* dw, Tensor* db,
                     bool accumulate) {
  const LinearDims d = check_linear_backward(check_cpu, x, w, dy, dx, dw, db);
  const int64_t M = d.M, K = d.K, N = d.N;

  const bool emu = bf16_emulation();
  if (emu && M > 0 && N > 0 && K > 0 && bf16_native_products()) {
    // The AVX-512 BF16 kernel rounds dY, X and W as it converts them; db sums the rounded dY, as
    // the emulation does; dX is rounded as it is stored, dW stays fp32.
    const float* dyp = dy.data<float>();
    if (dw) gemm_bf16(true, false, N, K, M, 1.0f, dyp, N, x.data<float>(), K, accumulate ? 1.0f : 0.0f, dw->data<float>(), K);
    if (db) bias_gradient(dyp, N, M, N, db->data<float>(), accumulate, true);
    if (dx) gemm_bf16(false, false, M, K, N, 1.0f, dyp, N, w.data<float>(), K, 0.0f, dx->data<float>(), K, nullptr, true);
    return;
  }
  std::vector<float> dys, xs, ws;
  MatrixRef dY = matmul_operand(dy.data<float>(), M, N, N, emu, dys);
  float* const dwp = dw ? dw->data<float>() : nullptr;
  float* const dbp = db ? db->data<float>() : nullptr;
  float* const dxp = dx ? dx->data<float>() : nullptr;
  if (M <= 0 || N <= 0 || K <= 0) {  // an empty product: zeros, but db still sums dY's rows
    if (dwp && !accumulate) std::fill(dwp, dwp + N * K, 0.0f);
    if (dbp) bias_gradient(dY.ptr, dY.ld, M, N, dbp, accumulate);
    if (dxp) std::fill(dxp, dxp + M * K, 0.0f);
    return;
  }
  const MatrixRef X = dw ? matmul_operand(x.data<float>(), M, K, K, emu, xs) : MatrixRef{x.data<float>(), K};
  const MatrixRef W = dx ? matmul_operand(w.data<float>(), N, K, K, emu, ws) : MatrixRef{w.data<float>(), K};
  if (!emu && backward_products_nonzero_rows(dY, X, W, M, N, K, dxp, dwp, dbp, accumulate)) return;
  backward_products(dY, X, W, M, N, K, dxp, dwp, dbp, accumulate);
  if (dxp && emu) round_bf16_block(dxp, M, K, K);
}

}  // namespace cs::cpu
