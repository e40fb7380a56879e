// Attention's element-wise work on transposed scores, for CPUs with AVX-512 (attention_avx512.cpp)
// or AVX2 + FMA (attention_avx2.cpp: the same steps on 8 lanes, two vectors a block of 16 queries).
//
// The scores of a head are held transposed, sT[j·ldS + i] = score of query i for key j, with ldS
// a multiple of 16 (padded_queries): a query's softmax then runs down a column, and 16 queries sit
// side by side in the lanes of one vector, so their max and sum are element-wise over the keys.
// The row-wise softmax folded each row's lanes horizontally (several dependent shuffle-and-add steps
// a row, rows one after another), which at S = 17 or 32 cost as much as the head's products.
// Lanes past S hold values nobody reads.
#pragma once
#include <cstdint>

namespace cs::cpu::attention_detail {

constexpr int64_t kQueryLanes = 16;
inline int64_t padded_queries(int64_t S) { return (S + kQueryLanes - 1) / kQueryLanes * kQueryLanes; }

// One instruction set's column kernels on the transposed scores:
//
// softmax: each column i < queries of sT becomes the probabilities of query i (causal: keys j > i
// masked to exactly 0) and lse[i] (nullable) the log-sum-exp of its unmasked scores. A masked score
// counts as -inf (e^-inf = 0 adds nothing); a query whose scores are all NaN gives a NaN column, its
// masked entries still exactly 0, as libm's exp would. `queries` columns of `keys` scores each; column
// i is query query[i] (query = nullptr: query i), which a causal mask lets see keys j ≤ query[i]. The
// square case is keys = queries = S.
// probs_from_lse: Pᵀ recomputed in place from the transposed scores and the saved log-sum-exp
// l[0:S] (causal: keys j > i exactly 0, even where l is NaN).
// score_gradient: dSᵀ = Pᵀ∘(dPᵀ − D) in place over dsT (D_i = rowdot[i], one per column).
struct ColumnKernels {
  void (*softmax)(float* sT, int64_t keys, int64_t queries, int64_t ldS, bool causal, const int32_t* query, float* lse);
  void (*probs_from_lse)(float* sT, int64_t S, int64_t ldS, bool causal, const float* l);
  void (*score_gradient)(float* dsT, const float* pT, const float* rowdot, int64_t S, int64_t ldS);
};

// The AVX-512 kernels (attention_avx512.cpp) and the AVX2 + FMA ones (attention_avx2.cpp, each lane
// computing what it does in the AVX-512 kernels), or nullptr where this build or CPU lacks them.
const ColumnKernels* avx512_column_kernels();
const ColumnKernels* avx2_column_kernels();

}  // namespace cs::cpu::attention_detail
