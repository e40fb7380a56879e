// Hostile evaluation inputs: a label that would size the classifier at 2^31 classes.
import test from 'ava';

import { featureMatrix } from '../lib/eval/features.js';
import { linearProbe } from '../lib/eval/linear_probe.js';

test('linear probe: a label of 2^31-1 among two classes is refused, naming the labels and the row', (t) => {
  const n = 8;
  const x = featureMatrix(Float32Array.from({ length: n * 2 }, (_, i) => (i % 3) + 1), n, 2);
  const y = Int32Array.from({ length: n }, (_, i) => i % 2);
  y[5] = 2 ** 31 - 1;
  t.throws(() => linearProbe(x, y, x, Int32Array.from({ length: n }, (_, i) => i % 2), { trainLabelsName: "train labels 'y.npy'" }), {
    message: /train labels 'y\.npy': class id 2147483647 at row 5 implies 2147483648 classes, but only 3 distinct classes are present/,
  });
  // A few unused ids below the largest are fine (classes absent from a subset).
  const sparse = Int32Array.from({ length: n }, (_, i) => (i % 2) * 7);
  t.notThrows(() => linearProbe(x, sparse, x, sparse, { lambdas: [1e-2] }));
});

test('NaN weights load with a warning that names the file and the tensors', async (t) => {
  const { mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { createModel } = await import('../lib/nn/clip.js');
  const { writeSafetensors } = await import('../lib/train/safetensors.js');
  const { loadCheckpoint } = await import('../lib/train/load.js');
  const cfg = {
    embed_dim: 16,
    vision_cfg: { image_size: 16, layers: 1, width: 16, head_width: 8, patch_size: 8 },
    text_cfg: { context_length: 16, vocab_size: 100, width: 16, heads: 2, layers: 1 },
  };
  const model = createModel(cfg);
  const tensors = Object.fromEntries(model.parameters().map((p) => [p.name, { dtype: 'F32' as const, shape: p.shape, data: new Float32Array(p.values()) }]));
  tensors.text_projection.data[3] = NaN;
  tensors.logit_scale.data[0] = Infinity;
  const file = join(mkdtempSync(join(tmpdir(), 'cs-nan-')), 'nan.safetensors');
  await writeSafetensors(file, tensors);
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.message);
  process.on('warning', onWarning);
  try {
    const loaded = await loadCheckpoint(cfg, file);
    await new Promise((r) => setImmediate(r));
    loaded.dispose();
  } finally {
    process.off('warning', onWarning);
    model.dispose();
  }
  t.true(warnings.some((w) => /nan\.safetensors: 2 tensor\(s\) hold NaN or ±Inf values: .*text_projection \(1\).*logit_scale \(1\)|nan\.safetensors: 2 tensor\(s\).*logit_scale \(1\).*text_projection \(1\)/.test(w)), warnings.join('\n'));
});
