// CPU training throughput: samples/s of small configs trained by the Trainer (the whole step:
// forward, loss, backward, AdamW), and the share of this CPU's measured GEMM throughput that the
// step's arithmetic reaches, both measured in the same run.
//
//   node --import=tsx benchmarks/train_cpu.ts [--configs tiny,small] [--batch-size 128] [--steps 10] [--rounds 3] [--save]
//
// Training FLOPs per sample = 3 × 2 × MACs (forward once, backward twice the forward), MACs from
// lib/scaling/flops.ts computeCost (the scaling-law paper's count). GEMM throughput is measured
// with ops.matmul (through `clipscale bench gemm`'s function) at each tower's MLP up-projection
// shape for this batch ([B·tokens, width] × [width, 4·width]ᵀ, PyTorch weight layout) and combined
// weighted by the towers' MACs; 1024³ is reported too, as the CPU's large-matrix rate. Data time
// (drawing synthetic images) is reported but excluded from the compute rate. On a shared machine
// other processes only slow things down, so the shares compare the fastest step with the best of
// `--rounds` GEMM measurements; the median step is reported beside it. One JSON line per
// config; --save writes them to benchmarks/results/train-cpu-<cpu>-<cores>c.jsonl.
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { benchGemm } from '../lib/cli/commands/bench.js';
import { defaultSyntheticTokenizer } from '../lib/data/synthetic.js';
import { native } from '../lib/native.js';
import { loadModelConfig, mlpWidth, visionPatches } from '../lib/nn/config.js';
import { computeCost, imageMacs, textMacs } from '../lib/scaling/flops.js';
import { SyntheticData } from '../lib/train/sources.js';
import { Trainer } from '../lib/train/trainer.js';

const round = (x: number, d = 2) => Number(x.toFixed(d));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function benchConfig(name: string, batchSize: number, steps: number, warmupSteps: number, precision: 'fp32' | 'bf16', rounds: number) {
  const cfg = loadModelConfig(name);
  const tokenizer = defaultSyntheticTokenizer();
  const data = new SyntheticData({ size: 50_000, imageSize: cfg.vision_cfg.image_size, contextLength: cfg.text_cfg.context_length, tokenizer });
  using trainer = new Trainer({ model: name, data, batchSize, samples: (warmupSteps + steps) * batchSize, logEvery: 1, precision, lr: 5e-4 });
  const stepTimes: number[] = [];
  let dataSeconds = 0;
  let tStart = performance.now();
  for await (const r of trainer.run()) {
    if (r.step === warmupSteps) tStart = performance.now();
    if (r.step <= warmupSteps) continue;
    stepTimes.push(r.step_time_s);
    dataSeconds += r.data_time_s;
  }
  const counted = stepTimes.length;
  const wall = (performance.now() - tStart) / 1000;
  const cost = computeCost(cfg);
  const flopsPerSample = 3 * 2 * cost.gmacs * 1e9;
  // Other processes only ever slow a step down: the fastest step is the machine's rate, the median what a run sees.
  const medianStep = median(stepTimes);
  const bestStep = Math.min(...stepTimes);
  const achievedBest = (flopsPerSample * batchSize) / bestStep / 1e9;
  const achievedMedian = (flopsPerSample * batchSize) / medianStep / 1e9;

  // GEMM rate at the shapes this batch's MLPs use, weighted by the towers' MACs; best of `rounds`.
  const v = cfg.vision_cfg;
  const t = cfg.text_cfg;
  const shapes = [
    { tower: 'image', m: batchSize * (visionPatches(cfg) + 1), k: v.width, n: mlpWidth(v.width, v.mlp_ratio), macs: imageMacs(cfg) },
    { tower: 'text', m: batchSize * t.context_length, k: t.width, n: mlpWidth(t.width, t.mlp_ratio), macs: textMacs(cfg) },
  ];
  const best = (f: () => number) => Math.max(...Array.from({ length: rounds }, f));
  const gemms = shapes.map((s) => ({ ...s, gflops: best(() => benchGemm({ m: s.m, n: s.n, k: s.k, transB: true, repeat: 10, warmup: 3 }).gflops) }));
  const totalMacs = gemms.reduce((a, g) => a + g.macs, 0);
  const gemmRepresentative = totalMacs / gemms.reduce((a, g) => a + g.macs / g.gflops, 0);
  const gemmLarge = best(() => benchGemm({ m: 1024, n: 1024, k: 1024, repeat: 5, warmup: 2 }).gflops);

  return {
    bench: 'train-cpu',
    config: name,
    params: cost.params,
    gmacs_per_sample: round(cost.gmacs, 5),
    train_gflop_per_sample: round(flopsPerSample / 1e9, 5),
    batch_size: batchSize,
    precision,
    steps_timed: counted,
    samples_per_s: round((counted * batchSize) / wall, 1),
    compute_samples_per_s_median: round(batchSize / medianStep, 1),
    compute_samples_per_s_best: round(batchSize / bestStep, 1),
    step_time_s_median: round(medianStep, 4),
    step_time_s_best: round(bestStep, 4),
    data_time_s: round(dataSeconds / counted, 4),
    achieved_gflops_best: round(achievedBest),
    achieved_gflops_median: round(achievedMedian),
    gemm_gflops_at_model_shapes: round(gemmRepresentative),
    gemm_shapes: gemms.map((g) => ({ tower: g.tower, m: g.m, n: g.n, k: g.k, gflops: g.gflops })),
    share_of_gemm_at_model_shapes: round(achievedBest / gemmRepresentative, 3),
    gemm_gflops_1024: gemmLarge,
    share_of_gemm_1024: round(achievedBest / gemmLarge, 3),
    threads: native.numThreads(),
    gemm_kernel: native.gemmKernel(),
    cpu: os.cpus()[0]?.model.trim() ?? 'unknown',
    cores: os.availableParallelism(),
    loadavg: os.loadavg().map((x) => round(x)),
    date: new Date().toISOString(),
  };
}

async function main() {
  const { values } = parseArgs({
    options: {
      configs: { type: 'string' },
      'batch-size': { type: 'string' },
      steps: { type: 'string' },
      'warmup-steps': { type: 'string' },
      precision: { type: 'string' },
      rounds: { type: 'string' },
      save: { type: 'boolean' },
    },
  });
  const configs = (values.configs ?? 'tiny,small').split(',');
  const batchSize = Number(values['batch-size'] ?? 128);
  const steps = Number(values.steps ?? 10);
  const warmupSteps = Number(values['warmup-steps'] ?? 2);
  const precision = (values.precision ?? 'fp32') as 'fp32' | 'bf16';
  const rounds = Number(values.rounds ?? 3);
  const lines: string[] = [];
  for (const name of configs) {
    const line = JSON.stringify(await benchConfig(name, batchSize, steps, warmupSteps, precision, rounds));
    console.log(line);
    lines.push(line);
  }
  if (values.save) {
    const cpu = os.cpus()[0]?.model.trim() ?? 'unknown';
    const slug = `${cpu}-${os.availableParallelism()}c`.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
    const dir = join(dirname(fileURLToPath(import.meta.url)), 'results');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `train-cpu-${slug}.jsonl`);
    writeFileSync(file, lines.join('\n') + '\n');
    console.error(`saved ${file}`);
  }
}

await main();
