// Blocked, packed, threaded SGEMM (BLIS-style loop nest around one register-tiled
// micro-kernel chosen for this CPU at run time).
//
//   op(B) is packed once, per KC block of k, into NR-wide panels shared by every thread
//   (by whichever thread first needs a panel); each thread takes the work items (a block of
//   at most MC rows × a chunk of columns) whose rows its parallel_for share holds, then
//   steals from the others:
//     for each KC block of k:            (C accumulates across blocks: beta, then 1)
//       pack the item's rows of op(A) into MR-tall panels (they stay in L2)
//       for each group of the kernel's b_panels_at_once NR panels of B:
//         for each MR panel of A:  for each NR panel of the group:  micro-kernel → C tile
//
// Packing makes the kernel's loads contiguous whatever the transposes are, and zero-pads
// the edges; a kernel with an edge variant computes an edge tile's valid part in place,
// others compute a full tile into a small buffer and only its valid part is written to C.
// A plain B already gives the kernel its NR values contiguously for each k (row k), so its
// full panels are read in place, and so is A where an item has few columns to share its
// packing (see a_rows below): the weight gradient dW = dYᵀ·X of a narrow layer (K = every
// row of the batch, M and N a few dozen) spent about as long packing its operands as
// multiplying them.
#include "cpu/gemm.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/env_switch.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "cpu/gemm_blocking.h"
#include "cpu/gemm_kernels.h"

namespace cs::cpu {

using gemm_detail::ceil_div;
using gemm_detail::EdgeKernel;
using gemm_detail::KernelSpec;
using gemm_detail::MicroKernel;

// CLIPSCALE_GEMM_A_IN_PLACE=0 always packs A, as before (for A/B comparisons).
bool a_in_place_enabled() {
  static const bool on = env_switch_on("CLIPSCALE_GEMM_A_IN_PLACE");
  return on;
}

namespace {

// ── kernel choice ──

bool cpu_has(const char* what) {
#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
  __builtin_cpu_init();
  if (std::strcmp(what, "avx512") == 0) return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
  if (std::strcmp(what, "avx2") == 0) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
  return std::strcmp(what, "portable") == 0;
}

// Every kernel this build has, by index; the active one is an atomic index so a
// switch (set_gemm_kernel) never tears a spec another thread is reading.
enum KernelIndex { kAvx512 = 0, kAvx2 = 1, kPortable = 2 };

const KernelSpec& kernel_at(int i) {
  static const KernelSpec table[3] = {gemm_detail::avx512_kernel(), gemm_detail::avx2_kernel(),
                                      gemm_detail::portable_kernel()};
  return table[i];
}

// The index of the named kernel if this CPU can run it, else -1.
int runnable_index(const std::string& name) {
  if (name == "portable") return kPortable;
  if (!gemm_detail::x86_kernels_built()) return -1;
  if (name == "avx512" && cpu_has("avx512")) return kAvx512;
  if (name == "avx2" && cpu_has("avx2")) return kAvx2;
  return -1;
}

int best_index() {
  for (const char* name : {"avx512", "avx2"})
    if (int i = runnable_index(name); i >= 0) return i;
  return kPortable;
}

int initial_index() {
  // CLIPSCALE_GEMM_KERNEL=avx2|portable forces a narrower kernel (for tests and
  // comparisons); a kernel this CPU cannot run is ignored.
  if (const char* env = std::getenv("CLIPSCALE_GEMM_KERNEL"))
    if (int i = runnable_index(env); i >= 0) return i;
  return best_index();
}

std::atomic<int> g_active{-1};

int active_index() {
  int i = g_active.load(std::memory_order_acquire);
  if (i < 0) {
    int expected = -1;
    g_active.compare_exchange_strong(expected, initial_index(), std::memory_order_acq_rel);
    i = g_active.load(std::memory_order_acquire);
  }
  return i;
}

const KernelSpec& active_kernel() { return kernel_at(active_index()); }

// ── blocking ──

constexpr int64_t kKC = 384;        // k-block: one A panel (MR×KC) plus one B panel (KC×NR) in L1/L2
constexpr int64_t kOwnPackedBBytes = 256 << 10;  // B packed by each thread for itself up to this size
constexpr int64_t kMC = 168;        // rows of A packed at a time (≈250 KB at KC=384: stays in L2)
constexpr int64_t kMaxBPanelsAtOnce = 16;  // bound on KernelSpec::b_panels_at_once
// A is read in place where an item has at most this many columns (see gemm_run's a_rows, a_cols).
constexpr int64_t kInPlaceColumns = 256;
// A transposed A up to 512: small's qkv and c_fc weight gradients in their transposed form (288, 384
// columns) measured 2-7% faster in place; linear.cpp's plain form of them has 96.
constexpr int64_t kInPlaceColumnsTransposed = 512;
constexpr double kThreadFlops = 2e6;  // below this (~20 µs on one core) handing work to the pool costs more than it saves

// Per-thread packing buffers.
thread_local gemm_detail::AlignedScratch<float> t_packed_a("sgemm: packing memory"), t_packed_b("sgemm: packing memory");

// Per-call state of each packed B panel, reset to empty by get().
enum : int32_t { kPanelEmpty = 0, kPanelPacking = 1, kPanelReady = 2 };
class PanelStates {
 public:
  std::atomic<int32_t>* get(size_t count) {
    if (count > n_) {
      states_.reset(new std::atomic<int32_t>[count]);
      n_ = count;
    }
    for (size_t i = 0; i < count; i++) states_[i].store(kPanelEmpty, std::memory_order_relaxed);
    return states_.get();
  }

