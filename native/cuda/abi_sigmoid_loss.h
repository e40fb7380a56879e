// C ABI of the SigLIP (sigmoid) loss on the device (cpu/sigmoid_loss.h says what it computes).
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// image [R, dim], text [C, dim] (normalised features, device); logit_scale, logit_bias: device
// pointers to the log scale and the bias. Positives at j = i + positive_offset (−1: none).
// dimage, dtext, dlogit_scale, dlogit_bias, loss_out: nullable device outputs, OVERWRITTEN (the
// gradients times grad_scale). workspace: nullable, ≥ R·C floats (allocated for the call when
// null). loss_host: nullable; when given, the call waits for the device and stores the loss there.
int cs_cuda_sigmoid_loss(const float* image, const float* text, const float* logit_scale, const float* logit_bias,
                         int64_t rows, int64_t cols, int64_t dim, int64_t positive_offset, float* dimage, float* dtext,
                         float* dlogit_scale, float* dlogit_bias, float* loss_out, float* workspace, float grad_scale,
                         double* loss_host);

#ifdef __cplusplus
}
#endif
