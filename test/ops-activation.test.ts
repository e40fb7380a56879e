import test from 'ava';

import { native } from '../lib/native.js';
import { Tensor } from '../lib/tensor.js';
import * as ops from '../lib/ops.js';
import { randTensor, relErr } from './_helpers/numeric.js';

const f32 = (t: Tensor) => t.view() as Float32Array;

/** erf in float64: its Maclaurin series (accurate to ~1e-9 for |x| ≤ 4), ±1 beyond (1 − erf(4) < 2e-8). */
function erf(x: number): number {
  if (Math.abs(x) > 4) return Math.sign(x);
  let term = x;
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= (-x * x) / n;
    const add = term / (2 * n + 1);
    sum += add;
    if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}
const gelu = (x: number) => 0.5 * x * (1 + erf(x / Math.SQRT2));
const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));
const quickGelu = (x: number) => x * sigmoid(1.702 * x);

const cases = [
  { name: 'gelu', f: gelu, fwd: ops.geluForward, bwd: ops.geluBackward },
  { name: 'quickGelu', f: quickGelu, fwd: ops.quickGeluForward, bwd: ops.quickGeluBackward },
];

for (const { name, f, fwd, bwd } of cases) {
  test(`${name} forward matches float64 and works in place`, (t) => {
    const x = randTensor([4, 7, 33], 1, 2.5);
    const out = Tensor.empty(x.shape);
    fwd(x, out);
    const ref = Array.from(f32(x), f);
    t.true(relErr(f32(out), ref) < 1e-6, `relErr ${relErr(f32(out), ref)}`);
    const y = x.clone();
    fwd(y, y);
    t.deepEqual(Array.from(f32(y)), Array.from(f32(out)));
  });

  test(`${name} backward matches a float64 central difference of the float64 function`, (t) => {
    // Elementwise, so the Jacobian is diagonal: dx_i = dout_i · f'(x_i), checked at every point
    // (float64 differences with h = 1e-5 are accurate to ~1e-10).
    const x = randTensor([1000], 2, 3);
    const dout = randTensor([1000], 3);
    const dx = Tensor.empty([1000]);
    bwd(x, dout, dx);
    const hh = 1e-5;
    const ref = Array.from(f32(x), (v, i) => (f32(dout)[i] * (f(v + hh) - f(v - hh))) / (2 * hh));
    t.true(relErr(f32(dx), ref) < 1e-5, `relErr ${relErr(f32(dx), ref)}`);
    const inPlace = dout.clone();
    bwd(x, inPlace, inPlace);
    t.deepEqual(Array.from(f32(inPlace)), Array.from(f32(dx)), 'dx may be dout');
  });
}

test('activations: bf16 emulation rounds the stored output', (t) => {
  const x = randTensor([257], 5);
  const out = Tensor.empty([257]);
  native.setBf16Emulation(true);
  try {
    ops.geluForward(x, out);
  } finally {
    native.setBf16Emulation(false);
  }
  t.deepEqual(Array.from(f32(out)), Array.from(out.clone('bf16').toFloat32Array()));
  const e = relErr(f32(out), Array.from(f32(x), gelu));
  t.true(e > 1e-6 && e < 2 ** -8, `bf16 error ${e}`);
});

test('activation errors name the op and the argument', (t) => {
  t.throws(() => ops.geluForward(Tensor.zeros([4]), Tensor.zeros([5])), { message: /geluForward: x and out must have the same shape/ });
  t.throws(() => ops.quickGeluBackward(Tensor.zeros([4]), Tensor.zeros([4], 'i32'), Tensor.zeros([4])), {
    message: /quickGeluBackward: dout must be f32, got i32/,
  });
});
