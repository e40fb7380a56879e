// CUDA graph capture of a training step (lib/train/cuda_graph_step.ts): after 2 eager steps the
// whole deferred step is captured once per outcome slot and replayed. On the emulated device
// capture records each launch (kernel and a copy of its arguments), copy and memset, and a
// launch of the graph replays them; a step that synchronises or keeps a tensor made inside the
// capture cannot be captured and runs eagerly, saying why.
import test from 'ava';

import { countCudaTests, cudaDeviceKind, noGpuReason, sameOnDevice, trainingState } from './_helpers/cuda.js';
import { capture } from './_helpers/train_cli.js';
import { runTrain } from '../lib/cli/commands/train.js';
import { native } from '../lib/native.js';
import * as ops from '../lib/ops.js';
import { AdamW } from '../lib/optim/adamw.js';
import { Parameter } from '../lib/nn/module.js';
import { Tensor } from '../lib/tensor.js';
import { CudaGraphSteps } from '../lib/train/cuda_graph_step.js';
import type { TrainLogRecord } from '../lib/train/logging.js';
import { type HostBatch, SyntheticData, type TrainingData } from '../lib/train/sources.js';
import { Trainer } from '../lib/train/trainer.js';

const ran = countCudaTests(test, 'cuda-graphs.test.ts');
const cudaTest = noGpuReason === null ? test.serial : test.serial.skip;
if (noGpuReason !== null) console.log(`cuda-graphs: skipped: ${noGpuReason}`);

/** Synthetic data whose batch at each of `poisonAt` (sample positions) has a NaN pixel. */
class PoisonedData implements TrainingData {
  private readonly inner = new SyntheticData({ seed: 5, size: 64, imageSize: 32, contextLength: 32 });
  readonly imageSize = this.inner.imageSize;
  readonly contextLength = this.inner.contextLength;
  readonly vocabSize = this.inner.vocabSize;
  constructor(readonly poisonAt: number[]) {}
  async batch(position: number, size: number): Promise<HostBatch> {
    const b = await this.inner.batch(position, size);
    if (this.poisonAt.includes(position)) b.images[7] = NaN;
    return b;
  }
  describe() {
    return { poisoned: this.poisonAt, inner: this.inner.describe() };
  }
}

interface Run {
  records: TrainLogRecord[];
  state: Float32Array[];
  captures: number;
  replays: number;
  fallback: string | null;
  skipped: number;
}

async function train(cudaGraphs: boolean): Promise<Run> {
  // Step 5 (samples 16..19) has a NaN pixel: a replayed step that the device skips.
  using trainer = new Trainer({
    model: 'micro', data: new PoisonedData([16]), batchSize: 4, samples: 24, lr: 2e-3, warmup: 2, seed: 3, logEvery: 1,
    gradClipNorm: 0.05, device: 'cuda', cudaGraphs,
  });
  const records: TrainLogRecord[] = [];
  for await (const r of trainer.run()) records.push(r);
  const state = trainingState(trainer);
  const g = trainer.cudaGraphs;
  return { records, state, captures: g?.captures ?? 0, replays: g?.replays ?? 0, fallback: g?.fallbackReason ?? null, skipped: trainer.skippedSteps };
}

