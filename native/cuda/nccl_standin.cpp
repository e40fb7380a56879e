// The emulated device's NCCL stand-in (nccl_standin.h). Emulated builds only: on a GPU the real
// libnccl.so.2 is loaded instead.
#if defined(CLIPSCALE_EMULATED_DEVICE)
#include "cuda/nccl_standin.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <thread>

namespace cs_cuda::nccl_standin {

namespace {

// nccl.h's values.
constexpr int ncclSuccess = 0, ncclSystemError = 2, ncclInvalidArgument = 4, ncclInvalidUsage = 5,
              ncclRemoteError = 6;
constexpr int ncclSum = 0, ncclAvg = 4, ncclFloat32 = 7;

constexpr int kMaxRanks = 64;
constexpr uint32_t kReady = 0x4E43434Cu;  // "NCCL"
constexpr char kIdTag[] = "clipscale-nccl-standin";
// Floats each rank's slot holds: a collective larger than this moves in chunks.
constexpr size_t kSlotFloats = size_t(1) << 20;

struct Header {
  uint32_t ready;  // kReady once rank 0 has set the segment up
  int32_t nranks;
  int32_t joined;
  int32_t bar_count;
  int32_t bar_gen;
  int32_t aborted;  // 1 + the rank that aborted, or 0
  int32_t pids[kMaxRanks];
};

struct Id {
  char tag[sizeof kIdTag];
  char name[100];
};
static_assert(sizeof(Id) <= 128, "the NCCL unique id is 128 bytes");

size_t header_bytes() { return (sizeof(Header) + 63) / 64 * 64; }
size_t segment_bytes(int nranks) { return header_bytes() + static_cast<size_t>(nranks) * kSlotFloats * sizeof(float); }

template <typename T>
T load(const T* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
template <typename T>
void store(T* p, T v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

double timeout_seconds() {
  const char* e = std::getenv("CLIPSCALE_DIST_TIMEOUT_S");
  const double v = e ? std::atof(e) : 0;
  return v > 0 ? v : 300;
}

struct Comm_ {
  std::string name;
  int rank = 0, nranks = 1;
  Header* h = nullptr;
  float* slots = nullptr;
  size_t bytes = 0;
  int async = ncclSuccess;
  std::string last;
  double timeout_s = 300;
  float* slot(int r) const { return slots + static_cast<size_t>(r) * kSlotFloats; }
};

int failed(Comm_* c, int rc, const std::string& why) {
  c->async = rc;
  c->last = why;
  return rc;
}

// Waits until `done()` holds, giving up when a peer exited or aborted, or after the timeout.
template <typename Done>
int wait_for(Comm_* c, const char* what, Done done) {
  const auto t0 = std::chrono::steady_clock::now();
  int spins = 0, sleep_us = 20;
  while (!done()) {
    if (const int a = load(&c->h->aborted))
      return failed(c, ncclRemoteError, std::string("rank ") + std::to_string(a - 1) + " aborted the communicator (" + what + ")");
    if (++spins < 200) {
      sched_yield();
      continue;
    }
    for (int r = 0; r < c->nranks; r++) {
      const int pid = load(&c->h->pids[r]);
      if (r != c->rank && pid > 0 && kill(pid, 0) != 0 && errno == ESRCH)
        return failed(c, ncclRemoteError, "rank " + std::to_string(r) + " (process " + std::to_string(pid) + ") has exited (" + what + ")");
    }
    if (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() > c->timeout_s) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%g", c->timeout_s);
      return failed(c, ncclRemoteError, std::string("no progress after ") + buf + " s " + what +
                                            " (CLIPSCALE_DIST_TIMEOUT_S): another rank probably died or hangs");
    }
    std::this_thread::sleep_for(std::chrono::microseconds(sleep_us));
    if (sleep_us < 1000) sleep_us *= 2;
  }
  return ncclSuccess;
}

// Every rank arrives before any leaves (generation counting; the last arrival opens it).
int barrier(Comm_* c, const char* what) {
  Header* h = c->h;
  const int gen = load(&h->bar_gen);
  if (__atomic_fetch_add(&h->bar_count, 1, __ATOMIC_ACQ_REL) == c->nranks - 1) {
    store(&h->bar_count, 0);
    __atomic_fetch_add(&h->bar_gen, 1, __ATOMIC_ACQ_REL);
    return ncclSuccess;
  }
  return wait_for(c, what, [&] { return load(&h->bar_gen) != gen; });
}

Comm_* usable(Comm comm) {
  auto* c = static_cast<Comm_*>(comm);
  return c && c->h ? c : nullptr;
}

// The stream's earlier work first: the collective reads what its kernels wrote.
int after_stream(Comm_* c, cudaStream_t s) {
  if (cudaStreamSynchronize(s) != cudaSuccess)
    return failed(c, ncclSystemError, std::string("the stream's earlier work failed: ") + cudaGetErrorString(cudaGetLastError()));
  return ncclSuccess;
}

int check_args(Comm_* c, int dtype, const char* call) {
  if (dtype != ncclFloat32) return failed(c, ncclInvalidArgument, std::string(call) + ": the stand-in moves float32 only");
  if (c->async != ncclSuccess) return c->async;
  return ncclSuccess;
}

int check_reduce_op(Comm_* c, int op, const char* call) {
  if (op != ncclSum && op != ncclAvg) return failed(c, ncclInvalidArgument, std::string(call) + ": the stand-in reduces with sum or avg only");
  return ncclSuccess;
}

// Element i of every rank's slot summed in rank order (so every rank gets the same bits), or their mean.
float reduced(const Comm_* c, size_t i, int op) {
  float v = c->slot(0)[i];
  for (int r = 1; r < c->nranks; r++) v += c->slot(r)[i];
  return op == ncclAvg ? v / static_cast<float>(c->nranks) : v;
}

}  // namespace

int get_version(int* v) {
  *v = kVersion;
  return ncclSuccess;
}

const char* get_error_string(int rc) {
  switch (rc) {
    case ncclSuccess: return "no error";
    case ncclSystemError: return "unhandled system error";
    case ncclInvalidArgument: return "invalid argument";
    case ncclInvalidUsage: return "invalid usage";
    case ncclRemoteError: return "remote process exited or there was a network error";
    default: return "unknown result code";
  }
}

const char* get_last_error(Comm comm) {
  auto* c = static_cast<Comm_*>(comm);
  return c ? c->last.c_str() : "";
}

int get_unique_id(void* out) {
  Id id{};
  std::memcpy(id.tag, kIdTag, sizeof kIdTag);
  std::random_device rd;
  std::snprintf(id.name, sizeof id.name, "/clipscale-nccl-%d-%08x%08x", static_cast<int>(getpid()), rd(), rd());
  std::memset(out, 0, 128);
  std::memcpy(out, &id, sizeof id);
  return ncclSuccess;
}

int comm_init_rank(Comm* out, int nranks, const void* raw, int rank) {
  *out = nullptr;
  Id id;
  std::memcpy(&id, raw, sizeof id);
  auto* c = new Comm_;
  c->rank = rank;
  c->nranks = nranks;
  c->timeout_s = timeout_seconds();
  *out = c;
  if (std::memcmp(id.tag, kIdTag, sizeof kIdTag) != 0)
    return failed(c, ncclInvalidArgument, "the unique id was not made by this stand-in's ncclGetUniqueId");
  if (nranks < 1 || nranks > kMaxRanks || rank < 0 || rank >= nranks)
    return failed(c, ncclInvalidArgument, "rank " + std::to_string(rank) + " of " + std::to_string(nranks) +
                                              " (the stand-in takes 1.." + std::to_string(kMaxRanks) + " ranks)");
  id.name[sizeof id.name - 1] = 0;
  c->name = id.name;
  c->bytes = segment_bytes(nranks);
  int fd = -1;
  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  if (rank == 0) {
    fd = shm_open(c->name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
    if (fd < 0) return failed(c, ncclSystemError, "shm_open(" + c->name + "): " + std::strerror(errno));
    if (ftruncate(fd, static_cast<off_t>(c->bytes)) != 0) {
      const int e = errno;
      close(fd);
      shm_unlink(c->name.c_str());
      return failed(c, ncclSystemError, "sizing the shared segment (" + std::to_string(c->bytes) + " bytes): " + std::strerror(e));
    }
  } else {
    // Rank 0 may not have made it yet: retry until it exists with its full size.
    for (;;) {
      fd = shm_open(c->name.c_str(), O_RDWR, 0600);
      struct stat st{};
      if (fd >= 0 && fstat(fd, &st) == 0 && static_cast<size_t>(st.st_size) >= c->bytes) break;
      if (fd >= 0) close(fd);
      fd = -1;
      if (elapsed() > c->timeout_s) return failed(c, ncclRemoteError, "rank 0's shared segment " + c->name + " did not appear (CLIPSCALE_DIST_TIMEOUT_S)");
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  void* p = mmap(nullptr, c->bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (p == MAP_FAILED) {
    if (rank == 0) shm_unlink(c->name.c_str());
    return failed(c, ncclSystemError, std::string("mmap of the shared segment: ") + std::strerror(errno));
  }
  c->h = static_cast<Header*>(p);
  c->slots = reinterpret_cast<float*>(static_cast<char*>(p) + header_bytes());
  Header* h = c->h;
  if (rank == 0) {
    h->nranks = nranks;  // the segment starts zeroed (ftruncate)
    store(&h->ready, kReady);
  } else {
    int rc = wait_for(c, "joining", [&] { return load(&h->ready) == kReady; });
    if (rc != ncclSuccess) return rc;
    if (h->nranks != nranks)
      return failed(c, ncclInvalidUsage, "rank 0 made a communicator of " + std::to_string(h->nranks) + " ranks, this rank joins one of " + std::to_string(nranks));
  }
  store(&h->pids[rank], static_cast<int32_t>(getpid()));
  __atomic_fetch_add(&h->joined, 1, __ATOMIC_ACQ_REL);
  if (int rc = wait_for(c, "waiting for every rank to join", [&] { return load(&h->joined) == nranks; })) return rc;
  // Everyone has it mapped: the name can go (the memory lives until the last unmap).
  if (int rc = barrier(c, "joining")) return rc;
  if (rank == 0) shm_unlink(c->name.c_str());
  return ncclSuccess;
}

int comm_get_async_error(Comm comm, int* rc) {
  auto* c = static_cast<Comm_*>(comm);
  *rc = c ? c->async : ncclInvalidArgument;
  return ncclSuccess;
}

int comm_finalize(Comm comm) {
  auto* c = usable(comm);
  if (!c) return ncclInvalidArgument;
  return c->async;  // every collective has completed when its call returned
}

static void release(Comm_* c, bool abort) {
  if (c->h) {
    if (abort && !load(&c->h->aborted)) store(&c->h->aborted, c->rank + 1);
    if (c->rank == 0 && load(&c->h->joined) < c->nranks) shm_unlink(c->name.c_str());  // never fully joined
    munmap(c->h, c->bytes);
  }
  delete c;
}

int comm_destroy(Comm comm) {
  auto* c = static_cast<Comm_*>(comm);
  if (!c) return ncclInvalidArgument;
  release(c, false);
  return ncclSuccess;
}

int comm_abort(Comm comm) {
  auto* c = static_cast<Comm_*>(comm);
  if (!c) return ncclSuccess;
  release(c, true);
  return ncclSuccess;
}

int all_reduce(const void* send, void* recv, size_t count, int dtype, int op, Comm comm, cudaStream_t s) {
  auto* c = usable(comm);
  if (!c) return ncclInvalidArgument;
  if (int rc = check_args(c, dtype, "ncclAllReduce")) return rc;
  if (int rc = check_reduce_op(c, op, "ncclAllReduce")) return rc;
  if (int rc = after_stream(c, s)) return rc;
  const float* in = static_cast<const float*>(send);
  float* outp = static_cast<float*>(recv);
  for (size_t at = 0; at < count; at += kSlotFloats) {
    const size_t n = std::min(kSlotFloats, count - at);
    std::memcpy(c->slot(c->rank), in + at, n * sizeof(float));
    if (int rc = barrier(c, "in ncclAllReduce")) return rc;
    for (size_t i = 0; i < n; i++) outp[at + i] = reduced(c, i, op);
    if (int rc = barrier(c, "in ncclAllReduce")) return rc;
  }
  return ncclSuccess;
}

int all_gather(const void* send, void* recv, size_t count, int dtype, Comm comm, cudaStream_t s) {
  auto* c = usable(comm);
  if (!c) return ncclInvalidArgument;
  if (int rc = check_args(c, dtype, "ncclAllGather")) return rc;
  if (int rc = after_stream(c, s)) return rc;
  const float* in = static_cast<const float*>(send);
  float* outp = static_cast<float*>(recv);
  for (size_t at = 0; at < count; at += kSlotFloats) {
    const size_t n = std::min(kSlotFloats, count - at);
    std::memcpy(c->slot(c->rank), in + at, n * sizeof(float));
    if (int rc = barrier(c, "in ncclAllGather")) return rc;
    for (int r = 0; r < c->nranks; r++) std::memcpy(outp + static_cast<size_t>(r) * count + at, c->slot(r), n * sizeof(float));
    if (int rc = barrier(c, "in ncclAllGather")) return rc;
  }
  return ncclSuccess;
}

int reduce_scatter(const void* send, void* recv, size_t count, int dtype, int op, Comm comm, cudaStream_t s) {
  auto* c = usable(comm);
  if (!c) return ncclInvalidArgument;
  if (int rc = check_args(c, dtype, "ncclReduceScatter")) return rc;
  if (int rc = check_reduce_op(c, op, "ncclReduceScatter")) return rc;
  if (int rc = after_stream(c, s)) return rc;
  const float* in = static_cast<const float*>(send);
  float* outp = static_cast<float*>(recv);
  // Each slot holds, per chunk, this rank's part for every destination rank.
  const size_t per = kSlotFloats / static_cast<size_t>(c->nranks);
  for (size_t at = 0; at < count; at += per) {
    const size_t n = std::min(per, count - at);
    for (int d = 0; d < c->nranks; d++) std::memcpy(c->slot(c->rank) + d * n, in + static_cast<size_t>(d) * count + at, n * sizeof(float));
    if (int rc = barrier(c, "in ncclReduceScatter")) return rc;
    for (size_t i = 0; i < n; i++) outp[at + i] = reduced(c, c->rank * n + i, op);
    if (int rc = barrier(c, "in ncclReduceScatter")) return rc;
  }
  return ncclSuccess;
}

int broadcast(const void* send, void* recv, size_t count, int dtype, int root, Comm comm, cudaStream_t s) {
  auto* c = usable(comm);
  if (!c) return ncclInvalidArgument;
  if (int rc = check_args(c, dtype, "ncclBroadcast")) return rc;
  if (root < 0 || root >= c->nranks) return failed(c, ncclInvalidArgument, "ncclBroadcast: root " + std::to_string(root) + " is not a rank");
  if (int rc = after_stream(c, s)) return rc;
  const float* in = static_cast<const float*>(send);
  float* outp = static_cast<float*>(recv);
  for (size_t at = 0; at < count; at += kSlotFloats) {
    const size_t n = std::min(kSlotFloats, count - at);
    if (c->rank == root) std::memcpy(c->slot(root), in + at, n * sizeof(float));
    if (int rc = barrier(c, "in ncclBroadcast")) return rc;
    if (c->rank != root || in != outp) std::memcpy(outp + at, c->slot(root), n * sizeof(float));
    if (int rc = barrier(c, "in ncclBroadcast")) return rc;
  }
  return ncclSuccess;
}

}  // namespace cs_cuda::nccl_standin
#endif  // CLIPSCALE_EMULATED_DEVICE
