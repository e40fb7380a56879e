// Steps that read nothing back from the device: each step's loss and gradient norm stay on
// the GPU, AdamW applies the update only when both are finite (a skip flag decided there),
// clipping scales by the norm there, and the Trainer reads step N's outcome after launching
// step N + 1. Checked against the same Trainer reading every step (deferOutcomes: false):
// bit for bit. Without a GPU these run on the emulated device (tiny sizes).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';

import { countCudaTests, cudaDeviceKind, noGpuReason, sameOnDevice } from './_helpers/cuda.js';
import { native } from '../lib/native.js';
import * as ops from '../lib/ops.js';
import { Tensor } from '../lib/tensor.js';
import { DeviceBatches } from '../lib/train/device_placement.js';
import { findLatestCheckpoint, loadTrainingCheckpoint } from '../lib/train/checkpoint.js';
import type { TrainLogRecord } from '../lib/train/logging.js';
import { type HostBatch, SyntheticData, type TrainingData } from '../lib/train/sources.js';
import { Trainer, type TrainerOptions } from '../lib/train/trainer.js';

const ran = countCudaTests(test, 'cuda-train-async.test.ts');
const cudaTest = noGpuReason === null ? test.serial : test.serial.skip;
if (noGpuReason !== null) console.log(`cuda-train-async: skipped: ${noGpuReason}`);

