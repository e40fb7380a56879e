import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';

import { command } from '../lib/cli/commands/eval.js';
import { defaultSyntheticTokenizer } from '../lib/data/synthetic.js';
import { featureMatrix, l2Normalize } from '../lib/eval/features.js';
import { finetune, finetuneLoss } from '../lib/eval/finetune.js';
import { syntheticTaskImages } from '../lib/eval/labelled_images.js';
import { seededNormal } from '../lib/util/seeded_random.js';
import { createModel } from '../lib/nn/clip.js';
import { parseModelConfig } from '../lib/nn/config.js';
import { loadCheckpoint } from '../lib/train/load.js';
import { SyntheticData } from '../lib/train/sources.js';
import { Trainer } from '../lib/train/trainer.js';
import { writeSafetensors, type TensorRecord } from '../lib/train/safetensors.js';
import { Tensor } from '../lib/tensor.js';
import { finiteDiff, relErr } from './_helpers/numeric.js';
import { runJsonCommand } from './_helpers/cli.js';

const tokenizer = defaultSyntheticTokenizer();
const microJson = {
  embed_dim: 16,
  vision_cfg: { image_size: 16, layers: 1, width: 16, head_width: 8, patch_size: 8 },
  text_cfg: { context_length: 16, vocab_size: tokenizer.vocabSize, width: 16, heads: 2, layers: 1 },
};
const micro = parseModelConfig(microJson);

