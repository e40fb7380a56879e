// The emulated device's NCCL stand-in (built into the emulated library only): the part of
// NCCL's C API that nccl_comm.cpp calls, with NCCL's semantics on "device" pointers, between
// separate processes. Ranks meet in a POSIX shared-memory segment named by the unique id (rank 0
// creates it; it is unlinked once every rank has joined, so nothing is left in /dev/shm); each
// collective moves its data through per-rank slots in chunks, with a barrier per chunk. Every
// rank reduces in rank order, so all ranks get bit-identical results. A wait gives up when a peer
// process has exited, aborted, or after CLIPSCALE_DIST_TIMEOUT_S (default 300 s) without progress.
// Collectives run synchronously on the calling thread after the stream's earlier work.
#pragma once
#include <cuda_runtime.h>
#include <stddef.h>

namespace cs_cuda::nccl_standin {

using Comm = void*;
// The NCCL API level the stand-in implements (its calls, nonblocking-style async errors, and
// several ranks on one device as NCCL 2.30's NCCL_MULTI_RANK_GPU_ENABLE).
constexpr int kVersion = 23000;

int get_version(int* v);
const char* get_error_string(int rc);
const char* get_last_error(Comm comm);
int get_unique_id(void* id /* 128 bytes */);
int comm_init_rank(Comm* comm, int nranks, const void* id /* 128 bytes */, int rank);
int comm_get_async_error(Comm comm, int* rc);
int comm_finalize(Comm comm);
int comm_destroy(Comm comm);
int comm_abort(Comm comm);
int all_reduce(const void* send, void* recv, size_t count, int dtype, int op, Comm comm, cudaStream_t s);
int all_gather(const void* send, void* recv, size_t count, int dtype, Comm comm, cudaStream_t s);
int reduce_scatter(const void* send, void* recv, size_t count, int dtype, int op, Comm comm, cudaStream_t s);
int broadcast(const void* send, void* recv, size_t count, int dtype, int root, Comm comm, cudaStream_t s);

}  // namespace cs_cuda::nccl_standin
