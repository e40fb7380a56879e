// Every inline PTX instruction of the CUDA backend, behind one helper each:
//   mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32     mma_bf16_16816
//   mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32       mma_f16_16816
//   ldmatrix.sync.aligned.m8n8.x{1,2,4}[.trans].shared.b16   ldmatrix_x1/x2/x4[_trans]
//   cp.async.cg.shared.global (16 bytes), commit_group, wait_group   cp_async16 / _commit / _wait
//
// On the GPU they are the real instructions. Under CLIPSCALE_PTX_EMULATE (always on in the
// emulated device's host build; a switch for nvcc builds) they are emulations written from
// the PTX ISA's fragment layouts with warp shuffles, so the same emulation also runs on a
// GPU, where a kernel built both ways must agree: the check that our reading of the
// layouts matches the hardware. On the host, a warp's shuffles of one instruction are
// served at one warp barrier (WarpGather), and cp.async copies are queued and land only
// at the wait_group that retires their group: a missing wait reads stale shared memory.
//
// Fragment layouts (lane = 4·g + t, g = lane >> 2, t = lane & 3; a register holds two
// bf16 or two f16, the lower column / lower k in its low half; the same for both types):
//   A 16×16 (row-major): a0 = A[g][2t..2t+1], a1 = A[g+8][2t..], a2 = A[g][2t+8..], a3 = A[g+8][2t+8..]
//   B 16×8 (B[k][n]):    b0 = B[2t..2t+1][g], b1 = B[2t+8..2t+9][g]
//   C/D 16×8 (f32):      d0 = D[g][2t], d1 = D[g][2t+1], d2 = D[g+8][2t], d3 = D[g+8][2t+1]
//   ldmatrix: lanes 8i..8i+7 give the row addresses of matrix i (16-byte rows); register i
//   of lane L holds row L>>2, elements 2(L&3), 2(L&3)+1 of matrix i, or with .trans
//   (row 2(L&3), col L>>2) low and (row 2(L&3)+1, col L>>2) high.
#pragma once
#include <cuda_runtime.h>
#include <stdint.h>

#include "cuda/numerics.cuh"

#if !defined(__CUDACC__) && !defined(CLIPSCALE_PTX_EMULATE)
#error "host builds of the CUDA sources emulate PTX: define CLIPSCALE_PTX_EMULATE (native/cuda/emu)"
#endif

namespace cs_cuda::ptx {

#if defined(CLIPSCALE_PTX_EMULATE)

__device__ __forceinline__ int lane_index() {
#if defined(__CUDACC__)
  return static_cast<int>(threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z)) & 31;
#else
  return cs_emu::lane_id();
#endif
}

// Reads words other lanes hold: want() names (destination, word, source lane); run()
// completes them. On the GPU each want() is a __shfl_sync (the word index must be the same
// in every lane); on the host, all of one run() are served at one warp barrier.
template <int N>
struct WarpGather {
  const uint32_t* pub;
  int npub;
#if defined(__CUDACC__)
  __device__ void want(uint32_t& dst, int word, int src) { dst = __shfl_sync(0xffffffffu, pub[word], src); }
  __device__ void run(const char*) {}
#else
  cs_emu::ExchangeRequest req[N];
  int n = 0;
  void want(uint32_t& dst, int word, int src) {
    req[n++] = cs_emu::ExchangeRequest{static_cast<uint8_t>(src), static_cast<uint8_t>(word), &dst};
  }
  void run(const char* what) { cs_emu::warp_exchange(what, 0xffffffffu, pub, npub, req, n); }
#endif
};

// The two 16-bit halves of a register as f32, for each operand type the mma takes.
struct Bf16Halves {
  __device__ static float lo(uint32_t r) { return __uint_as_float(r << 16); }
  __device__ static float hi(uint32_t r) { return __uint_as_float(r & 0xffff0000u); }
};
struct F16Halves {
  __device__ static float lo(uint32_t r) { return f16_bits_to_f32(static_cast<uint16_t>(r & 0xffffu)); }
  __device__ static float hi(uint32_t r) { return f16_bits_to_f32(static_cast<uint16_t>(r >> 16)); }
};

