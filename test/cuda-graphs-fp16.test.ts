// fp16 with dynamic loss scaling in deferred steps and CUDA graphs: the scale lives on the device
// (lib/train/device_loss_scale.ts), the loss gradient is scaled and the parameter gradients
// unscaled there, AdamW skips an overflowing step there and the scaler's rule updates the scale
// there, so the loss-scaled step reads nothing back and is captured like any other. Checked: the
// device rule against the host's LossScaler on a sequence of outcomes; a run whose fp16
// gradients really overflow (in a replayed step too) gives the same records, weights and moments
// bit for bit with graphs, with eager deferred steps, and with the synchronous host-scaler path.
import test from 'ava';

import { countCudaTests, cudaDeviceKind, noGpuReason, sameOnDevice, trainingState } from './_helpers/cuda.js';
import { scalingRun } from './_helpers/loss_scaling.js';
import { randn } from './_helpers/numeric.js';
import * as ops from '../lib/ops.js';
import { Tensor } from '../lib/tensor.js';
import { DeviceLossScale } from '../lib/train/device_loss_scale.js';
import { LossScaler } from '../lib/train/loss_scaler.js';
import type { TrainLogRecord } from '../lib/train/logging.js';
import { Trainer, type TrainerOptions } from '../lib/train/trainer.js';

const ran = countCudaTests(test, 'cuda-graphs-fp16.test.ts');
const cudaTest = noGpuReason === null ? test.serial : test.serial.skip;
if (noGpuReason !== null) console.log(`cuda-graphs-fp16: skipped: ${noGpuReason}`);

cudaTest(`the device's loss-scale rule follows the host's LossScaler step for step; scaling and unscaling on the device (${cudaDeviceKind})`, (t) => {
  ran();
  const host = new LossScaler({ initScale: 2 ** 10, growthInterval: 3, minScale: 2 ** 8, maxScale: 2 ** 12 });
  const mirror = new LossScaler({ initScale: 2 ** 10, growthInterval: 3, minScale: 2 ** 8, maxScale: 2 ** 12 });
  using dev = new DeviceLossScale('cuda', mirror);
  using loss = Tensor.zeros([1], 'f32', 'cuda');
  using norm = Tensor.zeros([1], 'i64', 'cuda');
  // Good steps to growth and to the maximum, overflows to the minimum, a bad (non-finite) loss.
  const outcomes: [number, number][] = [
    [1, 2], [1, 3], [1, 1], [1, 1], [1, 1], [1, 1], [1, 1], [1, 1], [1, 1], [2, Infinity], [2, NaN], [2, NaN], [2, NaN],
    [NaN, NaN], [1, 1], [1, 1], [Infinity, 1], [1, 1],
  ];
  const trace: string[] = [];
  for (const [l, n] of outcomes) {
    loss.copyFrom(Tensor.from(new Float32Array([l])));
    norm.copyFrom(Tensor.from(new BigInt64Array(new Float64Array([n]).buffer), [1], 'i64'));
    dev.update({ loss, norm });
    // The host's rule as the Trainer applies it: a non-finite loss is a bad step, not an overflow.
    if (Number.isFinite(l)) host.update(Number.isFinite(n));
    const d = dev.read();
    t.is(d.scale, host.scale, `after loss ${l}, norm ${n}`);
    t.is(d.goodSteps, host.goodSteps, `after loss ${l}, norm ${n}`);
    trace.push(`2^${Math.log2(d.scale)}/${d.goodSteps}`);
  }
  t.log(trace.join(' '));
  // Times the scale, and times 1/scale rounded to f32, on the device.
  const x = randn(1000, 7);
  using a = Tensor.from(x).to('cuda');
  using b = Tensor.from(x.subarray(0, 33)).to('cuda');
  dev.scale([a, b]);
  const s = host.scale;
  sameOnDevice(t, a.hostFloat32(), x.map((v) => Math.fround(v * s)), 'scaled');
  dev.unscale([a, b]);
  const inv = Math.fround(1 / s);
  sameOnDevice(t, a.hostFloat32(), x.map((v) => Math.fround(Math.fround(v * s) * inv)), 'unscaled');
  sameOnDevice(t, b.hostFloat32(), x.subarray(0, 33).map((v) => Math.fround(Math.fround(v * s) * inv)), 'a second tensor of the same call');
  t.throws(() => ops.lossScaleApply([Tensor.zeros([4])], Tensor.zeros([2], 'i64'), false), { message: /^lossScaleApply: the device loss scale is for CUDA tensors/ });
});

