// The SigLIP (sigmoid) loss on CUDA (native/cuda/sigmoid_loss.cu) against the CPU op and a
// float64 reference on fresh random inputs, and a SigLIP training step / a few Trainer steps on
// CUDA against the CPU. Without a GPU these run on the emulated device.
import test from 'ava';

import { countCudaTests, cudaDeviceKind, noGpuReason, sameOnDevice, trainingState } from './_helpers/cuda.js';
import { maxRelErr, randn, relErr } from './_helpers/numeric.js';
import { SigLipLoss } from '../lib/loss/sigmoid.js';
import { native } from '../lib/native.js';
import { createModel, type CLIP } from '../lib/nn/clip.js';
import * as ops from '../lib/ops.js';
import { Tensor } from '../lib/tensor.js';
import { SyntheticData } from '../lib/train/sources.js';
import { StepRunner } from '../lib/train/step.js';
import { SIGLIP_INIT_LOGIT_BIAS, Trainer, type TrainerOptions } from '../lib/train/trainer.js';

const ran = countCudaTests(test, 'cuda-siglip.test.ts');
const cudaTest = noGpuReason === null ? test.serial : test.serial.skip;
if (noGpuReason !== null) console.log(`cuda-siglip: skipped: ${noGpuReason}`);

// Fresh inputs each run; the seed is logged so a failure can be replayed.
const seed = Number(process.env.CLIPSCALE_TEST_SEED ?? Math.floor(Math.random() * 1e6));

function normalised(n: number, d: number, s: number): Float32Array {
  const x = randn(n * d, s);
  for (let i = 0; i < n; i++) {
    const r = 1 / Math.hypot(...x.subarray(i * d, (i + 1) * d));
    for (let k = 0; k < d; k++) x[i * d + k] *= r;
  }
  return x;
}

/** float64: the loss of image rows [R, D] against text rows [C, D], positives at j = i + off (−1: none). */
function reference(img: Float32Array, txt: Float32Array, R: number, C: number, D: number, t: number, b: number, off: number) {
  const s = Math.exp(t);
  const dImage = new Float64Array(R * D);
  const dText = new Float64Array(C * D);
  let loss = 0;
  let dt = 0;
  let db = 0;
  for (let i = 0; i < R; i++) {
    for (let j = 0; j < C; j++) {
      let dot = 0;
      for (let k = 0; k < D; k++) dot += img[i * D + k] * txt[j * D + k];
      const y = off >= 0 && j === i + off ? 1 : -1;
      const m = -y * (s * dot + b);
      loss += (Math.max(m, 0) + Math.log1p(Math.exp(-Math.abs(m)))) / R;
      const sig = m >= 0 ? 1 / (1 + Math.exp(-m)) : Math.exp(m) / (1 + Math.exp(m));
      const g = (-y * sig) / R;
      dt += g * s * dot;
      db += g;
      for (let k = 0; k < D; k++) {
        dImage[i * D + k] += g * s * txt[j * D + k];
        dText[j * D + k] += g * s * img[i * D + k];
      }
    }
  }
  return { loss, dImage, dText, dLogitScale: dt, dLogitBias: db };
}

interface OpResult {
  loss: number;
  dImage: Float32Array;
  dText: Float32Array;
  dLogitScale: number;
  dLogitBias: number;
}

function runOp(device: string, img: Float32Array, txt: Float32Array, R: number, C: number, D: number, t: number, b: number, off: number, gradScale: number): OpResult {
  const on = (x: Tensor) => {
    if (device === 'cpu') return x;
    const y = x.to(device);
    x.dispose();
    return y;
  };
  using ti = on(Tensor.from(img, [R, D]));
  using tt = on(Tensor.from(txt, [C, D]));
  using ts = on(Tensor.from([t]));
  using tb = on(Tensor.from([b]));
  using di = Tensor.empty([R, D], 'f32', device);
  using dt = Tensor.empty([C, D], 'f32', device);
  using ds = Tensor.empty([1], 'f32', device);
  using dbias = Tensor.empty([1], 'f32', device);
  const { loss } = ops.sigmoidLoss(ti, tt, ts, tb, { positiveOffset: off, gradScale, grads: { dImage: di, dText: dt, dLogitScale: ds, dLogitBias: dbias } });
  return { loss, dImage: di.hostFloat32(), dText: dt.hostFloat32(), dLogitScale: ds.hostFloat32()[0], dLogitBias: dbias.hostFloat32()[0] };
}

