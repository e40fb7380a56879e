// The CPU thread pool's hand-off: training steps with waiting threads polling briefly before they
// sleep (the default, CLIPSCALE_SPIN_US=50) against sleeping at once (CLIPSCALE_SPIN_US=0), in
// alternating rounds in one process (the pool re-reads the setting when resized), so both modes
// see the same machine load. One JSON line per round and mode, then a summary line with the
// median and best step time of each mode and their ratio.
//
//   node --import=tsx benchmarks/thread_handoff.ts [--configs micro,tiny] [--batch-sizes 32,128]
//        [--threads 2] [--steps 8] [--rounds 4] [--spin-us 50] [--out FILE]
import { appendFileSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';

import { defaultSyntheticTokenizer } from '../lib/data/synthetic.js';
import { native } from '../lib/native.js';
import { loadModelConfig } from '../lib/nn/config.js';
import { SyntheticData } from '../lib/train/sources.js';
import { Trainer } from '../lib/train/trainer.js';

const { values } = parseArgs({
  options: {
    configs: { type: 'string' }, 'batch-sizes': { type: 'string' }, threads: { type: 'string' },
    steps: { type: 'string' }, rounds: { type: 'string' }, 'spin-us': { type: 'string' }, out: { type: 'string' },
  },
});
const configs = (values.configs ?? 'micro,tiny').split(',');
const batchSizes = (values['batch-sizes'] ?? '32,128').split(',').map(Number);
const threads = Number(values.threads ?? Math.min(2, os.availableParallelism()));
const steps = Number(values.steps ?? 8);
const rounds = Number(values.rounds ?? 4);
const modes = [{ name: 'sleep', spinUs: '0' }, { name: 'poll', spinUs: values['spin-us'] ?? '50' }];
const cpu = os.cpus()[0]?.model ?? 'unknown';
const load = () => Number(os.loadavg()[0].toFixed(2));

function emit(line: Record<string, unknown>): void {
  const text = JSON.stringify({ bench: 'thread-handoff', cpu, cores: os.availableParallelism(), threads, ...line });
  console.log(text);
  if (values.out) appendFileSync(values.out, text + '\n');
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const round3 = (x: number) => Number(x.toFixed(3));

async function stepTimes(config: string, batchSize: number): Promise<number[]> {
  const cfg = loadModelConfig(config);
  const data = new SyntheticData({ size: 4096, imageSize: cfg.vision_cfg.image_size, contextLength: cfg.text_cfg.context_length, tokenizer: defaultSyntheticTokenizer() });
  const warmup = 2;
  using trainer = new Trainer({ model: config, data, batchSize, samples: (warmup + steps) * batchSize, logEvery: 1, precision: 'fp32', lr: 5e-4 });
  const ms: number[] = [];
  for await (const r of trainer.run()) if (r.step > warmup) ms.push(r.step_time_s * 1000);
  return ms;
}

for (const config of configs) {
  for (const batchSize of batchSizes) {
    const perMode = new Map<string, number[]>(modes.map((m) => [m.name, []]));
    for (let round = 0; round < rounds; round++) {
      // Alternate which mode goes first, so neither always runs on a warmer machine.
      for (const mode of round % 2 ? [...modes].reverse() : modes) {
        process.env.CLIPSCALE_SPIN_US = mode.spinUs;
        native.setNumThreads(threads);  // the pool reads the setting when it is resized
        const loadBefore = load();
        const ms = await stepTimes(config, batchSize);
        perMode.get(mode.name)!.push(...ms);
        emit({ config, batch_size: batchSize, round, mode: mode.name, spin_us: Number(mode.spinUs), step_ms_median: round3(median(ms)), step_ms_best: round3(Math.min(...ms)), load_before: loadBefore, load_after: load() });
      }
    }
    const sleep = perMode.get('sleep')!;
    const poll = perMode.get('poll')!;
    emit({
      config, batch_size: batchSize, summary: true, steps_per_mode: sleep.length,
      sleep_ms_median: round3(median(sleep)), poll_ms_median: round3(median(poll)),
      sleep_ms_best: round3(Math.min(...sleep)), poll_ms_best: round3(Math.min(...poll)),
      speedup_median: round3(median(sleep) / median(poll)), speedup_best: round3(Math.min(...sleep) / Math.min(...poll)), load: load(),
    });
  }
}
