// Dynamic loss scaling: the scaler's rule on its own, and in the Trainer on the CPU
// (the same code runs on CUDA: test/cuda-train.test.ts).
import test from 'ava';

import { parseModelConfig } from '../lib/nn/config.js';
import { LossScaler } from '../lib/train/loss_scaler.js';
import { lossScalerFor } from '../lib/train/precision_mode.js';
import { SyntheticData } from '../lib/train/sources.js';
import { Trainer, type TrainerOptions } from '../lib/train/trainer.js';
import type { TrainLogRecord } from '../lib/train/logging.js';
import { defaultSyntheticTokenizer } from '../lib/data/synthetic.js';
import { overflowAndRecover } from './_helpers/loss_scaling.js';

test('the scale halves on a non-finite step, grows after growthInterval good steps, and counts skips', (t) => {
  const s = new LossScaler({ initScale: 1024, growthInterval: 3 });
  t.false(s.update(false));
  t.is(s.scale, 512);
  t.is(s.skipped, 1);
  t.true(s.update(true));
  t.true(s.update(true));
  t.is(s.scale, 512);
  t.false(s.update(false)); // a skip resets the run of good steps
  t.is(s.scale, 256);
  for (let i = 0; i < 2; i++) s.update(true);
  t.is(s.scale, 256);
  s.update(true);
  t.is(s.scale, 512);
  t.is(s.goodSteps, 0);
  t.is(s.skipped, 2);
  const restored = new LossScaler({ growthInterval: 3 });
  restored.load(s.state());
  t.deepEqual(restored.state(), s.state());
});

test('the scale stays within [minScale, maxScale]; bad options are refused with the reason', (t) => {
  const s = new LossScaler({ initScale: 2, minScale: 1, maxScale: 4, growthInterval: 1 });
  s.update(false);
  s.update(false);
  t.is(s.scale, 1);
  s.update(true);
  s.update(true);
  s.update(true);
  t.is(s.scale, 4);
  t.throws(() => new LossScaler({ initScale: 0 }), { message: /initScale must be a finite number > 0, got 0/ });
  t.throws(() => new LossScaler({ growthFactor: 1 }), { message: /growthFactor must be > 1/ });
  t.throws(() => new LossScaler({ backoffFactor: 1 }), { message: /backoffFactor must be in \(0, 1\)/ });
  t.throws(() => new LossScaler({ growthInterval: 0.5 }), { message: /growthInterval must be an integer/ });
});

const tokenizer = defaultSyntheticTokenizer();
const config = parseModelConfig({
  embed_dim: 16,
  vision_cfg: { image_size: 16, layers: 1, width: 16, head_width: 8, patch_size: 8 },
  text_cfg: { context_length: 16, vocab_size: tokenizer.vocabSize, width: 16, heads: 2, layers: 1 },
});

function options(extra: Partial<TrainerOptions> = {}): TrainerOptions {
  return {
    model: config,
    data: new SyntheticData({ seed: 3, size: 64, imageSize: 16, contextLength: 16 }),
    batchSize: 8,
    samples: 48,
    lr: 1e-3,
    seed: 2,
    logEvery: 1,
    ...extra,
  };
}

async function run(o: TrainerOptions) {
  using trainer = new Trainer(o);
  const records: TrainLogRecord[] = [];
  for await (const r of trainer.run()) records.push(r);
  return { records, params: trainer.model.stateDict() };
}

test('a power-of-two loss scale that never overflows changes nothing: the same parameters bit for bit (fp32 and bf16)', async (t) => {
  for (const precision of ['fp32', 'bf16'] as const) {
    const plain = await run(options({ precision }));
    const scaled = await run(options({ precision, lossScaling: { initScale: 2 ** 12, growthInterval: 2 } }));
    t.deepEqual(scaled.records.map((r) => r.loss), plain.records.map((r) => r.loss), precision);
    t.deepEqual(scaled.records.map((r) => r.loss_scale), [2 ** 12, 2 ** 13, 2 ** 13, 2 ** 14, 2 ** 14, 2 ** 15], precision);
    for (const [name, p] of plain.params) {
      t.deepEqual(scaled.params.get(name)!.data, p.data, `${precision} ${name}`);
    }
  }
});

test('an overflowing loss scale skips steps (parameters untouched, skips counted) and recovers by halving', async (t) => {
  await overflowAndRecover(t, 'cpu');
});

test('precision fp16 on the CPU is refused with the reason; fp16 loss scaling is dynamic by default, none elsewhere', (t) => {
  t.throws(() => new Trainer(options({ precision: 'fp16' })), { message: /'fp16' is not available on the CPU: .*no fp16 rounding emulation.*train fp16 on 'cuda'/s });
  t.is(lossScalerFor(undefined, 'fp16')?.scale, 2 ** 16);
  t.is(lossScalerFor('none', 'fp16'), null);
  t.is(lossScalerFor(undefined, 'bf16'), null);
  t.is(lossScalerFor({ initScale: 8 }, 'fp32')?.scale, 8);
  t.throws(() => new Trainer(options({ device: 'tpu' })), { message: /device must be 'cpu', 'cuda' or 'cuda:N', got 'tpu'/ });
});
