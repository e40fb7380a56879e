// Tensor.rows: a view of rows along the first dimension that shares the tensor's memory (CPU and
// CUDA), used by gradient accumulation and the data-parallel gradient buckets.
import test from 'ava';

import { noGpuReason } from './_helpers/cuda.js';
import * as ops from '../lib/ops.js';
import { Tensor } from '../lib/tensor.js';

test('rows(start, count) is a view: writes through it land in the tensor, reads see the tensor', (t) => {
  using x = Tensor.from(Float32Array.from({ length: 12 }, (_, i) => i), [4, 3]);
  using mid = x.rows(1, 2);
  t.deepEqual(mid.shape, [2, 3]);
  t.deepEqual(mid.toArray(), [3, 4, 5, 6, 7, 8]);
  ops.fill(mid, -1);
  t.deepEqual(x.toArray(), [0, 1, 2, -1, -1, -1, -1, -1, -1, 9, 10, 11]);
  using flat = Tensor.from(Float32Array.from({ length: 10 }, (_, i) => i));
  using part = flat.rows(7, 3).reshape([3, 1]);
  t.deepEqual(part.toArray(), [7, 8, 9]);
  using none = x.rows(4, 0);
  t.deepEqual(none.shape, [0, 3]);
});

test('rows outside the tensor, or of a scalar, are refused with the range and the tensor named', (t) => {
  using x = Tensor.zeros([4, 3]);
  t.throws(() => x.rows(3, 2), { message: /^Tensor\.rows: rows 3 \.\. 5 are not within the 4 rows of f32\[4, 3\]/ });
  t.throws(() => x.rows(-1, 1), { message: /rows -1 \.\. 0 are not within the 4 rows/ });
  using s = Tensor.zeros([]);
  t.throws(() => s.rows(0, 1), { message: /Tensor\.rows: the tensor f32\[\] .*has no rows/ });
});

(noGpuReason === null ? test : test.skip)('rows of a CUDA tensor are a view on the device', (t) => {
  using x = Tensor.from(Float32Array.from({ length: 8 }, (_, i) => i), [4, 2]).to('cuda');
  using r = x.rows(2, 2);
  t.is(r.device, 'cuda:0');
  ops.fill(r, 5);
  t.deepEqual(Array.from(x.hostFloat32()), [0, 1, 2, 3, 5, 5, 5, 5]);
});
