// clipscale against PyTorch + open_clip on the same CPU cores, the same model (open_clip's CLIP
// built from our config file), the same weights and the same batch (written here as safetensors
// and loaded by benchmarks/cpu_side_by_side.py), fp32, the same thread count on both sides.
//
//   node --import=tsx benchmarks/cpu_side_by_side.ts [--train micro,tiny,small ('' for none)] [--batch-sizes 64,128]
//        [--infer tiny,ViT-B-32] [--infer-batch 8] [--torch-modes eager,compile] [--threads 2]
//        [--rounds 3] [--warmup 2] [--steps 10] [--infer-warmup-s 1] [--infer-steps 50] [--precision fp32|bf16] [--save]
//
// --precision bf16: clipscale's bf16 mode (bf16 matrix products with fp32 accumulation: on the
// AVX-512 BF16 kernel where the CPU has it, else emulated) against PyTorch's torch.autocast('cpu',
// bfloat16) (OpenCLIP's amp_bf16). Both round differently (autocast keeps layernorm, softmax and
// the loss in fp32 and stores matmul outputs as bf16), so losses agree to bf16 rounding, not fp32's.
//
// Training: warm-up steps then timed steps (forward, CLIP loss, backward, AdamW with OpenCLIP's
// decay groups, logit-scale clamp) on one fixed batch, from the same initial weights on both
// sides; the losses of every step are compared (they must agree to fp32 rounding). PyTorch runs
// eager (default AdamW), `eager-passive` (the same with OMP_WAIT_POLICY=PASSIVE: threads sleep
// between ops rather than spin) and, with `compile`, torch.compile + fused AdamW. Inference: image and
// text encoding of one batch; PyTorch under inference_mode, clipscale in its inference mode
// (model.inference(): nothing kept for backward, text rows run only up to their end token, the
// last blocks only on the pooled rows, weights packed once for the GEMM); each side warms up for at least --warmup
// encodes and --infer-warmup-s seconds, then times --infer-steps encodes: an encode of tiny takes
// a millisecond, and a fresh process's first ~100 ms run several times slower on both sides
// (thread start-up and placement), which two warm-up encodes left inside the timed ones.
//
// Rounds are interleaved A/B (clipscale first in even rounds, PyTorch first in odd ones) so both
// sides see the same machine. Each side's figure pools every timed step of every round: the
// median and the minimum are both reported. Load average is recorded before and after each
// case, and PyTorch's thread settings (threads, OpenMP wait policy env) with it: on a shared
// machine read the medians with the load beside them. --save appends the JSON lines to
// benchmarks/results/cpu-side-by-side-<cpu>-<cores>c.jsonl.
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { native } from '../lib/native.js';
import { ClipLoss } from '../lib/loss/contrastive.js';
import { MAX_LOGIT_SCALE, createModel, type CLIP } from '../lib/nn/clip.js';
import { AdamW } from '../lib/optim/adamw.js';
import { Tensor } from '../lib/tensor.js';
import { writeSafetensors } from '../lib/train/safetensors.js';
import { StepRunner } from '../lib/train/step.js';
import { Rng } from '../lib/util/rng.js';

const here = dirname(fileURLToPath(import.meta.url));
const configDir = join(here, '..', 'lib', 'configs', 'models');
const round = (x: number, d = 2) => Number(x.toFixed(d));
const loadavg = () => os.loadavg().map((x) => round(x));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

interface HostBatch {
  images: Float32Array;
  ids: Int32Array;
  imageShape: number[];
  idsShape: number[];
}

/** Normal pixels and token rows whose end-of-text token (vocab − 1) is each row's unique maximum. */
function makeBatch(model: CLIP, batch: number, seed: number): HostBatch {
  const rng = new Rng(seed);
  const s = model.config.vision_cfg.image_size;
  const { context_length: ctx, vocab_size: vocab } = model.config.text_cfg;
  const images = new Float32Array(batch * 3 * s * s);
  for (let i = 0; i < images.length; i++) images[i] = rng.normal();
  const ids = new Int32Array(batch * ctx);
  for (let b = 0; b < batch; b++) {
    const len = 2 + rng.int(ctx - 1); // 2..ctx tokens including start and end
    ids[b * ctx] = vocab - 2;
    for (let j = 1; j < len - 1; j++) ids[b * ctx + j] = 1 + rng.int(vocab - 3);
    ids[b * ctx + len - 1] = vocab - 1;
  }
  return { images, ids, imageShape: [batch, 3, s, s], idsShape: [batch, ctx] };
}