template <class H>
__device__ inline void mma_16816_emulated(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  const int lane = lane_index(), g = lane >> 2, t = lane & 3;
  const uint32_t mine[6] = {a[0], a[1], a[2], a[3], b0, b1};
  // Row g of A lives in a0/a2 of lanes 4g..4g+3, row g+8 in a1/a3; column n of B in b0/b1
  // of lanes 4n..4n+3. This lane needs rows g, g+8 and columns 2t, 2t+1.
  uint32_t ra[4][4];      // [t'][register a0..a3] of lane 4g+t'
  uint32_t rb[2][4][2];   // [column 2t+c][t'][b0, b1] of lane 4(2t+c)+t'
  WarpGather<32> x{mine, 6};
#pragma unroll
  for (int tp = 0; tp < 4; tp++)
#pragma unroll
    for (int r = 0; r < 4; r++) x.want(ra[tp][r], r, 4 * g + tp);
#pragma unroll
  for (int c = 0; c < 2; c++)
#pragma unroll
    for (int tp = 0; tp < 4; tp++)
#pragma unroll
      for (int r = 0; r < 2; r++) x.want(rb[c][tp][r], 4 + r, 4 * (2 * t + c) + tp);
  x.run("mma.sync.m16n8k16 (emulated)");
  float A[2][16], B[2][16];
#pragma unroll
  for (int tp = 0; tp < 4; tp++) {
    // a0: row g, k 2t'..; a1: row g+8, k 2t'..; a2: row g, k 2t'+8..; a3: row g+8, k 2t'+8..
    A[0][2 * tp] = H::lo(ra[tp][0]);
    A[0][2 * tp + 1] = H::hi(ra[tp][0]);
    A[1][2 * tp] = H::lo(ra[tp][1]);
    A[1][2 * tp + 1] = H::hi(ra[tp][1]);
    A[0][2 * tp + 8] = H::lo(ra[tp][2]);
    A[0][2 * tp + 9] = H::hi(ra[tp][2]);
    A[1][2 * tp + 8] = H::lo(ra[tp][3]);
    A[1][2 * tp + 9] = H::hi(ra[tp][3]);
#pragma unroll
    for (int c = 0; c < 2; c++) {
      B[c][2 * tp] = H::lo(rb[c][tp][0]);
      B[c][2 * tp + 1] = H::hi(rb[c][tp][0]);
      B[c][2 * tp + 8] = H::lo(rb[c][tp][1]);
      B[c][2 * tp + 9] = H::hi(rb[c][tp][1]);
    }
  }
  // bf16 and f16 products are exact in f32; the sum's order differs from the tensor core's.
#pragma unroll
  for (int e = 0; e < 4; e++) {
    const int r = e >> 1, c = e & 1;
    float s = d[e];
#pragma unroll
    for (int k = 0; k < 16; k++) s += A[r][k] * B[c][k];
    d[e] = s;
  }
}

__device__ inline void mma_bf16_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  mma_16816_emulated<Bf16Halves>(d, a, b0, b1);
}
__device__ inline void mma_f16_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  mma_16816_emulated<F16Halves>(d, a, b0, b1);
}

