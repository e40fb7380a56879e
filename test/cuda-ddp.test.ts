// Data-parallel training on device buffers: 2 ranks (separate processes started by `clipscale
// launch --nproc 2`) on CUDA with the NCCL communicator — on the emulated device, its stand-in
// (native/cuda/nccl_standin.h) — give the same weights after 2 steps as 1 process with the
// global batch on the device, within bf16 bounds, for the CLIP loss (gather-with-grad) and
// SigLIP, and with accumFreq 2; fp16 loss scaling skips the same steps on both ranks; gradient
// buckets are all-reduced while backward runs. Also `clipscale launch --nproc 2
// train --device cuda`.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';

import { ncclBlockers } from '../lib/distributed/create.js';
import { createInProcessGroup } from '../lib/distributed/in_process_communicator.js';
import { SyntheticData } from '../lib/train/sources.js';
import { Trainer } from '../lib/train/trainer.js';
import { NCCL_SHARED_GPU_MIN_VERSION, ncclSupport } from '../lib/distributed/nccl_communicator.js';
import { defaultSyntheticTokenizer } from '../lib/data/synthetic.js';
import { collect, repoRoot } from './_fixtures/dist-spawn.js';
import { countCudaTests, cudaStatus, cudaDeviceKind, noGpuReason } from './_helpers/cuda.js';

const ran = countCudaTests(test, 'cuda-ddp.test.ts');
const blockers = noGpuReason === null ? ncclBlockers(0) : [noGpuReason];
// Two ranks on a machine with one GPU share it: NCCL ≥ 2.30 (the emulated device's stand-in, one "GPU" per process, always can).
const nccl = ncclSupport();
if (blockers.length === 0 && !cudaStatus.emulated && cudaStatus.deviceCount < 2 && (nccl.version ?? 0) < NCCL_SHARED_GPU_MIN_VERSION) {
  blockers.push(`one GPU here, and NCCL ${nccl.versionString} < 2.30 cannot put 2 ranks on it`);
}
const ddpTest = blockers.length === 0 ? test.serial : test.serial.skip;
const title = (s: string) => (blockers.length === 0 ? `${s} (${cudaDeviceKind})` : `${s} (skipped: ${blockers.join('; ')})`);

