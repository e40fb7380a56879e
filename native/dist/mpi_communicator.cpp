#ifdef CLIPSCALE_WITH_MPI
#include "dist/mpi_communicator.h"

#include <dlfcn.h>
// The C API only: Open MPI's and MPICH's C++ bindings are deprecated and warn.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <climits>
#include <cstdlib>
#include <mutex>

#include "core/error.h"

namespace cs::dist {

namespace {

std::mutex g_mutex;  // one MPI call at a time, from whatever thread
bool g_started = false;
bool g_finished = false;
MPI_Comm g_comm = MPI_COMM_NULL;
MpiWorld g_world;

void check(int rc, const char* op, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS) len = 0;
  fail("mpi ", op, ": ", call, " failed: ", len ? std::string(text, len) : "error code " + std::to_string(rc));
}

int as_count(int64_t n, const char* op) {
  if (n < 0 || n > INT_MAX) fail("mpi ", op, ": ", n, " floats is more than one MPI call can move (", INT_MAX, "); split the tensor");
  return static_cast<int>(n);
}

// Node loads addons with RTLD_LOCAL, but Open MPI's plugins (dlopened by libmpi)
// look for libmpi's symbols globally; promote the already-loaded libmpi to global.
void make_mpi_symbols_global() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&MPI_Init_thread), &info) && info.dli_fname)
    dlopen(info.dli_fname, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD);
}

void require_running(const char* op) {
  if (!g_started || g_finished || g_comm == MPI_COMM_NULL) fail("mpi ", op, ": MPI is not running (the communicator was closed or never created)");
}

}  // namespace

bool mpi_started() {
  std::lock_guard<std::mutex> lock(g_mutex);
  return g_started && !g_finished;
}

MpiWorld mpi_start() {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_finished) fail("mpi: MPI was already finalised in this process (closing the last MPI communicator ends MPI; it cannot restart)");
  if (g_started) return g_world;
  make_mpi_symbols_global();
  int initialized = 0;
  check(MPI_Initialized(&initialized), "start", "MPI_Initialized");
  int provided = MPI_THREAD_SINGLE;
  if (!initialized) {
    check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided), "start", "MPI_Init_thread");
  } else {
    check(MPI_Query_thread(&provided), "start", "MPI_Query_thread");
  }
  g_started = true;
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  check(MPI_Comm_dup(MPI_COMM_WORLD, &g_comm), "start", "MPI_Comm_dup");
  check(MPI_Comm_set_errhandler(g_comm, MPI_ERRORS_RETURN), "start", "MPI_Comm_set_errhandler");
  check(MPI_Comm_rank(g_comm, &g_world.rank), "start", "MPI_Comm_rank");
  check(MPI_Comm_size(g_comm, &g_world.size), "start", "MPI_Comm_size");
  g_world.thread_level = provided;
  g_world.serialized = provided >= MPI_THREAD_SERIALIZED;
  char version[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  if (MPI_Get_library_version(version, &len) == MPI_SUCCESS) {
    std::string v(version, len);
    g_world.library = v.substr(0, v.find_first_of("\n,"));
  }
  return g_world;
}

static void finish_locked() {
  if (!g_started || g_finished) return;
  g_finished = true;
  if (g_comm != MPI_COMM_NULL) MPI_Comm_free(&g_comm);
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

void mpi_finish() {
  std::lock_guard<std::mutex> lock(g_mutex);
  finish_locked();
}

void mpi_abort(int code) {
  // No lock: a collective may be blocked holding it, and aborting is what frees it.
  if (!g_started || g_finished) return;
  MPI_Abort(g_comm != MPI_COMM_NULL ? g_comm : MPI_COMM_WORLD, code);
}

void mpi_all_reduce(float* x, int64_t n, MpiReduce op) {
  std::lock_guard<std::mutex> lock(g_mutex);
  require_running("allReduce");
  check(MPI_Allreduce(MPI_IN_PLACE, x, as_count(n, "allReduce"), MPI_FLOAT, MPI_SUM, g_comm), "allReduce", "MPI_Allreduce");
  if (op == MpiReduce::Mean) {
    const float inv = 1.0f / static_cast<float>(g_world.size);
    for (int64_t i = 0; i < n; i++) x[i] *= inv;
  }
}

void mpi_all_gather(const float* in, int64_t n, float* out, int64_t out_n) {
  std::lock_guard<std::mutex> lock(g_mutex);
  require_running("allGather");
  if (out_n != n * g_world.size)
    fail("mpi allGather: output must hold ", g_world.size, " × ", n, " floats (world size × input), got ", out_n);
  int c = as_count(n, "allGather");
  as_count(out_n, "allGather");
  check(MPI_Allgather(in, c, MPI_FLOAT, out, c, MPI_FLOAT, g_comm), "allGather", "MPI_Allgather");
}

void mpi_reduce_scatter(const float* in, int64_t in_n, float* out, int64_t n, MpiReduce op) {
  std::lock_guard<std::mutex> lock(g_mutex);
  require_running("reduceScatter");
  if (in_n != n * g_world.size)
    fail("mpi reduceScatter: input must hold ", g_world.size, " × ", n, " floats (world size × output), got ", in_n);
  as_count(in_n, "reduceScatter");
  check(MPI_Reduce_scatter_block(in, out, as_count(n, "reduceScatter"), MPI_FLOAT, MPI_SUM, g_comm), "reduceScatter", "MPI_Reduce_scatter_block");
  if (op == MpiReduce::Mean) {
    const float inv = 1.0f / static_cast<float>(g_world.size);
    for (int64_t i = 0; i < n; i++) out[i] *= inv;
  }
}

void mpi_broadcast(float* x, int64_t n, int root) {
  std::lock_guard<std::mutex> lock(g_mutex);
  require_running("broadcast");
  if (root < 0 || root >= g_world.size) fail("mpi broadcast: root must be a rank in 0..", g_world.size - 1, ", got ", root);
  check(MPI_Bcast(x, as_count(n, "broadcast"), MPI_FLOAT, root, g_comm), "broadcast", "MPI_Bcast");
}

void mpi_barrier() {
  std::lock_guard<std::mutex> lock(g_mutex);
  require_running("barrier");
  check(MPI_Barrier(g_comm), "barrier", "MPI_Barrier");
}

}  // namespace cs::dist
#endif  // CLIPSCALE_WITH_MPI
