import test from 'ava';

import { createInProcessGroup } from '../lib/distributed/in_process_communicator.js';
import { distributedClipLoss, nativeLocalClipLoss, referenceLocalClipLoss, type DistributedClipLoss } from '../lib/loss/distributed.js';
import * as ops from '../lib/ops.js';
import { randn, relErr } from './_helpers/numeric.js';

/** Unit-norm rows, as the features that enter the loss. */
function features(n: number, d: number, seed: number): Float32Array {
  const v = randn(n * d, seed);
  for (let r = 0; r < n; r++) {
    const row = v.subarray(r * d, (r + 1) * d);
    const norm = Math.hypot(...row);
    for (let j = 0; j < d; j++) row[j] /= norm;
  }
  return v;
}

/**
 * The global-batch CLIP loss and its gradient, directly and in float64: the full
 * N×N logits, both cross-entropies averaged over N rows, halved.
 */
function globalClipLoss(img: ArrayLike<number>, txt: ArrayLike<number>, N: number, D: number, t: number) {
  const s = Math.exp(t);
  const logits = Array.from({ length: N }, (_, i) =>
    Array.from({ length: N }, (_, j) => {
      let dot = 0;
      for (let k = 0; k < D; k++) dot += img[i * D + k] * txt[j * D + k];
      return s * dot;
    }),
  );
  // G[i][j] = ∂L/∂logits[i][j], from the image→text rows and the text→image columns.
  const G = Array.from({ length: N }, () => new Float64Array(N));
  let loss = 0;
  const softmaxRow = (vals: number[]) => {
    const mx = Math.max(...vals);
    const e = vals.map((v) => Math.exp(v - mx));
    const z = e.reduce((a, b) => a + b, 0);
    return { p: e.map((v) => v / z), lse: mx + Math.log(z) };
  };
  for (let i = 0; i < N; i++) {
    const row = softmaxRow(logits[i]);
    loss += (row.lse - logits[i][i]) / (2 * N);
    row.p.forEach((p, j) => (G[i][j] += (p - (i === j ? 1 : 0)) / (2 * N)));
    const col = softmaxRow(logits.map((r) => r[i]));
    loss += (col.lse - logits[i][i]) / (2 * N);
    col.p.forEach((p, j) => (G[j][i] += (p - (i === j ? 1 : 0)) / (2 * N)));
  }
  const dImage = new Float64Array(N * D);
  const dText = new Float64Array(N * D);
  let dT = 0;
  for (let i = 0; i < N; i++) {
    for (let j = 0; j < N; j++) {
      dT += G[i][j] * logits[i][j];
      for (let k = 0; k < D; k++) {
        dImage[i * D + k] += s * G[i][j] * txt[j * D + k];
        dText[j * D + k] += s * G[i][j] * img[i * D + k];
      }
    }
  }
  return { loss, dImage, dText, dLogitScale: dT };
}

test('the float64 global reference agrees with central differences', (t) => {
  const [N, D, logT] = [6, 4, Math.log(8)];
  const img = Float64Array.from(features(N, D, 1));
  const txt = Float64Array.from(features(N, D, 2));
  const ref = globalClipLoss(img, txt, N, D, logT);
  const h = 1e-6;
  for (const idx of [0, 5, 13, 23]) {
    for (const [x, g] of [[img, ref.dImage], [txt, ref.dText]] as const) {
      const orig = x[idx];
      x[idx] = orig + h;
      const up = globalClipLoss(img, txt, N, D, logT).loss;
      x[idx] = orig - h;
      const down = globalClipLoss(img, txt, N, D, logT).loss;
      x[idx] = orig;
      t.true(Math.abs((up - down) / (2 * h) - g[idx]) < 1e-7, `index ${idx}: fd ${(up - down) / (2 * h)} vs ${g[idx]}`);
    }
  }
  const fd = (globalClipLoss(img, txt, N, D, logT + h).loss - globalClipLoss(img, txt, N, D, logT - h).loss) / (2 * h);
  t.true(Math.abs(fd - ref.dLogitScale) < 1e-7);
});

async function runRanks(W: number, B: number, D: number, logT: number, reduction: 'mean' | 'sum', seed: number) {
  const N = W * B;
  const img = features(N, D, seed);
  const txt = features(N, D, seed + 1);
  const comms = createInProcessGroup(W);
  const results: DistributedClipLoss[] = await Promise.all(
    comms.map((c) =>
      distributedClipLoss(c, img.slice(c.rank * B * D, (c.rank + 1) * B * D), txt.slice(c.rank * B * D, (c.rank + 1) * B * D), D, logT, {
        reduction,
        globalLoss: true,
      }),
    ),
  );
  return { img, txt, results, global: globalClipLoss(img, txt, N, D, logT) };
}