// One register of ldmatrix for matrix i: without .trans from row L>>2 of it, with .trans
// two halves from rows 2(L&3) and 2(L&3)+1, column L>>2.
template <int NMAT, bool TRANS>
__device__ inline void ldmatrix_emulated(uint32_t* r, const void* row_addr) {
  const int lane = lane_index();
  const uintptr_t mine_p = reinterpret_cast<uintptr_t>(row_addr);
  const uint32_t mine[2] = {static_cast<uint32_t>(mine_p), static_cast<uint32_t>(static_cast<uint64_t>(mine_p) >> 32)};
  uint32_t addr[NMAT][2][2];  // [matrix][row choice][lo, hi word of the pointer]
  WarpGather<NMAT * 4> x{mine, 2};
#pragma unroll
  for (int i = 0; i < NMAT; i++)
#pragma unroll
    for (int h = 0; h < 2; h++) {
      const int row = TRANS ? 2 * (lane & 3) + h : lane >> 2;
      x.want(addr[i][h][0], 0, 8 * i + row);
      x.want(addr[i][h][1], 1, 8 * i + row);
    }
  x.run(TRANS ? "ldmatrix.trans (emulated)" : "ldmatrix (emulated)");
#pragma unroll
  for (int i = 0; i < NMAT; i++) {
    const uint16_t* p0 = reinterpret_cast<const uint16_t*>(static_cast<uintptr_t>(addr[i][0][0]) |
                                                           (static_cast<uintptr_t>(addr[i][0][1]) << 32));
    if (!TRANS) {
      r[i] = *reinterpret_cast<const uint32_t*>(p0 + 2 * (lane & 3));
    } else {
      const uint16_t* p1 = reinterpret_cast<const uint16_t*>(static_cast<uintptr_t>(addr[i][1][0]) |
                                                             (static_cast<uintptr_t>(addr[i][1][1]) << 32));
      r[i] = static_cast<uint32_t>(p0[lane >> 2]) | (static_cast<uint32_t>(p1[lane >> 2]) << 16);
    }
  }
}

__device__ __forceinline__ void ldmatrix_x1(uint32_t& r0, const void* p) { ldmatrix_emulated<1, false>(&r0, p); }
__device__ __forceinline__ void ldmatrix_x2(uint32_t (&r)[2], const void* p) { ldmatrix_emulated<2, false>(r, p); }
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* p) { ldmatrix_emulated<4, false>(r, p); }
__device__ __forceinline__ void ldmatrix_x1_trans(uint32_t& r0, const void* p) { ldmatrix_emulated<1, true>(&r0, p); }
__device__ __forceinline__ void ldmatrix_x2_trans(uint32_t (&r)[2], const void* p) { ldmatrix_emulated<2, true>(r, p); }
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p) { ldmatrix_emulated<4, true>(r, p); }

#if defined(__CUDACC__)
// On a GPU the emulated copy is synchronous: as if every wait came at once.
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool valid) {
  *reinterpret_cast<uint4*>(smem) = valid ? *reinterpret_cast<const uint4*>(gmem) : make_uint4(0, 0, 0, 0);
}
__device__ __forceinline__ void cp_async_commit() {}
template <int N>
__device__ __forceinline__ void cp_async_wait() {}
#else
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool valid) {
  cs_emu::cp_async(smem, gmem, 16, valid ? 16 : 0);
}
__device__ __forceinline__ void cp_async_commit() { cs_emu::cp_async_commit(); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  cs_emu::cp_async_wait(N);
}
#endif

#else  // the real instructions

__device__ __forceinline__ void mma_bf16_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ void mma_f16_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ unsigned smem_addr(const void* p) { return static_cast<unsigned>(__cvta_generic_to_shared(p)); }

__device__ __forceinline__ void ldmatrix_x1(uint32_t& r0, const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];\n" : "=r"(r0) : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldmatrix_x2(uint32_t (&r)[2], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n" : "=r"(r[0]), "=r"(r[1]) : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldmatrix_x1_trans(uint32_t& r0, const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16 {%0}, [%1];\n" : "=r"(r0) : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldmatrix_x2_trans(uint32_t (&r)[2], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1])
               : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

// 16-byte asynchronous global→shared copy; zero-fills when !valid (src is not read).
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool valid) {
  const int bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(smem)), "l"(gmem), "r"(bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

#endif

}  // namespace cs_cuda::ptx
