#include "core/host_memory.h"

#include <cstdlib>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "core/env_switch.h"

namespace cs {

namespace {

constexpr size_t kHugePage = size_t{2} << 20;
// From 1 MB: a training step's activations (a tiny model's 4096×64 floats and up). Rounding a
// block up to whole huge pages costs at most as much again for a 1 MB block, less for larger
// ones; smaller blocks stay on ordinary pages, where most of a huge page would be padding.
constexpr size_t kHugeMin = size_t{1} << 20;

bool huge_pages_on() {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  static const bool on = env_switch_on("CLIPSCALE_HUGE_PAGES");
  return on;
#else
  return false;
#endif
}

}  // namespace

bool host_huge_pages() { return huge_pages_on(); }
size_t huge_page_min_bytes() { return kHugeMin; }

// A training step reads back activations it wrote a step earlier, megabytes apart, and the GEMMs
// walk their rows with strides of a kilobyte: on 4 KB pages a tiny step overflows the TLB and its
// layers wait on page walks. On huge pages its linear layers ran 2-10% faster, the step 2-5%.
void* host_alloc(size_t bytes) {
  size_t rounded = (bytes + 63) / 64 * 64;
  if (rounded == 0) rounded = 64;
  if (rounded >= kHugeMin && huge_pages_on()) {
    rounded = (rounded + kHugePage - 1) / kHugePage * kHugePage;
    void* p = std::aligned_alloc(kHugePage, rounded);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (p) madvise(p, rounded, MADV_HUGEPAGE);  // a refusal (old kernel, THP off) leaves ordinary pages
#endif
    if (p) return p;
  }
  return std::aligned_alloc(64, rounded);
}

void host_free(void* p) { std::free(p); }

}  // namespace cs
