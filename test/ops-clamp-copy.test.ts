// ops.clamp (the trainer's logit-scale clamp, on the parameter's device) and
// Tensor.copyFrom (uploads into tensors a model already holds), on the CPU and on CUDA
// (the emulated device where no GPU is).
import test from 'ava';

import { countCudaTests, noGpuReason } from './_helpers/cuda.js';
import * as ops from '../lib/ops.js';
import { Tensor } from '../lib/tensor.js';
import { randn } from './_helpers/numeric.js';

const ran = countCudaTests(test, 'ops-clamp-copy.test.ts');
const devices = ['cpu', ...(noGpuReason === null ? ['cuda'] : [])];
if (noGpuReason !== null) console.log(`ops-clamp-copy: CUDA cases skipped: ${noGpuReason}`);

for (const device of devices) {
  test(`clamp on ${device}: min(max(x, lo), hi) elementwise, NaN kept, bounds checked`, (t) => {
    if (device !== 'cpu') ran();
    const values = randn(1000, 7).map((v) => v * 3);
    values[3] = NaN;
    values[4] = Infinity;
    values[5] = -Infinity;
    const x = Tensor.from(values).to(device);
    ops.clamp(x, -1, Math.log(100));
    const got = x.hostFloat32();
    const hi = Math.fround(Math.log(100));
    values.forEach((v, i) => {
      const want = Number.isNaN(v) ? NaN : Math.min(Math.max(v, -1), hi);
      t.true(Object.is(got[i], Math.fround(want)), `x[${i}] = ${v}: got ${got[i]}, want ${want}`);
    });
    t.throws(() => ops.clamp(x, 2, 1), { message: /clamp: the bounds must satisfy lo <= hi, got lo 2 and hi 1/ });
    t.throws(() => ops.clamp(Tensor.zeros([2], 'i32', device), 0, 1), { message: /clamp/ });
    x.dispose();
  });

  test(`copyFrom into a ${device} tensor from the CPU and back, with clear errors for another shape or dtype`, (t) => {
    if (device !== 'cpu') ran();
    const src = Tensor.from(randn(24, 3), [2, 3, 4]);
    const dst = Tensor.zeros([2, 3, 4], 'f32', device);
    dst.copyFrom(src);
    t.deepEqual(dst.hostFloat32(), src.toFloat32Array());
    const back = Tensor.zeros([2, 3, 4]);
    back.copyFrom(dst);
    t.deepEqual(back.toFloat32Array(), src.toFloat32Array());
    const ids = Tensor.from(new Int32Array([1, 2, 3]), [3]);
    const dids = Tensor.zeros([3], 'i32', device).copyFrom(ids);
    t.deepEqual([...dids.to('cpu').view()], [1, 2, 3]);
    t.throws(() => dst.copyFrom(Tensor.zeros([4, 3, 2])), { message: /copyAcross: src and dst must have one dtype and shape, got src f32\[4, 3, 2\] and dst f32\[2, 3, 4\]/ });
    t.throws(() => dids.copyFrom(Tensor.zeros([3])), { message: /copyAcross: src and dst must have one dtype and shape/ });
    for (const tt of [src, dst, back, ids, dids]) tt.dispose();
  });
}
