// The part of cuBLASLt's C API that clipscale calls, declared here so the build needs
// no cuBLAS headers (the library is dlopen'ed at run time). Values are those of
// cublasLt.h / library_types.h in CUDA 12 and 13, which keep them stable.
#pragma once
#include <cstddef>
#include <cstdint>

namespace cs::cuda::lt {

using Status = int;  // cublasStatus_t; 0 = CUBLAS_STATUS_SUCCESS
using Handle = void*;
using MatmulDesc = void*;
using MatrixLayout = void*;
using Preference = void*;

struct MatmulAlgo {
  uint64_t data[8];
};
struct HeuristicResult {
  MatmulAlgo algo;
  size_t workspace_size;
  Status state;
  float waves_count;
  int reserved[4];
};

// cudaDataType_t
constexpr int kR32F = 0;
constexpr int kR16F = 2;
constexpr int kR16BF = 14;
// cublasComputeType_t
constexpr int kCompute32F = 68;
// cublasOperation_t
constexpr int kOpN = 0;
constexpr int kOpT = 1;
// cublasLtMatmulDescAttributes_t
constexpr int kDescTransA = 3;
constexpr int kDescTransB = 4;
constexpr int kDescEpilogue = 7;
constexpr int kDescBiasPointer = 8;
constexpr int kDescBiasDataType = 26;
// cublasLtMatrixLayoutAttribute_t
constexpr int kLayoutBatchCount = 5;
constexpr int kLayoutStridedBatchOffset = 6;
// cublasLtMatmulPreferenceAttributes_t
constexpr int kPrefMaxWorkspaceBytes = 1;
// cublasLtEpilogue_t
constexpr int kEpilogueDefault = 1;
constexpr int kEpilogueBias = 4;
constexpr int kEpilogueGelu = 32;
constexpr int kEpilogueGeluBias = 36;

// Function pointer types, named after the functions (cudaStream_t is passed as void*).
using CreateFn = Status (*)(Handle*);
using DestroyFn = Status (*)(Handle);
using GetVersionFn = size_t (*)();
using MatmulDescCreateFn = Status (*)(MatmulDesc*, int compute_type, int scale_type);
using MatmulDescDestroyFn = Status (*)(MatmulDesc);
using MatmulDescSetAttributeFn = Status (*)(MatmulDesc, int attr, const void* buf, size_t size);
using MatrixLayoutCreateFn = Status (*)(MatrixLayout*, int type, uint64_t rows, uint64_t cols, int64_t ld);
using MatrixLayoutDestroyFn = Status (*)(MatrixLayout);
using MatrixLayoutSetAttributeFn = Status (*)(MatrixLayout, int attr, const void* buf, size_t size);
using PreferenceCreateFn = Status (*)(Preference*);
using PreferenceDestroyFn = Status (*)(Preference);
using PreferenceSetAttributeFn = Status (*)(Preference, int attr, const void* buf, size_t size);
using AlgoGetHeuristicFn = Status (*)(Handle, MatmulDesc, MatrixLayout a, MatrixLayout b, MatrixLayout c,
                                      MatrixLayout d, Preference, int requested, HeuristicResult* results,
                                      int* returned);
using MatmulFn = Status (*)(Handle, MatmulDesc, const void* alpha, const void* A, MatrixLayout, const void* B,
                            MatrixLayout, const void* beta, const void* C, MatrixLayout, void* D, MatrixLayout,
                            const MatmulAlgo*, void* workspace, size_t workspace_bytes, void* stream);

}  // namespace cs::cuda::lt
