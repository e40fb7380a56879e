// Encoding memory and time: the training forward (activations kept per layer for backward) vs
// inference mode (Module.inference: nothing kept, one buffer set for the whole depth), for both
// towers at one batch size, with PyTorch's eager forward with autograd and under
// torch.inference_mode on a model of the same shapes as the peer (benchmarks/inference_pytorch.py,
// when torch imports).
//
//   node --import=tsx benchmarks/inference.ts [--configs tiny,ViT-B-32] [--batch-size 8] [--reps 3] [--no-torch]
//
// Each (config, mode) runs in a fresh child process so peak RSS (getrusage maxrss) is its own:
// the model's weights, the input, and the activation buffers. `activation_bytes` is what the
// model's buffers hold after encoding (Module.bufferBytes); `time_s` the median of --reps encodes
// of one image batch and one text batch after one warm-up. One JSON line per measurement.
// Timings on a shared machine are noisy; the load average is printed with each line, and an
// 'alternating' line times both paths turn about in one process (the fairer time comparison).
import { execFileSync, spawnSync } from 'node:child_process';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { createModel } from '../lib/nn/clip.js';
import { Tensor } from '../lib/tensor.js';
import { Rng } from '../lib/util/rng.js';

const here = dirname(fileURLToPath(import.meta.url));
const round = (x: number, d = 3) => Number(x.toFixed(d));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

type Mode = 'training' | 'inference' | 'alternating';

function child(config: string, mode: Mode, batch: number, reps: number): void {
  const model = createModel(config, { seed: 0 });
  const cfg = model.config;
  const size = cfg.vision_cfg.image_size;
  const ctx = cfg.text_cfg.context_length;
  const rng = new Rng(1);
  using images = Tensor.from(Float32Array.from({ length: batch * 3 * size * size }, () => rng.normal()), [batch, 3, size, size]);
  using ids = Tensor.from(Int32Array.from({ length: batch * ctx }, () => Math.floor(rng.uniform() * cfg.text_cfg.vocab_size)), [batch, ctx]);
  const rssBefore = process.resourceUsage().maxRSS * 1024;
  const encode = (inference = mode === 'inference'): number => {
    const t0 = process.hrtime.bigint();
    if (inference) {
      using _ = model.inference();
      model.encodeImage(images);
      model.encodeText(ids);
    } else {
      model.encodeImage(images);
      model.encodeText(ids);
    }
    return Number(process.hrtime.bigint() - t0) / 1e9;
  };
  if (mode === 'alternating') {
    // Both paths in one process, turn about, so load changes on a shared machine hit both alike.
    encode(false);
    encode(true);
    const training: number[] = [];
    const inference: number[] = [];
    for (let i = 0; i < reps; i++) {
      training.push(encode(false));
      inference.push(encode(true));
    }
    console.log(JSON.stringify({
      bench: 'inference', impl: 'clipscale', config, mode, batch,
      training_time_s: round(median(training)), inference_time_s: round(median(inference)),
      training_times_s: training.map((x) => round(x)), inference_times_s: inference.map((x) => round(x)),
      loadavg: os.loadavg().map((x) => round(x, 2)),
    }));
    return;
  }
  encode();
  const times = Array.from({ length: reps }, () => encode());
  const line = {
    bench: 'inference',
    impl: 'clipscale',
    config,
    mode,
    batch,
    time_s: round(median(times)),
    best_s: round(Math.min(...times)),
    times_s: times.map((x) => round(x)),
    activation_bytes: model.bufferBytes(),
    peak_rss_bytes: process.resourceUsage().maxRSS * 1024,
    rss_before_encoding_bytes: rssBefore,
    parameters: model.parameterCount(),
    loadavg: os.loadavg().map((x) => round(x, 2)),
  };
  console.log(JSON.stringify(line));
}

const { values } = parseArgs({
  options: {
    configs: { type: 'string', default: 'tiny,ViT-B-32' },
    'batch-size': { type: 'string', default: '8' },
    reps: { type: 'string', default: '3' },
    'no-torch': { type: 'boolean', default: false },
    child: { type: 'string' },
    mode: { type: 'string' },
  },
});
const batch = Number(values['batch-size']);
const reps = Number(values.reps);

if (values.child) {
  child(values.child, values.mode as Mode, batch, reps);
} else {
  for (const config of values.configs!.split(',')) {
    for (const mode of ['training', 'inference', 'alternating']) {
      const r = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--child', config, '--mode', mode, '--batch-size', String(batch), '--reps', String(reps)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
      if (r.status !== 0) throw new Error(`benchmark child ${config}/${mode} failed with status ${r.status}`);
      process.stdout.write(r.stdout);
    }
    if (values['no-torch']) continue;
    try {
      const out = execFileSync('python3', [join(here, 'inference_pytorch.py'), '--config', join(here, '..', 'lib', 'configs', 'models', `${config}.json`), '--batch-size', String(batch), '--reps', String(reps), '--threads', String(os.availableParallelism())], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      process.stdout.write(out);
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      console.log(JSON.stringify({ bench: 'inference', impl: 'pytorch', config, skipped: `PyTorch peer did not run: ${(e.stderr ?? e.message).trim().split('\n').pop()}` }));
    }
  }
}
