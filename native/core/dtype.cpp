#include "core/dtype.h"

namespace cs {

bool parse_dtype(const std::string& s, DType* out) {
  if (s == "f32" || s == "float32") { *out = DType::F32; return true; }
  if (s == "bf16" || s == "bfloat16") { *out = DType::BF16; return true; }
  if (s == "f16" || s == "float16") { *out = DType::F16; return true; }
  if (s == "i32" || s == "int32") { *out = DType::I32; return true; }
  if (s == "i64" || s == "int64") { *out = DType::I64; return true; }
  return false;
}

}  // namespace cs
