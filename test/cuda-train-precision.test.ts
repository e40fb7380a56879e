// Training steps on CUDA in each precision against the CPU backend in fp32 (the emulated
// device without a GPU): fp32 much tighter than bf16, fp16 between them, and fp16's dynamic
// loss scaling skipping the steps whose fp16 gradients really overflow (inf in fp16, where
// bf16's f32 range has none) and recovering.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';

import { scalingRun } from './_helpers/loss_scaling.js';
import { maxRelErr } from './_helpers/numeric.js';
import { countCudaTests, cudaDeviceKind, noGpuReason } from './_helpers/cuda.js';
import { native } from '../lib/native.js';
import { runTrain } from '../lib/cli/commands/train.js';
import { createModel, type CLIP } from '../lib/nn/clip.js';
import * as ops from '../lib/ops.js';
import { AdamW } from '../lib/optim/adamw.js';
import { Tensor } from '../lib/tensor.js';
import { findLatestCheckpoint, loadTrainingCheckpoint } from '../lib/train/checkpoint.js';
import type { Precision } from '../lib/train/device_placement.js';
import { SyntheticData } from '../lib/train/sources.js';
import { StepRunner } from '../lib/train/step.js';
import { Trainer } from '../lib/train/trainer.js';

const ran = countCudaTests(test, 'cuda-train-precision.test.ts');
const cudaTest = noGpuReason === null ? test.serial : test.serial.skip;
if (noGpuReason !== null) console.log(`cuda-train-precision: skipped: ${noGpuReason}`);

