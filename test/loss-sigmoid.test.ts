// The SigLIP loss: against a float64 reference, against finite differences, and its distributed
// form (OpenCLIP's neighbour exchange, here all-gather + reduce-scatter) against the loss of
// every rank computed in one process.
import test from 'ava';

import { createInProcessGroup } from '../lib/distributed/in_process_communicator.js';
import { distributedSigLipLoss, referenceSigLipLoss, SigLipLoss } from '../lib/loss/sigmoid.js';
import { Tensor } from '../lib/tensor.js';
import { randn, relErr } from './_helpers/numeric.js';

function normalised(n: number, d: number, seed: number): Float32Array {
  const x = randn(n * d, seed);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let k = 0; k < d; k++) s += x[i * d + k] ** 2;
    const r = 1 / Math.sqrt(s);
    for (let k = 0; k < d; k++) x[i * d + k] *= r;
  }
  return x;
}

test('local loss and gradients match the float64 reference (features already unit length)', (t) => {
  const n = 7;
  const d = 5;
  for (const [scale, bias] of [[Math.log(10), -10], [2.3, 1.5], [0, 0]]) {
    const img = normalised(n, d, 1);
    const txt = normalised(n, d, 2);
    // Make two pairs similar so positives and negatives both matter.
    for (let k = 0; k < d; k++) txt[k] = 0.8 * img[k] + 0.2 * txt[k];
    const norm = Math.hypot(...txt.subarray(0, d));
    for (let k = 0; k < d; k++) txt[k] /= norm;
    using loss = new SigLipLoss();
    using ti = Tensor.from(img, [n, d]);
    using tt = Tensor.from(txt, [n, d]);
    const r = loss.forwardBackward(ti, tt, scale, bias);
    const ref = referenceSigLipLoss(img, txt, n, d, scale, bias);
    t.true(Math.abs(r.loss - ref.loss) <= 1e-6 * Math.max(1, ref.loss), `loss ${r.loss} vs ${ref.loss}`);
    t.true(Math.abs(r.dLogitScale - ref.dLogitScale) <= 1e-5 * Math.max(1, Math.abs(ref.dLogitScale)), `dscale ${r.dLogitScale} vs ${ref.dLogitScale}`);
    t.true(Math.abs(r.dLogitBias - ref.dLogitBias) <= 1e-5 * Math.max(1, Math.abs(ref.dLogitBias)), `dbias ${r.dLogitBias} vs ${ref.dLogitBias}`);
    // The op's feature gradients go through the normalisation: compare their tangential part.
    // With unit-length inputs, d/dx of f(x/|x|) = (I − x xᵀ) ∇f.
    const project = (g: Float64Array, x: Float32Array) => {
      const out = new Float64Array(g.length);
      for (let i = 0; i < n; i++) {
        let dot = 0;
        for (let k = 0; k < d; k++) dot += g[i * d + k] * x[i * d + k];
        for (let k = 0; k < d; k++) out[i * d + k] = g[i * d + k] - dot * x[i * d + k];
      }
      return out;
    };
    t.true(relErr(r.dImage.toFloat32Array(), project(ref.dImage, img)) < 1e-5, 'dImage');
    t.true(relErr(r.dText.toFloat32Array(), project(ref.dText, txt)) < 1e-5, 'dText');
  }
});

test('gradients of unnormalised features, scale and bias match central finite differences', (t) => {
  const n = 5;
  const d = 4;
  const img = randn(n * d, 11, 2);
  const txt = randn(n * d, 12, 2);
  let scale = 1.2;
  let bias = -0.7;
  using loss = new SigLipLoss();
  using ti = Tensor.from(img, [n, d]);
  using tt = Tensor.from(txt, [n, d]);
  const r = loss.forwardBackward(ti, tt, scale, bias);
  const dImage = r.dImage.toFloat32Array();
  const dText = r.dText.toFloat32Array();
  const f = () => loss.forward(ti, tt, scale, bias);
  const eps = 1e-2;
  const check = (name: string, analytic: number, bump: (delta: number) => void) => {
    bump(eps);
    const up = f();
    bump(-2 * eps);
    const down = f();
    bump(eps);
    const fd = (up - down) / (2 * eps);
    t.true(Math.abs(fd - analytic) <= 2e-3 * Math.max(1, Math.abs(fd)), `${name}: analytic ${analytic}, numeric ${fd}`);
  };
  const vi = ti.view() as Float32Array;
  const vt = tt.view() as Float32Array;
  for (let i = 0; i < n * d; i += 3) {
    check(`dImage[${i}]`, dImage[i], (e) => { vi[i] += e; });
    check(`dText[${i}]`, dText[i], (e) => { vt[i] += e; });
  }
  check('dLogitScale', r.dLogitScale, (e) => { scale += e; });
  check('dLogitBias', r.dLogitBias, (e) => { bias += e; });
});

