// The linear layers inside a real training step against the standalone GEMMs at the same
// shapes (issue 17: "the linear layers in a `tiny` step at ≥ 90% of the standalone GEMM rate").
//
// A Trainer runs `steps` timed steps with native.linearForward / linearBackward wrapped by a
// timer that records each call's shape; then, for every shape seen, the GEMMs the op is made
// of (forward x·Wᵀ, input gradient dY·W, weight gradient dYᵀ·X) and the whole op are timed
// standalone (operands hot in cache) between the timed steps. One JSON line per
// (layer shape, direction), then a total line: in-step GFLOP/s ÷ standalone GEMM GFLOP/s.
//
//   node --import=tsx benchmarks/linear_in_step.ts [--config tiny] [--batch-size 128] [--steps 8] [--warm-steps 10]
//
// linearBackward skips the rows of dY that are all zero (a text tower's positions after each
// caption's end, a last block's rows but the pooled one; native/cpu/linear.cpp): a backward call's
// FLOPs are counted over the rows it multiplied (rows_multiplied), found here by scanning dY
// after the timed call with the same rule, and its rate is compared with the standalone GEMMs
// over whole random operands. Calls are keyed by their layer's K×N and their place among that
// K×N's calls in a step (#0 the first), since a tower's blocks keep different numbers of rows.
// The text tower trains on its captions' tokens packed end to end (lib/nn/text.ts), so its layers'
// M changes from batch to batch: each call is compared with the standalone GEMMs at its own M
// (timed after the step it ran in), and a key's figures are medians over its calls.
// CLIPSCALE_SKIP_ZERO_ROWS=0 multiplies every row (the dense figures); CLIPSCALE_PACK_TEXT=0 trains
// the text tower at full length (every M the same each step).
//
// The MLP's up-projection (c_fc) runs forward as native.linearActivationForward: its GEMM with the
// GELU in the GEMM's epilogue. Its calls are timed too (direction "forward+activation"), against the
// standalone GEMM alone and against the same fused op standalone (standalone_op, hot), since the
// GELU's share of the op (about a third at tiny's shapes) is not the GEMM's. They are left out of
// the total line's headline figures (the linearForward / linearBackward calls, as before) and
// counted in its `with_activation_forward` figures: all linear layers, each fused call against the
// fused op standalone, every other call against its GEMMs.
//
// Then `--warm-steps` more steps (default 10) repeat each linear call at once on the same operands
// (dW and db put back first, so training goes on unchanged) and time only the repeat: the op's rate
// with its operands where its own first run left them (in_step_warm). What separates it from the
// first run is where the step left the operands (L3 or DRAM rather than this core's L2); what
// separates it from the standalone GEMMs is the op itself.
//
// The machine this runs on may be shared: the load average is recorded on every line, and
// the standalone products are timed between the steps (interleaved), each a best of three
// calls, and the per-shape figures are medians over calls and rounds. `steps` steps are timed,
// every other one: the one after the standalone products runs untimed, so that a timed step
// follows a step, as in training, not the standalone products' sweep of the caches. The same GEMMs are also timed
// with cold operands (standalone_gemm_cold): what the product costs when, as in a step, its input
// and output are not in L2.
import os from 'node:os';
import { parseArgs } from 'node:util';

import { defaultSyntheticTokenizer } from '../lib/data/synthetic.js';
import { native } from '../lib/native.js';
import { loadModelConfig } from '../lib/nn/config.js';
import * as ops from '../lib/ops.js';
import { Tensor } from '../lib/tensor.js';
import { SyntheticData } from '../lib/train/sources.js';
import { Trainer } from '../lib/train/trainer.js';

interface Shape { m: number; k: number; n: number; dx: boolean }
type Direction = 'forward' | 'forward+activation' | 'backward';
// A key's calls, one entry each: time, FLOPs done (rows multiplied), rows, shape.
interface InStep { ms: number[]; flops: number[]; rows: number[]; shapes: Shape[]; place: number }

