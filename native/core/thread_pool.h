// A fixed pool of worker threads shared by every CPU kernel. It uses every core
// unless CLIPSCALE_NUM_THREADS says otherwise.
#pragma once
#include <cstdint>
#include <functional>

namespace cs {

int num_threads();
void set_num_threads(int n);  // n <= 0 means one per core

// Calls fn(begin, end) over [0, n) split into contiguous chunks of at least `grain`
// items, one chunk a thread at most; the calling thread takes a chunk too. Blocks
// until every chunk is done. An exception in any chunk is rethrown here.
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

// Calls fn(i) for every i in [0, n), each thread starting on the contiguous share parallel_for
// would give it, one item at a time, then taking items from the ends of the others' shares: for
// items that each write their own outputs (attention's sequence × head), so the result does not
// depend on who ran what, while a thread that runs slower or starts late leaves less undone.
void parallel_for_balanced(int64_t n, const std::function<void(int64_t)>& fn);

// Whether the calling thread is running a part of a parallel region (where a nested region runs
// its parts one after another on this thread).
bool inside_parallel_region();

// Runs fn(t, nt) once on each of nt threads (t = 0..nt-1), nt <= num_threads().
void parallel_run(int nt, const std::function<void(int, int)>& fn);

}  // namespace cs
