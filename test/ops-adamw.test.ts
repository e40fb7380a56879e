import test from 'ava';

import { Tensor } from '../lib/tensor.js';
import * as ops from '../lib/ops.js';
import { randn, relErr } from './_helpers/numeric.js';

const f32 = (t: Tensor) => t.view() as Float32Array;

interface Hyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/** torch.optim.AdamW's update, in float64, written as PyTorch's _single_tensor_adamw. */
function adamwRef(p: Float64Array, g: ArrayLike<number>, m: Float64Array, v: Float64Array, h: Hyper, step: number): void {
  const bc1 = 1 - h.beta1 ** step;
  const bc2 = 1 - h.beta2 ** step;
  for (let i = 0; i < p.length; i++) {
    p[i] *= 1 - h.lr * h.weightDecay;
    m[i] = h.beta1 * m[i] + (1 - h.beta1) * g[i];
    v[i] = h.beta2 * v[i] + (1 - h.beta2) * g[i] * g[i];
    const denom = Math.sqrt(v[i]) / Math.sqrt(bc2) + h.eps;
    p[i] -= (h.lr / bc1) * (m[i] / denom);
  }
}

for (const weightDecay of [0, 0.2]) {
  test(`adamwStep follows PyTorch's AdamW over several steps (weight decay ${weightDecay})`, (t) => {
    const n = 3000;
    const h: Hyper = { lr: 5e-3, beta1: 0.9, beta2: 0.98, eps: 1e-6, weightDecay };
    const p0 = randn(n, 1);
    const param = Tensor.from(p0);
    const m = Tensor.zeros([n]);
    const v = Tensor.zeros([n]);
    const pRef = Float64Array.from(p0);
    const mRef = new Float64Array(n);
    const vRef = new Float64Array(n);
    const paramBf16 = Tensor.empty([n], 'bf16');
    for (let step = 1; step <= 6; step++) {
      const g = randn(n, 100 + step, 0.1);
      ops.adamwStep(param, Tensor.from(g), m, v, { ...h, step, paramBf16 });
      adamwRef(pRef, g, mRef, vRef, h, step);
    }
    const moved = relErr(pRef, p0);
    t.true(moved > 1e-3, 'the parameters moved');
    // fp32 updates of O(lr) on O(1) weights: errors ~1e-7 relative after a few steps.
    t.true(relErr(f32(param), pRef) < 1e-6, `param relErr ${relErr(f32(param), pRef)}`);
    // The update itself, which is ~1e-3 of the weights, to fp32 accuracy of an update.
    const upd = Array.from(f32(param), (x, i) => x - p0[i]);
    const updRef = Array.from(pRef, (x, i) => x - p0[i]);
    t.true(relErr(upd, updRef) < 1e-4, `update relErr ${relErr(upd, updRef)}`);
    t.true(relErr(f32(m), mRef) < 1e-6, `m relErr ${relErr(f32(m), mRef)}`);
    t.true(relErr(f32(v), vRef) < 1e-5, `v relErr ${relErr(f32(v), vRef)}`);
    t.deepEqual(Array.from(paramBf16.toFloat32Array()), Array.from(param.clone('bf16').toFloat32Array()), 'the bf16 copy is the rounded parameter');
  });
}

test('adamwStep: gradScale multiplies the gradient first', (t) => {
  const n = 64;
  const g = randn(n, 3);
  const a = Tensor.from(randn(n, 4));
  const b = a.clone();
  const [ma, va, mb, vb] = [0, 0, 0, 0].map(() => Tensor.zeros([n]));
  ops.adamwStep(a, Tensor.from(g), ma, va, { lr: 1e-2, step: 1, weightDecay: 0.1 });
  ops.adamwStep(b, Tensor.from(Float32Array.from(g, (x) => x * 1024)), mb, vb, { lr: 1e-2, step: 1, weightDecay: 0.1, gradScale: 1 / 1024 });
  t.true(relErr(f32(b), f32(a)) < 1e-7);
});

