import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';

import { defaultSyntheticTokenizer } from '../lib/data/synthetic.js';
import { evaluateSynthetic } from '../lib/eval/synthetic_suite.js';
import { clipEncoder } from '../lib/nn/encoder.js';
import { parseModelConfig } from '../lib/nn/config.js';
import { SyntheticData } from '../lib/train/sources.js';
import { Trainer } from '../lib/train/trainer.js';

const tokenizer = defaultSyntheticTokenizer();

// A model small enough that resume tests take a second.
const micro = parseModelConfig({
  embed_dim: 16,
  vision_cfg: { image_size: 16, layers: 1, width: 16, head_width: 8, patch_size: 8 },
  text_cfg: { context_length: 16, vocab_size: tokenizer.vocabSize, width: 16, heads: 2, layers: 1 },
});

function weightsOf(t: Trainer): Float32Array[] {
  return t.model.parameters().map((p) => new Float32Array(p.values()));
}

test.serial('a tiny CLIP trained on the CPU for well under a minute beats chance on held-out zero-shot colour', async (t) => {
  const data = new SyntheticData({ size: 50_000, imageSize: 32, contextLength: 32 });
  const trainer = new Trainer({ model: 'tiny', data, batchSize: 128, samples: 12_800, lr: 2e-3, warmup: 10, seed: 1 });
  const evalOpts = { imageSize: 32, contextLength: 32, tokenizer, tasks: ['colour', 'shape'] as const, zeroShotImages: 256, retrievalImages: 100 };
  const before = await evaluateSynthetic(clipEncoder(trainer.model), evalOpts);
  const t0 = performance.now();
  const last = await trainer.train();
  const seconds = (performance.now() - t0) / 1000;
  const after = await evaluateSynthetic(clipEncoder(trainer.model), evalOpts);
  t.log(`trained 12,800 samples in ${seconds.toFixed(1)} s; final loss ${last?.loss.toFixed(3)} (ln 128 = ${Math.log(128).toFixed(3)})`);
  t.log(`zero-shot colour acc1 ${before.zeroshot_colour_acc1.toFixed(3)} → ${after.zeroshot_colour_acc1.toFixed(3)} (chance 0.125)`);
  t.log(`zero-shot shape acc1 ${before.zeroshot_shape_acc1.toFixed(3)} → ${after.zeroshot_shape_acc1.toFixed(3)} (chance 0.125)`);
  t.log(`retrieval text R@1 ${before['retrieval_text_retrieval_recall@1'].toFixed(3)} → ${after['retrieval_text_retrieval_recall@1'].toFixed(3)}`);
  t.true((last?.loss ?? Infinity) < Math.log(128) - 0.5, 'the loss fell well below its starting value ln(batch)');
  t.true(after.zeroshot_colour_acc1 > 0.3, `colour acc1 ${after.zeroshot_colour_acc1} should be far above chance 0.125`);
  t.true(after['retrieval_text_retrieval_recall@1'] > 2 * before['retrieval_text_retrieval_recall@1']);
  trainer.dispose();
});

test.serial('resume is exact: N steps, stop, resume N more equals 2N straight (bitwise)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'clipscale-resume-'));
  const common = {
    model: micro,
    batchSize: 8,
    samples: 8 * 12,
    lr: 1e-3,
    warmup: 2,
    seed: 5,
    accumFreq: 2,
    gradClipNorm: 1,
  };
  const mk = () => new SyntheticData({ size: 40, imageSize: 16, contextLength: 16, seed: 3 });
  const straight = new Trainer({ ...common, data: mk() });
  await straight.train();
  const a = new Trainer({ ...common, data: mk(), out: dir, stopAfterSteps: 6 });
  await a.train();
  t.is(a.step, 6);
  const b = new Trainer({ ...common, data: mk(), out: dir, resume: true });
  await b.train();
  t.is(b.step, 12);
  const ws = weightsOf(straight);
  const wb = weightsOf(b);
  ws.forEach((w, i) => t.deepEqual(w, wb[i], straight.model.parameters()[i].name));
  rmSync(dir, { recursive: true, force: true });
});

