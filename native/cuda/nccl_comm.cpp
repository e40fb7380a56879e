// NCCL communicators on the library's streams (nccl_comm.h). NCCL is dlopen'ed; only
// the part of its C API called here is declared, with the values of nccl.h (stable
// since NCCL 2.10: result codes, ncclSum/ncclAvg, ncclFloat32, the 128-byte id).
#include "cuda/nccl_comm.h"

#include <cuda_runtime.h>
#include <dlfcn.h>
#include <glob.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cuda/abi.h"
#include "cuda/nccl_standin.h"
#include "cuda/runtime.h"

namespace cs_cuda {

namespace {

// ── the declared part of nccl.h ──
using ncclComm_t = void*;
struct ncclUniqueId {
  char internal[CS_CUDA_NCCL_UNIQUE_ID_BYTES];
};
using ncclResult_t = int;
constexpr ncclResult_t ncclSuccess = 0;
constexpr ncclResult_t ncclInProgress = 7;
constexpr int ncclSum = 0;
constexpr int ncclAvg = 4;
constexpr int ncclFloat32 = 7;

struct NcclApi {
  void* lib = nullptr;
  std::string path, error, searched;
  int version = 0;
  ncclResult_t (*get_version)(int*) = nullptr;
  const char* (*get_error_string)(ncclResult_t) = nullptr;
  const char* (*get_last_error)(ncclComm_t) = nullptr;  // optional (2.13+)
  ncclResult_t (*get_unique_id)(ncclUniqueId*) = nullptr;
  ncclResult_t (*comm_init_rank)(ncclComm_t*, int, ncclUniqueId, int) = nullptr;
  ncclResult_t (*comm_get_async_error)(ncclComm_t, ncclResult_t*) = nullptr;
  ncclResult_t (*comm_finalize)(ncclComm_t) = nullptr;
  ncclResult_t (*comm_destroy)(ncclComm_t) = nullptr;
  ncclResult_t (*comm_abort)(ncclComm_t) = nullptr;
  ncclResult_t (*all_reduce)(const void*, void*, size_t, int, int, ncclComm_t, cudaStream_t) = nullptr;
  ncclResult_t (*all_gather)(const void*, void*, size_t, int, ncclComm_t, cudaStream_t) = nullptr;
  ncclResult_t (*reduce_scatter)(const void*, void*, size_t, int, int, ncclComm_t, cudaStream_t) = nullptr;
  ncclResult_t (*broadcast)(const void*, void*, size_t, int, int, ncclComm_t, cudaStream_t) = nullptr;
};

void add_dirs(std::vector<std::string>& dirs, const char* pattern) {
  glob_t g{};
  if (glob(pattern, GLOB_NOSORT, nullptr, &g) == 0)
    for (size_t i = 0; i < g.gl_pathc; i++) dirs.push_back(g.gl_pathv[i]);
  globfree(&g);
}

// Directories after the loader's path: CUDA/distribution folders, then PyTorch's
// nvidia-nccl wheel in the site-packages of a venv, conda, the user and the system.
std::vector<std::string> usual_dirs() {
  std::vector<std::string> dirs = {"/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib",
                                   "/usr/local/cuda/targets/sbsa-linux/lib", "/usr/lib/x86_64-linux-gnu",
                                   "/usr/lib/aarch64-linux-gnu", "/usr/local/lib"};
  for (const char* var : {"VIRTUAL_ENV", "CONDA_PREFIX"})
    if (const char* p = std::getenv(var); p && *p) {
      add_dirs(dirs, (std::string(p) + "/lib/python3*/site-packages/nvidia/nccl/lib").c_str());
      if (std::string(var) == "CONDA_PREFIX") dirs.push_back(std::string(p) + "/lib");
    }
  if (const char* home = std::getenv("HOME"); home && *home)
    add_dirs(dirs, (std::string(home) + "/.local/lib/python3*/site-packages/nvidia/nccl/lib").c_str());
  for (const char* pat : {"/usr/local/lib/python3*/dist-packages/nvidia/nccl/lib",
                          "/usr/local/lib/python3*/site-packages/nvidia/nccl/lib",
                          "/usr/lib/python3*/dist-packages/nvidia/nccl/lib", "/opt/conda/lib/python3*/site-packages/nvidia/nccl/lib"})
    add_dirs(dirs, pat);
  return dirs;
}

template <typename Fn>
bool bind(NcclApi& a, Fn* slot, const char* name, bool required = true) {
  *slot = reinterpret_cast<Fn>(dlsym(a.lib, name));
  if (!*slot && required) a.error = a.path + " lacks " + name + " (NCCL 2.14 or newer is needed)";
  return *slot != nullptr || !required;
}

#if defined(CLIPSCALE_EMULATED_DEVICE)
// The emulated device's stand-in in place of libnccl.so.2; true when the choice is made (a.lib
// is left null, with the reason, when CLIPSCALE_EMU_NCCL=absent).
bool bind_standin(NcclApi& a) {
  namespace st = nccl_standin;
  if (const char* e = std::getenv("CLIPSCALE_EMU_NCCL"); e && std::string(e) == "absent") {
    a.error = "NCCL is absent on the emulated CUDA device (CLIPSCALE_EMU_NCCL=absent turned its stand-in off)";
    return true;
  }
  static int marker;
  a.lib = &marker;  // not a dlopen handle: nothing is dlsym'ed from it
  a.path = "the emulated device's NCCL stand-in (processes meet in POSIX shared memory; CLIPSCALE_EMU_NCCL=absent turns it off)";
  a.get_version = st::get_version;
  a.get_error_string = st::get_error_string;
  a.get_last_error = st::get_last_error;
  a.get_unique_id = [](ncclUniqueId* u) { return st::get_unique_id(u->internal); };
  a.comm_init_rank = [](ncclComm_t* c, int n, ncclUniqueId id, int r) { return st::comm_init_rank(c, n, id.internal, r); };
  a.comm_get_async_error = st::comm_get_async_error;
  a.comm_finalize = st::comm_finalize;
  a.comm_destroy = st::comm_destroy;
  a.comm_abort = st::comm_abort;
  a.all_reduce = st::all_reduce;
  a.all_gather = st::all_gather;
  a.reduce_scatter = st::reduce_scatter;
  a.broadcast = st::broadcast;
  a.get_version(&a.version);
  return true;
}
#endif

NcclApi& api() {
  static NcclApi a;
  static std::once_flag once;
  std::call_once(once, [] {
#if defined(CLIPSCALE_EMULATED_DEVICE)
    // NCCL needs a real GPU: the emulated device has a stand-in with NCCL's semantics between
    // processes (nccl_standin.h), unless CLIPSCALE_EMU_NCCL=absent asks for none (then NCCL is
    // missing, as on a machine without it).
    if (bind_standin(a)) return;
#endif
    const char* name = "libnccl.so.2";
    std::vector<std::string> candidates;
    if (const char* dirs = std::getenv("CLIPSCALE_NCCL_PATH")) {
      std::stringstream ss(dirs);
      std::string dir;
      while (std::getline(ss, dir, ':'))
        if (!dir.empty()) candidates.push_back(dir + "/" + name);
    }
    candidates.push_back(name);
    for (const auto& d : usual_dirs()) candidates.push_back(d + "/" + name);
    std::string first_error;  // the first dlopen error of an existing file says most
    for (const auto& c : candidates) {
      a.searched += (a.searched.empty() ? "" : ", ") + c;
      if ((a.lib = dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL))) {
        a.path = c;
        break;
      }
      const char* e = dlerror();
      // A file that exists but does not load (wrong architecture, missing dependency) says most.
      if (e && first_error.empty() && c.find('/') != std::string::npos && access(c.c_str(), F_OK) == 0) first_error = e;
    }
    if (!a.lib) {
      a.error = "libnccl.so.2 was not found (looked in $CLIPSCALE_NCCL_PATH, the loader's path, the CUDA "
                "directories and PyTorch's nvidia/nccl/lib in site-packages); install NCCL (e.g. pip install "
                "nvidia-nccl-cu12, or the libnccl2 package) or set CLIPSCALE_NCCL_PATH to the directory that holds it" +
                (first_error.empty() ? std::string() : "; a candidate failed to load: " + first_error);
      return;
    }
    bool ok = bind(a, &a.get_version, "ncclGetVersion") && bind(a, &a.get_error_string, "ncclGetErrorString") &&
              bind(a, &a.get_unique_id, "ncclGetUniqueId") && bind(a, &a.comm_init_rank, "ncclCommInitRank") &&
              bind(a, &a.comm_get_async_error, "ncclCommGetAsyncError") &&
              bind(a, &a.comm_finalize, "ncclCommFinalize") && bind(a, &a.comm_destroy, "ncclCommDestroy") &&
              bind(a, &a.comm_abort, "ncclCommAbort") && bind(a, &a.all_reduce, "ncclAllReduce") &&
              bind(a, &a.all_gather, "ncclAllGather") && bind(a, &a.reduce_scatter, "ncclReduceScatter") &&
              bind(a, &a.broadcast, "ncclBroadcast") && bind(a, &a.get_last_error, "ncclGetLastError", false);
    if (!ok) {
      a.lib = nullptr;
      return;
    }
    a.get_version(&a.version);
    if (a.version < CS_CUDA_NCCL_MIN_VERSION) {
      a.error = a.path + " is NCCL " + std::to_string(a.version) + "; clipscale needs NCCL 2.14 (21400) or newer " +
                "(nonblocking communicators, so a dead rank gives an error instead of a hang)";
      a.lib = nullptr;
      return;
    }
    // Nonblocking communicators, so every wait is ours and bounded; a choice the
    // environment already made (NCCL_COMM_BLOCKING=1) is kept.
    setenv("NCCL_COMM_BLOCKING", "0", 0);
  });
  return a;
}

int need_api(const char* op) {
  NcclApi& a = api();
  if (!a.lib) return fail("nccl %s: %s", op, a.error.c_str());
  return 0;
}

std::string describe(NcclApi& a, ncclResult_t rc, ncclComm_t comm) {
  std::string s = a.get_error_string ? a.get_error_string(rc) : "error";
  s += " (ncclResult " + std::to_string(rc) + ")";
  if (a.get_last_error) {
    const char* last = a.get_last_error(comm);
    if (last && *last) s += ": " + std::string(last);
  }
  return s;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Sleeps a little longer each round, up to 1 ms: short collectives return fast and
// long ones cost little CPU.
struct Backoff {
  int us = 10;
  void wait() {
    std::this_thread::sleep_for(std::chrono::microseconds(us));
    if (us < 1000) us *= 2;
  }
};

struct Comm {
  std::mutex mu;
  ncclComm_t comm = nullptr;
  int device = 0, rank = 0, nranks = 1;
  double timeout_s = 300;
  bool broken = false;
  std::string broken_why;
  cudaEvent_t done = nullptr;
  // Collectives run on a stream of their own, after the work queued on the device's stream
  // when they start (the `ready` event): on a GPU, an all-reduce of gradients already written
  // runs while the device's stream goes on with the rest of the backward pass.
  cudaStream_t comm_stream = nullptr;
  cudaEvent_t ready = nullptr;
};

// Aborts the communicator after a failure; every later call reports `why`.
int break_comm(Comm& c, const std::string& why) {
  if (c.comm) api().comm_abort(c.comm);
  c.comm = nullptr;
  c.broken = true;
  c.broken_why = why;
  return fail("%s", why.c_str());
}

std::string where(const Comm& c, const char* op) {
  return std::string("nccl ") + op + " (rank " + std::to_string(c.rank) + " of " + std::to_string(c.nranks) + ", cuda:" +
         std::to_string(c.device) + ")";
}

std::string timeout_text(const Comm& c, const char* waiting_for) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%g", c.timeout_s);
  return std::string("no progress after ") + buf + " s " + waiting_for +
         " (CLIPSCALE_DIST_TIMEOUT_S): another rank probably died or hangs; the communicator was aborted";
}

// After a call that returned ncclInProgress (nonblocking mode): polls until NCCL
// is done with it, an error shows, or the time is up.
int settle(Comm& c, const char* op, const char* call, ncclResult_t rc, std::chrono::steady_clock::time_point t0) {
  NcclApi& a = api();
  Backoff backoff;
  while (rc == ncclInProgress) {
    if (seconds_since(t0) > c.timeout_s)
      return break_comm(c, where(c, op) + ": " + call + ": " + timeout_text(c, "waiting for the other ranks"));
    backoff.wait();
    ncclResult_t q = a.comm_get_async_error(c.comm, &rc);
    if (q != ncclSuccess) rc = q;
  }
  if (rc != ncclSuccess) return break_comm(c, where(c, op) + ": " + call + " failed: " + describe(a, rc, c.comm));
  return 0;
}

// Waits for the collective on the GPU (an event after it on the stream) while
// watching NCCL's asynchronous errors (a peer's connection closed) and the clock.
int wait_done(Comm& c, const char* op, const char* call, std::chrono::steady_clock::time_point t0) {
  NcclApi& a = api();
  if (int rc = check(cudaEventRecord(c.done, c.comm_stream), op, "cudaEventRecord after the collective")) return rc;
  Backoff backoff;
  for (;;) {
    cudaError_t e = cudaEventQuery(c.done);
    if (e == cudaSuccess) return 0;
    if (e != cudaErrorNotReady) {
      cudaGetLastError();
      return break_comm(c, where(c, op) + ": " + call + " on the GPU failed: " + cudaGetErrorString(e) + " (" +
                               cudaGetErrorName(e) + ")");
    }
    ncclResult_t async = ncclSuccess;
    ncclResult_t q = a.comm_get_async_error(c.comm, &async);
    if (q != ncclSuccess) async = q;
    if (async != ncclSuccess && async != ncclInProgress)
      return break_comm(c, where(c, op) + ": " + call + " failed: " + describe(a, async, c.comm));
    if (seconds_since(t0) > c.timeout_s) return break_comm(c, where(c, op) + ": " + call + ": " + timeout_text(c, "in the collective"));
    backoff.wait();
  }
}

// Common path of the four collectives: checks, the device, the enqueue, the waits.
template <typename Enqueue>
int collective(void* handle, const char* op, const char* call, Enqueue enqueue) {
  if (int rc = need_api(op)) return rc;
  if (!handle) return fail("nccl %s: the communicator handle is null", op);
  Comm& c = *static_cast<Comm*>(handle);
  std::lock_guard<std::mutex> lock(c.mu);
  if (c.broken) return fail("%s: the communicator is unusable after an earlier failure: %s", where(c, op).c_str(), c.broken_why.c_str());
  if (int rc = cs_cuda_init(c.device)) return rc;  // this thread's device and stream
  const auto t0 = std::chrono::steady_clock::now();
  // After everything queued on the device's stream so far (the kernels that wrote the inputs).
  if (int rc = check(cudaEventRecord(c.ready, stream()), op, "cudaEventRecord before the collective")) return rc;
  if (int rc = check(cudaStreamWaitEvent(c.comm_stream, c.ready, 0), op, "cudaStreamWaitEvent before the collective")) return rc;
  ncclResult_t rc = enqueue(c, c.comm_stream);
  if (rc != ncclSuccess && rc != ncclInProgress)
    return break_comm(c, where(c, op) + ": " + call + " failed: " + describe(api(), rc, c.comm));
  if (int r = settle(c, op, call, rc, t0)) return r;
  return wait_done(c, op, call, t0);
}

int reduce_op(int op, const char* where, int* out) {
  if (op == 0) *out = ncclSum;
  else if (op == 1) *out = ncclAvg;
  else return fail("nccl %s: op must be 0 (sum) or 1 (mean), got %d", where, op);
  return 0;
}

}  // namespace

}  // namespace cs_cuda

