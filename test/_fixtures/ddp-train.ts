// One rank of a data-parallel training run (or the single-process baseline):
// trains a micro CLIP for 3 steps and, on rank 0, writes the losses and the final
// weights to the JSON file named by argv[2].
import { writeFileSync } from 'node:fs';

import { createCommunicator } from '../../lib/distributed/create.js';
import { readDistEnvironment } from '../../lib/distributed/environment.js';
import { defaultSyntheticTokenizer } from '../../lib/data/synthetic.js';
import { parseModelConfig } from '../../lib/nn/config.js';
import { SyntheticData } from '../../lib/train/sources.js';
import { Trainer } from '../../lib/train/trainer.js';

const out = process.argv[2];
const globalBatch = Number(process.argv[3] ?? 16);
// Optional: a checkpoint directory ('' for none), and 'stop2' (train 2 steps, checkpoint, stop),
// 'resume', or 'accum2' (accumFreq 2).
const checkpointDir = process.argv[4];
const mode = process.argv[5];
const env = readDistEnvironment();
const comm = env.worldSize > 1 ? await createCommunicator() : undefined;
const world = comm?.size ?? 1;
const tokenizer = defaultSyntheticTokenizer();
const config = parseModelConfig({
  embed_dim: 16,
  vision_cfg: { image_size: 16, layers: 1, width: 16, head_width: 8, patch_size: 8 },
  text_cfg: { context_length: 16, vocab_size: tokenizer.vocabSize, width: 16, heads: 2, layers: 1 },
});
const trainer = new Trainer({
  model: config,
  data: new SyntheticData({ size: 200, imageSize: 16, contextLength: 16, seed: 9 }),
  batchSize: globalBatch / world,
  samples: 3 * globalBatch,
  lr: 1e-3,
  warmup: 1,
  seed: 7,
  logEvery: 1,
  gradClipNorm: 1,
  comm,
  ...(checkpointDir ? { out: checkpointDir, resume: mode === 'resume' } : {}),
  ...(mode === 'stop2' ? { stopAfterSteps: 2 } : {}),
  ...(mode === 'accum2' ? { accumFreq: 2 } : {}),
});
const losses: number[] = [];
for await (const r of trainer.run()) losses.push(r.loss);
if ((comm?.rank ?? 0) === 0) {
  const weights: Record<string, number[]> = {};
  for (const p of trainer.model.parameters()) weights[p.name] = Array.from(p.values());
  writeFileSync(out, JSON.stringify({ world, losses, weights }));
}
await comm?.close();