test('bad training options give clear errors', (t) => {
  const data = new SyntheticData({ size: 40, imageSize: 16, contextLength: 16 });
  t.throws(() => new Trainer({ model: micro, data, batchSize: 1, samples: 10 }), { message: /batchSize must be an integer ≥ 2/ });
  t.throws(() => new Trainer({ model: micro, data, batchSize: 8, samples: 16, accumFreq: 3 }), { message: /accumFreq must divide batchSize 8/ });
  t.throws(() => new Trainer({ model: micro, data, batchSize: 8, samples: 16, precision: 'fp16' }), { message: /'fp16' is not available on the CPU/ });
  t.throws(() => new Trainer({ model: 'tiny', data, batchSize: 8, samples: 16 }), { message: /takes 32-pixel images but the data gives 16/ });
});

test.serial('bf16 precision trains and stays close to fp32 over a few steps', async (t) => {
  const mk = () => new SyntheticData({ size: 64, imageSize: 16, contextLength: 16, seed: 2 });
  const f32 = new Trainer({ model: micro, data: mk(), batchSize: 16, samples: 16 * 4, seed: 2, logEvery: 1 });
  const b16 = new Trainer({ model: micro, data: mk(), batchSize: 16, samples: 16 * 4, seed: 2, logEvery: 1, precision: 'bf16' });
  const lf: number[] = [];
  const lb: number[] = [];
  for await (const r of f32.run()) lf.push(r.loss);
  for await (const r of b16.run()) lb.push(r.loss);
  t.is(lb.length, 4);
  lb.forEach((l, i) => t.true(Math.abs(l - lf[i]) < 0.05, `step ${i}: bf16 ${l} vs fp32 ${lf[i]}`));
  t.notDeepEqual(lb, lf, 'bf16 rounding changes the numbers');
});

test.serial('a non-finite loss skips its step and is counted; too many in a row stop training and keep the last good checkpoint', async (t) => {
  const base = new SyntheticData({ size: 64, imageSize: 16, contextLength: 16, seed: 4 });
  // Batches from sample `from` on (or only the batch at `only`) carry NaN pixels.
  const poisoned = (opts: { only?: number; from?: number }) => ({
    imageSize: 16,
    contextLength: 16,
    vocabSize: base.vocabSize,
    describe: () => base.describe(),
    async batch(position: number, size: number) {
      const b = await base.batch(position, size);
      if (position === opts.only || (opts.from !== undefined && position >= opts.from)) b.images.fill(NaN);
      return b;
    },
  });
  const one = new Trainer({ model: micro, data: poisoned({ only: 16 }), batchSize: 8, samples: 48, logEvery: 1 });
  const records = [];
  for await (const r of one.run()) records.push(r);
  t.is(one.skippedSteps, 1);
  t.is(records.length, 6);
  t.true(Number.isNaN(records[2].loss));
  t.is(records[5].skipped_steps, 1);
  t.true(one.model.parameters().every((p) => p.values().every(Number.isFinite)), 'weights stay finite');

  const dir = mkdtempSync(join(tmpdir(), 'clipscale-nonfinite-'));
  const many = new Trainer({ model: micro, data: poisoned({ from: 32 }), batchSize: 8, samples: 8 * 20, checkpointEvery: 2, maxNonFinite: 3, out: dir });
  const err = await t.throwsAsync(() => many.train(), { message: /4 non-finite losses in a row at step 7; stopping\. The last good checkpoint in .* is kept\./ });
  t.log(err?.message);
  const { findLatestCheckpoint } = await import('../lib/train/checkpoint.js');
  const latest = await findLatestCheckpoint(dir);
  t.is(latest?.step, 4, 'the checkpoint from the last good steps is the latest');
  rmSync(dir, { recursive: true, force: true });
});