cudaTest(`graph-replayed steps give the same losses, weights and moments bit for bit as eager steps, a skipped step included (${cudaDeviceKind})`, async (t) => {
  ran();
  const eager = await train(false);
  const graphs = await train(true);
  t.is(graphs.fallback, null);
  t.is(graphs.captures, 2, 'one graph per outcome slot');
  t.is(graphs.replays, 4, 'steps 3..6 replayed');
  const losses = (r: Run) => r.records.map((x) => x.loss);
  t.log(`losses ${losses(graphs).map((l) => l.toFixed(5)).join(', ')}`);
  t.true(Number.isNaN(losses(graphs)[4]), 'step 5 had a NaN loss');
  t.is(graphs.skipped, 1);
  t.is(eager.skipped, 1);
  sameOnDevice(t, losses(graphs), losses(eager), 'losses');
  sameOnDevice(t, graphs.records.map((x) => x.grad_norm as number), eager.records.map((x) => x.grad_norm as number), 'grad norms');
  sameOnDevice(t, graphs.records.map((x) => x.logit_scale), eager.records.map((x) => x.logit_scale), 'logit scales');
  t.is(graphs.state.length, eager.state.length);
  graphs.state.forEach((a, i) => sameOnDevice(t, a, eager.state[i], `state tensor ${i}`));
  // Replays allocate nothing: every block the graphs use was set aside when they were captured.
  t.true(native.cudaMemoryStats().graphReservedBytes === 0, 'the graphs gave their blocks back when disposed');
});

cudaTest(`with gradient accumulation (accumFreq 2) the step is captured and replays bit for bit too (${cudaDeviceKind})`, async (t) => {
  ran();
  const run = async (cudaGraphs: boolean) => {
    const data = new SyntheticData({ seed: 5, size: 64, imageSize: 32, contextLength: 32 });
    using trainer = new Trainer({ model: 'micro', data, batchSize: 4, accumFreq: 2, samples: 20, lr: 2e-3, warmup: 1, seed: 3, logEvery: 1, device: 'cuda', cudaGraphs });
    const losses: number[] = [];
    for await (const r of trainer.run()) losses.push(r.loss);
    return { losses, captures: trainer.cudaGraphs?.captures ?? 0, replays: trainer.cudaGraphs?.replays ?? 0, why: trainer.cudaGraphs?.fallbackReason ?? null };
  };
  const eager = await run(false);
  const graphs = await run(true);
  t.is(graphs.why, null);
  t.is(graphs.captures, 2);
  t.is(graphs.replays, 3);
  sameOnDevice(t, graphs.losses, eager.losses, 'losses');
});

/** A parameter on the device with a gradient, and an optimizer over it, for CudaGraphSteps. */
function tiny() {
  const p = new Parameter('w', [8]);
  p.moveTo('cuda');
  const optimizer = new AdamW([p]);
  return { p, optimizer };
}

cudaTest(`a step that synchronises cannot be captured: it runs eagerly and the reason is given (${cudaDeviceKind})`, (t) => {
  ran();
  const { p, optimizer } = tiny();
  using steps = new CudaGraphSteps('cuda:0', optimizer);
  using x = Tensor.zeros([8], 'f32', 'cuda');
  let seen = NaN;
  const work = () => {
    ops.fill(p.data, 2);
    ops.copy(p.data, x);
    seen = x.hostFloat32()[0]; // a read back: a synchronisation
  };
  for (let i = 0; i < 3; i++) steps.run(0, x, 1e-3, 1, work);
  t.log(steps.fallbackReason);
  t.regex(steps.fallbackReason ?? '', /could not be captured: .*(captur|synchron)/i);
  t.is(steps.captures, 0);
  t.is(seen, 2, 'the step still ran');
  optimizer.dispose();
  p.dispose();
});

