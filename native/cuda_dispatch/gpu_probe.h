// Finds what GPU support this machine has, without linking to any of it: the
// driver (libcuda), cuBLASLt and NCCL are looked up with dlopen.
#pragma once
#include <string>
#include <vector>

namespace cs {

struct GpuProbe {
  bool driver_found = false;
  std::string driver_error;      // why not, when not found or cuInit failed
  int driver_version = 0;        // e.g. 13000
  std::vector<std::string> devices;
  std::vector<std::string> device_capabilities;  // "9.0"
  std::vector<double> device_memory_gib;
  std::string cublaslt_path;     // empty when not found
  size_t cublaslt_version = 0;
  std::string cublaslt_error;
  std::string nccl_path;
  int nccl_version = 0;
  std::string nccl_error;
};

GpuProbe probe_gpu();

}  // namespace cs
