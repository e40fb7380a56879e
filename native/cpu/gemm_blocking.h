// What the fp32 and bf16 GEMM drivers (gemm.cpp, gemm_bf16.cpp) share: per-thread packing
// buffers, how a product is cut into work items a thread can take whole, and the queues that
// hand the items out (also used by linear.cpp for the input gradient's row blocks).
#pragma once
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "core/cpu_pause.h"
#include "core/error.h"

namespace cs::cpu::gemm_detail {

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// A buffer of T, 64-byte aligned, grown on demand and kept (a training step repeats its sizes).
template <typename T>
class AlignedScratch {
 public:
  explicit AlignedScratch(const char* what) : what_(what) {}
  ~AlignedScratch() { std::free(p_); }
  AlignedScratch(const AlignedScratch&) = delete;
  AlignedScratch& operator=(const AlignedScratch&) = delete;
  T* get(size_t count) {
    if (count > n_) {
      std::free(p_);
      n_ = 0;
      const size_t bytes = (count * sizeof(T) + 63) / 64 * 64;
      p_ = static_cast<T*>(std::aligned_alloc(64, bytes));
      if (!p_) fail(what_, ": could not allocate ", bytes, " bytes");
      n_ = count;
    }
    return p_;
  }

 private:
  const char* what_;
  T* p_ = nullptr;
  size_t n_ = 0;
};

// Work items: a block of rows × a chunk of column panels. Rows come in blocks of at most
// mc_panels MR-panels; with threads, the longer side of the items is halved until there are
// four items a thread, so a thread the OS preempts just takes fewer (cutting the longer side
// reads the fewest extra operand values: every column chunk reads A again, every row block B).
// rows_after_column_share: once there is a column chunk a thread, cut the rows instead. For a
// prepacked weight B (a linear layer's forward) B streams contiguously, while every chunk packs
// its rows of A again: few rows and wide columns (an inference batch: M = 400, N = 768-3072) cut
// into four chunks a thread had each thread pack all of A four times (pairwise on a Zen 3, two
// threads: M = 400, N = 768, K = 3072 +9-17%, the whole ViT-B-32 encode +8-12%).
struct ItemGrid {
  int64_t mblocks, nchunks;            // items = mblocks · nchunks
  int64_t block_panels, chunk_panels;  // MR-panels a row block, NR-panels a column chunk
};

inline ItemGrid item_grid(int64_t mpanels, int64_t npanels, int mr, int nr, int64_t mc_panels, int nt,
                          bool rows_after_column_share = false) {
  int64_t mblocks = ceil_div(mpanels, mc_panels), nchunks = 1;
  while (nt > 1 && mblocks * nchunks < 4 * nt) {
    const int64_t rows = ceil_div(mpanels, mblocks) * mr, cols = ceil_div(npanels, nchunks) * nr;
    if ((rows >= cols || (rows_after_column_share && nchunks >= nt)) && mblocks < mpanels) mblocks = std::min(mpanels, 2 * mblocks);
    else if (nchunks < npanels) nchunks = std::min(npanels, 2 * nchunks);
    else if (mblocks < mpanels) mblocks = std::min(mpanels, 2 * mblocks);
    else break;
  }
  const int64_t block_panels = ceil_div(mpanels, mblocks), chunk_panels = ceil_div(npanels, nchunks);
  return {ceil_div(mpanels, block_panels), ceil_div(npanels, chunk_panels), block_panels, chunk_panels};
}

// Work items (item = chunk·mblocks + row block) split into one queue per thread by the owner
// of each item (of its row block, or of its column chunk). A queue is a range of
// `order` with its front and back packed in one atomic word: the owner takes from the front,
// other threads from the back.
class ItemQueues {
 public:
  template <typename OwnerOf>
  void reset(int nt, int64_t mblocks, int64_t nchunks, OwnerOf owner_of) {
    nt_ = nt;
    order_.clear();
    if (static_cast<int>(ends_.size()) < nt) ends_ = std::vector<std::atomic<uint64_t>>(static_cast<size_t>(nt));
    for (int t = 0; t < nt; t++) {
      const int64_t begin = static_cast<int64_t>(order_.size());
      for (int64_t chunk = 0; chunk < nchunks; chunk++)
        for (int64_t mb = 0; mb < mblocks; mb++)
          if (owner_of(chunk, mb) == t) order_.push_back(chunk * mblocks + mb);
      ends_[static_cast<size_t>(t)].store(pack(begin, static_cast<int64_t>(order_.size())), std::memory_order_relaxed);
    }
  }

