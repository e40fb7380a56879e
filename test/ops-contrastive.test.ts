import test from 'ava';

import { Tensor } from '../lib/tensor.js';
import * as ops from '../lib/ops.js';
import { finiteDiff, randn, relErr } from './_helpers/numeric.js';

const f32 = (t: Tensor) => t.view() as Float32Array;

/** Unit-norm rows, as the features that enter the loss. */
function features(n: number, d: number, seed: number): Tensor {
  const v = randn(n * d, seed);
  for (let r = 0; r < n; r++) {
    const row = v.subarray(r * d, (r + 1) * d);
    const norm = Math.hypot(...row);
    for (let j = 0; j < d; j++) row[j] /= norm;
  }
  return Tensor.from(v, [n, d]);
}

/**
 * float64 reference: rows r0..r0+n of the image→text and text→image cross-entropies,
 * summed and divided by 2N (n = N gives the usual mean-over-rows CLIP loss).
 */
function clipLossRef(img: ArrayLike<number>, txt: ArrayLike<number>, t: number, N: number, D: number, r0 = 0, n = N): number {
  const s = Math.exp(t);
  let total = 0;
  for (const [a, b] of [[img, txt], [txt, img]]) {
    for (let i = r0; i < r0 + n; i++) {
      const logits = new Float64Array(N);
      for (let j = 0; j < N; j++) {
        let acc = 0;
        for (let k = 0; k < D; k++) acc += a[i * D + k] * b[j * D + k];
        logits[j] = s * acc;
      }
      const mx = Math.max(...logits);
      let sum = 0;
      for (const l of logits) sum += Math.exp(l - mx);
      total += mx + Math.log(sum) - logits[i];
    }
  }
  return total / (2 * N);
}

test('contrastiveLoss matches a float64 reference', (t) => {
  const [N, D] = [12, 16];
  const img = features(N, D, 1);
  const txt = features(N, D, 2);
  for (const logT of [0, Math.log(14.3), Math.log(100)]) {
    const scale = Tensor.from([logT], [1]);
    const lossOut = Tensor.zeros([1]);
    const { loss } = ops.contrastiveLoss(img, txt, scale, { lossOut });
    const ref = clipLossRef(f32(img), f32(txt), f32(scale)[0], N, D);
    t.true(Math.abs(loss - ref) / ref < 1e-5, `t=${logT}: ${loss} vs ${ref}`);
    t.true(Math.abs(f32(lossOut)[0] - ref) / ref < 1e-5);
  }
});

test('contrastiveLoss at a batch split across threads matches float64', (t) => {
  const [N, D] = [200, 32];
  const img = features(N, D, 11);
  const txt = features(N, D, 12);
  const scale = Tensor.from([Math.log(50)], [1]);
  const { loss } = ops.contrastiveLoss(img, txt, scale);
  const ref = clipLossRef(f32(img), f32(txt), f32(scale)[0], N, D);
  t.true(Math.abs(loss - ref) / ref < 1e-5, `${loss} vs ${ref}`);
});

test('contrastiveLoss gradients (image, text, logit scale) match finite differences', (t) => {
  const [N, D] = [8, 6];
  const img = features(N, D, 3);
  const txt = features(N, D, 4);
  const scale = Tensor.from([Math.log(5)], [1]);
  const dImage = Tensor.full([N, D], 7);
  const dText = Tensor.full([N, D], 7);
  const dLogitScale = Tensor.full([1], 7);
  ops.contrastiveLoss(img, txt, scale, { grads: { dImage, dText, dLogitScale } });
  const f = () => clipLossRef(f32(img), f32(txt), f32(scale)[0], N, D);
  for (const [name, x, g] of [['image', img, dImage], ['text', txt, dText], ['logitScale', scale, dLogitScale]] as const) {
    const fd = finiteDiff(f, x, 48, 1e-3);
    const got = fd.idx.map((i) => f32(g)[i]);
    t.true(relErr(got, fd.grad) < 1e-3, `${name}: relErr ${relErr(got, fd.grad)}`);
  }
});

