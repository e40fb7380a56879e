// CPU collectives over MPI (built only when mpi.h was found: CLIPSCALE_WITH_MPI).
// MPI starts lazily, on the first communicator, with MPI_Init_thread; every MPI
// error comes back as cs::Error (the communicator uses MPI_ERRORS_RETURN), never
// an abort. Calls are serialised by a mutex, so they may run on any one thread at
// a time when MPI gives MPI_THREAD_SERIALIZED or better.
#pragma once
#include <cstdint>
#include <string>

namespace cs::dist {

enum class MpiReduce { Sum, Mean };

struct MpiWorld {
  int rank = 0;
  int size = 1;
  // MPI_THREAD_* level granted; `serialized` says collectives may run off the JS thread.
  int thread_level = 0;
  bool serialized = false;
  std::string library;  // MPI_Get_library_version, first line
};

// Starts MPI if needed (once per process) and returns this process's place in MPI_COMM_WORLD.
MpiWorld mpi_start();
// Finalises MPI if it was started and not yet finalised (idempotent; MPI cannot restart after).
void mpi_finish();
// Ends every process of the job (MPI_Abort): for a rank that fails, so the others do not
// wait in a collective (or in MPI_Finalize, which synchronises) for it.
void mpi_abort(int code);
bool mpi_started();

// Collectives on MPI_COMM_WORLD (a duplicate of it). n counts floats.
void mpi_all_reduce(float* x, int64_t n, MpiReduce op);
// out must hold size·n floats (out_n says how many it holds, checked)
void mpi_all_gather(const float* in, int64_t n, float* out, int64_t out_n);
// in must hold size·n floats (in_n, checked); this rank gets slice rank of the reduction in out[0..n)
void mpi_reduce_scatter(const float* in, int64_t in_n, float* out, int64_t n, MpiReduce op);
void mpi_broadcast(float* x, int64_t n, int root);
void mpi_barrier();

}  // namespace cs::dist