 private:
  std::unique_ptr<std::atomic<int32_t>[]> states_;
  size_t n_ = 0;
};
thread_local PanelStates t_panel_state;

thread_local gemm_detail::ItemQueues t_item_queues;
thread_local gemm_detail::AlignedScratch<float> t_packed_b_own("sgemm: packing memory");  // see own_b in gemm_run
thread_local std::vector<int64_t> t_block_start;  // a GEMM's row blocks (see gemm_run), kept between calls

struct Problem {
  bool ta, tb;
  int64_t M, N, K;
  float alpha;
  const float* A;
  int64_t lda;
  const float* B;
  int64_t ldb;
  float beta;
  float* C;
  int64_t ldc;
  const float* bias = nullptr;  // N values added to every row of C (after alpha·AB + beta·C)
  const GemmEpilogue* epilogue = nullptr;  // run on each finished block of C
  const float* packed_b = nullptr;  // op(B) packed beforehand (pack_weight's panels): nothing to pack
};

// k-blocks of equal size (rather than one short tail): what gemm_run and pack_weight both use.
int64_t k_blocks(int64_t K) { return ceil_div(K, kKC); }
int64_t k_block_size(int64_t K) { return ceil_div(K, k_blocks(K)); }

// Whether an operand read in place, one row per k step (B, or a transposed A; a plain A's rows per
// tile), has rows `ld` floats apart spread over the L1 cache: rows a multiple of 2 KB apart fall into
// one or two of its 64 sets (4 KB: one), so only 8-24 of a panel's few hundred rows stay in L1 and
// every k step waits on L2. Such an operand (a weight or input whose rows are 512, 1024, 1536 or 2048
// floats long) is packed instead. Zen 3, AVX2 kernel, one thread,
// M = 1024, K = 256: N = 2048 in place 43 GFLOP/s, packed 77; N = 1536 64 against 79; N = 512 69
// against 75; N = 1280 (5 KB) 76 against 79 and N = 768 (3 KB) level, so those stay in place.
bool rows_spread_over_l1(int64_t ld) { return (ld * 4) % 2048 != 0; }

// dst[k·NR + c] = op(B)[k0 + k, j0 + c], zero for columns past N.
void pack_b_panel(const Problem& p, const KernelSpec& ks, int64_t k0, int64_t kc, int64_t j0, float* dst) {
  const int nr = ks.nr;
  const int64_t nv = std::min<int64_t>(nr, p.N - j0);
  if (p.tb) {  // op(B)[k, j] = B[j, k]
    ks.transpose_pack(p.B + j0 * p.ldb + k0, p.ldb, nv, nr, kc, dst);
    return;
  }
  for (int64_t k = 0; k < kc; k++) {
    const float* src = p.B + (k0 + k) * p.ldb + j0;
    float* d = dst + k * nr;
    std::memcpy(d, src, nv * sizeof(float));
    for (int64_t c = nv; c < nr; c++) d[c] = 0.0f;
  }
}

// dst[k·MR + r] = op(A)[i0 + r, k0 + k] for the panel's mv ≤ MR rows, zero for the rest.
void pack_a_panel(const Problem& p, const KernelSpec& ks, int64_t i0, int64_t mv, int64_t k0, int64_t kc, float* dst) {
  const int mr = ks.mr;
  if (!p.ta) {
    ks.transpose_pack(p.A + i0 * p.lda + k0, p.lda, mv, mr, kc, dst);
    return;
  }
  // op(A)[i, k] = A[k, i]: each k gives mr contiguous values.
  for (int64_t k = 0; k < kc; k++) {
    const float* src = p.A + (k0 + k) * p.lda + i0;
    float* d = dst + k * mr;
    for (int64_t r = 0; r < mv; r++) d[r] = src[r];
    for (int64_t r = mv; r < mr; r++) d[r] = 0.0f;
  }
}

// C = beta·C (+ bias) over M×N (beta = 0 writes zeros without reading).
void scale_c(const Problem& p) {
  for (int64_t i = 0; i < p.M; i++) {
    float* c = p.C + i * p.ldc;
    if (p.beta == 0.0f) std::fill(c, c + p.N, 0.0f);
    else if (p.beta != 1.0f)
      for (int64_t j = 0; j < p.N; j++) c[j] *= p.beta;
    if (p.bias)
      for (int64_t j = 0; j < p.N; j++) c[j] += p.bias[j];
  }
}

// Runs fn(begin, end) over [0, n) on up to nt threads (nt ≤ 1: on this thread).
template <typename Fn>
void for_range(int nt, int64_t n, int64_t grain, Fn&& fn) {
  if (nt <= 1 || n <= grain) {
    if (n > 0) fn(int64_t{0}, n);
    return;
  }
  parallel_for(n, grain, fn);
}

// One GEMM on up to nt threads.
void gemm_run(const Problem& p, int nt) {
  if (p.M <= 0 || p.N <= 0) return;
  if (p.K <= 0 || p.alpha == 0.0f) {  // C = beta·C; A and B are not read
    for_range(nt, p.M, std::max<int64_t>(1, (1 << 16) / p.N), [&](int64_t m0, int64_t m1) {
      Problem q = p;
      q.M = m1 - m0;
      q.C = p.C + m0 * p.ldc;
      scale_c(q);
      if (p.epilogue) p.epilogue->fn(p.epilogue->ctx, m0, m1, 0, p.N);
    });
    return;
  }

  const KernelSpec ks = active_kernel();
  const int mr = ks.mr, nr = ks.nr;
  const int64_t b_group = std::clamp<int64_t>(ks.b_panels_at_once, 1, kMaxBPanelsAtOnce);
  const int64_t npanels = ceil_div(p.N, nr), mpanels = ceil_div(p.M, mr);
  const int64_t n_pad = npanels * nr;
  const int64_t nkb = k_blocks(p.K);
  const int64_t kc_max = k_block_size(p.K);
  const int64_t mc_panels = std::max<int64_t>(1, kMC / mr);

  if (2.0 * p.M * p.N * p.K < kThreadFlops) nt = 1;
  // Inside a parallel region the parts would run one after another on this thread, the first
  // waiting for owners of the others' items who cannot come (see run_own_first): one part.
  if (inside_parallel_region()) nt = 1;

  // Work items: a block of rows × a chunk of column panels, each through every k-block, so items
  // are independent and any thread can take any of them (see ItemQueues).
  const gemm_detail::ItemGrid grid =
      gemm_detail::item_grid(mpanels, npanels, mr, nr, mc_panels, nt, /*rows_after_column_share=*/p.packed_b != nullptr);
  const int64_t mblocks = grid.mblocks, nchunks = grid.nchunks;
  const int64_t block_panels = grid.block_panels, chunk_panels = grid.chunk_panels;
  const int64_t items = mblocks * nchunks;
  nt = static_cast<int>(std::min<int64_t>(nt, items));

  // Packed B: k-block kb holds npanels panels of kc×NR, starting at row k0 of n_pad columns.
  // Inside the one parallel region, threads first take panels to pack from a counter, then
  // work items; an item that reaches a panel another thread is still packing waits for that
  // panel only. So packing is shared with no second wake-up of the pool and no barrier, and
  // it stays correct when a nested parallel_run runs the threads one after another.
  // A weight packed beforehand (pack_weight, same layout) is read as it is: nothing to pack.
  const float* prepacked = p.packed_b;
  float* packed_b = prepacked ? nullptr : t_packed_b.get(static_cast<size_t>(p.K * n_pad));
  const int64_t b_panels = prepacked ? 0 : nkb * npanels;
  std::atomic<int32_t>* b_state = t_panel_state.get(static_cast<size_t>(b_panels));
  std::atomic<int64_t> next_panel{0};
  // A is read in place, not packed, where an item has few column panels (≤ 256 columns, ≤ 512
  // for a transposed A) to reuse a packed copy: there packing cost a fifth of the multiply or more
  // (K = 64..256), most for a narrow layer's weight gradient (A = dYᵀ or Xᵀ: 2 to 12 panels to
  // share the packing of every row of the batch). With many panels (N = 768, 1024) the packed
  // copy, contiguous in L2, measured faster. A plain A (row-major, a linear layer's input) needs the kernel's row-reading
  // variant; a transposed A already gives MR values per k, a row of the matrix apart, and needs
  // only the edge kernel (a full tile would read rows past M).
  // (Neither where A's rows are a multiple of 2 KB apart: see rows_spread_over_l1.)
  const bool a_rows = !p.ta && ks.fn_a_rows && ks.edge_a_rows && a_in_place_enabled() && rows_spread_over_l1(p.lda);
  const bool a_cols = p.ta && ks.edge && a_in_place_enabled() && rows_spread_over_l1(p.lda);
  auto b_panel_offset = [&](int64_t kb, int64_t jp) {
    const int64_t k0 = kb * kc_max, kc = std::min(kc_max, p.K - k0);
    return k0 * n_pad + jp * nr * kc;
  };
  // A plain B's full panels are read in place (row k of the panel is contiguous), unless its rows
  // are a multiple of 2 KB apart (see rows_spread_over_l1).
  const bool b_spread = rows_spread_over_l1(p.ldb);
  auto b_in_place = [&](int64_t jp) { return b_spread && !prepacked && !p.tb && (jp + 1) * nr <= p.N; };
  // Packs panel t = kb·npanels + jp unless another thread has claimed it; true if ready.
  auto try_pack = [&](int64_t t) {
    if (b_in_place(t % npanels)) return true;
    std::atomic<int32_t>& state = b_state[t];
    int32_t expected = kPanelEmpty;
    if (!state.compare_exchange_strong(expected, kPanelPacking, std::memory_order_acq_rel))
      return expected == kPanelReady;
    const int64_t kb = t / npanels, jp = t % npanels;
    const int64_t k0 = kb * kc_max, kc = std::min(kc_max, p.K - k0);
    pack_b_panel(p, ks, k0, kc, jp * nr, packed_b + b_panel_offset(kb, jp));
    state.store(kPanelReady, std::memory_order_release);
    return true;
  };
  auto packed_b_panel = [&](int64_t kb, int64_t jp) -> const float* {
    if (prepacked) return prepacked + b_panel_offset(kb, jp);
    const int64_t t = kb * npanels + jp;
    if (b_in_place(jp)) return p.B + kb * kc_max * p.ldb + jp * nr;
    if (b_state[t].load(std::memory_order_acquire) != kPanelReady && !try_pack(t))
      while (b_state[t].load(std::memory_order_acquire) != kPanelReady) std::this_thread::yield();
    return packed_b + b_panel_offset(kb, jp);
  };

  // Each thread owns the row blocks that parallel_for would give it over M (their first row
  // in its contiguous share), so the rows of A it reads and of C it writes are the ones the
  // ops around the GEMM touch on that core: they come from its own L2, not the other core's.
  // Where the columns were split into chunks of equal width, as many per thread (few rows: an
  // inference batch), each thread owns a contiguous share of the chunks instead: row blocks of
  // MR-panels rarely split evenly (M = 400: 10, 10 and 9 panels, one part-filled), and a whole
  // block stolen at the end left a core idle 3-4% of the GEMM's time. Equal column shares give
  // every thread the same work and its own panels of B (no panel travels between cores), and
  // the few rows fit in both cores' L2 anyway.
  // A thread takes its own items from the front and, when done and their owner has had time to
  // take them, the others' from the back (run_own_first: a thread the OS preempts gets fewer done);
  // where threads own column chunks, at once (no rows to keep on a core).
  const bool by_columns = nt > 1 && nchunks % nt == 0 && npanels % nchunks == 0;
  // Row blocks: where threads own rows, each thread's share [M·t/nt, M·(t+1)/nt) is cut into blocks
  // from its own first row, so no block straddles two shares. Blocks cut from row 0 put the rows
  // around M/2 (up to a block's worth, 168 of a 2,176-row layer) on the other core from the ops
  // around the GEMM, which read and wrote them as parallel_for splits them (with own_b and
  // run_own_first below, a tiny training step's forward calls ran 2-9% faster). A block's last
  // panel may then be short (an edge tile) mid-matrix.
  const int64_t block_rows = block_panels * mr;
  std::vector<int64_t>& block_start = t_block_start;  // the row blocks' first rows, then M
  block_start.clear();
  const int shares = by_columns ? 1 : nt;
  for (int t = 0; t < shares; t++)
    for (int64_t r = p.M * t / shares, r1 = p.M * (t + 1) / shares; r < r1; r += block_rows) block_start.push_back(r);
  const int64_t row_blocks = static_cast<int64_t>(block_start.size());
  block_start.push_back(p.M);
  gemm_detail::ItemQueues& queues = t_item_queues;
  queues.reset(nt, row_blocks, nchunks, [&](int64_t chunk, int64_t mbi) {
    if (by_columns) return static_cast<int>(chunk * nt / nchunks);
    return gemm_detail::row_owner(block_start[static_cast<size_t>(mbi)], p.M, nt);  // the share it was cut from
  });
  // Where threads own rows and B packs small (a narrow layer's weight), each thread packs all of it
  // for itself instead of sharing the panels: it starts at once rather than waiting for panels the
  // other thread is packing, and reads them from its own cache rather than the other core's.
  const bool own_b = !by_columns && nt > 1 && b_panels > 0 && p.K * n_pad * 4 <= kOwnPackedBBytes;
  auto work = [&](int self, int) {
    float* my_b = nullptr;
    if (own_b) {
      my_b = t_packed_b_own.get(static_cast<size_t>(p.K * n_pad));
      for (int64_t t = 0; t < b_panels; t++) {
        if (b_in_place(t % npanels)) continue;
        const int64_t kb = t / npanels, jp = t % npanels;
        const int64_t k0 = kb * kc_max, kc = std::min(kc_max, p.K - k0);
        pack_b_panel(p, ks, k0, kc, jp * nr, my_b + b_panel_offset(kb, jp));
      }
    } else {
      for (int64_t t; (t = next_panel.fetch_add(1, std::memory_order_relaxed)) < b_panels;) try_pack(t);
    }
    float* packed_a = t_packed_a.get(static_cast<size_t>(block_panels * mr * kc_max));
    alignas(64) float edge[64 * 64];  // one MR×NR tile (MR, NR ≤ 64)
    // One tile of C (rows i0 … i0 + mv, B panel jp) over one k-block: the kernel, its edge variant, or
    // the kernel into `edge` with the valid part written to C.
    auto c_tile = [&](MicroKernel fn, EdgeKernel edge_fn, const float* ap, int64_t a_ks, const float* bp, int64_t jp,
                      int64_t i0, int64_t mv, int64_t kb, int64_t kc, float beta) {
      const int64_t b_ks = b_in_place(jp) ? p.ldb : nr;
      const int64_t j0 = jp * nr, nv = std::min<int64_t>(nr, p.N - j0);
      float* c = p.C + i0 * p.ldc + j0;
      // The bias goes in once, with the first k-block.
      const float* bias = kb == 0 && p.bias ? p.bias + j0 : nullptr;
      if (mv == mr && nv == nr) {
        fn(kc, ap, a_ks, bp, b_ks, c, p.ldc, p.alpha, beta, bias);
        return;
      }
      if (edge_fn) {
        edge_fn(kc, ap, a_ks, bp, b_ks, c, p.ldc, p.alpha, beta, bias, static_cast<int>(mv), static_cast<int>(nv));
        return;
      }
      ks.fn(kc, ap, a_ks, bp, b_ks, edge, nr, 1.0f, 0.0f, nullptr);
      for (int64_t r = 0; r < mv; r++) {
        float* cr = c + r * p.ldc;
        const float* er = edge + r * nr;
        if (beta == 0.0f)
          for (int64_t j = 0; j < nv; j++) cr[j] = p.alpha * er[j] + (bias ? bias[j] : 0.0f);
        else
          for (int64_t j = 0; j < nv; j++) cr[j] = p.alpha * er[j] + (beta * cr[j] + (bias ? bias[j] : 0.0f));
      }
    };
    queues.run_own_first(self, [&](int64_t item) {
      // An owner's items run chunk by chunk, so a chunk's B panels stay in cache.
      const int64_t chunk = item / row_blocks, block = item % row_blocks;
      const int64_t row0 = block_start[static_cast<size_t>(block)], row1 = block_start[static_cast<size_t>(block) + 1];
      const int64_t panels = ceil_div(row1 - row0, mr);
      const int64_t np0 = chunk * chunk_panels, np1 = std::min(npanels, np0 + chunk_panels);
      const int64_t item_columns = (np1 - np0) * nr;
      const bool a_in_place = a_rows && item_columns <= kInPlaceColumns;
      const bool a_cols_in_place = a_cols && item_columns <= kInPlaceColumnsTransposed;
      for (int64_t kb = 0; kb < nkb; kb++) {
        const int64_t k0 = kb * kc_max, kc = std::min(kc_max, p.K - k0);
        const float beta = kb == 0 ? p.beta : 1.0f;
        if (!a_in_place && !a_cols_in_place)
          for (int64_t ip = 0; ip < panels; ip++)
            pack_a_panel(p, ks, row0 + ip * mr, std::min<int64_t>(mr, row1 - row0 - ip * mr), k0, kc, packed_a + ip * mr * kc);
        // b_group B panels at a time, each A panel through all of them (KernelSpec::b_panels_at_once).
        for (int64_t js = np0; js < np1; js += b_group) {
          const int64_t js1 = std::min(np1, js + b_group);
          const float* bps[kMaxBPanelsAtOnce];
          for (int64_t jp = js; jp < js1; jp++)
            bps[jp - js] = my_b && !b_in_place(jp) ? my_b + b_panel_offset(kb, jp) : packed_b_panel(kb, jp);
          for (int64_t ip = 0; ip < panels; ip++) {
            const int64_t i0 = row0 + ip * mr, mv = std::min<int64_t>(mr, row1 - i0);
            const float* ap = a_in_place ? p.A + i0 * p.lda + k0
                              : a_cols_in_place ? p.A + k0 * p.lda + i0
                                                : packed_a + ip * mr * kc;
            const int64_t a_ks = a_in_place || a_cols_in_place ? p.lda : mr;
            const MicroKernel fn = a_in_place ? ks.fn_a_rows : ks.fn;
            const EdgeKernel edge_fn = a_in_place ? ks.edge_a_rows : ks.edge;
            for (int64_t jp = js; jp < js1; jp++) c_tile(fn, edge_fn, ap, a_ks, bps[jp - js], jp, i0, mv, kb, kc, beta);
          }
        }
      }
      if (p.epilogue) p.epilogue->fn(p.epilogue->ctx, row0, row1, np0 * nr, std::min(np1 * nr, p.N));
    }, /*wait_for_owners=*/!by_columns);
  };
  if (nt <= 1) work(0, 1);
  else parallel_run(nt, work);
}

}  // namespace

void sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B,
           int64_t ldb, float beta, float* C, int64_t ldc) {
  gemm_run(Problem{ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc}, num_threads());
}

