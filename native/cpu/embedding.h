// The embeddings at the bottom of CLIP's two towers: token lookup, positional
// embedding add, and the class token put in front of the patch tokens.
// Parameter gradients are OVERWRITTEN (not accumulated). With bf16 emulation on,
// forward outputs are rounded to bf16 as the GPU stores them.
#pragma once
#include "core/tensor.h"

namespace cs::cpu {

// out[..., :] = table[ids[...], :]; ids i32 of any shape, table [V, W], out ids.shape + [W].
// Every id is checked (0 <= id < V) before anything is written.
void embedding_forward(const Tensor& ids, const Tensor& table, Tensor& out);
// dtable = 0, then dtable[ids[n]] += dout[n] (repeated ids add up).
void embedding_backward(const Tensor& ids, const Tensor& dout, Tensor& dtable);

// out = x + pos, x [B, S, W], pos [S, W]; out may be x itself.
void pos_embed_forward(const Tensor& x, const Tensor& pos, Tensor& out);
// dpos = Σ_b dout[b]. (The gradient of x is dout itself.)
void pos_embed_backward(const Tensor& dout, Tensor& dpos);

// out[b, 0] = cls, out[b, 1 + s] = x[b, s]; x [B, S, W], cls [W], out [B, S + 1, W].
void class_token_concat(const Tensor& x, const Tensor& cls, Tensor& out);
// dx[b, s] = dout[b, 1 + s], dcls = Σ_b dout[b, 0].
void class_token_concat_backward(const Tensor& dout, Tensor& dx, Tensor& dcls);

}  // namespace cs::cpu
