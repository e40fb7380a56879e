// The linear layers of a training step at the model's own shapes, against the standalone
// GEMMs they are made of: forward y = x·Wᵀ + b, input gradient dX = dY·W, weight gradient
// dW += dYᵀ·X (transposed A, K = rows of the batch), bias gradient db += Σ rows of dY.
// One JSON line per (config, layer, threads): GFLOP/s of each standalone GEMM, of
// linearForward and linearBackward (whole ops, bias included), and their ratio to the
// standalone GEMMs' combined rate (the issue's "linear layers at ≥ 90% of standalone GEMM").
//
//   node --import=tsx benchmarks/linear_shapes.ts [--configs tiny,small] [--batch-size 128] [--threads 1,2] [--repeat 30]
//
// Each figure is the minimum over `repeat` timed calls after warm-up (other processes
// only ever slow a call down); the median is kept beside it. Load average is recorded:
// this machine is shared, so read the medians with it.
import os from 'node:os';
import { parseArgs } from 'node:util';

import { native } from '../lib/native.js';
import { loadModelConfig } from '../lib/nn/config.js';
import * as ops from '../lib/ops.js';
import { Tensor } from '../lib/tensor.js';

interface Layer {
  name: string;
  m: number; // rows: batch × tokens
  k: number; // in features
  n: number; // out features
}

function layersOf(config: string, batch: number): Layer[] {
  const cfg = loadModelConfig(config);
  const v = cfg.vision_cfg, t = cfg.text_cfg;
  const vTokens = (v.image_size / v.patch_size) ** 2 + 1;
  const out: Layer[] = [];
  for (const [tower, m, w, ratio] of [
    ['vision', batch * vTokens, v.width, v.mlp_ratio],
    ['text', batch * t.context_length, t.width, t.mlp_ratio],
  ] as const) {
    const hidden = Math.round(w * ratio);
    out.push({ name: `${tower}.qkv`, m, k: w, n: 3 * w });
    out.push({ name: `${tower}.out_proj`, m, k: w, n: w });
    out.push({ name: `${tower}.c_fc`, m, k: w, n: hidden });
    out.push({ name: `${tower}.c_proj`, m, k: hidden, n: w });
  }
  return out;
}

function rand(shape: number[], seed: number): Tensor {
  let s = seed >>> 0;
  const n = shape.reduce((a, b) => a * b, 1);
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    d[i] = s / 2 ** 32 - 0.5;
  }
  return Tensor.from(d, shape);
}

function time(fn: () => void, repeat: number): { min: number; median: number } {
  for (let i = 0; i < 3; i++) fn();
  const ts: number[] = [];
  for (let i = 0; i < repeat; i++) {
    const t0 = performance.now();
    fn();
    ts.push(performance.now() - t0);
  }
  ts.sort((a, b) => a - b);
  return { min: ts[0], median: ts[Math.floor(ts.length / 2)] };
}

const r2 = (x: number) => Number(x.toFixed(2));

function bench(config: string, l: Layer, threads: number, repeat: number) {
  native.setNumThreads(threads);
  const x = rand([l.m, l.k], 1), w = rand([l.n, l.k], 2), b = rand([l.n], 3), dy = rand([l.m, l.n], 4);
  const y = Tensor.empty([l.m, l.n]), dx = Tensor.empty([l.m, l.k]), dw = Tensor.zeros([l.n, l.k]), db = Tensor.zeros([l.n]);
  const gf = (flops: number, ms: number) => r2(flops / (ms * 1e6));
  const f = 2 * l.m * l.n * l.k;
  const gemmFwd = time(() => ops.matmul(x, w, y, { transB: true }), repeat);
  const gemmDx = time(() => ops.matmul(dy, w, dx), repeat);
  const gemmDw = time(() => ops.matmul(dy, x, dw, { transA: true, beta: 1 }), repeat);
  const fwd = time(() => ops.linearForward(x, w, b, y), repeat);
  const bwd = time(() => ops.linearBackward(x, w, dy, { dx, dw, db, accumulate: true }), repeat);
  const line = {
    bench: 'linear-shapes', config, layer: l.name, m: l.m, k: l.k, n: l.n, threads,
    kernel: native.gemmKernel(),
    gflops_min_time: {
      gemm_forward: gf(f, gemmFwd.min), gemm_dx: gf(f, gemmDx.min), gemm_dw: gf(f, gemmDw.min),
      linear_forward: gf(f, fwd.min), linear_backward: gf(2 * f, bwd.min),
    },
    gflops_median_time: {
      gemm_forward: gf(f, gemmFwd.median), gemm_dx: gf(f, gemmDx.median), gemm_dw: gf(f, gemmDw.median),
      linear_forward: gf(f, fwd.median), linear_backward: gf(2 * f, bwd.median),
    },
    // Whole linear ops (bias included) against the GEMMs alone, by best times.
    forward_vs_gemm: r2(gemmFwd.min / fwd.min),
    backward_vs_gemms: r2((gemmDx.min + gemmDw.min) / bwd.min),
    loadavg: os.loadavg().map(r2),
  };
  for (const t of [x, w, b, dy, y, dx, dw, db]) t.dispose();
  return line;
}

const { values } = parseArgs({
  options: { configs: { type: 'string' }, 'batch-size': { type: 'string' }, threads: { type: 'string' }, repeat: { type: 'string' } },
});
const repeat = Number(values.repeat ?? 30);
const batch = Number(values['batch-size'] ?? 128);
const cpu = os.cpus()[0]?.model ?? 'unknown';
for (const config of (values.configs ?? 'tiny').split(',')) {
  for (const threads of (values.threads ?? '1,2').split(',').map(Number)) {
    for (const l of layersOf(config, batch)) {
      const line = bench(config, l, threads, repeat);
      console.log(JSON.stringify({ ...line, cpu }));
    }
  }
}