const dir = mkdtempSync(join(tmpdir(), 'clipscale-cuda-precision-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

const data = () => new SyntheticData({ seed: 5, size: 64, imageSize: 32, contextLength: 32 });

interface StepResult {
  loss: number;
  grads: Map<string, Float32Array>;
}

/** One forward+backward; on CUDA in `precision` (the CPU in fp32, or bf16-emulated). */
function step(model: CLIP, images: Float32Array, tokens: Int32Array, n: number, precision: Precision): StepResult {
  const dev = model.device;
  const img = Tensor.from(images, [n, 3, 32, 32]);
  const ids = Tensor.from(tokens, [n, 32]);
  const batch = dev === 'cpu' ? { images: img, ids } : { images: img.to(dev), ids: ids.to(dev) };
  const previous = native.bf16Emulation();
  native.setBf16Emulation(dev === 'cpu' && precision === 'bf16');
  const previousCuda = dev === 'cpu' ? null : native.cudaSetPrecision(precision);
  try {
    using runner = new StepRunner(model);
    model.zeroGrad();
    const loss = runner.forwardBackward([batch]);
    return { loss, grads: new Map(model.parameters().map((p) => [p.name, p.grad.hostFloat32()])) };
  } finally {
    native.setBf16Emulation(previous);
    if (previousCuda) native.cudaSetPrecision(previousCuda);
    for (const t of new Set([img, ids, batch.images, batch.ids])) t.dispose();
  }
}

/** Worst per-tensor gradient error and the loss's relative error of `a` against `ref`. */
function compare(a: StepResult, ref: StepResult): { loss: number; grad: number; worst: string } {
  let grad = 0;
  let worst = '';
  for (const [name, g] of a.grads) {
    const e = maxRelErr(g, ref.grads.get(name)!);
    if (!(e <= grad)) {
      grad = Number.isNaN(e) ? Infinity : e;
      worst = name;
    }
  }
  return { loss: Math.abs(a.loss - ref.loss) / Math.abs(ref.loss), grad, worst };
}

// Bounds, from measurements on the emulated device (stated in the log lines): fp32 is the
// CPU's arithmetic up to summation order (measured: loss ≤ 2.1e-7, gradients ≤ 3.7e-6); fp16
// carries 3 more mantissa bits than bf16 (loss ≤ 1.4e-4, gradients ≤ 6.3e-3; bf16 5e-2).
const FP32 = { loss: 1e-5, grad: 1e-4 };
const FP16 = { loss: 2e-3, grad: 2e-2 };

for (const modelName of ['micro', 'tiny']) {
  cudaTest(`one ${modelName} step on CUDA in fp32 and fp16 agrees with the CPU in fp32: fp32 to 1e-5 (loss) / 1e-4 (gradients), fp16 within its bounds (${cudaDeviceKind})`, async (t) => {
    ran();
    const n = 4;
    const host = await data().batch(0, n);
    const cpu = createModel(modelName, { seed: 1 });
    const gpu = createModel(modelName, { seed: 1 }).to('cuda');
    const ref = step(cpu, host.images, host.tokens, n, 'fp32');
    const fp32 = compare(step(gpu, host.images, host.tokens, n, 'fp32'), ref);
    const fp16 = compare(step(gpu, host.images, host.tokens, n, 'fp16'), ref);
    const bf16 = compare(step(gpu, host.images, host.tokens, n, 'bf16'), ref);
    cpu.dispose();
    gpu.dispose();
    const line = (name: string, r: { loss: number; grad: number; worst: string }) =>
      `${name}: loss ${r.loss.toExponential(2)}, worst gradient ${r.grad.toExponential(2)} (${r.worst})`;
    t.log(`CUDA vs CPU fp32 — ${line('fp32', fp32)}; ${line('fp16', fp16)}; ${line('bf16', bf16)}`);
    t.true(fp32.loss < FP32.loss && fp32.grad < FP32.grad, line('fp32', fp32));
    t.true(fp16.loss < FP16.loss && fp16.grad < FP16.grad, line('fp16', fp16));
    // The modes are what they say: fp32 far tighter than fp16, fp16 tighter than bf16.
    t.true(fp32.grad * 10 < fp16.grad && fp16.grad < bf16.grad, `${line('fp32', fp32)}; ${line('fp16', fp16)}; ${line('bf16', bf16)}`);
  });
}

cudaTest('fp16 on CUDA: a huge loss scale overflows fp16 gradients (not bf16\'s), the step is skipped, the scale halves and training recovers', async (t) => {
  ran();
  const run = async (precision: Precision) => {
    using trainer = new Trainer({
      ...scalingRun('cuda'),
      precision,
      // fp16's largest value is 65504: gradients of order 1 scaled by 2^20 overflow in fp16
      // and not in bf16 or fp32 (both reach 3.4e38); the skips end below 2^16 here.
      ...(precision === 'fp16' ? {} : { lossScaling: 'dynamic' as const }),
      // Each record is compared with the weights right after its step: read every step at once
      // (the deferred, device-decided path is checked against this one in cuda-graphs-fp16).
      deferOutcomes: false,
    });
    // Default for fp16: dynamic scaling (GradScaler's 2^16); start it far higher here.
    trainer.scaler!.scale = 2 ** 18;
    const trace: { skipped: number; scale: number; loss: number; changed: boolean }[] = [];
    let previous = trainer.model.stateDict();
    for await (const r of trainer.run()) {
      const now = trainer.model.stateDict();
      const changed = [...now].some(([name, p]) => p.data.some((v, i) => !Object.is(v, previous.get(name)!.data[i])));
      trace.push({ skipped: r.skipped_steps as number, scale: r.loss_scale as number, loss: r.loss, changed });
      previous = now;
    }
    return trace;
  };
  const fp16 = await run('fp16');
  const bf16 = await run('bf16');
  const show = (tr: typeof fp16) => tr.map((s, i) => `step ${i + 1}: skipped ${s.skipped}, scale 2^${Math.log2(s.scale)}`).join('; ');
  t.log(`fp16: ${show(fp16)}`);
  t.log(`bf16: ${show(bf16)}`);
  t.true(bf16.every((s) => s.skipped === 0 && s.changed), 'bf16 never overflows at this scale');
  t.true(fp16[0].skipped === 1 && !fp16[0].changed && fp16[0].scale === 2 ** 17, 'fp16 step 1 overflows: skipped, weights untouched, scale halved');
  let skipped = 0;
  for (const s of fp16) {
    t.is(s.changed, s.skipped === skipped, 'a step changes the weights exactly when it is not skipped');
    skipped = s.skipped;
    t.true(Number.isFinite(s.loss));
  }
  t.true(fp16.at(-1)!.changed && fp16.at(-1)!.skipped < fp16.length, 'training recovered');
});

cudaTest('Trainer on CUDA in fp32 tracks the CPU fp32 run step by step; the switch is fp32 during the run and restored after', async (t) => {
  ran();
  const losses = async (device: string) => {
    using trainer = new Trainer({ model: 'micro', data: data(), batchSize: 4, samples: 12, lr: 2e-3, warmup: 1, seed: 3, logEvery: 1, precision: 'fp32', device });
    const out: number[] = [];
    for await (const r of trainer.run()) {
      out.push(r.loss);
      if (device !== 'cpu') t.is(native.cudaPrecision(), 'fp32');
    }
    return out;
  };
  const gpu = await losses('cuda');
  t.is(native.cudaPrecision(), 'bf16');
  const cpu = await losses('cpu');
  t.log(`losses CUDA fp32 ${gpu.map((l) => l.toFixed(7)).join(', ')}; CPU fp32 ${cpu.map((l) => l.toFixed(7)).join(', ')}`);
  // Measured ≤ 3.4e-7 over the 3 steps (bf16's run differs by ~1e-2 after 3 steps, cuda-train).
  gpu.forEach((l, i) => t.true(Math.abs(l - cpu[i]) / cpu[i] < 1e-5, `step ${i + 1}: ${l} vs ${cpu[i]}`));
});

cudaTest('clipscale train --device cuda --precision amp: fp16 with dynamic loss scaling by default (GradScaler\'s 2^16), checkpoint says fp16', async (t) => {
  ran();
  const out = join(dir, 'amp');
  const r = await runTrain(
    ['--model', 'micro', '--data', 'synthetic:size=64,seed=2', '--batch-size', '4', '--samples', '8', '--device', 'cuda', '--precision', 'amp', '--log-every', '1', '--out', out],
    { console: null },
  );
  t.is(r.steps, 2);
  const records = readFileSync(join(out, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
  t.log(`losses ${records.map((x) => x.loss).join(', ')}; scales ${records.map((x) => x.loss_scale).join(', ')}; skipped ${records.map((x) => x.skipped_steps).join(', ')}`);
  t.true(records.every((x) => typeof x.loss_scale === 'number' && x.loss_scale <= 65536));
  const ck = await loadTrainingCheckpoint((await findLatestCheckpoint(out))!, { asF32: true });
  t.is(ck.state.precision, 'fp16');
  t.true([...ck.weights.values()].every((w) => (w.data as Float32Array).every(Number.isFinite)));
});

for (const precision of ['bf16', 'fp16'] as const) {
  const dtype = precision === 'fp16' ? 'f16' : 'bf16';
  cudaTest(`${precision} on CUDA: the linears read the optimizer's ${dtype} weight copies (fewer conversion passes a step, bit-identical results); AdamW keeps them equal to ${dtype}(weights)`, async (t) => {
    ran();
    const n = 4;
    const host = await data().batch(0, n);
    const model = createModel('micro', { seed: 1 }).to('cuda');
    const counted = (fn: () => StepResult) => {
      const before = native.cudaGemmCounters();
      const r = fn();
      const after = native.cudaGemmCounters();
      return { r, conversions: after.conversions - before.conversions, gemms: after.gemms - before.gemms };
    };
    const plain = counted(() => step(model, host.images, host.tokens, n, precision));
    const weights = model.linearWeights();
    for (const p of weights) p.makeHalfCopy(dtype);
    const copies = counted(() => step(model, host.images, host.tokens, n, precision));
    t.log(`micro forward+backward, ${precision}: ${plain.gemms} GEMMs; operand conversion passes ${plain.conversions} converting every weight, ${copies.conversions} reading the ${weights.length} linear weights' ${dtype} copies`);
    if (native.cudaGemmBackend() === 'own') {
      t.is(copies.r.loss, plain.r.loss);
      for (const [name, g] of plain.r.grads) t.deepEqual(copies.r.grads.get(name), g, name);
    } else {
      // cuBLASLt may sum a transposed operand's product in another order: within fp32 rounding.
      t.true(Math.abs(copies.r.loss - plain.r.loss) < 1e-6 * Math.abs(plain.r.loss));
      for (const [name, g] of plain.r.grads) t.true(maxRelErr(copies.r.grads.get(name)!, g) < 1e-4, name);
    }
    t.is(copies.gemms, plain.gemms);
    t.is(plain.conversions - copies.conversions, 2 * weights.length, 'two conversions less per linear weight (its forward GEMM and dx = dy·w)');

    // AdamW rewrites each copy in the kernel that updates the master weights: still the 16-bit weights.
    const previous = native.cudaSetPrecision(precision);
    try {
      using opt = new AdamW(model.parameters(), { lr: 1e-2 });
      opt.update(1e-2);
      for (const p of weights) {
        const expect = Tensor.empty(p.shape, dtype, p.device);
        ops.convert(p.data, expect);
        t.deepEqual(new Uint16Array(p.halfCopy!.to('cpu').view()), new Uint16Array(expect.to('cpu').view()), `${p.name}: the copy is ${dtype} of the updated weights`);
        expect.dispose();
      }
      // A copy of the other 16-bit type is refused, saying why.
      const other = Tensor.empty(weights[0].shape, dtype === 'f16' ? 'bf16' : 'f16', 'cuda');
      t.throws(() => ops.adamwStep(weights[0].data, weights[0].grad, Tensor.zeros(weights[0].shape, 'f32', 'cuda'), Tensor.zeros(weights[0].shape, 'f32', 'cuda'), { lr: 1e-3, step: 1, paramBf16: other }),
        { message: new RegExp(`adamwStep: paramBf16 is ${dtype === 'f16' ? 'bf16' : 'f16'} but the CUDA precision is ${precision}`) });
      other.dispose();
    } finally {
      native.cudaSetPrecision(previous);
    }
    // setValues drops the copy (it would be stale).
    weights[0].setValues(weights[0].hostValues());
    t.is(weights[0].halfCopy, null);
    model.dispose();
  });

  cudaTest(`a ${precision} Trainer run on CUDA keeps the linear weights' ${dtype} copies during the run only, and its steps convert that much less`, async (t) => {
    ran();
    using trainer = new Trainer({ model: 'micro', data: data(), batchSize: 4, samples: 8, lr: 2e-3, warmup: 1, seed: 3, logEvery: 1, device: 'cuda', precision });
    const weights = trainer.model.linearWeights();
    let during = 0;
    let steps = 0;
    const before = native.cudaGemmCounters().conversions;
    for await (const _ of trainer.run()) {
      during = weights.filter((p) => p.halfCopy?.dtype === dtype).length;
      steps++;
    }
    const perStep = (native.cudaGemmCounters().conversions - before) / steps;
    t.is(during, weights.length);
    t.true(weights.every((p) => p.halfCopy === null), 'dropped after the run');
    // The same step without the copies (the run is over, so they are gone): two conversions more per linear weight.
    const host = await data().batch(0, 4);
    const c0 = native.cudaGemmCounters().conversions;
    step(trainer.model, host.images, host.tokens, 4, precision);
    const without = native.cudaGemmCounters().conversions - c0;
    t.log(`conversion passes per step (micro, ${precision}): ${perStep} in the Trainer with the ${weights.length} copies, ${without} without`);
    t.is(perStep, without - 2 * weights.length);
  });
}

cudaTest('a tanh-GELU model (act_kwargs approximate=\'tanh\') trains a step on CUDA: fp32 agrees with the CPU in fp32 like the erf model does', async (t) => {
  ran();
  const config = JSON.parse(readFileSync(new URL('../lib/configs/models/micro.json', import.meta.url), 'utf8')) as Record<string, Record<string, unknown>>;
  for (const tower of ['vision_cfg', 'text_cfg']) config[tower].act_kwargs = { approximate: 'tanh' };
  const n = 4;
  const host = await data().batch(0, n);
  const cpu = createModel(config as never, { seed: 1 });
  const gpu = createModel(config as never, { seed: 1 }).to('cuda');
  const ref = step(cpu, host.images, host.tokens, n, 'fp32');
  const fp32 = compare(step(gpu, host.images, host.tokens, n, 'fp32'), ref);
  const bf16 = compare(step(gpu, host.images, host.tokens, n, 'bf16'), ref);
  cpu.dispose();
  gpu.dispose();
  t.log(`tanh-GELU micro vs CPU fp32: fp32 loss ${fp32.loss.toExponential(2)}, worst gradient ${fp32.grad.toExponential(2)} (${fp32.worst}); bf16 ${bf16.loss.toExponential(2)} / ${bf16.grad.toExponential(2)}`);
  t.true(fp32.loss < FP32.loss && fp32.grad < FP32.grad);
  t.true(bf16.grad < 1e-1);
});

for (const precision of ['fp16', 'fp32'] as const) {
  cudaTest(`resume on CUDA in ${precision} is exact: 2 steps + resume + 1 step equals 3 steps, bit for bit (weights, moments${precision === 'fp16' ? ', loss scale' : ''})`, async (t) => {
    ran();
    const opts = { model: 'micro', data: data(), batchSize: 4, samples: 12, lr: 2e-3, warmup: 1, seed: 3, logEvery: 1, device: 'cuda', precision };
    const whole = join(dir, `whole-${precision}`);
    const split = join(dir, `split-${precision}`);
    const scales: number[] = [];
    {
      using trainer = new Trainer({ ...opts, out: whole });
      await trainer.train();
      scales.push(trainer.scaler?.scale ?? 0);
    }
    {
      using trainer = new Trainer({ ...opts, out: split, stopAfterSteps: 2 });
      await trainer.train();
    }
    {
      using trainer = new Trainer({ ...opts, out: split, resume: true });
      await trainer.train();
      t.is(trainer.step, 3);
      scales.push(trainer.scaler?.scale ?? 0);
    }
    t.is(scales[1], scales[0]);
    const a = await loadTrainingCheckpoint((await findLatestCheckpoint(whole))!, { asF32: true });
    const b = await loadTrainingCheckpoint((await findLatestCheckpoint(split))!, { asF32: true });
    t.is(a.state.precision, precision);
    for (const [name, w] of a.weights) t.deepEqual(b.weights.get(name)!.data, w.data, name);
    for (const [name, m] of a.optimizer.m) t.deepEqual(b.optimizer.m.get(name)!.data, m.data, `m ${name}`);
    for (const [name, v] of a.optimizer.v) t.deepEqual(b.optimizer.v.get(name)!.data, v.data, `v ${name}`);
  });
}