  // The next item for thread `self`: its own front first, then the others' backs; -1 when none is left.
  int64_t take(int self) {
    if (int64_t i = take_own(self); i >= 0) return i;
    for (int d = 1; d < nt_; d++)
      if (int64_t i = take_from((self + d) % nt_, false); i >= 0) return i;
    return -1;
  }

  // The next of thread `self`'s own items (its front); -1 when it has none left.
  int64_t take_own(int self) { return take_from(self, true); }

  // Whether another thread's queue still holds items nobody has taken.
  bool others_left(int self) const {
    for (int d = 1; d < nt_; d++) {
      const uint64_t cur = ends_[static_cast<size_t>((self + d) % nt_)].load(std::memory_order_relaxed);
      if ((cur >> 32) < (cur & 0xffffffffu)) return true;
    }
    return false;
  }

  // Runs `run(item)` for thread `self`'s own items, then for the others' items left over once it
  // has waited for their owners about one and a half of its own items' time: an owner that is
  // running takes its last item within one item's time, so its rows stay on its core (taken at
  // once, a thread that started a microsecond earlier took the other's last block, whose rows the
  // ops before and after read on the other core); an owner that is preempted, asleep or not run
  // at all (a pool resized under the job) leaves its items to the others.
  // wait_for_owners = false takes the others' items at once: where threads own column chunks (few
  // rows, wide outputs: an inference batch) the ops around the GEMM read every row from both cores
  // anyway, so there is no locality to keep, and on a VM whose cores ran at different speeds the
  // wait cost 6-11% of a ViT-B-32 encode (pairwise, Zen 3, two threads).
  template <typename Run>
  void run_own_first(int self, Run&& run, bool wait_for_owners = true) {
    using Clock = std::chrono::steady_clock;
    const Clock::time_point start = Clock::now();
    int64_t done = 0;
    for (int64_t i; (i = take_own(self)) >= 0; done++) run(i);
    if (wait_for_owners && nt_ > 1 && done > 0 && others_left(self)) {
      const Clock::time_point waited = Clock::now();
      const Clock::duration patience = (waited - start) * 3 / (2 * done);
      while (others_left(self) && Clock::now() - waited < patience) cpu_pause();
    }
    for (int64_t i; (i = take(self)) >= 0;) run(i);
  }

 private:
  static uint64_t pack(int64_t front, int64_t back) {
    return (static_cast<uint64_t>(front) << 32) | static_cast<uint64_t>(back);
  }
  int64_t take_from(int t, bool front) {
    std::atomic<uint64_t>& e = ends_[static_cast<size_t>(t)];
    uint64_t cur = e.load(std::memory_order_relaxed);
    for (;;) {
      const int64_t f = static_cast<int64_t>(cur >> 32), b = static_cast<int64_t>(cur & 0xffffffffu);
      if (f >= b) return -1;
      const uint64_t next = front ? pack(f + 1, b) : pack(f, b - 1);
      if (e.compare_exchange_weak(cur, next, std::memory_order_relaxed)) return order_[static_cast<size_t>(front ? f : b - 1)];
    }
  }

  int nt_ = 1;
  std::vector<int64_t> order_;
  std::vector<std::atomic<uint64_t>> ends_;
};

// The thread (of nt) whose parallel_for share of [0, M) holds `row`: rows [M·t/nt, M·(t+1)/nt).
inline int row_owner(int64_t row, int64_t M, int nt) {
  int owner = static_cast<int>(row * nt / M);
  while (owner + 1 < nt && M * (owner + 1) / nt <= row) owner++;
  while (owner > 0 && M * owner / nt > row) owner--;
  return owner;
}

}  // namespace cs::cpu::gemm_detail
