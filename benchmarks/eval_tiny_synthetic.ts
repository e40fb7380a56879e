// Trains the 'tiny' CLIP on the synthetic world on the CPU and reports what evaluation sees:
// zero-shot accuracy on each synthetic task, retrieval recalls, and (with --finetune) end-to-end
// fine-tuning of the image tower on the colour and shape tasks. Prints JSON lines.
//
//   npx tsx benchmarks/eval_tiny_synthetic.ts [--samples 32000] [--out DIR] [--finetune] [--weights DIR|FILE]
//
// Training: SyntheticData({size: 50000, imageSize: 32, contextLength: 32}), batch 128, lr 2e-3,
// warmup 10, seed 1. The weights stay in --out (checkpoint-<step>.safetensors) for `clipscale eval`;
// --weights skips training and evaluates weights made earlier.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { defaultSyntheticTokenizer, ZERO_SHOT_TASKS } from '../lib/data/synthetic.js';
import { finetune } from '../lib/eval/finetune.js';
import { syntheticTaskImages } from '../lib/eval/labelled_images.js';
import { syntheticRetrievalEval, zeroShotEval } from '../lib/eval/model_eval.js';
import type { CLIP } from '../lib/nn/clip.js';
import { loadCheckpoint } from '../lib/train/load.js';
import { SyntheticData } from '../lib/train/sources.js';
import { Trainer } from '../lib/train/trainer.js';

const { values } = parseArgs({
  options: { samples: { type: 'string' }, weights: { type: 'string' }, out: { type: 'string' }, finetune: { type: 'boolean' }, seed: { type: 'string' } },
});
const samples = Number(values.samples ?? 32_000);
const out = values.out ?? mkdtempSync(join(tmpdir(), 'clipscale-tiny-'));
const tokenizer = defaultSyntheticTokenizer();
const emit = (o: object) => console.log(JSON.stringify(o));

async function trainTiny(): Promise<CLIP> {
  const data = new SyntheticData({ size: 50_000, imageSize: 32, contextLength: 32 });
  const trainer = new Trainer({ model: 'tiny', data, batchSize: 128, samples, lr: 2e-3, warmup: 10, seed: Number(values.seed ?? 1), out, logEvery: 25 });
  const t0 = performance.now();
  for await (const r of trainer.run()) emit({ event: 'train', step: r.step, samples: r.samples, loss: r.loss, samples_per_s: r.samples_per_s });
  emit({ event: 'trained', samples: trainer.samplesSeen, seconds: (performance.now() - t0) / 1000, weights_dir: out });
  return trainer.model;
}

const model = values.weights ? await loadCheckpoint('tiny', values.weights) : await trainTiny();
for (const task of ZERO_SHOT_TASKS) {
  const images = syntheticTaskImages(task, { imageSize: 32, n: 1024, seed: 1 });
  const m = await zeroShotEval(model, images, images.prompts!, tokenizer);
  emit({ event: 'zeroshot', task, chance: 1 / images.classnames.length, ...m });
}
const r = await syntheticRetrievalEval(model, tokenizer, { imageSize: 32, n: 1000, seed: 1 });
emit({ event: 'retrieval', images: 1000, captions_per_image: 5, ...r });

if (values.finetune) {
  const ft = { steps: 300, batchSize: 64, lr: 1e-3, warmup: 20 };
  for (const task of ZERO_SHOT_TASKS) {
    const snapshot = model.stateDict();
    const train = syntheticTaskImages(task, { imageSize: 32, n: 4096, seed: 2 });
    const test = syntheticTaskImages(task, { imageSize: 32, n: 1024, seed: 1 });
    const res = await finetune(model, { train, test, ...train.prompts!, tokenizer, ...ft });
    emit({ event: 'finetune', task, before_acc1: res.before.acc1, after_acc1: res.after.acc1, ...ft, train_images: train.n, scale: res.scale, seconds: res.seconds });
    model.loadStateDict(snapshot);
  }
}
model.dispose();