for (const W of [1, 2, 3, 4]) {
  test(`W=${W} ranks, reduction 'sum': each rank's feature gradient is its rows of the global gradient; losses sum to the global loss`, async (t) => {
    const [B, D, logT] = [3, 5, Math.log(10)];
    const { results, global } = await runRanks(W, B, D, logT, 'sum', 10 + W);
    let lossSum = 0;
    let dtSum = 0;
    for (const [r, res] of results.entries()) {
      const rows = [r * B * D, (r + 1) * B * D] as const;
      t.true(relErr(res.dImage, global.dImage.subarray(...rows)) < 1e-5, `rank ${r} dImage relErr ${relErr(res.dImage, global.dImage.subarray(...rows))}`);
      t.true(relErr(res.dText, global.dText.subarray(...rows)) < 1e-5, `rank ${r} dText relErr ${relErr(res.dText, global.dText.subarray(...rows))}`);
      t.true(Math.abs(res.globalLoss! - global.loss) / global.loss < 1e-6);
      lossSum += res.loss;
      dtSum += res.dLogitScale;
    }
    t.true(Math.abs(lossSum - global.loss) / global.loss < 1e-12, `Σ loss ${lossSum} vs global ${global.loss}`);
    t.true(Math.abs(dtSum - global.dLogitScale) < 1e-9 * Math.max(1, Math.abs(global.dLogitScale)), `Σ dt ${dtSum} vs ${global.dLogitScale}`);
  });
}

test("W=3, reduction 'mean' (DDP): loss is OpenCLIP's local loss, gradients are W × the global ones, their means are the global values", async (t) => {
  const [W, B, D, logT] = [3, 4, 6, Math.log(20)];
  const { results, global } = await runRanks(W, B, D, logT, 'mean', 40);
  let lossMean = 0;
  let dtMean = 0;
  for (const [r, res] of results.entries()) {
    const rows = [r * B * D, (r + 1) * B * D] as const;
    const want = global.dImage.subarray(...rows).map((v) => v * W);
    t.true(relErr(res.dImage, want) < 1e-5, `rank ${r} dImage relErr ${relErr(res.dImage, want)}`);
    t.true(relErr(res.dText, global.dText.subarray(...rows).map((v) => v * W)) < 1e-5);
    lossMean += res.loss / W;
    dtMean += res.dLogitScale / W;
  }
  t.true(Math.abs(lossMean - global.loss) / global.loss < 1e-12);
  t.true(Math.abs(dtMean - global.dLogitScale) < 1e-9 * Math.max(1, Math.abs(global.dLogitScale)));
});

test('without the reduce-scatter (no gather-with-grad) the own-row gradient would be wrong', (t) => {
  // Guards the test above against a vacuous pass: the column terms from other ranks matter.
  const [W, B, D, logT] = [3, 3, 5, Math.log(10)];
  const N = W * B;
  const img = features(N, D, 60);
  const txt = features(N, D, 61);
  const global = globalClipLoss(img, txt, N, D, logT);
  const local = referenceLocalClipLoss(img, txt, N, D, B, B, logT);
  const rows = [B * D, 2 * B * D] as const;
  t.true(relErr(local.dImage.subarray(...rows), global.dImage.subarray(...rows)) > 0.05);
});

test('the native fused op (ops.contrastiveLossLocal) agrees with the float64 reference kernel', (t) => {
  if (typeof (ops as Record<string, unknown>).contrastiveLossLocal !== 'function') {
    t.log('skipped: ops.contrastiveLossLocal is not in this build');
    t.pass();
    return;
  }
  const [N, D, logT] = [12, 16, Math.log(30)];
  const img = features(N, D, 70);
  const txt = features(N, D, 71);
  for (const [off, cnt] of [[0, N], [4, 4], [8, 4]]) {
    const a = referenceLocalClipLoss(img, txt, N, D, off, cnt, logT);
    const b = nativeLocalClipLoss(img, txt, N, D, off, cnt, logT);
    t.true(Math.abs(a.loss - b.loss) / a.loss < 1e-5, `rows ${off}+${cnt}: loss ${b.loss} vs ${a.loss}`);
    t.true(relErr(b.dImage, a.dImage) < 1e-5, `rows ${off}+${cnt}: dImage relErr ${relErr(b.dImage, a.dImage)}`);
    t.true(relErr(b.dText, a.dText) < 1e-5);
    t.true(Math.abs(a.dLogitScale - b.dLogitScale) < 1e-5 * Math.max(1, Math.abs(a.dLogitScale)));
  }
});

test('distributedClipLoss checks its arguments', async (t) => {
  const [c] = createInProcessGroup(1);
  await t.throwsAsync(distributedClipLoss(c, new Float32Array(6), new Float32Array(4), 2, 0), { message: /image \(6 floats\) and text \(4 floats\) must have the same size/ });
  await t.throwsAsync(distributedClipLoss(c, new Float32Array(6), new Float32Array(6), 4, 0), { message: /not a whole number of rows of 4/ });
  await t.throwsAsync(distributedClipLoss(c, new Float32Array(6), new Float32Array(6), 3, 0, { reduction: 'avg' as 'mean' }), { message: /reduction must be 'mean' or 'sum'/ });
  t.throws(() => referenceLocalClipLoss(new Float32Array(6), new Float32Array(6), 3, 2, 2, 2, 0), { message: /rows 2 \.\. 4 are outside the 3 gathered rows/ });
});