const { values } = parseArgs({
  options: { config: { type: 'string' }, 'batch-size': { type: 'string' }, steps: { type: 'string' }, 'warm-steps': { type: 'string' } },
});
const config = values.config ?? 'tiny';
// A whole-number option, or an error that names it (a stray value once surfaced as the Trainer's "samples … NaN").
function wholeOption(name: string, fallback: number, min: number): number {
  const value = (values as Record<string, string | undefined>)[name];
  const n = value === undefined ? fallback : Number(value);
  if (!Number.isInteger(n) || n < min) throw new Error(`linear_in_step: --${name} must be a whole number ≥ ${min}, got ${JSON.stringify(value)}`);
  return n;
}
const batchSize = wholeOption('batch-size', 128, 1);
const steps = wholeOption('steps', 8, 1);
const warmSteps = wholeOption('warm-steps', 10, 0);
const warmup = 2;

const r2 = (x: number) => Number(x.toFixed(2));
const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const load = () => os.loadavg().map(r2);

// ── in the step ──
const forward = new Map<string, InStep>();
const backward = new Map<string, InStep>();
const forwardActivation = new Map<string, InStep>();  // c_fc's linearActivationForward (GEMM + GELU)
let recording = false;
let repeating = false;  // a warm step: each call run twice, the repeat timed
const warm = new Map<string, { ms: number[]; flops: number[] }>();  // per direction:key, the repeats
const callsThisStep = new Map<string, number>();  // per direction and layer K×N: calls so far in this step
// The shapes called in this step: their standalone figures are timed after it (made then, not inside the step).
const seenThisStep = new Map<string, [Direction, Shape]>();
const skipZeroRows = process.env.CLIPSCALE_SKIP_ZERO_ROWS !== '0';
// The rows of dY [m, n] linearBackward multiplies: those not all ±0, when at least an eighth are
// zero (linear.cpp's rule), else all of them.
function rowsMultiplied(dy: Handle, m: number, n: number): number {
  if (!skipZeroRows) return m;
  const v = new Tensor(dy as never).view() as Float32Array;
  let nonzero = 0;
  for (let r = 0; r < m; r++) {
    for (let c = r * n, end = c + n; c < end; c++)
      if (v[c] !== 0 || Number.isNaN(v[c])) { nonzero++; break; }
  }
  return nonzero * 8 > m * 7 ? m : nonzero;
}
const binding = native as unknown as Record<string, (...a: unknown[]) => unknown>;
type Handle = { shape: number[] } | null;
// Each timed binding, the direction its calls are reported under, and where they are recorded.
const timedCalls = [
  ['linearForward', 'forward', forward],
  ['linearActivationForward', 'forward+activation', forwardActivation],
  ['linearBackward', 'backward', backward],
] as const;
for (const [name, direction, table] of timedCalls) {
  const original = binding[name];
  binding[name] = (...args: unknown[]) => {
    if (!recording && !repeating) return original(...args);
    const x = args[0] as Handle, w = args[1] as Handle;
    const dxWanted = name === 'linearBackward' && args[3] !== null && args[3] !== undefined;
    const shape: Shape = { m: numel(x!.shape) / x!.shape.at(-1)!, k: w!.shape[1], n: w!.shape[0], dx: dxWanted };
    const layerKey = `${shape.k}x${shape.n}${dxWanted ? '' : '-nodx'}${name === 'linearActivationForward' ? `-${String(args[5])}` : ''}`;
    const place = callsThisStep.get(`${name}:${layerKey}`) ?? 0;
    callsThisStep.set(`${name}:${layerKey}`, place + 1);
    const key = `${layerKey}#${place}`;
    if (repeating) {
      // The call, then dW and db as they were before it, then the timed repeat: the same results.
      const accumulated = name === 'linearBackward' ? [args[4], args[5]].filter((a): a is Handle => !!a).map((a) => new Tensor(a as never)) : [];
      const before = accumulated.map((t) => (t.view() as Float32Array).slice());
      original(...args);
      accumulated.forEach((t, i) => (t.view() as Float32Array).set(before[i]));
      const t0 = performance.now();
      const r = original(...args);
      const ms = performance.now() - t0;
      const rows = name === 'linearBackward' ? rowsMultiplied(args[2] as Handle, shape.m, shape.n) : shape.m;
      const e = warm.get(`${name}:${key}`) ?? { ms: [], flops: [] };
      e.ms.push(ms);
      e.flops.push((name === 'linearBackward' && dxWanted ? 2 : 1) * 2 * rows * shape.n * shape.k);
      warm.set(`${name}:${key}`, e);
      return r;
    }
    const t0 = performance.now();
    try {
      return original(...args);
    } finally {
      const ms = performance.now() - t0;
      // After the call (dY is not written), so the scan's time does not delay the call's start.
      const rows = name === 'linearBackward' ? rowsMultiplied(args[2] as Handle, shape.m, shape.n) : shape.m;
      const e = table.get(key) ?? { ms: [], flops: [], rows: [], shapes: [], place };
      e.ms.push(ms);
      e.rows.push(rows);
      e.shapes.push(shape);
      e.flops.push((name === 'linearBackward' && dxWanted ? 2 : 1) * 2 * rows * shape.n * shape.k);
      table.set(key, e);
      seenThisStep.set(standaloneId(direction, shape), [direction, shape]);
    }
  };
}

