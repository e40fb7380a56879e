// Where a CPU training step spends its time: every native binding function is wrapped with a
// timer before the Trainer runs, so each op's share of the step (and the rest: JS orchestration,
// data) comes out per config. One JSON line per config.
//
//   node --import=tsx benchmarks/train_step_profile.ts [--configs tiny,small] [--batch-size 128] [--steps 6]
import { parseArgs } from 'node:util';

import { defaultSyntheticTokenizer } from '../lib/data/synthetic.js';
import { native } from '../lib/native.js';
import { loadModelConfig } from '../lib/nn/config.js';
import { SyntheticData } from '../lib/train/sources.js';
import { Trainer } from '../lib/train/trainer.js';

const timers = new Map<string, { ms: number; calls: number }>();
let recording = false;
const binding = native as unknown as Record<string, unknown>;
for (const [name, f] of Object.entries(binding)) {
  if (typeof f !== 'function' || /^[A-Z]/.test(name)) continue;
  const original = f as (...a: unknown[]) => unknown;
  binding[name] = (...args: unknown[]) => {
    if (!recording) return original(...args);
    const t0 = performance.now();
    try {
      return original(...args);
    } finally {
      const e = timers.get(name) ?? { ms: 0, calls: 0 };
      e.ms += performance.now() - t0;
      e.calls++;
      timers.set(name, e);
    }
  };
}

async function profile(name: string, batchSize: number, steps: number, warmup: number) {
  const cfg = loadModelConfig(name);
  const data = new SyntheticData({ size: 50_000, imageSize: cfg.vision_cfg.image_size, contextLength: cfg.text_cfg.context_length, tokenizer: defaultSyntheticTokenizer() });
  using trainer = new Trainer({ model: name, data, batchSize, samples: (warmup + steps) * batchSize, logEvery: 1, precision: 'fp32', lr: 5e-4 });
  timers.clear();
  let stepMs = 0;
  let dataMs = 0;
  for await (const r of trainer.run()) {
    if (r.step === warmup) recording = true;
    if (r.step <= warmup) continue;
    stepMs += r.step_time_s * 1000;
    dataMs += r.data_time_s * 1000;
  }
  recording = false;
  const nativeMs = [...timers.values()].reduce((a, e) => a + e.ms, 0);
  const ops = [...timers.entries()]
    .sort((a, b) => b[1].ms - a[1].ms)
    .map(([op, e]) => ({ op, ms_per_step: Number((e.ms / steps).toFixed(3)), share: Number((e.ms / stepMs).toFixed(3)), calls_per_step: e.calls / steps }));
  return {
    bench: 'train-step-profile', config: name, batch_size: batchSize, steps,
    step_ms: Number((stepMs / steps).toFixed(2)), data_ms: Number((dataMs / steps).toFixed(2)),
    native_ms: Number((nativeMs / steps).toFixed(2)), outside_native_ms: Number(((stepMs - nativeMs) / steps).toFixed(2)),
    threads: native.numThreads(), ops,
  };
}

const { values } = parseArgs({ options: { configs: { type: 'string' }, 'batch-size': { type: 'string' }, steps: { type: 'string' } } });
for (const name of (values.configs ?? 'tiny,small').split(',')) {
  console.log(JSON.stringify(await profile(name, Number(values['batch-size'] ?? 128), Number(values.steps ?? 6), 2)));
}
