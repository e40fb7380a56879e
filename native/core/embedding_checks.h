// Argument checks of the embedding ops (token table, positional embedding, class token),
// shared by the CPU ops and the CUDA dispatch. They check shapes, dtypes and overlaps;
// the CPU ops also check the ids' values, which the CUDA kernels report themselves.
#pragma once
#include "core/checks.h"

namespace cs {

struct TableDims {
  int64_t vocab, width;
};

// embeddingForward: ids i32 [...], table f32 [vocab, w], out f32 [..., w].
TableDims check_embedding_forward(DeviceCheck device, const Tensor& ids, const Tensor& table, const Tensor& out);
// embeddingBackward: ids i32 [...], dout f32 [..., w], dtable f32 [vocab, w].
TableDims check_embedding_backward(DeviceCheck device, const Tensor& ids, const Tensor& dout, const Tensor& dtable);

// posEmbedForward: x [b, s, w], pos [s, w], out like x (may be x itself).
void check_pos_embed_forward(DeviceCheck device, const Tensor& x, const Tensor& pos, const Tensor& out);
// posEmbedBackward: dout [b, s, w], dpos [s, w].
void check_pos_embed_backward(DeviceCheck device, const Tensor& dout, const Tensor& dpos);

// classTokenConcat: x [b, s, w], cls [w], out [b, s + 1, w]; returns x's sizes.
TokenDims check_class_token_concat(DeviceCheck device, const Tensor& x, const Tensor& cls, const Tensor& out);
// classTokenConcatBackward: dout [b, s + 1, w], dx [b, s, w], dcls [w]; returns dx's sizes.
TokenDims check_class_token_concat_backward(DeviceCheck device, const Tensor& dout, const Tensor& dx,
                                            const Tensor& dcls);

}  // namespace cs
