// The SigLIP loss on the CUDA backend: the CPU op's checks, then the library's kernel.
#pragma once
#include "core/tensor.h"

namespace cs::cuda {

// As cpu::sigmoid_loss (cpu/sigmoid_loss.h), plus lossOut on the device. read_back: wait for
// the device and return the loss; else return NaN and leave the loss in loss_out.
double sigmoid_loss(const Tensor& image, const Tensor& text, const Tensor& logit_scale, const Tensor& logit_bias,
                    int64_t positive_offset, Tensor* dimage, Tensor* dtext, Tensor* dlogit_scale, Tensor* dlogit_bias,
                    Tensor* loss_out, Tensor* workspace, float grad_scale, bool read_back);

}  // namespace cs::cuda
