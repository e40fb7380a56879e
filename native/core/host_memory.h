// Host memory for tensors. Large blocks are placed on 2 MB transparent huge pages where Linux
// offers them (THP in "madvise" mode, the common default, gives them only to memory that asks).
#pragma once
#include <cstddef>

namespace cs {

// At least `bytes` (≥ 1) bytes, 64-byte aligned; nullptr when the system refuses. Free with host_free.
void* host_alloc(size_t bytes);
void host_free(void* p);

// Whether blocks of huge_page_min_bytes() or more ask for huge pages (CLIPSCALE_HUGE_PAGES=0: never).
bool host_huge_pages();
size_t huge_page_min_bytes();

}  // namespace cs
