// C ABI of the NCCL group: GPU collectives for the NCCL communicator
// (lib/dist/nccl_communicator.ts). libnccl.so.2 is opened at run time (dlopen), so
// neither the build nor a CPU-only install needs NCCL. It is looked for in:
//   1. each directory of $CLIPSCALE_NCCL_PATH (colon-separated, as gpu_probe.cpp);
//   2. the dynamic loader's path (LD_LIBRARY_PATH, ldconfig);
//   3. the CUDA install and distribution directories, then the nvidia/nccl/lib folder
//      of PyTorch's pip package (nvidia-nccl-cu12/13) under the usual site-packages.
//
// Communicators are nonblocking (NCCL_COMM_BLOCKING=0 is set when the library loads,
// unless the environment already chose): every call returns at once and clipscale
// waits itself, polling ncclCommGetAsyncError, so a rank that died or hangs makes the
// others fail after `timeout_s` seconds (the communicator is aborted) instead of
// waiting forever. With NCCL_COMM_BLOCKING=1 set by the user, initialisation and
// enqueues block inside NCCL and only the wait for the GPU is bounded.
//
// Collectives take device pointers to f32 on the communicator's device, run on a
// stream of the communicator's own after the work queued on the library's stream for
// that device when they start (abi.h: the stream of every op, so they are ordered after
// the kernels that produced their inputs, while later kernels may run beside them), and
// return when the collective has finished on the GPU. One call at a time per communicator.
//
// On the emulated device, a stand-in takes libnccl.so.2's place (nccl_standin.h: ranks in
// separate processes meet in POSIX shared memory); CLIPSCALE_EMU_NCCL=absent turns it off.
#pragma once
#include <stddef.h>
#include <stdint.h>

#define CS_CUDA_NCCL_UNIQUE_ID_BYTES 128
// NCCL 2.14 brought nonblocking communicators and ncclCommFinalize.
#define CS_CUDA_NCCL_MIN_VERSION 21400

#ifdef __cplusplus
extern "C" {
#endif

// Loads libnccl.so.2 (once). version: NCCL's code (e.g. 22703 for 2.27.3). path: the
// file loaded (written into path[0..path_len), may be null). Fails with where it looked.
int cs_cuda_nccl_version(int* version, char* path, int path_len);

// A new unique id (rank 0 makes it, every rank passes it to init_rank): 128 bytes.
int cs_cuda_nccl_get_unique_id(unsigned char* id);

// Joins the communicator `id` as `rank` of `nranks` on cuda:<device>; *handle is the
// communicator for the calls below. Fails (aborting the half-made communicator) after
// timeout_s seconds without all ranks.
int cs_cuda_nccl_init_rank(void** handle, int device, int nranks, int rank, const unsigned char* id, double timeout_s);

// op: 0 sum, 1 mean (ncclAvg). send may equal recv (in place).
int cs_cuda_nccl_all_reduce(void* handle, const float* send, float* recv, size_t count, int op);
// recv holds nranks · count floats, rank r's send at [r·count, (r+1)·count).
int cs_cuda_nccl_all_gather(void* handle, const float* send, float* recv, size_t count);
// send holds nranks · count floats; this rank gets slice `rank` of the reduction in recv.
int cs_cuda_nccl_reduce_scatter(void* handle, const float* send, float* recv, size_t count, int op);
// Rank root's buffer into every rank's (in place).
int cs_cuda_nccl_broadcast(void* handle, float* buf, size_t count, int root);

// Rank, size and device of a communicator; broken = 1 after a timeout or an error
// that aborted it (every later call then fails with that first error).
int cs_cuda_nccl_comm_info(void* handle, int* rank, int* nranks, int* device, int* broken);

// Waits (bounded) for the GPU, finalises and destroys; frees the handle. After a
// failure it aborts instead. The handle is invalid afterwards, whatever the result.
int cs_cuda_nccl_destroy(void* handle);
// Aborts (no waiting for the other ranks) and frees the handle.
int cs_cuda_nccl_abort(void* handle);

#ifdef __cplusplus
}
#endif