// ── standalone, same shapes: timed between the steps (interleaved, so both see the same load) ──
function rand(shape: number[], seed: number): Tensor {
  let s = seed >>> 0;
  const d = new Float32Array(numel(shape));
  for (let i = 0; i < d.length; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    d[i] = s / 2 ** 32 - 0.5;
  }
  return Tensor.from(d, shape);
}
// Best of three calls (after one warm call): what the product costs with its operands in cache.
function best(fn: () => void): number {
  fn();
  let b = Infinity;
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    fn();
    b = Math.min(b, performance.now() - t0);
  }
  return b;
}
// The same GEMMs with their operands out of cache, as inside a step (a tiny step touches ~40 MB, so
// a layer's input and output come from L3): each call on the next of enough operand sets to pass
// 16 MB, the median of a round's calls.
const coldBytes = 16 << 20;
function coldMedian(sets: number, fn: (i: number) => void): number {
  fn(0);
  const t: number[] = [];
  for (let i = 1; i <= 2 * sets; i++) {
    const t0 = performance.now();
    fn(i % sets);
    t.push(performance.now() - t0);
  }
  return t.sort((a, b) => a - b)[t.length >> 1];
}
// A shape's standalone figures over the rounds it was timed in; its operands are made for a round
// and kept while the steps keep calling that shape (the packed text tower's M changes every batch).
interface Standalone { gemm: number[]; gemmCold: number[]; op: number[]; run: () => void; release: () => void }
const standalone = new Map<string, Standalone>();
const standaloneId = (direction: Direction, s: Shape) => `${direction}:${s.m}x${s.k}x${s.n}${s.dx ? '' : '-nodx'}`;
function operandsFor(s: Shape) {
  const { m, k, n } = s;
  const x = rand([m, k], 1), w = rand([n, k], 2), b = rand([n], 3), dy = rand([m, n], 4);
  const y = Tensor.empty([m, n]), a = Tensor.empty([m, n]), dx = Tensor.empty([m, k]), dw = Tensor.zeros([n, k]), db = Tensor.zeros([n]);
  // Cold operand sets: the big operands (x, dy, and the output written) each a copy of its own.
  const sets = Math.max(2, Math.ceil(coldBytes / (4 * m * (2 * k + n))));
  const cold = Array.from({ length: sets }, (_, i) => ({ x: rand([m, k], 10 + i), dy: rand([m, n], 20 + i), y: Tensor.empty([m, n]), dx: Tensor.empty([m, k]) }));
  const dispose = () => {
    for (const t of [x, w, b, dy, y, a, dx, dw, db]) t.dispose();
    for (const c of cold) for (const t of Object.values(c)) t.dispose();
  };
  return { x, w, b, dy, y, a, dx, dw, db, sets, cold, dispose };
}
function standaloneFor(direction: Direction, s: Shape): Standalone {
  const id = standaloneId(direction, s);
  let e = standalone.get(id);
  if (e) return e;
  let o: ReturnType<typeof operandsFor> | null = null;
  const gemm: number[] = [], gemmCold: number[] = [], op: number[] = [];
  const run = () => {
    o ??= operandsFor(s);
    const { x, w, b, dy, y, a, dx, dw, db, sets, cold } = o;
    if (direction !== 'backward') {
      gemm.push(best(() => ops.matmul(x, w, y, { transB: true })));
      gemmCold.push(coldMedian(sets, (i) => ops.matmul(cold[i].x, w, cold[i].y, { transB: true })));
      op.push(best(() => direction === 'forward' ? ops.linearForward(x, w, b, y) : ops.linearActivationForward(x, w, b, y, a, 'gelu')));
      return;
    }
    gemm.push(best(() => ops.matmul(dy, x, dw, { transA: true, beta: 1 })) + (s.dx ? best(() => ops.matmul(dy, w, dx)) : 0));
    gemmCold.push(coldMedian(sets, (i) => {
      ops.matmul(cold[i].dy, cold[i].x, dw, { transA: true, beta: 1 });
      if (s.dx) ops.matmul(cold[i].dy, w, cold[i].dx);
    }));
    op.push(best(() => ops.linearBackward(x, w, dy, { dx: s.dx ? dx : null, dw, db, accumulate: true })));
  };
  e = { gemm, gemmCold, op, run, release: () => { o?.dispose(); o = null; } };
  standalone.set(id, e);
  return e;
}