void sgemm_serial(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                  const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  gemm_run(Problem{ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc}, 1);
}

void sgemm_bias(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                const float* B, int64_t ldb, const float* bias, float* C, int64_t ldc, const float* packed_b) {
  if (packed_b && !tb) fail("sgemm_bias: a prepacked B is a weight used transposed (trans_b)");
  Problem p{ta, tb, M, N, K, alpha, A, lda, B, ldb, 0.0f, C, ldc};
  p.bias = bias;
  p.packed_b = packed_b;
  gemm_run(p, num_threads());
}

void sgemm_bias_epilogue(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                         const float* B, int64_t ldb, const float* bias, float* C, int64_t ldc,
                         const GemmEpilogue& epilogue, const float* packed_b) {
  if (packed_b && !tb) fail("sgemm_bias_epilogue: a prepacked B is a weight used transposed (trans_b)");
  Problem p{ta, tb, M, N, K, alpha, A, lda, B, ldb, 0.0f, C, ldc};
  p.bias = bias;
  p.epilogue = &epilogue;
  p.packed_b = packed_b;
  gemm_run(p, num_threads());
}

// Header: a tag, the kernel's index and NR, N, K (floats hold these integers exactly below 2^24).
constexpr float kPackedWeightTag = 24301.0f;

int64_t packed_weight_floats(int64_t N, int64_t K) {
  const int64_t nr = active_kernel().nr;
  return kPackedWeightHeader + K * ceil_div(N, nr) * nr;
}

