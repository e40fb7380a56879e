import test from 'ava';

import { Tensor } from '../lib/tensor.js';
import * as ops from '../lib/ops.js';
import { dot, finiteDiff, lossWeights, randTensor, relErr } from './_helpers/numeric.js';

const f32 = (t: Tensor) => t.view() as Float32Array;

function normalizeRef(x: ArrayLike<number>, rows: number, d: number): Float64Array {
  const out = new Float64Array(rows * d);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let j = 0; j < d; j++) ss += x[r * d + j] ** 2;
    const n = Math.max(Math.sqrt(ss), 1e-12);
    for (let j = 0; j < d; j++) out[r * d + j] = x[r * d + j] / n;
  }
  return out;
}

test('l2normalizeForward matches float64 and reports the norms', (t) => {
  const [R, D] = [9, 40];
  const x = randTensor([3, 3, D], 1, 3);
  const out = Tensor.empty([3, 3, D]);
  const norms = Tensor.empty([3, 3]);
  ops.l2normalizeForward(x, out, norms);
  t.true(relErr(f32(out), normalizeRef(f32(x), R, D)) < 1e-6);
  const nref = Array.from({ length: R }, (_, r) => Math.hypot(...f32(x).subarray(r * D, (r + 1) * D)));
  t.true(relErr(f32(norms), nref) < 1e-6);
});

test('l2normalizeBackward matches finite differences', (t) => {
  const [R, D] = [5, 12];
  const x = randTensor([R, D], 2);
  const w = lossWeights(R * D, 3);
  const out = Tensor.empty([R, D]);
  const norms = Tensor.empty([R]);
  ops.l2normalizeForward(x, out, norms);
  const dx = Tensor.empty([R, D]);
  ops.l2normalizeBackward(Tensor.from(w, [R, D]), out, norms, dx);
  const fd = finiteDiff(() => dot(w, normalizeRef(f32(x), R, D)), x, 60, 1e-3);
  const got = fd.idx.map((i) => f32(dx)[i]);
  t.true(relErr(got, fd.grad) < 1e-3, `relErr ${relErr(got, fd.grad)}`);
});

test('l2normalize: a zero row stays zero (clamped norm) and its gradient is dout / eps', (t) => {
  const x = Tensor.from(new Float32Array([0, 0, 0, 3, 4, 0]), [2, 3]);
  const out = Tensor.empty([2, 3]);
  const norms = Tensor.empty([2]);
  ops.l2normalizeForward(x, out, norms);
  t.deepEqual(Array.from(f32(out)), [0, 0, 0, 0.6000000238418579, 0.800000011920929, 0]);
  t.deepEqual(Array.from(f32(norms)), [0, 5]);
  const dx = Tensor.empty([2, 3]);
  ops.l2normalizeBackward(Tensor.from(new Float32Array([1e-12, 0, 0, 0, 0, 1]), [2, 3]), out, norms, dx);
  t.true(Math.abs(f32(dx)[0] - 1) < 1e-6);
  t.true(Math.abs(f32(dx)[5] - 0.2) < 1e-7);
  t.throws(() => ops.l2normalizeForward(x, out, Tensor.empty([3])), { message: /l2normalizeForward: norms must hold one value per row \(2\)/ });
});