const cfg = loadModelConfig(config);
const data = new SyntheticData({ size: 50_000, imageSize: cfg.vision_cfg.image_size, contextLength: cfg.text_cfg.context_length, tokenizer: defaultSyntheticTokenizer() });
const loadStart = load();
const stepMsList: number[] = [];
{
  // Every other step is timed: the standalone products timed after it sweep the caches (their cold
  // operand sets alone are 16 MB), so the step after them runs untimed, as a step after a step.
  const timed = (step: number) => step > warmup && step <= warmup + 2 * steps && (step - warmup) % 2 === 1;
  using trainer = new Trainer({ model: config, data, batchSize, samples: (warmup + 2 * steps + warmSteps) * batchSize, logEvery: 1, precision: 'fp32', lr: 5e-4 });
  for await (const r of trainer.run()) {
    recording = false;
    repeating = r.step >= warmup + 2 * steps;
    callsThisStep.clear();
    if (timed(r.step)) {
      stepMsList.push(r.step_time_s * 1000);
      for (const [direction, shape] of seenThisStep.values()) standaloneFor(direction, shape).run();
      for (const [id, sa] of standalone) if (!seenThisStep.has(id)) sa.release();
    }
    seenThisStep.clear();
    recording = timed(r.step + 1);
  }
  recording = false;
}