const close = (a: number, b: number, tol: number) => Math.abs(a - b) <= tol * Math.max(1, Math.abs(b));

cudaTest(`sigmoidLoss on CUDA equals the CPU op and the float64 reference, N = 1, 33, 256 and a rank's block (${cudaDeviceKind})`, (t) => {
  ran();
  t.log(`seed ${seed} (CLIPSCALE_TEST_SEED replays it)`);
  // [R, C, D, offset, log scale, bias, gradScale]: square blocks at SigLIP's init (ln 10, −10) and at the
  // clamp (ln 100) with a bias that makes margins of ±100 (−log σ must not overflow), a rank's block
  // (R images against C = 3R gathered texts, positives in the middle block) and a negatives-only block.
  const cases: [number, number, number, number, number, number, number][] = [
    [1, 1, 16, 0, Math.log(10), -10, 1],
    [33, 33, 24, 0, Math.log(10), -10, 1],
    [256, 256, 32, 0, 2.3, 1.5, 1],
    [33, 33, 24, 0, Math.log(100), 30, 1],
    [33, 99, 24, 33, 1.7, -3, 512],
    [17, 40, 8, -1, 1.2, -0.5, 1],
  ];
  let k = 0;
  for (const [R, C, D, off, ls, bias, gs] of cases) {
    const img = normalised(R, D, seed + 2 * k);
    const txt = normalised(C, D, seed + 2 * k + 1);
    k++;
    // Make positives similar so both kinds of pairs matter.
    if (off >= 0) for (let i = 0; i < R; i++) for (let d = 0; d < D; d++) txt[(i + off) * D + d] = 0.7 * img[i * D + d] + 0.3 * txt[(i + off) * D + d];
    const gpu = runOp('cuda', img, txt, R, C, D, ls, bias, off, gs);
    const cpu = runOp('cpu', img, txt, R, C, D, ls, bias, off, gs);
    const ref = reference(img, txt, R, C, D, Math.fround(ls), Math.fround(bias), off);
    const label = `R ${R}, C ${C}, D ${D}, offset ${off}, log scale ${ls.toFixed(3)}, bias ${bias}, gradScale ${gs}`;
    const e = {
      loss: Math.abs(gpu.loss - cpu.loss) / Math.max(1, cpu.loss),
      dImage: relErr(gpu.dImage, cpu.dImage),
      dText: relErr(gpu.dText, cpu.dText),
      refImage: relErr(gpu.dImage, Array.from(ref.dImage, (v) => v * gs)),
      refText: relErr(gpu.dText, Array.from(ref.dText, (v) => v * gs)),
    };
    t.log(`${label}: loss CUDA ${gpu.loss} CPU ${cpu.loss} ref ${ref.loss}; CUDA vs CPU rel: loss ${e.loss.toExponential(1)}, dImage ${e.dImage.toExponential(1)}, dText ${e.dText.toExponential(1)}; vs f64: dImage ${e.refImage.toExponential(1)}, dText ${e.refText.toExponential(1)}`);
    t.true(Number.isFinite(gpu.loss) && gpu.dImage.every(Number.isFinite) && gpu.dText.every(Number.isFinite), `${label}: finite`);
    // fp32 logits and fp32 sums per thread: a few ulps of the CPU's double sums.
    t.true(e.loss < 1e-5, `${label}: loss`);
    t.true(close(cpu.loss, ref.loss, 1e-5), `${label}: CPU loss ${cpu.loss} vs f64 ${ref.loss}`);
    t.true(e.dImage < 1e-4 && e.dText < 1e-4, `${label}: feature gradients vs CPU`);
    t.true(e.refImage < 1e-4 && e.refText < 1e-4, `${label}: feature gradients vs f64`);
    for (const [name, g, c, r] of [['dLogitScale', gpu.dLogitScale, cpu.dLogitScale, ref.dLogitScale], ['dLogitBias', gpu.dLogitBias, cpu.dLogitBias, ref.dLogitBias]] as const) {
      t.true(close(g, c, 1e-5 * gs), `${label}: ${name} CUDA ${g} vs CPU ${c}`);
      t.true(close(g, r * gs, 1e-5 * gs), `${label}: ${name} CUDA ${g} vs f64 ${r * gs}`);
    }
  }
});

