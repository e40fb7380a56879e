// The CPU thread pool's spin before sleeping (CLIPSCALE_SPIN_US), on the same build: tiny encoding at
// batch 8 (inference mode, image + text) and a tiny b128 training step, each in a fresh child process
// per setting, settings taken turn about so they see the same machine. One JSON line per measurement.
// The peer comparison (PyTorch) is benchmarks/cpu_side_by_side.ts; this isolates the hand-off.
//
//   node --import=tsx benchmarks/thread_spin.ts [--spins 50,1000] [--rounds 3]
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { defaultSyntheticTokenizer } from '../lib/data/synthetic.js';
import { native } from '../lib/native.js';
import { createModel } from '../lib/nn/clip.js';
import { loadModelConfig } from '../lib/nn/config.js';
import { Tensor } from '../lib/tensor.js';
import { SyntheticData } from '../lib/train/sources.js';
import { Trainer } from '../lib/train/trainer.js';
import { Rng } from '../lib/util/rng.js';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

async function child(): Promise<void> {
  const model = createModel('tiny', { seed: 0 });
  const cfg = model.config;
  const size = cfg.vision_cfg.image_size, ctx = cfg.text_cfg.context_length;
  const rng = new Rng(1);
  using images = Tensor.from(Float32Array.from({ length: 8 * 3 * size * size }, () => rng.normal()), [8, 3, size, size]);
  using ids = Tensor.from(Int32Array.from({ length: 8 * ctx }, () => Math.floor(rng.uniform() * cfg.text_cfg.vocab_size)), [8, ctx]);
  const encodeMs: number[] = [];
  {
    using _inference = model.inference();
    for (let i = 0; i < 420; i++) {
      const t0 = performance.now();
      model.encodeImage(images);
      model.encodeText(ids);
      if (i >= 20) encodeMs.push(performance.now() - t0);
    }
  }
  const tcfg = loadModelConfig('tiny');
  const data = new SyntheticData({ size: 50_000, imageSize: tcfg.vision_cfg.image_size, contextLength: tcfg.text_cfg.context_length, tokenizer: defaultSyntheticTokenizer() });
  using trainer = new Trainer({ model: 'tiny', data, batchSize: 128, samples: 14 * 128, logEvery: 1, precision: 'fp32', lr: 5e-4 });
  const stepMs: number[] = [];
  for await (const r of trainer.run()) if (r.step > 2) stepMs.push(r.step_time_s * 1000);
  const round3 = (x: number) => Number(x.toFixed(3));
  process.stdout.write(JSON.stringify({ encode_tiny_b8_ms: round3(median(encodeMs)), train_tiny_b128_step_ms: round3(median(stepMs)), threads: native.numThreads() }));
}

if (process.argv.includes('--child')) await child();
else {
  const { values } = parseArgs({ options: { spins: { type: 'string' }, rounds: { type: 'string' } } });
  const spins = (values.spins ?? '50,1000').split(',').map(Number);
  const self = fileURLToPath(import.meta.url);
  for (let round = 1; round <= Number(values.rounds ?? 3); round++)
    for (const spin of spins) {
      const out = execFileSync(process.execPath, ['--import=tsx', self, '--child'], { env: { ...process.env, CLIPSCALE_SPIN_US: String(spin) }, encoding: 'utf8' });
      console.log(JSON.stringify({ bench: 'thread-spin', round, spin_us: spin, ...JSON.parse(out), load: os.loadavg()[0] }));
    }
}