const fixture = join(repoRoot, 'test', '_fixtures', 'ddp-train-cuda.ts');
const main = join(repoRoot, 'lib', 'cli', 'main.ts');
const dir = mkdtempSync(join(tmpdir(), 'clipscale-cuda-ddp-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));
// Both ranks use cuda:0 on a machine with one GPU (NCCL ≥ 2.30 shares it; the emulated device is one per process).
const env = { ...process.env, CLIPSCALE_NUM_THREADS: '1', NCCL_MULTI_RANK_GPU_ENABLE: '1', CLIPSCALE_DIST_TIMEOUT_S: '60', ...(cudaStatus.emulated ? { CLIPSCALE_CUDA: 'emulate' } : {}) };

interface RunResult {
  world: number;
  device: string;
  losses: number[];
  weights: Record<string, number[]>;
  launches: { bucket: number; event: string; bytes: number }[];
  buckets: number[];
  scales: number[];
  skipped: number[];
  finalScale: number | null;
  /** Rank 1's result, in a 2-rank run. */
  rank1?: RunResult;
}

// Runs are deterministic: one with the same arguments is made once per file.
const runs = new Map<string, Promise<RunResult>>();
function run(args: string[], launch: boolean): Promise<RunResult> {
  const key = `${launch}:${args.join(' ')}`;
  if (!runs.has(key)) runs.set(key, runOnce(args, launch));
  return runs.get(key)!;
}

async function runOnce(args: string[], launch: boolean): Promise<RunResult> {
  const out = join(dir, `${args.join('-').replace(/[^\w.-]/g, '_')}-${launch ? 2 : 1}.json`);
  const argv = launch ? ['--import=tsx', main, 'launch', '--nproc', '2', fixture, out, ...args] : ['--import=tsx', fixture, out, ...args];
  const r = await collect(spawn(process.execPath, argv, { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] }));
  if (r.code !== 0) throw new Error(`run failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
  const result = JSON.parse(readFileSync(out, 'utf8')) as RunResult;
  if (launch) result.rank1 = JSON.parse(readFileSync(`${out}.rank1.json`, 'utf8')) as RunResult;
  return result;
}

/** ‖θ_a − θ_b‖ / ‖θ_a‖ over the whole model. */
function weightDiff(a: RunResult, b: RunResult): number {
  let num = 0;
  let den = 0;
  for (const [name, w] of Object.entries(a.weights)) {
    const v = b.weights[name];
    for (let i = 0; i < w.length; i++) {
      num += (w[i] - v[i]) ** 2;
      den += w[i] ** 2;
    }
  }
  return Math.sqrt(num / den);
}

const cudaTest = noGpuReason === null ? test.serial : test.serial.skip;
cudaTest('data parallel on CUDA with a communicator of CPU buffers is refused, saying what it needs', (t) => {
  ran();
  const [c0] = createInProcessGroup(2);
  const data = new SyntheticData({ size: 40, imageSize: 32, contextLength: 32 });
  t.throws(() => new Trainer({ model: 'micro', data, batchSize: 4, samples: 8, device: 'cuda', comm: c0 }), {
    message: /^Trainer: data-parallel training on cuda:0 needs a communicator for tensors on cuda:0 \(NCCL: createCommunicator\(\{ device: 'cuda:0' \}\)\), got the in-process communicator \(CPU buffers\)/,
  });
});

for (const loss of ['clip', 'siglip'] as const) {
  ddpTest(title(`${loss}: 2 ranks on CUDA (NCCL, launch --nproc 2) train as 1 process with the global batch; buckets all-reduced during backward`), async (t) => {
    ran();
    // 2 KB buckets, so the micro model's gradients make many, launched block by block.
    const [one, two] = [await run(['16', loss, '0.002'], false), await run(['16', loss, '0.002'], true)];
    t.is(one.world, 1);
    t.is(two.world, 2);
    t.is(two.device, 'cuda:0');
    const rel = weightDiff(one, two);
    t.log(`losses 1 process ${one.losses.map((l) => l.toFixed(6)).join(', ')}; 2 ranks ${two.losses.map((l) => l.toFixed(6)).join(', ')}; weights after 2 steps differ by ${rel.toExponential(2)} (relative)`);
    t.log(`${two.buckets.length} buckets (${two.buckets.join(', ')} bytes), launched at: ${two.launches.map((l) => l.event).join(', ')}`);
    t.is(two.losses.length, 2);
    two.losses.forEach((l, i) => t.true(Math.abs(l - one.losses[i]) <= 1e-4 * Math.abs(one.losses[i]), `step ${i + 1}: loss ${l} vs ${one.losses[i]}`));
    // Measured 1.1e-4 (CLIP: each rank's bf16 products over half the batch) and 6e-7 (SigLIP);
    // dropping the other ranks' terms of the image-feature gradients (no gather-with-grad) gives 8.5e-3.
    t.true(rel <= 1e-3, `weights differ by ${rel}`);
    // Every bucket once, in order; all but the text tower's last ones launched before backward ended.
    t.deepEqual(two.launches.map((l) => l.bucket), two.buckets.map((_, i) => i));
    const duringBackward = two.launches.filter((l) => l.event.includes('.block') || l.event === 'visual').length;
    t.true(two.buckets.length >= 8 && duringBackward >= two.buckets.length / 2, `${duringBackward} of ${two.buckets.length} buckets launched during backward`);
  });
}

ddpTest(title('2 ranks × accumFreq 2 on CUDA train as 1 process with the global batch in one piece (OpenCLIP accum_freq: cached features, recomputed micro-batches)'), async (t) => {
  ran();
  // Global batch 16: each rank 8 samples a step in 2 micro-batches of 4.
  const [one, two] = [await run(['16', 'clip', '0.002'], false), await run(['16', 'clip', '0.002', '2'], true)];
  t.is(two.world, 2);
  const rel = weightDiff(one, two);
  t.log(`losses 1 process ${one.losses.map((l) => l.toFixed(6)).join(', ')}; 2 ranks × accumFreq 2 ${two.losses.map((l) => l.toFixed(6)).join(', ')}; weights after 2 steps differ by ${rel.toExponential(2)} (relative)`);
  t.is(two.losses.length, 2);
  two.losses.forEach((l, i) => t.true(Math.abs(l - one.losses[i]) <= 1e-4 * Math.abs(one.losses[i]), `step ${i + 1}: loss ${l} vs ${one.losses[i]}`));
  t.true(rel <= 1e-3, `weights differ by ${rel}`);
  // Every bucket launched once, in order, all during the last micro-batch's backward or after.
  t.deepEqual(two.launches.map((l) => l.bucket), two.buckets.map((_, i) => i));
});

ddpTest(title('fp16 with dynamic loss scaling on 2 ranks: real fp16 overflows skip the same steps on both ranks; scales and weights stay identical'), async (t) => {
  ran();
  // fp16 gradients scaled by 2^17 overflow (fp16's largest value is 65504); the scale halves per
  // skip until they fit, then grows after 2 good steps (the single-process test's run, on 2 ranks).
  const two = await run(['16', 'clip', '25', '1', 'fp16', JSON.stringify({ initScale: 2 ** 17, growthInterval: 2 }), '4'], true);
  const r1 = two.rank1!;
  t.log(`rank 0: skipped ${two.skipped.join(', ')}, scale ${two.scales.map((s) => `2^${Math.log2(s)}`).join(', ')}; losses ${two.losses.map((l) => l.toFixed(5)).join(', ')}`);
  t.log(`rank 1: skipped ${r1.skipped.join(', ')}, scale ${r1.scales.map((s) => `2^${Math.log2(s)}`).join(', ')}`);
  t.deepEqual(r1.skipped, two.skipped, 'the same steps skipped on both ranks');
  t.deepEqual(r1.scales, two.scales, 'the same scale after every step');
  t.is(r1.finalScale, two.finalScale);
  t.true(two.skipped[0] === 1, 'step 1 overflowed');
  t.true(two.skipped.at(-1)! < two.skipped.length, 'and training recovered');
  t.true(two.losses.every(Number.isFinite));
  // Bit for bit: skipped steps left both ranks' weights untouched, applied ones updated both alike.
  let differ = 0;
  for (const [name, w] of Object.entries(two.weights)) differ += w.filter((v, i) => !Object.is(v, r1.weights[name][i])).length;
  t.is(differ, 0, `${differ} weights differ between the ranks`);
});

ddpTest(title('clipscale launch --nproc 2 train --device cuda: data parallel on the device through the CLI'), async (t) => {
  ran();
  const config = join(dir, 'micro.json');
  writeFileSync(config, JSON.stringify({
    embed_dim: 16,
    vision_cfg: { image_size: 16, layers: 1, width: 16, head_width: 8, patch_size: 8 },
    text_cfg: { context_length: 16, vocab_size: defaultSyntheticTokenizer().vocabSize, width: 16, heads: 2, layers: 1 },
  }));
  const out = join(dir, 'cli');
  const r = await collect(spawn(process.execPath, ['--import=tsx', main, 'launch', '--nproc', '2', 'train', '--model', config, '--data', 'synthetic:size=64', '--batch-size', '4', '--samples', '16', '--device', 'cuda', '--out', out], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] }));
  t.is(r.code, 0, `${r.stdout}\n${r.stderr}`);
  const log = readFileSync(join(out, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const steps = log.filter((l) => typeof l.loss === 'number');
  t.log(`losses ${steps.map((l) => (l.loss as number).toFixed(4)).join(', ')}`);
  t.is(steps.at(-1)!.step, 2, 'global batch 8: 16 samples in 2 steps');
  t.true(steps.every((l) => Number.isFinite(l.loss)));
});