cudaTest('sigmoidLoss on CUDA refuses bad input with the same errors as the CPU op, and can leave the loss on the device', (t) => {
  ran();
  using img = Tensor.from(normalised(4, 8, 1), [4, 8]).to('cuda');
  using txt = Tensor.from(normalised(4, 8, 2), [4, 8]).to('cuda');
  using s = Tensor.from([1]).to('cuda');
  using b = Tensor.from([-1]).to('cuda');
  using hostBias = Tensor.from([-1]);
  t.throws(() => ops.sigmoidLoss(img, txt, s, hostBias), { message: /sigmoidLoss: tensors are on different devices/ });
  t.throws(() => ops.sigmoidLoss(img, txt, s, b, { positiveOffset: 1 }), { message: /sigmoidLoss: positiveOffset 1 puts the positives .* outside the 4 text rows/ });
  using wrong = Tensor.empty([4, 7], 'f32', 'cuda');
  t.throws(() => ops.sigmoidLoss(img, txt, s, b, { grads: { dImage: wrong } }), { message: /sigmoidLoss: dImage and image must have the same shape/ });
  using out = Tensor.zeros([1], 'f32', 'cuda');
  const r = ops.sigmoidLoss(img, txt, s, b, { lossOut: out, deferLoss: true });
  t.true(Number.isNaN(r.loss));
  const now = ops.sigmoidLoss(img, txt, s, b);
  t.is(out.hostFloat32()[0], Math.fround(now.loss));
});

const data = () => new SyntheticData({ seed: 9, size: 64, imageSize: 32, contextLength: 32 });

function sigLipStep(model: CLIP, images: Float32Array, tokens: Int32Array, n: number, bf16: boolean) {
  const dev = model.device;
  using img = Tensor.from(images, [n, 3, 32, 32]);
  using ids = Tensor.from(tokens, [n, 32]);
  const batch = dev === 'cpu' ? { images: img, ids } : { images: img.to(dev), ids: ids.to(dev) };
  const previous = native.bf16Emulation();
  native.setBf16Emulation(bf16);
  try {
    using runner = new StepRunner(model, 'siglip');
    model.zeroGrad();
    const loss = runner.forwardBackward([batch]);
    return { loss, grads: new Map(model.parameters().map((p) => [p.name, p.grad.hostFloat32()])) };
  } finally {
    native.setBf16Emulation(previous);
    if (dev !== 'cpu') for (const x of [batch.images, batch.ids]) x.dispose();
  }
}

cudaTest('a SigLIP training step on CUDA agrees with the CPU: loss and every gradient, logit scale and bias included', async (t) => {
  ran();
  const n = 8;
  const host = await data().batch(0, n);
  const make = () => createModel('micro', { seed: 4, overrides: { init_logit_bias: SIGLIP_INIT_LOGIT_BIAS }, initLogitScale: Math.log(10) });
  const cpu = make();
  const gpu = make().to('cuda');
  const onGpu = sigLipStep(gpu, host.images, host.tokens, n, false);
  const bf16 = sigLipStep(cpu, host.images, host.tokens, n, true);
  const fp32 = sigLipStep(cpu, host.images, host.tokens, n, false);
  cpu.dispose();
  gpu.dispose();
  t.log(`loss: CUDA ${onGpu.loss}, CPU bf16 ${bf16.loss}, CPU fp32 ${fp32.loss}`);
  t.true(Math.abs(onGpu.loss - bf16.loss) / bf16.loss < 5e-3);
  let worst = 0;
  for (const [name, g] of onGpu.grads) {
    const vsBf16 = maxRelErr(g, bf16.grads.get(name)!);
    const vsFp32 = maxRelErr(g, fp32.grads.get(name)!);
    const noise = maxRelErr(bf16.grads.get(name)!, fp32.grads.get(name)!);
    worst = Math.max(worst, vsBf16);
    t.true(g.every(Number.isFinite), `${name}: finite`);
    t.true(vsBf16 < 6e-2, `${name}: CUDA vs CPU bf16 ${vsBf16}`);
    t.true(vsFp32 <= 3.5 * Math.max(noise, 1e-2), `${name}: CUDA vs fp32 ${vsFp32}, bf16 rounding alone ${noise}`);
  }
  t.log(`gradients: max rel err CUDA vs CPU bf16 ${worst.toExponential(2)}; logit_scale grad CUDA ${onGpu.grads.get('logit_scale')![0]} CPU ${bf16.grads.get('logit_scale')![0]}; logit_bias grad CUDA ${onGpu.grads.get('logit_bias')![0]} CPU ${bf16.grads.get('logit_bias')![0]}`);
  t.true(Math.abs(onGpu.grads.get('logit_bias')![0]) > 0, 'the bias gets a gradient');
});

