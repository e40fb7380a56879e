// Whole CPU training steps with this build's speed switches on and off: the text tower's captions
// packed to their lengths (CLIPSCALE_PACK_TEXT), each tower's last block on its pooled rows only
// (CLIPSCALE_PICK_ROWS), skipping the zero rows of a linear layer's gradient
// (CLIPSCALE_SKIP_ZERO_ROWS), a short batch's backward products in one parallel region
// (CLIPSCALE_SHORT_BATCH_REGION) and huge pages for large tensors (CLIPSCALE_HUGE_PAGES). Each setting trains in a fresh child process, settings taken turn about
// each round so they see the same machine; the same data and seed, so the losses after the timed
// steps show what a switch changes in the values (fp32 rounding, not more). One JSON line per run.
//
//   node --import=tsx benchmarks/step_switches.ts [--configs tiny,small] [--batch-size 128] [--steps 30] [--rounds 3]
//        [--settings default,padded-text,full-rows,short-products-apart,dense,small-pages,dense+small-pages,none]
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { defaultSyntheticTokenizer } from '../lib/data/synthetic.js';
import { native } from '../lib/native.js';
import { loadModelConfig } from '../lib/nn/config.js';
import { SyntheticData } from '../lib/train/sources.js';
import { Trainer } from '../lib/train/trainer.js';

const settings: Record<string, Record<string, string>> = {
  default: {},
  dense: { CLIPSCALE_SKIP_ZERO_ROWS: '0' },
  'small-pages': { CLIPSCALE_HUGE_PAGES: '0' },
  'dense+small-pages': { CLIPSCALE_SKIP_ZERO_ROWS: '0', CLIPSCALE_HUGE_PAGES: '0' },
  'padded-text': { CLIPSCALE_PACK_TEXT: '0' },
  'full-rows': { CLIPSCALE_PICK_ROWS: '0' },
  'short-products-apart': { CLIPSCALE_SHORT_BATCH_REGION: '0' },
  // The thread pool's spin before a thread sleeps (default 1 ms, 50 µs with more threads than cores).
  'spin-50': { CLIPSCALE_SPIN_US: '50' },
  'spin-300': { CLIPSCALE_SPIN_US: '300' },
  'spin-1000': { CLIPSCALE_SPIN_US: '1000' },
  none: { CLIPSCALE_PACK_TEXT: '0', CLIPSCALE_PICK_ROWS: '0', CLIPSCALE_SKIP_ZERO_ROWS: '0', CLIPSCALE_SHORT_BATCH_REGION: '0', CLIPSCALE_HUGE_PAGES: '0' },
};
const warmup = 3;
const r3 = (x: number) => Number(x.toFixed(3));

async function child(config: string, batchSize: number, steps: number): Promise<void> {
  const cfg = loadModelConfig(config);
  const data = new SyntheticData({ size: 50_000, imageSize: cfg.vision_cfg.image_size, contextLength: cfg.text_cfg.context_length, tokenizer: defaultSyntheticTokenizer() });
  const ms: number[] = [];
  let loss = NaN;
  {
    using trainer = new Trainer({ model: config, data, batchSize, samples: (warmup + steps) * batchSize, logEvery: 1, precision: 'fp32', lr: 5e-4 });
    for await (const r of trainer.run()) {
      if (r.step > warmup) ms.push(r.step_time_s * 1000);
      loss = r.loss;
    }
  }
  ms.sort((a, b) => a - b);
  const at = (q: number) => r3(ms[Math.min(ms.length - 1, Math.floor(q * ms.length))]);
  process.stdout.write(JSON.stringify({ step_ms_median: at(0.5), step_ms_p25: at(0.25), step_ms_min: r3(ms[0]), loss_after: loss, threads: native.numThreads() }));
}

const { values } = parseArgs({
  options: {
    child: { type: 'boolean' }, configs: { type: 'string' }, config: { type: 'string' }, 'batch-size': { type: 'string' },
    steps: { type: 'string' }, rounds: { type: 'string' }, settings: { type: 'string' },
  },
});
const batchSize = Number(values['batch-size'] ?? 128), steps = Number(values.steps ?? 30);
if (values.child) await child(values.config ?? 'tiny', batchSize, steps);
else {
  const names = (values.settings ?? 'default,padded-text,full-rows,dense,small-pages,none').split(',');
  for (const n of names) if (!settings[n]) throw new Error(`step_switches: unknown setting "${n}" (${Object.keys(settings).join(', ')})`);
  const self = fileURLToPath(import.meta.url);
  const cpu = os.cpus()[0]?.model ?? 'unknown';
  for (const config of (values.configs ?? 'tiny,small').split(','))
    for (let round = 1; round <= Number(values.rounds ?? 3); round++)
      for (const setting of names) {
        const out = execFileSync(process.execPath, ['--import=tsx', self, '--child', '--config', config, '--batch-size', String(batchSize), '--steps', String(steps)], {
          env: { ...process.env, ...settings[setting] }, encoding: 'utf8',
        });
        console.log(JSON.stringify({ bench: 'step-switches', cpu, config, batch_size: batchSize, steps, round, setting, env: settings[setting], ...JSON.parse(out), loadavg: os.loadavg().map((x) => r3(x)) }));
      }
}