cudaTest(`a captured step that keeps a tensor made inside it is refused; a plain one replays its kernels with their arguments (${cudaDeviceKind})`, (t) => {
  ran();
  const { p, optimizer } = tiny();
  using x = Tensor.zeros([8], 'f32', 'cuda');
  const kept: Tensor[] = [];
  {
    using steps = new CudaGraphSteps('cuda:0', optimizer);
    const leaky = () => {
      const tmp = Tensor.zeros([8], 'f32', 'cuda');
      ops.copy(tmp, x);
      kept.push(tmp);
    };
    for (let i = 0; i < 3; i++) steps.run(0, x, 1e-3, 1, leaky);
    t.log(steps.fallbackReason);
    t.regex(steps.fallbackReason ?? '', /still in use after it/);
  }
  for (const k of kept) k.dispose();
  using steps = new CudaGraphSteps('cuda:0', optimizer);
  using one = Tensor.from(new Float32Array(8).fill(1)).to('cuda');
  // x += 1 per step: a replay must apply the recorded axpy to x's current values.
  const add = () => ops.axpy(1, one, x);
  ops.fill(x, 0);
  for (let i = 0; i < 6; i++) steps.run(0, x, 1e-3, 1, add);
  t.is(steps.fallbackReason, null);
  t.is(steps.captures, 1);
  t.is(steps.replays, 4);
  t.deepEqual([...x.hostFloat32()], new Array(8).fill(6));
  // The same slot with another batch tensor (a resumed run may pair them anew): a graph of its own.
  using other = Tensor.zeros([8], 'f32', 'cuda');
  for (let i = 0; i < 3; i++) steps.run(0, other, 1e-3, 1, add);
  steps.run(0, x, 1e-3, 1, add);
  t.is(steps.fallbackReason, null);
  t.is(steps.captures, 2);
  t.deepEqual([...x.hostFloat32()], new Array(8).fill(10));
  optimizer.dispose();
  p.dispose();
});

cudaTest(`a graph whose tensor was freed after its capture is not replayed: the step runs eagerly and says why (${cudaDeviceKind})`, (t) => {
  ran();
  const { p, optimizer } = tiny();
  using steps = new CudaGraphSteps('cuda:0', optimizer);
  using x = Tensor.zeros([8], 'f32', 'cuda');
  let one = Tensor.from(new Float32Array(8).fill(1)).to('cuda');
  const add = () => ops.axpy(1, one, x);
  for (let i = 0; i < 4; i++) steps.run(0, x, 1e-3, 1, add);
  t.is(steps.captures, 1);
  // The graph reads `one`'s memory: re-making it leaves the graph pointing at a freed block.
  one.dispose();
  one = Tensor.from(new Float32Array(8).fill(1)).to('cuda');
  for (let i = 0; i < 2; i++) steps.run(0, x, 1e-3, 1, add);
  t.log(steps.fallbackReason);
  t.regex(steps.fallbackReason ?? '', /not replayable: a block that was in use when the graph was captured has been freed/);
  t.deepEqual([...x.hostFloat32()], new Array(8).fill(6), 'every step still added once');
  one.dispose();
  optimizer.dispose();
  p.dispose();
});

cudaTest(`clipscale train --cuda-graphs on|off: the same run either way; a bad value and an impossible request are explained (${cudaDeviceKind})`, async (t) => {
  ran();
  const args = ['--model', 'micro', '--data', 'synthetic:size=64,seed=2', '--batch-size', '4', '--samples', '20', '--device', 'cuda', '--log-every', '1'];
  const on = await runTrain([...args, '--cuda-graphs', 'on'], { console: null });
  const off = await runTrain([...args, '--cuda-graphs', 'off'], { console: null });
  t.is(on.steps, 5);
  t.true(on.loss !== null && Number.isFinite(on.loss));
  sameOnDevice(t, [on.loss!], [off.loss!], 'final loss');
  await t.throwsAsync(runTrain([...args, '--cuda-graphs', 'maybe'], { console: null }), { message: /--cuda-graphs must be on or off, got 'maybe'/ });
  // Loss scaling is decided on the device too: its steps are captured (nothing says otherwise).
  const scaled = capture();
  await runTrain([...args, '--samples', '16', '--cuda-graphs', 'on', '--loss-scaling', 'dynamic'], { console: scaled });
  t.notRegex(scaled.text, /cuda graphs: off/);
  const out = capture();
  await runTrain([...args.map((a) => (a === 'cuda' ? 'cpu' : a)), '--samples', '8', '--cuda-graphs', 'on'], { console: out });
  t.regex(out.text, /cuda graphs: off, steps run eagerly: CUDA graphs are for CUDA devices, not 'cpu'/);
});
