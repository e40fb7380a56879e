// One rank of a data-parallel training run on CUDA (or the single-process baseline on one
// device): trains a micro CLIP for 2 steps with the NCCL communicator (on the emulated device,
// its stand-in) and, on rank 0, writes the losses, the final weights and the bucket launches to
// the JSON file named by argv[2] (every other rank to <out>.rank<r>.json). argv: out, global batch,
// loss ('clip' | 'siglip'), bucket MB, accumFreq (default 1), precision (default: the device's),
// loss scaler options as JSON (default: the precision's), steps (default 2).
import { writeFileSync } from 'node:fs';

import { createCommunicator } from '../../lib/distributed/create.js';
import { readDistEnvironment } from '../../lib/distributed/environment.js';
import { rankDevice } from '../../lib/distributed/rank_device.js';
import { defaultSyntheticTokenizer } from '../../lib/data/synthetic.js';
import { parseModelConfig } from '../../lib/nn/config.js';
import { SyntheticData } from '../../lib/train/sources.js';
import { Trainer } from '../../lib/train/trainer.js';

const out = process.argv[2];
const globalBatch = Number(process.argv[3] ?? 16);
const loss = process.argv[4] ?? 'clip';
const bucketCapMb = Number(process.argv[5] ?? 25);
const accumFreq = Number(process.argv[6] ?? 1);
const precision = process.argv[7] && process.argv[7] !== '-' ? (process.argv[7] as 'fp32' | 'bf16' | 'fp16') : undefined;
const lossScaling = process.argv[8] && process.argv[8] !== '-' ? JSON.parse(process.argv[8]) : undefined;
const steps = Number(process.argv[9] ?? 2);
const env = readDistEnvironment();
const device = rankDevice('cuda', env);
const comm = env.worldSize > 1 ? await createCommunicator({ device }) : undefined;
const world = comm?.size ?? 1;
const tokenizer = defaultSyntheticTokenizer();
const config = parseModelConfig({
  embed_dim: 16,
  vision_cfg: { image_size: 16, layers: 2, width: 16, head_width: 8, patch_size: 8 },
  text_cfg: { context_length: 16, vocab_size: tokenizer.vocabSize, width: 16, heads: 2, layers: 2 },
});
const trainer = new Trainer({
  model: config,
  data: new SyntheticData({ size: 200, imageSize: 16, contextLength: 16, seed: 9 }),
  batchSize: globalBatch / world,
  samples: steps * globalBatch,
  accumFreq,
  ...(precision ? { precision } : {}),
  ...(lossScaling ? { lossScaling } : {}),
  lr: 1e-3,
  warmup: 1,
  seed: 7,
  logEvery: 1,
  gradClipNorm: 1,
  device,
  siglip: loss === 'siglip',
  bucketCapMb,
  comm,
});
const losses: number[] = [];
const scales: number[] = [];
const skipped: number[] = [];
for await (const r of trainer.run()) {
  losses.push(r.loss);
  scales.push((r.loss_scale as number | undefined) ?? 1);
  skipped.push(r.skipped_steps as number);
}
const rank = comm?.rank ?? 0;
const weights: Record<string, number[]> = {};
for (const p of trainer.model.parameters()) weights[p.name] = Array.from(p.hostValues());
const ddp = (trainer as unknown as { ddp: { buckets: { launches: unknown[]; buckets: { bytes: number }[] } } | null }).ddp;
writeFileSync(rank === 0 ? out : `${out}.rank${rank}.json`, JSON.stringify({
  world, rank, device, losses, scales, skipped, finalScale: trainer.scaler?.scale ?? null, weights,
  launches: ddp?.buckets.launches ?? [], buckets: ddp?.buckets.buckets.map((b) => b.bytes) ?? [],
}));
trainer.dispose();
await comm?.close();