interface Run {
  records: TrainLogRecord[];
  state: Float32Array[];
  captures: number;
  replays: number;
  fallback: string | null;
  skipped: number;
  scale: number;
  deviceScale: { scale: number; goodSteps: number } | null;
  goodSteps: number;
}

async function train(extra: Partial<TrainerOptions>): Promise<Run> {
  // fp16 gradients scaled by 2^17 overflow (fp16's largest value is 65504): steps are skipped
  // until the scale fits, it doubles after every good step and overflows again, in a replayed step.
  using trainer = new Trainer({ ...scalingRun('cuda'), precision: 'fp16', lossScaling: { initScale: 2 ** 17, growthInterval: 1 }, samples: 56, ...extra });
  const records: TrainLogRecord[] = [];
  for await (const r of trainer.run()) records.push(r);
  const state = trainingState(trainer);
  const g = trainer.cudaGraphs;
  return {
    records, state, captures: g?.captures ?? 0, replays: g?.replays ?? 0, fallback: g?.fallbackReason ?? null, skipped: trainer.skippedSteps,
    scale: trainer.scaler!.scale, goodSteps: trainer.scaler!.goodSteps, deviceScale: trainer.deviceScale?.read() ?? null,
  };
}

cudaTest(`fp16 loss-scaled steps are captured in CUDA graphs and replay bit for bit like eager and synchronous steps, overflow skips included (${cudaDeviceKind})`, async (t) => {
  ran();
  const graphs = await train({});
  const eager = await train({ cudaGraphs: false });
  const sync = await train({ deferOutcomes: false });
  const show = (r: Run) => r.records.map((x) => `${x.skipped_steps}@2^${Math.log2(x.loss_scale as number)}`).join(' ');
  t.log(`skipped@scale after each step: graphs ${show(graphs)}; sync ${show(sync)}`);
  t.log(`losses ${graphs.records.map((x) => x.loss.toFixed(5)).join(', ')}`);
  t.is(graphs.fallback, null, 'the loss-scaled step was captured');
  t.is(graphs.captures, 2, 'one graph per outcome slot');
  t.is(graphs.replays, 5, 'steps 3..7 replayed');
  // Overflows: the first steps, and one again after the scale grew back, in a replayed step.
  const skippedAt = graphs.records.filter((r, i) => (r.skipped_steps as number) > ((graphs.records[i - 1]?.skipped_steps as number) ?? 0)).map((r) => r.step);
  t.true(skippedAt.includes(1), `step 1 overflowed (skipped at ${skippedAt.join(', ')})`);
  // Steps 3 and 4 are captured and launched; 5..7 are replays of those graphs.
  t.true(skippedAt.some((s) => s >= 5), `a replayed step overflowed (skipped at ${skippedAt.join(', ')})`);
  t.true(graphs.records.every((r) => Number.isFinite(r.loss)), 'skips were overflows, not bad losses');
  for (const other of [eager, sync]) {
    t.deepEqual(other.records.map((r) => r.skipped_steps), graphs.records.map((r) => r.skipped_steps));
    t.deepEqual(other.records.map((r) => r.loss_scale), graphs.records.map((r) => r.loss_scale));
    sameOnDevice(t, other.records.map((r) => Math.fround(r.loss)), graphs.records.map((r) => r.loss), 'losses');
    sameOnDevice(t, other.records.map((r) => r.grad_norm as number), graphs.records.map((r) => r.grad_norm as number), 'grad norms');
    other.state.forEach((a, i) => sameOnDevice(t, a, graphs.state[i], `state tensor ${i}`));
  }
  // The host's scaler followed the device's.
  t.deepEqual(graphs.deviceScale, { scale: graphs.scale, goodSteps: graphs.goodSteps });
  t.is(sync.deviceScale, null, 'the synchronous path keeps the scale on the host');
});