const dir = mkdtempSync(join(tmpdir(), 'clipscale-finetune-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

/** The loss in float64 straight from its definition, for finite differences. */
function lossByDefinition(f: Float64Array, n: number, d: number, labels: number[], w: Float32Array, c: number, scale: number): number {
  let total = 0;
  for (let i = 0; i < n; i++) {
    let norm = 0;
    for (let k = 0; k < d; k++) norm += f[i * d + k] ** 2;
    norm = Math.sqrt(norm);
    const z: number[] = [];
    for (let j = 0; j < c; j++) {
      let s = 0;
      for (let k = 0; k < d; k++) s += (f[i * d + k] / norm) * w[j * d + k];
      z.push(scale * s);
    }
    const m = Math.max(...z);
    const lse = m + Math.log(z.reduce((a, v) => a + Math.exp(v - m), 0));
    total += lse - z[labels[i]];
  }
  return total / n;
}

test('finetuneLoss: value and gradient wrt the image features match float64 finite differences', (t) => {
  const n = 6;
  const d = 8;
  const c = 5;
  const scale = 12;
  const features = Float32Array.from(seededNormal(n * d, 11));
  const head = l2Normalize(featureMatrix(Float32Array.from(seededNormal(c * d, 12)), c, d));
  const labels = [0, 3, 1, 4, 2, 3];
  const r = finetuneLoss(features, n, labels, head, scale);
  const f64 = Float64Array.from(features);
  const ref = lossByDefinition(f64, n, d, labels, head.data, c, scale);
  t.true(Math.abs(r.loss - ref) < 1e-12 * Math.max(1, ref), `loss ${r.loss} vs ${ref}`);
  let worst = 0;
  const h = 1e-5;
  for (let idx = 0; idx < n * d; idx++) {
    const x0 = f64[idx];
    f64[idx] = x0 + h;
    const up = lossByDefinition(f64, n, d, labels, head.data, c, scale);
    f64[idx] = x0 - h;
    const down = lossByDefinition(f64, n, d, labels, head.data, c, scale);
    f64[idx] = x0;
    const fd = (up - down) / (2 * h);
    worst = Math.max(worst, Math.abs(fd - r.grad[idx]) / Math.max(1e-3, Math.abs(fd)));
  }
  t.log(`worst relative gradient error over ${n * d} entries: ${worst.toExponential(2)}`);
  t.true(worst < 1e-5);
  // The loss depends on the direction of f only: the gradient is orthogonal to each row.
  for (let i = 0; i < n; i++) {
    let dot = 0;
    for (let k = 0; k < d; k++) dot += features[i * d + k] * r.grad[i * d + k];
    t.true(Math.abs(dot) < 1e-6, `row ${i}: f·grad = ${dot}`);
  }
  // Accuracy bookkeeping: `correct` counts rows whose argmax is the label.
  const perfect = finetuneLoss(Float32Array.from(labels.flatMap((y) => Array.from(head.data.subarray(y * d, (y + 1) * d)))), n, labels, head, scale);
  t.is(perfect.correct, n);
});

test('the fine-tuning loss back through the image tower: parameter gradients match finite differences', async (t) => {
  const model = createModel(micro, { seed: 5 });
  const data = syntheticTaskImages('colour', { imageSize: 16, n: 8, seed: 4 });
  const head = l2Normalize(featureMatrix(Float32Array.from(seededNormal(8 * 16, 9)), 8, 16));
  const images = Tensor.from(data.pixels, [data.n, 3, 16, 16]);
  const loss = () => finetuneLoss(model.visual.forward(images).view() as Float32Array, data.n, data.labels, head, 20);
  model.visual.zeroGrad();
  const r = loss();
  using dfeat = Tensor.from(r.grad, [data.n, 16]);
  model.visual.backward(dfeat);
  for (const p of [model.visual.proj, model.visual.conv1, model.visual.classEmbedding]) {
    const analytic = new Float32Array(p.grad.view() as Float32Array);
    const { idx, grad } = finiteDiff(() => loss().loss, p.data, 6, 1e-2);
    const err = relErr(grad, idx.map((i) => analytic[i]));
    t.log(`${p.name}: relative error ${err.toExponential(2)} over ${idx.length} entries`);
    t.true(err < 2e-3, `${p.name}: ${err}`);
  }
  images.dispose();
  model.dispose();
});

test('finetuneLoss: bad input', (t) => {
  const head = l2Normalize(featureMatrix(Float32Array.from(seededNormal(3 * 4, 1)), 3, 4));
  t.throws(() => finetuneLoss(new Float32Array(8), 2, [0, 1], head, 10), { message: /norm 0/ });
  t.throws(() => finetuneLoss(Float32Array.from(seededNormal(8, 2)), 2, [0, 3], head, 10), { message: /label 3 at row 1 is not a class id \(0\.\.2\)/ });
  t.throws(() => finetuneLoss(Float32Array.from(seededNormal(8, 2)), 2, [0], head, 10), { message: /1 labels for 2 rows/ });
  t.throws(() => finetuneLoss(Float32Array.from(seededNormal(8, 2)), 2, [0, 1], head, 0), { message: /scale must be a positive/ });
});

test.serial('fine-tuning the image tower against the frozen zero-shot head raises held-out accuracy above zero-shot', async (t) => {
  // Ten Trainer steps: enough for the text tower to tell colour names apart a little (a freshly
  // initialised one gives nearly parallel class embeddings), far from enough for zero-shot to work.
  const data = new SyntheticData({ size: 4096, imageSize: 16, contextLength: 16 });
  const trainer = new Trainer({ model: micro, data, batchSize: 64, samples: 640, lr: 3e-3, warmup: 5, seed: 2 });
  await trainer.train();
  const model = trainer.model;
  const textBefore = [...model.text.parameters(), model.logitScale].map((p) => new Float32Array(p.values()));
  const train = syntheticTaskImages('colour', { imageSize: 16, n: 512, seed: 2 });
  const test_ = syntheticTaskImages('colour', { imageSize: 16, n: 256, seed: 1 });
  // scale 100: a trained CLIP's logit scale (this model's is still ~14).
  const r = await finetune(model, { train, test: test_, ...train.prompts!, tokenizer, steps: 150, batchSize: 32, lr: 1e-2, warmup: 5, logEvery: 25, scale: 100 });
  const first = r.history[0];
  const last = r.history[r.history.length - 1];
  t.log(`colour (8 classes, chance 0.125), micro model after 10 CLIP steps, fine-tuned 150 steps × 32 in ${r.seconds.toFixed(1)} s, scale ${r.scale}`);
  t.log(`held-out acc1 ${r.before.acc1.toFixed(3)} (zero-shot) → ${r.after.acc1.toFixed(3)} (fine-tuned); loss ${first.loss.toFixed(3)} → ${last.loss.toFixed(3)}`);
  t.true(r.after.acc1 >= r.before.acc1 + 0.15, `acc1 ${r.before.acc1} → ${r.after.acc1}`);
  t.true(r.after.acc1 > 0.3);
  t.true(last.loss < first.loss - 0.1);
  t.is(last.test_acc1, r.after.acc1);
  t.is(r.history.length, 6);
  // The text tower and the logit scale are frozen.
  [...model.text.parameters(), model.logitScale].forEach((p, i) => t.deepEqual(new Float32Array(p.values()), textBefore[i], p.name));
  trainer.dispose();
});

test('fine-tuning: bad input gets clear errors', async (t) => {
  const model = createModel(micro, { seed: 1 });
  const train = syntheticTaskImages('colour', { imageSize: 16, n: 16, seed: 2 });
  const base = { train, test: train, ...train.prompts!, tokenizer, steps: 4, batchSize: 4 };
  await t.throwsAsync(() => finetune(model, { ...base, classnames: train.classnames.slice(0, 5) }), {
    message: /has 8 classes \(red, green, blue, yellow, …\) but the prompts name 5/,
  });
  const badLabels = { ...train, labels: Int32Array.from(train.labels, (y, i) => (i === 3 ? 9 : y)) };
  await t.throwsAsync(() => finetune(model, { ...base, train: badLabels }), { message: /unknown class id 9 at index 3/ });
  const big = syntheticTaskImages('colour', { imageSize: 32, n: 8 });
  await t.throwsAsync(() => finetune(model, { ...base, test: big }), { message: /takes 16-pixel images but synthetic:colour.* are 32 pixels/ });
  await t.throwsAsync(() => finetune(model, { ...base, steps: undefined }), { message: /give the length of training as steps or epochs/ });
  await t.throwsAsync(() => finetune(model, { ...base, warmup: 4 }), { message: /warmup must be an integer in \[0, steps = 4\)/ });
  await t.throwsAsync(() => finetune(model, { ...base, batchSize: 0 }), { message: /batchSize must be a positive integer/ });
  t.throws(() => syntheticTaskImages('texture', { imageSize: 16 }), { message: /unknown task 'texture'; tasks: shape, colour, shape_colour/ });
  model.dispose();
});

/** Runs `clipscale eval ...` in-process and returns the JSON it printed. */
const run = (args: string[]) => runJsonCommand(command, args);

test.serial('clipscale eval finetune: a model and weights from files, JSON out, fine-tuned weights saved', async (t) => {
  const model = createModel(micro, { seed: 3 });
  const cfgPath = join(dir, 'micro.json');
  writeFileSync(cfgPath, JSON.stringify(microJson));
  const tensors: Record<string, TensorRecord> = {};
  for (const [name, v] of model.stateDict()) tensors[name] = { dtype: 'F32', shape: v.shape, data: v.data };
  const weights = join(dir, 'micro.safetensors');
  await writeSafetensors(weights, tensors);
  const saved = join(dir, 'tuned.safetensors');
  const out = await run([
    'finetune', '--model', cfgPath, '--weights', weights, '--data', 'synthetic:colour', '--n', '256', '--test-n', '128',
    '--steps', '40', '--batch-size', '16', '--lr', '1e-2', '--warmup', '2', '--save', saved, '--history',
  ]);
  t.is(out.task, 'finetune');
  t.is(out.steps, 40);
  t.is(out.train_images, 256);
  t.is(out.test_images, 128);
  const before = out.before as { acc1: number; num_classes: number };
  const after = out.after as { acc1: number };
  t.is(before.num_classes, 8);
  t.log(`CLI: acc1 ${before.acc1.toFixed(3)} → ${after.acc1.toFixed(3)} after 40 steps`);
  t.true(Array.isArray(out.history) && (out.history as unknown[]).length === 4);
  // The saved weights are the fine-tuned ones: only the image tower moved.
  const tuned = await loadCheckpoint(micro, saved);
  const changed = (name: string) => {
    const a = tuned.namedParameters().get(name)!.values();
    const b = model.namedParameters().get(name)!.values();
    return a.some((v, i) => v !== b[i]);
  };
  t.true(changed('visual.proj'));
  t.false(changed('text_projection'));
  t.false(changed('logit_scale'));
  await t.throwsAsync(() => command.run(['finetune', '--model', cfgPath, '--weights', weights, '--data', 'synthetic:colour', '--batch-size', '8']), {
    message: /give --steps N or --epochs E/,
  });
  await t.throwsAsync(() => command.run(['finetune', '--model', cfgPath, '--weights', weights, '--data', join(dir, 'nowhere'), '--steps', '2', '--batch-size', '8']), {
    message: /--data '.*nowhere' is neither synthetic:TASK nor an existing folder/,
  });
  await t.throwsAsync(() => command.run(['finetune', '--data', 'synthetic:colour', '--steps', '2']), { message: /needs a model with weights/ });
  tuned.dispose();
  model.dispose();
});
