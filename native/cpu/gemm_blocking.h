// What the fp32 and bf16 GEMM drivers (gemm.cpp, gemm_bf16.cpp) share: per-thread packing
// buffers, and how a product is cut into work items a thread can take whole.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstdlib>

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
// four items a thread, so a thread the OS preempts just takes fewer.
struct ItemGrid {
  int64_t mblocks, nchunks;            // items = mblocks · nchunks
  int64_t block_panels, chunk_panels;  // MR-panels a row block, NR-panels a column chunk
};

inline ItemGrid item_grid(int64_t mpanels, int64_t npanels, int mr, int nr, int64_t mc_panels, int nt) {
  int64_t mblocks = ceil_div(mpanels, mc_panels), nchunks = 1;
  while (nt > 1 && mblocks * nchunks < 4 * nt) {
    const int64_t rows = ceil_div(mpanels, mblocks) * mr, cols = ceil_div(npanels, nchunks) * nr;
    if (rows >= cols && mblocks < mpanels) mblocks = std::min(mpanels, 2 * mblocks);
    else if (nchunks < npanels) nchunks = std::min(npanels, 2 * nchunks);
    else if (mblocks < mpanels) mblocks = std::min(mpanels, 2 * mblocks);
    else break;
  }
  const int64_t block_panels = ceil_div(mpanels, mblocks), chunk_panels = ceil_div(npanels, nchunks);
  return {ceil_div(mpanels, block_panels), ceil_div(npanels, chunk_panels), block_panels, chunk_panels};
}

}  // namespace cs::cpu::gemm_detail