const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const min = (a: number[]) => Math.min(...a);
const cpu = os.cpus()[0]?.model ?? 'unknown';
const common = { bench: 'linear-in-step', config, batch_size: batchSize, steps, threads: native.numThreads(), kernel: native.gemmKernel(), cpu };
// Per step: in-step time by median call, standalone by median round (each round a best of 3).
let stepTotal = 0, stepBestTotal = 0, gemmTotal = 0, coldTotal = 0, opTotal = 0, flopTotal = 0, warmTotal = 0;
// Each key: its calls' median rate over the FLOPs they did (rows multiplied), the standalone
// figures of its whole shape; a step's times are FLOPs ÷ rate, summed.
let denseFlopTotal = 0;
// c_fc's fused forward calls, summed apart: in step, and standalone as the fused op (hot) and as
// its GEMM alone.
let activationStep = 0, activationOp = 0, activationGemm = 0, activationFlops = 0;
for (const [name, direction, table] of timedCalls) {
  for (const [key, e] of table) {
    const { k, n, dx } = e.shapes[0];
    const ms = e.shapes.map((s) => s.m);
    const denseOf = (i: number) => (direction === 'backward' && dx ? 2 : 1) * 2 * e.shapes[i].m * n * k;
    const flops = e.flops.reduce((a, b) => a + b, 0) / e.flops.length;  // per call, mean over the steps
    const denseFlops = e.shapes.reduce((a, _, i) => a + denseOf(i), 0) / e.shapes.length;
    const rates = e.ms.map((t, i) => e.flops[i] / (t * 1e6));
    const inStepRate = median(rates), inStepBestRate = Math.max(...rates);
    const inStep = flops / (inStepRate * 1e6), inStepBest = flops / (inStepBestRate * 1e6);
    // Each call's standalone GEMMs at its own shape, over the FLOPs the call did: the median of
    // their rates, and the time for this key's mean FLOPs at that rate.
    const sas = e.shapes.map((shape) => standalone.get(standaloneId(direction, shape))!);
    const standaloneRate = (pick: (sa: Standalone) => number) => median(sas.map((sa, i) => e.flops[i] / (pick(sa) * (e.flops[i] / denseOf(i)) * 1e6)));
    const atRate = (rate: number) => flops / (rate * 1e6);
    const gemm = atRate(standaloneRate((sa) => median(sa.gemm))), gemmCold = atRate(standaloneRate((sa) => median(sa.gemmCold)));
    const op = atRate(standaloneRate((sa) => median(sa.op))), gemmBest = atRate(standaloneRate((sa) => min(sa.gemm)));
    // The warm repeats of this key's calls (no warm steps: the first runs stand in).
    const repeats = warm.get(`${name}:${key}`);
    const warmRate = repeats ? median(repeats.ms.map((t, i) => repeats.flops[i] / (t * 1e6))) : inStepRate;
    const inStepWarm = flops / (warmRate * 1e6);
    if (direction === 'forward+activation') {
      activationStep += inStep; activationOp += op; activationGemm += gemm; activationFlops += flops;
    } else {
      warmTotal += inStepWarm;
      stepTotal += inStep; stepBestTotal += inStepBest; gemmTotal += gemm; coldTotal += gemmCold;
      opTotal += op; flopTotal += flops; denseFlopTotal += denseFlops;
    }
    const gf = (t: number) => r2(flops / (t * 1e6));
    console.log(JSON.stringify({
      ...common, direction, shape: key.split('#')[0], place: e.place, m: Math.min(...ms) === Math.max(...ms) ? ms[0] : { min: Math.min(...ms), max: Math.max(...ms) }, k, n, calls_per_step: e.ms.length / steps,
      rows_multiplied: r2(e.rows.reduce((a, b) => a + b, 0) / e.rows.length),
      gflops: { in_step_median: r2(inStepRate), in_step_best: r2(inStepBestRate), in_step_warm: r2(warmRate), standalone_gemm: gf(gemm), standalone_gemm_best: gf(gemmBest), standalone_gemm_cold: gf(gemmCold), standalone_op: gf(op) },
      in_step_vs_standalone_gemm: r2(gemm / inStep), in_step_warm_vs_standalone_gemm: r2(gemm / inStepWarm), in_step_best_vs_standalone_gemm_best: r2(gemmBest / inStepBest),
      in_step_vs_standalone_gemm_cold: r2(gemmCold / inStep),
      ...(direction === 'forward+activation' ? { in_step_vs_standalone_op: r2(op / inStep) } : {}),
      loadavg: load(),
    }));
  }
}
for (const e of standalone.values()) e.release();
console.log(JSON.stringify({
  ...common, direction: 'total', skip_zero_rows: skipZeroRows, pack_text: process.env.CLIPSCALE_PACK_TEXT !== '0', step_ms_median: r2(median(stepMsList)), linear_ms_per_step: r2(stepTotal),
  flops_multiplied_vs_dense: r2(flopTotal / denseFlopTotal),
  warm_steps: warmSteps,
  gflops: { in_step: r2(flopTotal / (stepTotal * 1e6)), in_step_best_calls: r2(flopTotal / (stepBestTotal * 1e6)), in_step_warm: r2(flopTotal / (warmTotal * 1e6)), standalone_gemm: r2(flopTotal / (gemmTotal * 1e6)), standalone_gemm_cold: r2(flopTotal / (coldTotal * 1e6)), standalone_op: r2(flopTotal / (opTotal * 1e6)) },
  in_step_vs_standalone_gemm: r2(gemmTotal / stepTotal), in_step_warm_vs_standalone_gemm: r2(gemmTotal / warmTotal), in_step_vs_standalone_gemm_cold: r2(coldTotal / stepTotal), standalone_op_vs_gemm: r2(gemmTotal / opTotal),
  // Every linear layer, c_fc's fused forward included: against the fused op standalone (GEMM +
  // GELU, like for like) and against its GEMM alone (the GELU then counts as the layer's loss).
  with_activation_forward: {
    activation_forward_ms_per_step: r2(activationStep),
    in_step_vs_standalone: r2((gemmTotal + activationOp) / (stepTotal + activationStep)),
    in_step_vs_standalone_gemm: r2((gemmTotal + activationGemm) / (stepTotal + activationStep)),
    activation_forward_gflops: { in_step: r2(activationFlops / (activationStep * 1e6)), standalone_op: r2(activationFlops / (activationOp * 1e6)), standalone_gemm: r2(activationFlops / (activationGemm * 1e6)) },
  },
  loadavg_start: loadStart, loadavg: load(),
}));