cudaTest('Trainer with siglip on CUDA tracks the CPU (bf16) losses, logit scale and bias', async (t) => {
  ran();
  const opts = (extra: Partial<TrainerOptions>): TrainerOptions => ({ model: 'micro', data: data(), batchSize: 8, samples: 24, lr: 2e-3, warmup: 1, seed: 3, logEvery: 1, siglip: true, gradClipNorm: 1, ...extra });
  const run = async (o: TrainerOptions) => {
    using trainer = new Trainer(o);
    const recs = [];
    for await (const r of trainer.run()) recs.push(r);
    return recs;
  };
  const gpu = await run(opts({ device: 'cuda' }));
  const cpu = await run(opts({ precision: 'bf16' }));
  t.log(`losses CUDA ${gpu.map((r) => r.loss.toFixed(5)).join(', ')}; CPU bf16 ${cpu.map((r) => r.loss.toFixed(5)).join(', ')}`);
  t.log(`logit bias CUDA ${gpu.map((r) => r.logit_bias).join(', ')}; CPU ${cpu.map((r) => r.logit_bias).join(', ')}`);
  t.is(gpu.length, 3);
  gpu.forEach((r, i) => {
    t.true(Math.abs(r.loss - cpu[i].loss) / cpu[i].loss < 2e-2, `step ${i + 1}: loss ${r.loss} vs ${cpu[i].loss}`);
    t.true(Math.abs((r.logit_bias as number) - (cpu[i].logit_bias as number)) < 1e-3, `step ${i + 1}: bias ${r.logit_bias} vs ${cpu[i].logit_bias}`);
    t.true(Math.abs(r.logit_scale - cpu[i].logit_scale) / cpu[i].logit_scale < 1e-3, `step ${i + 1}: scale ${r.logit_scale} vs ${cpu[i].logit_scale}`);
  });
});