using namespace cs_cuda;

extern "C" {

int cs_cuda_nccl_version(int* version, char* path, int path_len) {
  if (version) *version = 0;
  if (int rc = need_api("version")) return rc;
  if (version) *version = api().version;
  if (path && path_len > 0) std::snprintf(path, static_cast<size_t>(path_len), "%s", api().path.c_str());
  return 0;
}

int cs_cuda_nccl_get_unique_id(unsigned char* id) {
  if (int rc = need_api("uniqueId")) return rc;
  ncclUniqueId u{};
  ncclResult_t rc = api().get_unique_id(&u);
  if (rc != ncclSuccess) return fail("nccl uniqueId: ncclGetUniqueId failed: %s", describe(api(), rc, nullptr).c_str());
  std::memcpy(id, u.internal, sizeof u.internal);
  return 0;
}

int cs_cuda_nccl_init_rank(void** handle, int device, int nranks, int rank, const unsigned char* id, double timeout_s) {
  *handle = nullptr;
  if (int rc = need_api("init")) return rc;
  if (nranks < 1 || rank < 0 || rank >= nranks) return fail("nccl init: rank %d of %d is not a rank of the world", rank, nranks);
  if (!(timeout_s > 0)) return fail("nccl init: timeout must be positive seconds, got %g", timeout_s);
  if (int rc = cs_cuda_init(device)) return rc;  // NCCL uses the calling thread's device
  auto* c = new Comm;
  c->device = device;
  c->rank = rank;
  c->nranks = nranks;
  c->timeout_s = timeout_s;
  if (int rc = check(cudaEventCreateWithFlags(&c->done, cudaEventDisableTiming), "nccl init", "cudaEventCreate")) {
    delete c;
    return rc;
  }
  if (int rc = check(cudaEventCreateWithFlags(&c->ready, cudaEventDisableTiming), "nccl init", "cudaEventCreate")) {
    cudaEventDestroy(c->done);
    delete c;
    return rc;
  }
  if (int rc = check(cudaStreamCreateWithFlags(&c->comm_stream, cudaStreamNonBlocking), "nccl init", "cudaStreamCreate")) {
    cudaEventDestroy(c->done);
    cudaEventDestroy(c->ready);
    delete c;
    return rc;
  }
  ncclUniqueId u{};
  std::memcpy(u.internal, id, sizeof u.internal);
  const auto t0 = std::chrono::steady_clock::now();
  ncclResult_t rc = api().comm_init_rank(&c->comm, nranks, u, rank);
  int r = 0;
  if (rc != ncclSuccess && rc != ncclInProgress) {
    r = fail("%s: ncclCommInitRank failed: %s", where(*c, "init").c_str(), describe(api(), rc, c->comm).c_str());
    if (c->comm) api().comm_abort(c->comm);
    c->comm = nullptr;
  } else {
    r = settle(*c, "init", "ncclCommInitRank", rc, t0);
  }
  if (r) {
    cudaEventDestroy(c->done);
    cudaEventDestroy(c->ready);
    cudaStreamDestroy(c->comm_stream);
    delete c;
    return r;
  }
  *handle = c;
  return 0;
}

int cs_cuda_nccl_all_reduce(void* handle, const float* send, float* recv, size_t count, int op) {
  int nop = 0;
  if (int rc = reduce_op(op, "allReduce", &nop)) return rc;
  return collective(handle, "allReduce", "ncclAllReduce", [&](Comm& c, cudaStream_t s) {
    return api().all_reduce(send, recv, count, ncclFloat32, nop, c.comm, s);
  });
}

int cs_cuda_nccl_all_gather(void* handle, const float* send, float* recv, size_t count) {
  return collective(handle, "allGather", "ncclAllGather", [&](Comm& c, cudaStream_t s) {
    return api().all_gather(send, recv, count, ncclFloat32, c.comm, s);
  });
}

int cs_cuda_nccl_reduce_scatter(void* handle, const float* send, float* recv, size_t count, int op) {
  int nop = 0;
  if (int rc = reduce_op(op, "reduceScatter", &nop)) return rc;
  return collective(handle, "reduceScatter", "ncclReduceScatter", [&](Comm& c, cudaStream_t s) {
    return api().reduce_scatter(send, recv, count, ncclFloat32, nop, c.comm, s);
  });
}

int cs_cuda_nccl_broadcast(void* handle, float* buf, size_t count, int root) {
  // nranks never changes after init, so it is read without the lock.
  if (handle && (root < 0 || root >= static_cast<Comm*>(handle)->nranks))
    return fail("nccl broadcast: root %d is not a rank in 0..%d", root, static_cast<Comm*>(handle)->nranks - 1);
  return collective(handle, "broadcast", "ncclBroadcast", [&](Comm& c, cudaStream_t s) {
    return api().broadcast(buf, buf, count, ncclFloat32, root, c.comm, s);
  });
}

int cs_cuda_nccl_comm_info(void* handle, int* rank, int* nranks, int* device, int* broken) {
  if (!handle) return fail("nccl info: the communicator handle is null");
  Comm& c = *static_cast<Comm*>(handle);
  std::lock_guard<std::mutex> lock(c.mu);
  *rank = c.rank;
  *nranks = c.nranks;
  *device = c.device;
  *broken = c.broken ? 1 : 0;
  return 0;
}

int cs_cuda_nccl_destroy(void* handle) {
  if (!handle) return 0;
  if (int rc = need_api("destroy")) return rc;
  Comm* c = static_cast<Comm*>(handle);
  int r = 0;
  {
    std::lock_guard<std::mutex> lock(c->mu);
    NcclApi& a = api();
    if (c->comm && !c->broken) {
      // Finalize flushes the communicator's work with the other ranks, bounded like a collective.
      const auto t0 = std::chrono::steady_clock::now();
      cs_cuda_init(c->device);
      ncclResult_t rc = a.comm_finalize(c->comm);
      if (rc != ncclSuccess && rc != ncclInProgress)
        r = break_comm(*c, where(*c, "destroy") + ": ncclCommFinalize failed: " + describe(a, rc, c->comm));
      else
        r = settle(*c, "destroy", "ncclCommFinalize", rc, t0);
      if (r == 0 && c->comm) {
        rc = a.comm_destroy(c->comm);
        c->comm = nullptr;
        if (rc != ncclSuccess && rc != ncclInProgress)
          r = fail("%s: ncclCommDestroy failed: %s", where(*c, "destroy").c_str(), describe(a, rc, nullptr).c_str());
      }
    } else if (c->comm) {
      a.comm_abort(c->comm);
      c->comm = nullptr;
    }
    if (c->done) cudaEventDestroy(c->done);
    if (c->ready) cudaEventDestroy(c->ready);
    if (c->comm_stream) cudaStreamDestroy(c->comm_stream);
  }
  delete c;
  return r;
}

int cs_cuda_nccl_abort(void* handle) {
  if (!handle) return 0;
  if (int rc = need_api("abort")) return rc;
  Comm* c = static_cast<Comm*>(handle);
  {
    std::lock_guard<std::mutex> lock(c->mu);
    if (c->comm) api().comm_abort(c->comm);
    c->comm = nullptr;
    if (c->done) cudaEventDestroy(c->done);
    if (c->ready) cudaEventDestroy(c->ready);
    if (c->comm_stream) cudaStreamDestroy(c->comm_stream);
  }
  delete c;
  return 0;
}

}  // extern "C"
