// Views of a tensor's rows: rows [start, start + count) along the first dimension share the
// tensor's storage (tensors are contiguous and row-major, so such a range is contiguous too).
// On any device: gradient accumulation writes micro-batch features into, and reads their
// gradients out of, rows of one batch-sized tensor without copies through the host.
#include "core/error.h"
#include "napi/args.h"
#include "napi/registry.h"
#include "napi/tensor_wrap.h"

namespace cs::napi {

// tensorRows(t, start, count) → a view of rows start .. start + count of t.
static Napi::Value TensorRows(const Napi::CallbackInfo& info) {
  const char* op = "Tensor.rows";
  Tensor& t = arg_tensor(info, 0, op, "tensor");
  const int64_t start = arg_int(info, 1, op, "start");
  const int64_t count = arg_int(info, 2, op, "count");
  if (t.ndim() < 1) fail(op, ": the tensor ", t.describe(), " has no rows (it is a scalar)");
  const int64_t rows = t.dim(0);
  if (start < 0 || count < 0 || start + count > rows)
    fail(op, ": rows ", start, " .. ", start + count, " are not within the ", rows, " rows of ", t.describe());
  Tensor v = t;
  const int64_t per_row = rows == 0 ? 0 : t.numel() / rows;
  v.offset = t.offset + static_cast<size_t>(start * per_row) * dtype_size(t.dtype);
  v.shape[0] = count;
  return TensorWrap::Create(info.Env(), v);
}
CS_BINDING("tensorRows", TensorRows);

}  // namespace cs::napi