test('distributed: each rank gets OpenCLIP\'s rank loss and the exact gradient of the summed rank losses', async (t) => {
  const W = 3;
  const B = 4;
  const d = 6;
  const N = W * B;
  const img = normalised(N, d, 31);
  const txt = normalised(N, d, 32);
  const scale = Math.log(10);
  const bias = -3;
  const comms = createInProcessGroup(W);
  const results = await Promise.all(
    comms.map((c) => distributedSigLipLoss(c, img.slice(c.rank * B * d, (c.rank + 1) * B * d), txt.slice(c.rank * B * d, (c.rank + 1) * B * d), d, scale, bias, { meanLoss: true })),
  );
  await Promise.all(comms.map((c) => c.close()));

  // Reference in float64: rank r's loss is its images against every text, positives on its own
  // diagonal, divided by B (OpenCLIP's sum of its local loss and the negative-only blocks).
  const s = Math.exp(scale);
  const sp = (x: number) => Math.max(-x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
  const sig = (x: number) => 1 / (1 + Math.exp(-x));
  const dI = new Float64Array(N * d);
  const dT = new Float64Array(N * d);
  const rankLoss = new Float64Array(W);
  const dScale = new Float64Array(W);
  const dBias = new Float64Array(W);
  for (let r = 0; r < W; r++) {
    for (let i = r * B; i < (r + 1) * B; i++) {
      for (let j = 0; j < N; j++) {
        let dot = 0;
        for (let k = 0; k < d; k++) dot += img[i * d + k] * txt[j * d + k];
        const y = i === j ? 1 : -1;
        const z = s * dot + bias;
        rankLoss[r] += sp(y * z) / B;
        const g = (-y * sig(-y * z)) / B;
        dScale[r] += g * s * dot;
        dBias[r] += g;
        for (let k = 0; k < d; k++) {
          dI[i * d + k] += g * s * txt[j * d + k];
          dT[j * d + k] += g * s * img[i * d + k];
        }
      }
    }
  }
  for (let r = 0; r < W; r++) {
    const got = results[r];
    t.true(Math.abs(got.loss - rankLoss[r]) <= 1e-5 * rankLoss[r], `rank ${r} loss ${got.loss} vs ${rankLoss[r]}`);
    t.true(Math.abs(got.dLogitScale - dScale[r]) <= 1e-5 * Math.max(1, Math.abs(dScale[r])), `rank ${r} dscale`);
    t.true(Math.abs(got.dLogitBias - dBias[r]) <= 1e-5 * Math.max(1, Math.abs(dBias[r])), `rank ${r} dbias`);
    t.true(relErr(got.dImage, dI.subarray(r * B * d, (r + 1) * B * d)) < 1e-5, `rank ${r} dImage`);
    t.true(relErr(got.dText, dT.subarray(r * B * d, (r + 1) * B * d)) < 1e-5, `rank ${r} dText (gradient from every rank's loss)`);
    const mean = rankLoss.reduce((a, b) => a + b, 0) / W;
    t.true(Math.abs((got.meanLoss ?? NaN) - mean) <= 1e-5 * mean, 'mean loss');
  }
});

test('distributed on one rank equals the local loss', async (t) => {
  const n = 6;
  const d = 4;
  const img = normalised(n, d, 41);
  const txt = normalised(n, d, 42);
  const [c] = createInProcessGroup(1);
  const r = await distributedSigLipLoss(c, img, txt, d, 1.1, -2);
  await c.close();
  const ref = referenceSigLipLoss(img, txt, n, d, 1.1, -2);
  t.true(Math.abs(r.loss - ref.loss) < 1e-6 * Math.max(1, ref.loss));
  t.true(relErr(r.dImage, ref.dImage) < 1e-5);
  t.true(relErr(r.dText, ref.dText) < 1e-5);
});

test('bad input is refused with a clear error', async (t) => {
  using loss = new SigLipLoss();
  using a = Tensor.zeros([3, 4]);
  using b = Tensor.zeros([2, 4]);
  t.throws(() => loss.forwardBackward(a, b, 0, 0), { message: /SigLipLoss: image features \[3, 4\] and text features \[2, 4\]/ });
  const [c] = createInProcessGroup(1);
  await t.throwsAsync(distributedSigLipLoss(c, new Float32Array(8), new Float32Array(6), 2, 0, 0), { message: /must have the same size/ });
  await t.throwsAsync(distributedSigLipLoss(c, new Float32Array(8), new Float32Array(8), 2, NaN, 0), { message: /must be finite/ });
  await c.close();
});