async function writeInputs(dir: string, model: CLIP, host: HostBatch) {
  const weights = join(dir, 'weights.safetensors');
  const batch = join(dir, 'batch.safetensors');
  const state = new Map([...model.stateDict()].map(([name, t]) => [name, { dtype: 'F32' as const, shape: t.shape, data: t.data }]));
  await writeSafetensors(weights, state);
  await writeSafetensors(batch, {
    images: { dtype: 'F32', shape: host.imageShape, data: host.images },
    ids: { dtype: 'I32', shape: host.idsShape, data: host.ids },
  });
  return { weights, batch };
}

interface SideRun {
  step_times_s: number[];
  losses?: number[];
  image_features?: number[];
  text_features?: number[];
  [k: string]: unknown;
}

/** One clipscale training run from the initial weights: warm-up + timed steps. */
/** Runs `fn` with the bf16 mode on (precision bf16) or off, putting the previous mode back. */
function inPrecision<T>(precision: string, fn: () => T): T {
  const was = native.bf16Emulation();
  native.setBf16Emulation(precision === 'bf16');
  try {
    return fn();
  } finally {
    native.setBf16Emulation(was);
  }
}

function clipscaleTrain(config: string, seed: number, host: HostBatch, warmup: number, steps: number): SideRun {
  using model = createModel(config, { seed });
  using images = Tensor.from(host.images, host.imageShape);
  using ids = Tensor.from(host.ids, host.idsShape, 'i32');
  using runner = new StepRunner(model);
  using opt = new AdamW(model.parameters(), { lr: 5e-4, beta1: 0.9, beta2: 0.98, eps: 1e-6, weightDecay: 0.2 });
  const logitScale = model.logitScale.values();
  const times: number[] = [];
  const losses: number[] = [];
  for (let i = 0; i < warmup + steps; i++) {
    const t0 = performance.now();
    if (!opt.zeroGrad()) model.zeroGrad(); // flat CPU gradients: one fill (as the Trainer)
    const loss = runner.forwardBackward([{ images, ids }]);
    opt.update(5e-4);
    logitScale[0] = Math.min(Math.max(logitScale[0], 0), MAX_LOGIT_SCALE);
    const t1 = performance.now();
    losses.push(loss);
    if (i >= warmup) times.push((t1 - t0) / 1000);
  }
  return { step_times_s: times, losses };
}

/** Image + text encoding of one batch, `steps` times after warm-up (at least `warmup` encodes and `warmupSeconds`). */
function clipscaleInfer(config: string, seed: number, host: HostBatch, warmup: number, steps: number, warmupSeconds: number): SideRun {
  using model = createModel(config, { seed });
  using images = Tensor.from(host.images, host.imageShape);
  using ids = Tensor.from(host.ids, host.idsShape, 'i32');
  // Inference mode: no activations kept for backward, one buffer set (as torch.inference_mode).
  using _inference = model.inference();
  const times: number[] = [];
  let fi: Float32Array = new Float32Array(0), ft: Float32Array = new Float32Array(0);
  // Warm-up: at least `warmup` encodes and `warmupSeconds` (as the PyTorch side does).
  const warmUntil = performance.now() + warmupSeconds * 1000;
  let warm = 0;
  for (; warm < warmup || performance.now() < warmUntil; warm++) {
    model.encodeImage(images);
    model.encodeText(ids);
  }
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    const a = model.encodeImage(images);
    const b = model.encodeText(ids);
    const t1 = performance.now();
    times.push((t1 - t0) / 1000);
    fi = a.view() as Float32Array;
    ft = b.view() as Float32Array;
  }
  return { step_times_s: times, warmup_encodes: warm, image_features: [...fi.subarray(0, 64)], text_features: [...ft.subarray(0, 64)] };
}

function torchRun(what: 'train' | 'infer', config: string, files: { weights: string; batch: string }, mode: string, threads: number, warmup: number, steps: number, warmupSeconds = 0, precision = 'fp32'): SideRun {
  const out = execFileSync(
    'python3',
    [join(here, 'cpu_side_by_side.py'), what, '--config', join(configDir, `${config}.json`), '--weights', files.weights, '--batch', files.batch,
      '--warmup', String(warmup), '--steps', String(steps), '--warmup-s', String(warmupSeconds), '--threads', String(threads), '--mode', mode === 'eager-passive' ? 'eager' : mode, '--precision', precision],
    {
      encoding: 'utf8',
      maxBuffer: 1 << 24,
      // eager-passive: eager with OpenMP's threads sleeping between ops instead of spinning
      // (PyTorch's default spins, which collapses on a loaded machine).
      env: {
        ...process.env, OMP_NUM_THREADS: String(threads), MKL_NUM_THREADS: String(threads),
        ...(mode === 'eager-passive' ? { OMP_WAIT_POLICY: 'PASSIVE' } : {}),
      },
    },
  );
  return JSON.parse(out.trim().split('\n').pop()!) as SideRun;
}

