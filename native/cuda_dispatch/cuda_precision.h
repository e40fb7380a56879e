// The CUDA backend's precision switch (abi.h cs_cuda_set_precision): which type the GEMMs'
// operands and the stored activations take on the device. Process-wide, like the CPU's bf16
// emulation switch; a training run sets it before its first step and restores it after.
#pragma once
#include <string>

namespace cs::cuda {

// "fp32", "bf16" (the library's default) or "fp16"; loads the CUDA backend.
std::string precision();
// Sets it from one of those names (anything else is an error naming what is accepted);
// returns the previous one.
std::string set_precision(const std::string& name);

}  // namespace cs::cuda