test('adamwStep errors name the argument', (t) => {
  const p = Tensor.zeros([4]);
  t.throws(() => ops.adamwStep(p, Tensor.zeros([5]), Tensor.zeros([4]), Tensor.zeros([4]), { lr: 1, step: 1 }), {
    message: /adamwStep: grad must have as many elements as param/,
  });
  t.throws(() => ops.adamwStep(p, Tensor.zeros([4]), Tensor.zeros([4]), Tensor.zeros([4]), { lr: 1, step: 0 }), {
    message: /adamwStep: step must be a 1-based step number, got 0/,
  });
  t.throws(() => ops.adamwStep(p, Tensor.zeros([4]), Tensor.zeros([4]), Tensor.zeros([4]), { lr: 1, step: 1, paramBf16: Tensor.zeros([4]) }), {
    message: /adamwStep: paramBf16 \(the 16-bit copy\) must be bf16 or f16, got f32/,
  });
  t.throws(() => ops.adamwStep(p, Tensor.zeros([4]), p, Tensor.zeros([4]), { lr: 1, step: 1 }), { message: /adamwStep: output m overlaps input param/ });
});

test('gradNorm is the global L2 norm; clipGradNorm scales to maxNorm and returns the norm before', (t) => {
  const a = randn(100000, 5);
  const b = randn(37, 6, 3);
  let ss = 0;
  for (const x of [...a, ...b]) ss += x * x;
  const norm = Math.sqrt(ss);
  const ga = Tensor.from(a);
  const gb = Tensor.from(b, [37, 1]);
  t.true(Math.abs(ops.gradNorm([ga, gb]) - norm) / norm < 1e-12, 'summed in double');
  t.is(ops.gradNorm([]), 0);
  t.is(ops.clipGradNorm([ga, gb], norm * 2), ops.gradNorm([ga, gb]), 'no clipping below maxNorm');
  t.deepEqual(Array.from(f32(gb)), Array.from(Float32Array.from(b)), 'unchanged when below maxNorm');
  const before = ops.clipGradNorm([ga, gb], 1);
  t.true(Math.abs(before - norm) / norm < 1e-12);
  const coef = 1 / (norm + 1e-6);
  t.true(relErr(f32(gb), Array.from(b, (x) => Math.fround(x) * coef)) < 1e-6);
  t.true(Math.abs(ops.gradNorm([ga, gb]) - 1) < 1e-5);
  const bad = Tensor.from([1, NaN, 2]);
  t.true(Number.isNaN(ops.clipGradNorm([bad], 1)), 'a non-finite norm is returned');
  t.is(f32(bad)[0], 1, 'and the gradients are left alone');
  t.throws(() => ops.gradNorm([ga, Tensor.zeros([2], 'bf16')]), { message: /gradNorm: grads\[1\] must be f32, got bf16/ });
  t.throws(() => ops.clipGradNorm([ga], 0), { message: /clipGradNorm: maxNorm must be positive/ });
});

test('adamwStep zeroGrad: the same update bit for bit, and the gradient left zero; refused with a gate', (t) => {
  const n = 200_003;  // more than one thread's share, and not a multiple of anything
  const bits = (a: Float32Array) => new Uint32Array(a.slice().buffer);
  const make = () => ({ p: Tensor.from(randn(n, 1)), g: Tensor.from(randn(n, 2)), m: Tensor.from(randn(n, 3, 0.1)), v: Tensor.from(randn(n, 4, 0.1).map(Math.abs)) });
  const a = make(), b = make();
  const opts = { lr: 1e-3, step: 3, weightDecay: 0.1, gradScale: 0.5 };
  ops.adamwStep(a.p, a.g, a.m, a.v, opts);
  ops.adamwStep(b.p, b.g, b.m, b.v, { ...opts, zeroGrad: true });
  t.deepEqual(bits(f32(b.p)), bits(f32(a.p)), 'parameters');
  t.deepEqual(bits(f32(b.m)), bits(f32(a.m)), 'first moments');
  t.deepEqual(bits(f32(b.v)), bits(f32(a.v)), 'second moments');
  t.true(f32(b.g).every((x) => Object.is(x, 0)), 'the gradient is +0 everywhere');
  t.true(f32(a.g).some((x) => x !== 0), 'without zeroGrad it is left as it was');
  const gate = { loss: Tensor.from(new Float32Array([1])), norm: Tensor.zeros([1], 'i64'), applied: Tensor.zeros([1], 'i64') };
  t.throws(() => ops.adamwStep(b.p, b.g, b.m, b.v, { ...opts, step: 1, gate, zeroGrad: true }), { message: /adamwStep: zeroGrad with a gate/ });
});