function summary(runs: SideRun[], batch: number) {
  const all = runs.flatMap((r) => r.step_times_s);
  const med = median(all), min = Math.min(...all);
  return {
    samples_per_s_median: round(batch / med, 1),
    samples_per_s_best: round(batch / min, 1),
    step_ms_median: round(med * 1000, 2),
    step_ms_min: round(min * 1000, 2),
    round_medians_ms: runs.map((r) => round(median(r.step_times_s) * 1000, 2)),
    steps_timed: all.length,
  };
}

const maxRelDiff = (a: number[], b: number[]) => Math.max(...a.map((x, i) => Math.abs(x - b[i]) / Math.max(1e-12, Math.abs(b[i]))));

async function sideBySide(what: 'train' | 'infer', config: string, batch: number, o: Options) {
  const seed = 7;
  const dir = mkdtempSync(join(os.tmpdir(), 'clipscale-sbs-'));
  try {
    // The initial weights both sides start from: clipscale's initialisation from `seed`.
    const { host, files } = await (async () => {
      using model = createModel(config, { seed });
      const host = makeBatch(model, batch, seed + 1);
      return { host, files: await writeInputs(dir, model, host) };
    })();
    const modes = what === 'train' ? o.torchModes : ['eager'];
    const ours: SideRun[] = [];
    const theirs = new Map<string, SideRun[]>(modes.map((m) => [m, []]));
    const loadBefore = loadavg();
    const torchInfo: Record<string, unknown> = {};
    for (let r = 0; r < o.rounds; r++) {
      const runOurs = () =>
        ours.push(inPrecision(o.precision, () => what === 'train' ? clipscaleTrain(config, seed, host, o.warmup, o.steps) : clipscaleInfer(config, seed, host, o.warmup, o.inferSteps, o.inferWarmupSeconds)));
      const runTorch = () => {
        for (const m of modes) {
          const res = what === 'train' ? torchRun(what, config, files, m, o.threads, o.warmup, o.steps, 0, o.precision) : torchRun(what, config, files, m, o.threads, o.warmup, o.inferSteps, o.inferWarmupSeconds, o.precision);
          theirs.get(m)!.push(res);
          torchInfo[m] = { torch: res.torch, open_clip: res.open_clip, threads: res.threads, precision: res.precision, mkldnn_bf16_supported: res.mkldnn_bf16_supported };
        }
      };
      if (r % 2 === 0) {
        runOurs();
        runTorch();
      } else {
        runTorch();
        runOurs();
      }
    }
    const line: Record<string, unknown> = {
      bench: 'cpu-side-by-side', what, config, batch_size: batch, threads: o.threads, precision: o.precision, rounds: o.rounds,
      warmup_steps: o.warmup, timed_steps_per_round: what === 'train' ? o.steps : o.inferSteps,
      ...(what === 'infer' ? { infer_warmup_s: o.inferWarmupSeconds } : {}),
      clipscale: summary(ours, batch),
    };
    const ourMed = median(ours.flatMap((r) => r.step_times_s));
    const ourMin = Math.min(...ours.flatMap((r) => r.step_times_s));
    for (const m of modes) {
      const runs = theirs.get(m)!;
      const key = what === 'train' ? `torch_${m.replace('-', '_')}` : 'torch_inference_mode';
      line[key] = summary(runs, batch);
      const all = runs.flatMap((r) => r.step_times_s);
      line[`speedup_vs_${key}_median`] = round(median(all) / ourMed, 3);
      line[`speedup_vs_${key}_best`] = round(Math.min(...all) / ourMin, 3);
      if (what === 'train') {
        // Same weights, same batch, same recipe: every step's loss agrees to fp32 rounding (bf16: to
        // bf16 rounding, each side rounding where its own scheme does).
        const a = ours[0].losses!, b = runs[0].losses!;
        line[`loss_after_${key}`] = { clipscale: a[a.length - 1], torch: b[b.length - 1], max_rel_diff_over_steps: Number(maxRelDiff(a, b).toExponential(2)) };
        if (m === 'compile') line.torch_compile_first_step_s = round(runs[0].first_step_s as number, 1);
      } else {
        const rel = Math.max(maxRelDiff(ours[0].image_features!, runs[0].image_features!), maxRelDiff(ours[0].text_features!, runs[0].text_features!));
        line.features_max_rel_diff = Number(rel.toExponential(2));
      }
    }
    if (what === 'infer') {
      // Text rows are 2..context_length tokens (uniform), then padding: open_clip computes every
      // position; clipscale runs each row up to its end token (the causal mask makes the rest
      // irrelevant to the pooled features), and both towers' last block only the pooled rows.
      const ctx = host.idsShape[1];
      let tokens = 0;
      for (let b = 0; b < batch; b++) tokens += host.ids.subarray(b * ctx, (b + 1) * ctx).indexOf(Math.max(...host.ids.subarray(b * ctx, (b + 1) * ctx))) + 1;
      line.text_tokens = { to_end_tokens: tokens, positions: batch * ctx };
      line.clipscale_note = 'inference mode (model.inference()): text rows packed up to their end token, last blocks on the pooled rows only, ' +
        (o.precision === 'bf16' ? 'bf16 products (weights converted per call)' : 'linear weights prepacked for the GEMM');
    }
    Object.assign(line, {
      loadavg_before: loadBefore, loadavg_after: loadavg(), torch_settings: torchInfo,
      clipscale_threads: native.numThreads(), gemm_kernel: native.gemmKernel(),
      ...(o.precision === 'bf16' ? { clipscale_bf16: native.cpuBf16Support() } : {}),
      cpu: os.cpus()[0]?.model.trim() ?? 'unknown', cores: os.availableParallelism(), date: new Date().toISOString(),
    });
    return line;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Options {
  rounds: number;
  warmup: number;
  steps: number;
  /** Inference only: warm up for at least this long too (steps keep training's losses comparable). */
  inferWarmupSeconds: number;
  inferSteps: number;
  threads: number;
  torchModes: string[];
  precision: 'fp32' | 'bf16';
}

const { values } = parseArgs({
  options: {
    train: { type: 'string' }, 'batch-sizes': { type: 'string' }, infer: { type: 'string' }, 'infer-batch': { type: 'string' },
    'torch-modes': { type: 'string' }, threads: { type: 'string' }, rounds: { type: 'string' }, warmup: { type: 'string' },
    steps: { type: 'string' }, 'infer-warmup-s': { type: 'string' }, 'infer-steps': { type: 'string' }, save: { type: 'boolean' },
    precision: { type: 'string' },
  },
});
const list = (s: string | undefined, d: string) => (s ?? d).split(',').filter(Boolean);
const o: Options = {
  rounds: Number(values.rounds ?? 3), warmup: Number(values.warmup ?? 2), steps: Number(values.steps ?? 10),
  inferWarmupSeconds: Number(values['infer-warmup-s'] ?? 1), inferSteps: Number(values['infer-steps'] ?? 50),
  threads: Number(values.threads ?? 2), torchModes: list(values['torch-modes'], 'eager,compile'),
  precision: (values.precision ?? 'fp32') as 'fp32' | 'bf16',
};
if (o.precision !== 'fp32' && o.precision !== 'bf16') throw new Error(`--precision must be fp32 or bf16, got ${values.precision}`);
if (!(Number.isInteger(o.inferSteps) && o.inferSteps > 0)) throw new Error(`--infer-steps must be a positive integer, got ${values['infer-steps']}`);
if (!(Number.isFinite(o.inferWarmupSeconds) && o.inferWarmupSeconds >= 0)) throw new Error(`--infer-warmup-s must be a number of seconds ≥ 0, got ${values['infer-warmup-s']}`);
native.setNumThreads(o.threads);
// --save appends each line as it comes (a long run keeps what it measured if stopped).
const resultsFile = (() => {
  const cpu = os.cpus()[0]?.model.trim() ?? 'unknown';
  const slug = `${cpu}-${os.availableParallelism()}c`.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
  return join(here, 'results', `cpu-side-by-side-${slug}.jsonl`);
})();
if (values.save) mkdirSync(dirname(resultsFile), { recursive: true });
const emit = (l: Record<string, unknown>) => {
  const s = JSON.stringify(l);
  console.log(s);
  if (values.save) appendFileSync(resultsFile, s + '\n');
};
for (const config of list(values.train, 'micro,tiny,small'))
  for (const batch of list(values['batch-sizes'], '64,128').map(Number)) emit(await sideBySide('train', config, batch, o));
for (const config of list(values.infer, 'tiny,ViT-B-32')) emit(await sideBySide('infer', config, Number(values['infer-batch'] ?? 8), o));
if (values.save) console.error(`appended to ${resultsFile}`);