void pack_weight(const float* W, int64_t N, int64_t K, float* dst) {
  if (N >= (1 << 24) || K >= (1 << 24)) fail("packLinearWeight: a weight of ", N, "×", K, " is too large to prepack");
  const int index = active_index();
  const KernelSpec& ks = kernel_at(index);
  const int nr = ks.nr;
  std::fill(dst, dst + kPackedWeightHeader, 0.0f);
  dst[0] = kPackedWeightTag;
  dst[1] = static_cast<float>(index);
  dst[2] = static_cast<float>(nr);
  dst[3] = static_cast<float>(N);
  dst[4] = static_cast<float>(K);
  if (N == 0 || K == 0) return;
  Problem p{false, true, 0, N, K, 1.0f, nullptr, 0, W, K, 0.0f, nullptr, 0};
  const int64_t npanels = ceil_div(N, nr), n_pad = npanels * nr, nkb = k_blocks(K), kc_max = k_block_size(K);
  float* panels = dst + kPackedWeightHeader;
  parallel_for(nkb * npanels, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; t++) {
      const int64_t kb = t / npanels, jp = t % npanels;
      const int64_t k0 = kb * kc_max, kc = std::min(kc_max, K - k0);
      pack_b_panel(p, ks, k0, kc, jp * nr, panels + k0 * n_pad + jp * nr * kc);
    }
  });
}