cudaTest('SigLIP steps on CUDA read nothing back (deferred outcomes: loss on the device, logit bias from the outcome slot): bit for bit the records and state of reading every step, and captured in CUDA graphs', async (t) => {
  ran();
  const opts = (extra: Partial<TrainerOptions>): TrainerOptions => ({
    model: 'micro', data: data(), batchSize: 8, samples: 40, lr: 2e-3, warmup: 1, seed: 3, logEvery: 1, siglip: true, gradClipNorm: 1, device: 'cuda', ...extra,
  });
  const run = async (o: TrainerOptions) => {
    using trainer = new Trainer(o);
    const records = [];
    const syncs: number[] = [];
    for await (const r of trainer.run()) {
      records.push(r);
      syncs.push(native.cudaWaitStats().streamSyncs);
    }
    const state = trainingState(trainer);
    const g = trainer.cudaGraphs;
    return { records, syncs, state, deferred: trainer.deferOutcomes, captures: g?.captures ?? 0, replays: g?.replays ?? 0, why: g?.fallbackReason ?? null };
  };
  // Watch the loss calls of the eager deferred run: every one leaves its loss on the device.
  const deferLoss: unknown[] = [];
  const n = native as unknown as Record<string, (...a: unknown[]) => unknown>;
  const { sigmoidLoss } = n;
  n.sigmoidLoss = (...a: unknown[]) => (deferLoss.push(a[12]), sigmoidLoss(...a));
  let eager;
  try {
    eager = await run(opts({ cudaGraphs: false }));
  } finally {
    n.sigmoidLoss = sigmoidLoss;
  }
  const sync = await run(opts({ deferOutcomes: false }));
  const graphs = await run(opts({}));
  t.true(eager.deferred, 'deferred outcomes are the default for SigLIP on CUDA');
  t.deepEqual(deferLoss, [true, true, true, true, true]);
  // Between the first record and the last, the deferred steps never waited for the whole stream;
  // the synchronous ones did (each step's loss read back).
  t.is(eager.syncs.at(-1), eager.syncs[0], `stream syncs ${eager.syncs.join(', ')}`);
  t.is(graphs.syncs.at(-1), graphs.syncs[0], `stream syncs ${graphs.syncs.join(', ')}`);
  t.true(sync.syncs.at(-1)! > sync.syncs[0], `stream syncs ${sync.syncs.join(', ')}`);
  t.is(graphs.why, null);
  t.is(graphs.captures, 2);
  t.is(graphs.replays, 3);
  t.log(`losses ${eager.records.map((r) => r.loss.toFixed(5)).join(', ')}; logit bias ${eager.records.map((r) => (r.logit_bias as number).toFixed(6)).join(', ')}`);
  for (const other of [eager, graphs]) {
    sameOnDevice(t, other.records.map((r) => r.loss), sync.records.map((r) => Math.fround(r.loss)), 'losses');
    sameOnDevice(t, other.records.map((r) => r.logit_bias as number), sync.records.map((r) => r.logit_bias as number), 'logit biases');
    sameOnDevice(t, other.records.map((r) => r.logit_scale), sync.records.map((r) => r.logit_scale), 'logit scales');
    sameOnDevice(t, other.records.map((r) => r.grad_norm as number), sync.records.map((r) => r.grad_norm as number), 'grad norms');
    other.state.forEach((a, i) => sameOnDevice(t, a, sync.state[i], `state tensor ${i}`));
  }
  // The bias moved (it is trained), so reading it from the slot is tested.
  t.not(eager.records[0].logit_bias, eager.records.at(-1)!.logit_bias);
});

cudaTest('SigLipLoss on CUDA takes the scale and bias as numbers without a host tensor per call (a fill kernel writes them): the same loss and gradients as with device tensors', (t) => {
  ran();
  const n = 6;
  const d = 16;
  using img = Tensor.from(randn(n * d, seed + 11), [n, d]).to('cuda');
  using txt = Tensor.from(randn(n * d, seed + 12), [n, d]).to('cuda');
  using scale = Tensor.from([2.3]).to('cuda');
  using bias = Tensor.from([-10]).to('cuda');
  using loss = new SigLipLoss();
  const withTensors = loss.forwardBackward(img, txt, scale, bias);
  const expect = { loss: withTensors.loss, dImage: withTensors.dImage.hostFloat32(), dText: withTensors.dText.hostFloat32(), dScale: withTensors.dLogitScale, dBias: withTensors.dLogitBias };
  // Count the host tensors made while the numbers are turned into device scalars.
  const made: unknown[] = [];
  const from = Tensor.from;
  (Tensor as unknown as { from: (...a: unknown[]) => unknown }).from = (...a: unknown[]) => (made.push(a[0]), (from as (...a: unknown[]) => unknown).apply(Tensor, a));
  let withNumbers;
  try {
    withNumbers = loss.forwardBackward(img, txt, Math.fround(2.3), -10);
  } finally {
    (Tensor as unknown as { from: typeof from }).from = from;
  }
  t.is(made.length, 0, 'no host tensor made for the numbers');
  t.is(withNumbers.loss, expect.loss);
  t.deepEqual(withNumbers.dImage.hostFloat32(), expect.dImage);
  t.deepEqual(withNumbers.dText.hostFloat32(), expect.dText);
  t.is(withNumbers.dLogitScale, expect.dScale);
  t.is(withNumbers.dLogitBias, expect.dBias);
});
