// The bf16 GEMM driver: converts both operands to bf16 pairs along k once, into layouts the
// micro-kernel reads with fixed strides, then runs the BLIS-style loop nest over work items
// (a block of rows × a chunk of column panels, each through every k-block) taken by the
// pool's threads from one counter:
//   op(A) not transposed (a layer's input): each row converted along k, [M, KP], read by the
//     kernel row by row (no transpose to pay for);
//   op(A) transposed (a weight gradient's dYᵀ): rows 2p and 2p+1 of A interleaved, [KP, M];
//   op(B): likewise [KP, N] (a linear weight W [N, K] converted along k and gathered per panel).
// Strides are an odd number of cache lines, so the rows a kernel reads together spread over L1's
// sets. Conversion costs one pass over each operand, writing half the bytes; the fp32 GEMM packs B
// per call too. Edge tiles are computed whole into a buffer (the operands are zero-padded) and
// only their valid part is written.
#include "cpu/gemm_bf16.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "cpu/cpu_bf16.h"
#include "cpu/gemm_bf16_kernels.h"
#include "cpu/gemm_blocking.h"

namespace cs::cpu {

using gemm_bf16_detail::Bf16KernelSpec;
using gemm_bf16_detail::kMR;
using gemm_bf16_detail::kNR;
using gemm_detail::ceil_div;

namespace {

constexpr int64_t kKCP = 256;          // pairs per k-block: a B panel of 32 KB stays in L1
constexpr int64_t kMCPanels = 12;      // A panels per row block (168 rows, ≤ 172 KB a k-block: L2)
constexpr double kThreadFlops = 2e6;   // below this one thread does it all (as the fp32 GEMM)

bool native_available() {
  static const bool ok = gemm_bf16_detail::bf16_avx512_built() && cpu_bf16_support().avx512_bf16;
  return ok;
}

const Bf16KernelSpec& spec_for(Bf16Kernel k) {
  static const Bf16KernelSpec native = gemm_bf16_detail::bf16_avx512_kernel();
  static const Bf16KernelSpec portable = gemm_bf16_detail::bf16_portable_kernel();
  if (k == Bf16Kernel::kAvx512Bf16) {
    if (!native_available()) fail("gemm_bf16: this CPU (or build) has no AVX-512 BF16");
    return native;
  }
  if (k == Bf16Kernel::kBest && native_available()) return native;
  return portable;
}

// The caller's conversion buffers.
thread_local gemm_detail::AlignedScratch<uint32_t> t_a_pairs("gemm_bf16: bf16 operands"), t_b_pairs("gemm_bf16: bf16 operands");

// C = beta·C + bias (K = 0: nothing to multiply), rounded if asked.
void scale_only(int64_t M, int64_t N, float beta, float* C, int64_t ldc, const float* bias, bool round_c) {
  parallel_for(M, std::max<int64_t>(1, (1 << 14) / N), [&](int64_t m0, int64_t m1) {
    for (int64_t i = m0; i < m1; i++)
      for (int64_t j = 0; j < N; j++) {
        float& c = C[i * ldc + j];
        const float v = (beta == 0.0f ? 0.0f : beta * c) + (bias ? bias[j] : 0.0f);
        c = round_c ? round_bf16(v) : v;
      }
  });
}

}  // namespace

bool bf16_kernel_native() { return native_available(); }

void gemm_bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
               const float* B, int64_t ldb, float beta, float* C, int64_t ldc, const float* bias, bool round_c,
               Bf16Kernel kernel) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == 0.0f) return scale_only(M, N, beta, C, ldc, bias, round_c);
  const Bf16KernelSpec& ks = spec_for(kernel);
  const int64_t KP = ceil_div(K, 2);
  const int64_t mpanels = ceil_div(M, kMR), npanels = ceil_div(N, kNR);
  const int64_t m_pad = mpanels * kMR;
  // Strides of an odd number of cache lines: the kernel's 14 rows of A, and the 256 steps of a B
  // panel it keeps in L1, then fall in different L1 sets whatever the sizes are.
  auto odd_lines = [](int64_t dwords) {
    int64_t ld = ceil_div(dwords, 16) * 16;
    return (ld / 16) % 2 == 0 ? ld + 16 : ld;
  };
  const bool a_rows = !ta;
  // A: rows [m_pad, a_ks] (pairs along each row, read in place of order) or, transposed, [KP, a_ks]
  // (pair p of every row i at p·a_ks + i). B: [KP, b_ks], pair p of column j at p·b_ks + j.
  const int64_t a_ks = a_rows ? odd_lines(KP) : odd_lines(m_pad);
  const int64_t b_ks = odd_lines(npanels * kNR);
  uint32_t* ap = t_a_pairs.get(static_cast<size_t>(a_rows ? m_pad * a_ks : KP * a_ks));
  uint32_t* bp = t_b_pairs.get(static_cast<size_t>(KP * b_ks));

  // ── conversion: tasks over A (rows, or pairs of rows when transposed), then over B (pairs of
  //    rows, or 32-column panels of a transposed B) ──
  constexpr int64_t kRowsPerTask = 8;
  const int64_t a_tasks = a_rows ? ceil_div(m_pad, kRowsPerTask) : ceil_div(KP, kRowsPerTask);
  const int64_t b_tasks = tb ? npanels : ceil_div(KP, kRowsPerTask);
  const int nt = 2.0 * M * N * K < kThreadFlops ? 1 : num_threads();
  // dst[0, n) = pair(lo, hi) rows, zero up to `width`.
  auto two_rows = [&](const float* lo, const float* hi, int64_t n, int64_t width, uint32_t* dst) {
    ks.pair_two_rows(lo, hi, n, dst);
    std::fill(dst + n, dst + width, 0u);
  };
  auto convert = [&](int64_t t0, int64_t t1) {
    static thread_local std::vector<uint32_t> rows;  // a transposed B panel's 32 rows converted along k
    for (int64_t t = t0; t < t1; t++) {
      if (t < a_tasks && a_rows) {
        for (int64_t i = t * kRowsPerTask; i < std::min(m_pad, (t + 1) * kRowsPerTask); i++) {
          uint32_t* dst = ap + i * a_ks;
          if (i < M) ks.pair_along_row(A + i * lda, K, dst);
          std::fill(dst + (i < M ? KP : 0), dst + a_ks, 0u);
        }
      } else if (t < a_tasks) {
        // op(A)[i, k] = A[k, i]: pair p of every row i from A's rows 2p and 2p+1.
        for (int64_t p = t * kRowsPerTask; p < std::min(KP, (t + 1) * kRowsPerTask); p++)
          two_rows(A + 2 * p * lda, 2 * p + 1 < K ? A + (2 * p + 1) * lda : nullptr, M, a_ks, ap + p * a_ks);
      } else if (!tb) {
        const int64_t u = t - a_tasks;
        for (int64_t p = u * kRowsPerTask; p < std::min(KP, (u + 1) * kRowsPerTask); p++)
          two_rows(B + 2 * p * ldb, 2 * p + 1 < K ? B + (2 * p + 1) * ldb : nullptr, N, b_ks, bp + p * b_ks);
      } else {
        // op(B)[k, j] = W[j, k]: the panel's rows of W converted along k, then transposed.
        const int64_t jp = t - a_tasks, j0 = jp * kNR, nv = std::min<int64_t>(kNR, N - j0);
        rows.resize(static_cast<size_t>(kNR * KP));
        ks.pack_transposed_panel(B + j0 * ldb, ldb, nv, K, rows.data(), bp + j0, b_ks);
      }
    }
  };
  // Tasks differ in size (A's and B's rows differ in width): threads take them from a counter.
  if (nt <= 1) {
    convert(0, a_tasks + b_tasks);
  } else {
    std::atomic<int64_t> next_task{0};
    parallel_run(nt, [&](int, int) {
      for (int64_t t; (t = next_task.fetch_add(1, std::memory_order_relaxed)) < a_tasks + b_tasks;) convert(t, t + 1);
    });
  }

  // ── the product ──
  const int64_t nkb = ceil_div(KP, kKCP), kcp_max = ceil_div(KP, nkb);
  const gemm_detail::ItemGrid grid = gemm_detail::item_grid(mpanels, npanels, kMR, kNR, kMCPanels, nt);
  const int64_t mblocks = grid.mblocks, nchunks = grid.nchunks;
  const int64_t block_panels = grid.block_panels, chunk_panels = grid.chunk_panels;
  const int64_t items = mblocks * nchunks;
  std::atomic<int64_t> next{0};
  auto work = [&](int, int) {
    alignas(64) float edge[kMR * kNR];
    // Items chunk by chunk: consecutive items share their B panels.
    for (int64_t item; (item = next.fetch_add(1, std::memory_order_relaxed)) < items;) {
      const int64_t chunk = item / mblocks, mb = (item % mblocks) * block_panels;
      const int64_t me = std::min(mpanels, mb + block_panels);
      const int64_t np0 = chunk * chunk_panels, np1 = std::min(npanels, np0 + chunk_panels);
      for (int64_t kb = 0; kb < nkb; kb++) {
        const int64_t p0 = kb * kcp_max, kcp = std::min(kcp_max, KP - p0);
        const float beta_kb = kb == 0 ? beta : 1.0f;
        const bool last = kb == nkb - 1;
        for (int64_t jp = np0; jp < np1; jp++) {
          const uint32_t* b = bp + p0 * b_ks + jp * kNR;
          const int64_t j0 = jp * kNR, nv = std::min<int64_t>(kNR, N - j0);
          const float* bias_kb = kb == 0 && bias ? bias + j0 : nullptr;
          for (int64_t ip = mb; ip < me; ip++) {
            const int64_t i0 = ip * kMR, mv = std::min<int64_t>(kMR, M - i0);
            const uint32_t* a = a_rows ? ap + i0 * a_ks + p0 : ap + p0 * a_ks + i0;
            const auto fn = a_rows ? ks.fn_a_rows : ks.fn;
            float* c = C + i0 * ldc + j0;
            if (mv == kMR && nv == kNR) {
              fn(kcp, a, a_ks, b, b_ks, c, ldc, alpha, beta_kb, bias_kb, round_c && last);
              continue;
            }
            // An edge tile: whole into the buffer, then its valid part as the kernel's epilogue would.
            fn(kcp, a, a_ks, b, b_ks, edge, kNR, 1.0f, 0.0f, nullptr, false);
            for (int64_t r = 0; r < mv; r++) {
              float* cr = c + r * ldc;
              const float* er = edge + r * kNR;
              for (int64_t j = 0; j < nv; j++) {
                const float bj = bias_kb ? bias_kb[j] : 0.0f;
                float v;
                if (bias_kb) v = std::fma(alpha, er[j], beta_kb == 0.0f ? bj : std::fma(beta_kb, cr[j], bj));
                else if (beta_kb == 0.0f) v = alpha * er[j];
                else v = std::fma(alpha, er[j], beta_kb * cr[j]);
                cr[j] = round_c && last ? round_bf16(v) : v;
              }
            }
          }
        }
      }
    }
  };
  if (nt <= 1 || items <= 1) work(0, 1);
  else parallel_run(static_cast<int>(std::min<int64_t>(nt, items)), work);
}

void gemm_bf16_plain(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                     const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  gemm_bf16(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

// ── the bf16 mode's choice ──

namespace {
std::atomic<int> g_native{-1};  // -1: not yet read from the environment
}

bool bf16_native_products() {
  int v = g_native.load(std::memory_order_acquire);
  if (v < 0) {
    const char* env = std::getenv("CLIPSCALE_CPU_BF16");
    v = native_available() && !(env && std::strcmp(env, "emulate") == 0) ? 1 : 0;
    g_native.store(v, std::memory_order_release);
  }
  return v == 1;
}

bool set_bf16_native(bool on) {
  if (on && !native_available()) return false;
  g_native.store(on ? 1 : 0, std::memory_order_release);
  return true;
}

}  // namespace cs::cpu