test('contrastiveLoss: lossScale multiplies every gradient, a workspace gives the same result, grads can be skipped', (t) => {
  const [N, D] = [10, 8];
  const img = features(N, D, 5);
  const txt = features(N, D, 6);
  const scale = Tensor.from([Math.log(20)], [1]);
  const g1 = { dImage: Tensor.empty([N, D]), dText: Tensor.empty([N, D]), dLogitScale: Tensor.empty([1]) };
  const l1 = ops.contrastiveLoss(img, txt, scale, { grads: g1 }).loss;
  const g2 = { dImage: Tensor.empty([N, D]), dText: Tensor.empty([N, D]), dLogitScale: Tensor.empty([1]) };
  const l2 = ops.contrastiveLoss(img, txt, scale, { grads: g2, lossScale: 256, workspace: Tensor.empty([N * N + 3]) }).loss;
  t.is(l2, l1, 'the loss itself is not scaled');
  for (const k of ['dImage', 'dText', 'dLogitScale'] as const) {
    const scaled = Array.from(f32(g1[k]), (v) => v * 256);
    t.true(relErr(f32(g2[k]), scaled) < 1e-6, k);
  }
  const onlyText = Tensor.empty([N, D]);
  ops.contrastiveLoss(img, txt, scale, { grads: { dText: onlyText } });
  t.deepEqual(Array.from(f32(onlyText)), Array.from(f32(g1.dText)));
});

test('contrastiveLoss → 0 with perfectly aligned pairs and a large scale', (t) => {
  const [N, D] = [6, 8];
  const eye = new Float32Array(N * D);
  for (let i = 0; i < N; i++) eye[i * D + i] = 1;
  const img = Tensor.from(eye, [N, D]);
  const txt = Tensor.from(eye, [N, D]);
  const small = ops.contrastiveLoss(img, txt, Tensor.from([0], [1])).loss;
  // scale 1: logit 1 on the diagonal, 0 elsewhere → CE = log(e + N − 1) − 1
  t.true(Math.abs(small - (Math.log(Math.E + N - 1) - 1)) < 1e-6);
  const dImage = Tensor.empty([N, D]);
  const big = ops.contrastiveLoss(img, txt, Tensor.from([Math.log(100)], [1]), { grads: { dImage } }).loss;
  t.true(big >= 0 && big < 1e-30, `loss ${big}`);
  t.true(Array.from(f32(dImage)).every((v) => Math.abs(v) < 1e-30));
});

test('contrastiveLossLocal: the ranks\' contributions and gradients sum to the global loss and gradient', (t) => {
  const [N, D, ranks] = [12, 8, 3];
  const n = N / ranks;
  const img = features(N, D, 7);
  const txt = features(N, D, 8);
  const scale = Tensor.from([Math.log(30)], [1]);
  const global = { dImage: Tensor.empty([N, D]), dText: Tensor.empty([N, D]), dLogitScale: Tensor.empty([1]) };
  const globalLoss = ops.contrastiveLoss(img, txt, scale, { grads: global }).loss;
  let lossSum = 0;
  const sum = { dImage: new Float64Array(N * D), dText: new Float64Array(N * D), dLogitScale: new Float64Array(1) };
  for (let r = 0; r < ranks; r++) {
    const g = { dImage: Tensor.empty([N, D]), dText: Tensor.empty([N, D]), dLogitScale: Tensor.empty([1]) };
    const { loss } = ops.contrastiveLossLocal(img, txt, scale, r * n, n, { grads: g, workspace: Tensor.empty([n, N]) });
    const ref = clipLossRef(f32(img), f32(txt), f32(scale)[0], N, D, r * n, n);
    t.true(Math.abs(loss - ref) / ref < 1e-5, `rank ${r}: ${loss} vs ${ref}`);
    lossSum += loss;
    for (const k of ['dImage', 'dText', 'dLogitScale'] as const) f32(g[k]).forEach((v, i) => (sum[k][i] += v));
  }
  t.true(Math.abs(lossSum - globalLoss) / globalLoss < 1e-6);
  for (const k of ['dImage', 'dText', 'dLogitScale'] as const) {
    t.true(relErr(sum[k], f32(global[k])) < 1e-5, `${k}: relErr ${relErr(sum[k], f32(global[k]))}`);
  }
});

test('contrastiveLoss errors name the op and the argument', (t) => {
  const img = features(4, 3, 9);
  const scale = Tensor.from([1], [1]);
  t.throws(() => ops.contrastiveLoss(img, features(5, 3, 10), scale), { message: /contrastiveLoss: image and text must have the same shape/ });
  t.throws(() => ops.contrastiveLoss(img, img, Tensor.zeros([2])), { message: /contrastiveLoss: logitScale must hold one value/ });
  t.throws(() => ops.contrastiveLoss(img, img, scale, { workspace: Tensor.empty([15]) }), {
    message: /contrastiveLoss: workspace must hold at least rowCount × N = 16 values/,
  });
  t.throws(() => ops.contrastiveLoss(img, img, scale, { grads: { dImage: Tensor.empty([4, 4]) } }), {
    message: /contrastiveLoss: dImage and image must have the same shape/,
  });
  t.throws(() => ops.contrastiveLossLocal(img, img, scale, 3, 2), { message: /contrastiveLoss: rows 3 \.\. 5/ });
});
