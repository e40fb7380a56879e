// The cause of the ln(B) plateau: synthetic images normalised with OpenAI's photo statistics
// were a large shared offset, so a small ViT gave every image almost the same features at
// initialisation. These tests pin the cause (the world's own statistics, image features that
// differ at initialisation) and its effect (training leaves the plateau for several seeds).
import test from 'ava';

import { SyntheticData } from '../lib/train/sources.js';
import { SyntheticWorld } from '../lib/data/synthetic.js';
import { SYNTHETIC_MEAN, SYNTHETIC_STD } from '../lib/data/synthetic_normalization.js';
import { createModel } from '../lib/nn/clip.js';
import { clipEncoder } from '../lib/nn/encoder.js';
import { Trainer } from '../lib/train/trainer.js';

test('the synthetic normalisation constants are the statistics of rendered images', (t) => {
  for (const captions of ['precise', 'noisy'] as const) {
    const world = new SyntheticWorld({ seed: 3, size: 1_000_000, imageSize: 32, captions });
    const sum = [0, 0, 0];
    const sq = [0, 0, 0];
    let n = 0;
    for (let i = 0; i < 1500; i++) {
      const b = world.imageBytes(i * 101);
      for (let p = 0; p < b.length; p += 3, n++) {
        for (let c = 0; c < 3; c++) {
          const v = b[p + c] / 255;
          sum[c] += v;
          sq[c] += v * v;
        }
      }
    }
    for (let c = 0; c < 3; c++) {
      const mean = sum[c] / n;
      const std = Math.sqrt(sq[c] / n - mean * mean);
      t.true(Math.abs(mean - SYNTHETIC_MEAN[c]) < 0.01, `${captions} channel ${c}: mean ${mean} vs ${SYNTHETIC_MEAN[c]}`);
      t.true(Math.abs(std / SYNTHETIC_STD[c] - 1) < 0.12, `${captions} channel ${c}: std ${std} vs ${SYNTHETIC_STD[c]}`);
    }
  }
});

function meanPairwiseCosine(f: Float32Array, n: number, d: number): number {
  const norms = Array.from({ length: n }, (_, i) => Math.hypot(...f.subarray(i * d, (i + 1) * d)));
  let sum = 0;
  let count = 0;
  for (let i = 0; i < n; i++) {
    for (let k = i + 1; k < n; k++) {
      let dot = 0;
      for (let j = 0; j < d; j++) dot += f[i * d + j] * f[k * d + j];
      sum += dot / (norms[i] * norms[k]);
      count++;
    }
  }
  return sum / count;
}

test('at initialisation, tiny gives different images clearly different features (was cosine 0.995)', async (t) => {
  const data = new SyntheticData({ size: 50_000, imageSize: 32, contextLength: 32, captions: 'precise' });
  const batch = await data.batch(0, 64);
  for (const seed of [0, 1, 2]) {
    const model = createModel('tiny', { seed });
    const features = await clipEncoder(model).encodeImages(batch.images, 64);
    const cos = meanPairwiseCosine(features, 64, model.config.embed_dim);
    t.true(cos < 0.97, `seed ${seed}: mean pairwise cosine of image features ${cos.toFixed(4)}`);
  }
});

test('tiny leaves the ln(B) plateau within 60 steps for seeds 0-2 (README settings, fewer steps; seed 0 stayed at 4.85 before)', async (t) => {
  const plateau = Math.log(128);
  for (const seed of [0, 1, 2]) {
    const data = new SyntheticData({ size: 50_000, imageSize: 32, contextLength: 32, captions: 'precise' });
    using trainer = new Trainer({ model: 'tiny', data, batchSize: 128, samples: 128 * 60, lr: 2e-3, warmup: 25, seed, logEvery: 1 });
    const losses: number[] = [];
    for await (const r of trainer.run()) losses.push(r.loss);
    const last = losses.slice(-5).reduce((a, b) => a + b, 0) / 5;
    t.true(last < plateau - 0.25, `seed ${seed}: mean loss of the last 5 steps ${last.toFixed(3)} vs ln 128 = ${plateau.toFixed(3)}`);
  }
});