const dir = mkdtempSync(join(tmpdir(), 'clipscale-cuda-async-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

/** Synthetic data whose batch at `poisonAt` (a sample position) has a NaN pixel. */
class PoisonedData implements TrainingData {
  private readonly inner = new SyntheticData({ seed: 5, size: 64, imageSize: 32, contextLength: 32 });
  readonly imageSize = this.inner.imageSize;
  readonly contextLength = this.inner.contextLength;
  readonly vocabSize = this.inner.vocabSize;
  constructor(readonly poisonAt: number[] = []) {}
  async batch(position: number, size: number): Promise<HostBatch> {
    const b = await this.inner.batch(position, size);
    if (this.poisonAt.includes(position)) b.images[7] = NaN;
    return b;
  }
  describe() {
    return { poisoned: this.poisonAt, inner: this.inner.describe() };
  }
}

function options(extra: Partial<TrainerOptions>): TrainerOptions {
  // A small clip norm so that clipping really scales the gradients.
  return { model: 'micro', data: new PoisonedData(), batchSize: 4, samples: 20, lr: 2e-3, warmup: 1, seed: 3, logEvery: 1, gradClipNorm: 0.05, device: 'cuda', ...extra };
}

interface RunResult {
  records: TrainLogRecord[];
  weights: Float32Array[];
  m: Float32Array[];
  v: Float32Array[];
  adamStep: number;
  deferred: boolean;
}

async function run(o: TrainerOptions): Promise<RunResult> {
  using trainer = new Trainer(o);
  const records: TrainLogRecord[] = [];
  for await (const r of trainer.run()) records.push(r);
  return {
    records,
    weights: trainer.model.parameters().map((p) => p.hostValues()),
    m: trainer.optimizer.m.map((x) => x.hostFloat32()),
    v: trainer.optimizer.v.map((x) => x.hostFloat32()),
    adamStep: trainer.optimizer.step,
    deferred: trainer.deferOutcomes,
  };
}

function sameState(t: import('ava').ExecutionContext, a: RunResult, b: RunResult): void {
  t.is(a.adamStep, b.adamStep);
  a.weights.forEach((w, i) => sameOnDevice(t, w, b.weights[i], `weights ${i}`));
  a.m.forEach((w, i) => sameOnDevice(t, w, b.m[i], `m ${i}`));
  a.v.forEach((w, i) => sameOnDevice(t, w, b.v[i], `v ${i}`));
}

/** The records agree: the deferred loss is the device's f32 copy of the double the sync path reads. */
function sameRecords(t: import('ava').ExecutionContext, deferred: TrainLogRecord[], sync: TrainLogRecord[]): void {
  t.deepEqual(deferred.map((r) => r.step), sync.map((r) => r.step));
  sameOnDevice(t, deferred.map((r) => r.loss), sync.map((s) => (Number.isNaN(s.loss) ? NaN : Math.fround(s.loss))), 'losses');
  sameOnDevice(t, deferred.map((r) => r.grad_norm as number), sync.map((s) => s.grad_norm as number), 'grad norms');
  sameOnDevice(t, deferred.map((r) => r.logit_scale), sync.map((s) => s.logit_scale), 'logit scales');
  t.deepEqual(deferred.map((r) => r.skipped_steps), sync.map((s) => s.skipped_steps), 'skipped steps');
  t.deepEqual(deferred.map((r) => r.lr), sync.map((s) => s.lr), 'learning rates');
}

cudaTest(`deferred outcomes (nothing read back in a step) train bit-identically to reading every step, with clipping on the device (${cudaDeviceKind})`, async (t) => {
  ran();
  // Watch the native calls of the deferred run: every loss is left on the device (deferLoss)
  // and every norm goes to a device tensor (normOut), so neither waits for the GPU.
  const calls = { loss: [] as unknown[], clip: [] as unknown[] };
  const n = native as unknown as Record<string, (...a: unknown[]) => unknown>;
  const { contrastiveLoss, clipGradNorm } = n;
  n.contrastiveLoss = (...a: unknown[]) => (calls.loss.push(a[11]), contrastiveLoss(...a));
  n.clipGradNorm = (...a: unknown[]) => (calls.clip.push(a[2]), clipGradNorm(...a));
  let deferred: RunResult;
  try {
    // Eager steps (no CUDA graph replays) so that every step's calls are seen.
    deferred = await run(options({ cudaGraphs: false }));
  } finally {
    n.contrastiveLoss = contrastiveLoss;
    n.clipGradNorm = clipGradNorm;
  }
  t.deepEqual(calls.loss, [true, true, true, true, true]);
  t.is(calls.clip.length, 5);
  t.true(calls.clip.every((x) => x !== null && x !== undefined));
  const sync = await run(options({ deferOutcomes: false }));
  t.true(deferred.deferred, 'deferred outcomes are the default on CUDA');
  t.false(sync.deferred);
  t.is(deferred.records.length, 5);
  sameRecords(t, deferred.records, sync.records);
  sameState(t, deferred, sync);
  // Clipping was active (norms above 0.05) and every step applied.
  t.true(sync.records.every((r) => r.grad_norm > 0.05));
  t.is(deferred.adamStep, 5);
  t.log(`5 steps: losses ${deferred.records.map((r) => r.loss.toFixed(4)).join(', ')}; grad norms ${deferred.records.map((r) => r.grad_norm.toFixed(3)).join(', ')}`);
});

cudaTest('a planted non-finite step is skipped on the device (weights and moments untouched), counted a step late, and later steps use the right step number', async (t) => {
  ran();
  // Steps 2 and 4 (sample positions 4 and 12) see a NaN pixel: NaN loss and gradients.
  const poisoned = () => new PoisonedData([4, 12]);
  const deferred = await run(options({ data: poisoned() }));
  const sync = await run(options({ data: poisoned(), deferOutcomes: false }));
  sameRecords(t, deferred.records, sync.records);
  sameState(t, deferred, sync);
  t.is(deferred.adamStep, 3);
  t.deepEqual(deferred.records.map((r) => r.skipped_steps), [0, 1, 1, 2, 2]);
  t.true(Number.isNaN(deferred.records[1].loss) && Number.isNaN(deferred.records[1].grad_norm));
  t.true(deferred.weights.every((w) => w.every(Number.isFinite)));
});

cudaTest('resume with deferred outcomes is exact: 2 steps + resume equals the whole run, and the checkpoint holds the applied-step count', async (t) => {
  ran();
  const whole = join(dir, 'whole');
  const split = join(dir, 'split');
  const data = () => new PoisonedData([4]);
  await run(options({ data: data(), out: whole, samples: 16 }));
  await run(options({ data: data(), out: split, samples: 16, stopAfterSteps: 3 }));
  const resumed = await run(options({ data: data(), out: split, samples: 16, resume: true }));
  t.is(resumed.adamStep, 3);
  const a = await loadTrainingCheckpoint((await findLatestCheckpoint(whole))!, { asF32: true });
  const b = await loadTrainingCheckpoint((await findLatestCheckpoint(split))!, { asF32: true });
  t.is(b.state.step, 4);
  t.deepEqual(b.state.extra, a.state.extra);
  for (const [name, w] of a.weights) sameOnDevice(t, b.weights.get(name)!.data as Float32Array, w.data as Float32Array, name);
  for (const [name, m] of a.optimizer.m) sameOnDevice(t, b.optimizer.m.get(name)!.data as Float32Array, m.data as Float32Array, `m ${name}`);
  for (const [name, v] of a.optimizer.v) sameOnDevice(t, b.optimizer.v.get(name)!.data as Float32Array, v.data as Float32Array, `v ${name}`);
});

// The gate itself, op by op, on the CPU and on the device.
for (const device of ['cpu', 'cuda']) {
  const maybe = device === 'cpu' ? test : cudaTest;
  maybe(`gated adamwStep on ${device}: applied only when loss and norm are finite, at step applied + 1; adamwCommit counts`, (t) => {
    if (device !== 'cpu') ran();
    const n = 1000;
    const rand = (seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 1000 + i * 0.37) * 0.5);
    const make = (a: Float32Array) => Tensor.from(a, [n]).to(device);
    const normOf = (x: number) => {
      const host = Tensor.from(new BigInt64Array(1), [1], 'i64');
      new Float64Array((host.view() as BigInt64Array).buffer, (host.view() as BigInt64Array).byteOffset, 1)[0] = x;
      const d = host.to(device);
      host.dispose();
      return d;
    };
    const trial = (loss: number, norm: number, applied: number, step: number) => {
      const p = make(rand(1));
      const g = make(rand(2));
      const m = make(rand(3).map(Math.abs));
      const v = make(rand(4).map(Math.abs));
      const gate = { loss: Tensor.from(new Float32Array([loss]), [1]).to(device), norm: normOf(norm), applied: Tensor.from(new BigInt64Array([BigInt(applied)]), [1], 'i64').to(device) };
      ops.adamwStep(p, g, m, v, { lr: 1e-2, step, weightDecay: 0.1, gradScale: 0.5, gate });
      ops.adamwCommit(gate);
      const out = { p: p.hostFloat32(), m: m.hostFloat32(), v: v.hostFloat32(), applied: Number((gate.applied.to('cpu').view() as BigInt64Array)[0]) };
      for (const x of [p, g, m, v, gate.loss, gate.norm, gate.applied]) x.dispose();
      return out;
    };
    const plain = (step: number) => {
      const p = make(rand(1));
      const m = make(rand(3).map(Math.abs));
      const v = make(rand(4).map(Math.abs));
      const g = make(rand(2));
      ops.adamwStep(p, g, m, v, { lr: 1e-2, step, weightDecay: 0.1, gradScale: 0.5 });
      const out = { p: p.hostFloat32(), m: m.hostFloat32(), v: v.hostFloat32() };
      for (const x of [p, g, m, v]) x.dispose();
      return out;
    };
    // Non-finite loss or norm: untouched, not counted.
    for (const [loss, norm] of [[NaN, 1], [1, Infinity], [Infinity, NaN]]) {
      const r = trial(loss, norm, 4, 5);
      t.deepEqual(r.p, rand(1), `param untouched for loss ${loss}, norm ${norm}`);
      t.deepEqual(r.m, rand(3).map(Math.abs));
      t.deepEqual(r.v, rand(4).map(Math.abs));
      t.is(r.applied, 4);
    }
    // Finite: the plain update at step applied + 1, whichever of the two allowed the host gave.
    for (const [applied, step] of [[4, 5], [5, 5]]) {
      const r = trial(2.5, 3, applied, step);
      const want = plain(applied + 1);
      t.deepEqual(r.p, want.p, `applied ${applied}, step ${step}`);
      t.deepEqual(r.m, want.m);
      t.deepEqual(r.v, want.v);
      t.is(r.applied, applied + 1);
    }
    if (device === 'cpu') t.throws(() => trial(1, 1, 9, 5), { message: /gate.applied is 9/ });
  });
}

cudaTest('batches are double-buffered on the device: consecutive steps get different input tensors, each holding its own batch', async (t) => {
  ran();
  const src = new PoisonedData();
  using batches = new DeviceBatches('cuda:0', 32, 32);
  const hosts = [await src.batch(0, 4), await src.batch(4, 4), await src.batch(8, 4)];
  const [a, b, c] = hosts.map((h) => batches.fill(h, 1)[0]);
  t.not(a.images, b.images);
  t.not(a.ids, b.ids);
  t.is(a.images, c.images, 'two sets, used in turn');
  t.is(a.images.device, 'cuda:0');
  // b still holds batch 2 after batch 3 went into the other set.
  t.deepEqual(b.images.hostFloat32(), hosts[1].images);
  t.deepEqual(Int32Array.from(b.ids.hostFloat32()), hosts[1].tokens);
  t.deepEqual(c.images.hostFloat32(), hosts[2].images);
});

test('on the CPU the step reads the one set of batch tensors (no second buffer)', async (t) => {
  const src = new PoisonedData();
  using batches = new DeviceBatches('cpu', 32, 32);
  const a = batches.fill(await src.batch(0, 4), 1)[0];
  const b = batches.fill(await src.batch(4, 4), 1)[0];
  t.is(a.images, b.images);
});

for (const device of ['cpu', 'cuda']) {
  const maybe = device === 'cpu' ? test : cudaTest;
  maybe(`gradNorm/clipGradNorm normOut on ${device}: the f64 norm left in a tensor${device === 'cpu' ? '' : ' (nothing read back: NaN returned)'}, equal to the returned one`, (t) => {
    if (device !== 'cpu') ran();
    const values = (seed: number, n: number) => Float32Array.from({ length: n }, (_, i) => Math.cos(seed + i * 0.11) * 3);
    const grads = () => [Tensor.from(values(1, 300), [300]).to(device), Tensor.from(values(2, 70000), [70000]).to(device)];
    const a = grads();
    const b = grads();
    const out = Tensor.zeros([1], 'i64', device);
    const want = ops.clipGradNorm(a, 10);
    const got = ops.clipGradNorm(b, 10, out);
    if (device === 'cpu') t.is(got, want);
    else t.true(Number.isNaN(got));
    t.is(ops.readNormOut(out), want);
    // The clipped gradients are the same either way.
    a.forEach((g, i) => t.deepEqual(b[i].hostFloat32(), g.hostFloat32()));
    t.is(ops.gradNorm(a, out), device === 'cpu' ? ops.readNormOut(out) : NaN);
    t.is(ops.readNormOut(out), ops.gradNorm(a));
    const bad = Tensor.zeros([1], 'f32', device);
    t.throws(() => ops.gradNorm(a, bad), { message: /normOut must be a 1-element i64 tensor/ });
    for (const x of [...a, ...b, out, bad]) x.dispose();
  });
}