const float* packed_weight_panels(const float* packed, int64_t numel, int64_t N, int64_t K) {
  if (numel < kPackedWeightHeader || numel != packed_weight_floats(N, K)) return nullptr;
  const int index = active_index();
  const KernelSpec& ks = kernel_at(index);
  const bool same = packed[0] == kPackedWeightTag && packed[1] == static_cast<float>(index) &&
                    packed[2] == static_cast<float>(ks.nr) && packed[3] == static_cast<float>(N) &&
                    packed[4] == static_cast<float>(K);
  return same ? packed + kPackedWeightHeader : nullptr;
}

void sgemm_batched(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                   int64_t sa, const float* B, int64_t ldb, int64_t sb, float beta, float* C, int64_t ldc, int64_t sc,
                   int64_t batch) {
  if (batch <= 0 || M <= 0 || N <= 0) return;
  auto one = [&](int64_t b, int nt) {
    gemm_run(Problem{ta, tb, M, N, K, alpha, A + b * sa, lda, B + b * sb, ldb, beta, C + b * sc, ldc}, nt);
  };
  const int nt = num_threads();
  // Many products (attention heads), or small ones: whole products per thread. A few
  // large ones that would not divide evenly between threads: each uses every thread.
  const double flops = 2.0 * M * N * K;
  const bool whole_products = batch >= nt && (flops < 8 * kThreadFlops || batch % nt == 0 || batch >= 4 * nt);
  if (nt > 1 && whole_products) {
    parallel_for(batch, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; b++) one(b, 1);
    });
  } else {
    for (int64_t b = 0; b < batch; b++) one(b, nt);
  }
}

void transpose_block(const float* src, int64_t ld, int64_t rows, int64_t cols, float* dst) {
  if (rows > 0 && cols > 0) active_kernel().transpose_pack(src, ld, rows, rows, cols, dst);
}

const char* gemm_kernel_name() { return active_kernel().name; }

bool sgemm_reads_transposed_a_in_place(int64_t columns) {
  return active_kernel().edge && a_in_place_enabled() && columns <= kInPlaceColumnsTransposed;
}

GemmTile gemm_tile() { return {active_kernel().mr, active_kernel().nr}; }

bool set_gemm_kernel(const char* name) {
  const std::string want = name ? name : "";
  const int i = want == "best" ? best_index() : runnable_index(want);
  if (i < 0) return false;
  g_active.store(i, std::memory_order_release);
  return true;
}

}  // namespace cs::cpu
