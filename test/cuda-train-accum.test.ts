// Gradient accumulation (OpenCLIP's --accum-freq) on CUDA, checked against the CPU backend:
// the features of every micro-batch are computed first, the loss of the whole batch gives each
// row's feature gradient, and each micro-batch is recomputed and backpropagated with its rows
// (row views of device tensors). Without a GPU these run on the emulated device.
import test from 'ava';

import { maxRelErr } from './_helpers/numeric.js';
import { countCudaTests, cudaDeviceKind, noGpuReason } from './_helpers/cuda.js';
import { native } from '../lib/native.js';
import { createModel, type CLIP } from '../lib/nn/clip.js';
import { Tensor } from '../lib/tensor.js';
import { SyntheticData } from '../lib/train/sources.js';
import { StepRunner } from '../lib/train/step.js';
import { Trainer, type TrainerOptions } from '../lib/train/trainer.js';

const ran = countCudaTests(test, 'cuda-train-accum.test.ts');
const cudaTest = noGpuReason === null ? test.serial : test.serial.skip;
if (noGpuReason !== null) console.log(`cuda-train-accum: skipped: ${noGpuReason}`);

const data = () => new SyntheticData({ seed: 7, size: 64, imageSize: 32, contextLength: 32 });

interface StepResult {
  loss: number;
  grads: Map<string, Float32Array>;
}

/** One forward+backward of `model` on n samples split into `parts` micro-batches. */
function step(model: CLIP, images: Float32Array, tokens: Int32Array, n: number, parts: number, bf16Emulation: boolean): StepResult {
  const dev = model.device;
  const per = n / parts;
  const px = 3 * 32 * 32;
  const made: Tensor[] = [];
  const batches = Array.from({ length: parts }, (_, j) => {
    const img = Tensor.from(images.subarray(j * per * px, (j + 1) * per * px), [per, 3, 32, 32]);
    const ids = Tensor.from(tokens.subarray(j * per * 32, (j + 1) * per * 32), [per, 32]);
    made.push(img, ids);
    if (dev === 'cpu') return { images: img, ids };
    const b = { images: img.to(dev), ids: ids.to(dev) };
    made.push(b.images, b.ids);
    return b;
  });
  const previous = native.bf16Emulation();
  native.setBf16Emulation(bf16Emulation);
  try {
    using runner = new StepRunner(model);
    model.zeroGrad();
    const loss = runner.forwardBackward(batches);
    return { loss, grads: new Map(model.parameters().map((p) => [p.name, p.grad.hostFloat32()])) };
  } finally {
    native.setBf16Emulation(previous);
    for (const t of made) t.dispose();
  }
}

cudaTest(`accumFreq 2 on CUDA: the step agrees with the CPU's accumFreq 2 and equals CUDA's unaccumulated step on the same batch (${cudaDeviceKind})`, async (t) => {
  ran();
  const n = 8;
  const host = await data().batch(0, n);
  const cpu = createModel('micro', { seed: 2 });
  const gpu = createModel('micro', { seed: 2 }).to('cuda');
  const gpu2 = step(gpu, host.images, host.tokens, n, 2, false);
  const gpu1 = step(gpu, host.images, host.tokens, n, 1, false);
  const cpu2 = step(cpu, host.images, host.tokens, n, 2, true);
  const cpu1 = step(cpu, host.images, host.tokens, n, 1, true);
  const fp32 = step(cpu, host.images, host.tokens, n, 2, false);
  cpu.dispose();
  gpu.dispose();
  t.log(`loss: CUDA accum 2 ${gpu2.loss}, CUDA accum 1 ${gpu1.loss}; CPU bf16 accum 2 ${cpu2.loss}, accum 1 ${cpu1.loss}; CPU fp32 ${fp32.loss}`);
  // The loss is computed once over the whole batch's features either way.
  t.true(Math.abs(gpu2.loss - cpu2.loss) / cpu2.loss < 5e-3, `loss CUDA ${gpu2.loss} vs CPU ${cpu2.loss}`);
  t.true(Math.abs(gpu2.loss - gpu1.loss) <= 1e-6 * gpu1.loss, `CUDA accum 2 ${gpu2.loss} vs accum 1 ${gpu1.loss}`);
  let worstVsCpu = 0;
  let worstAccumGpu = 0;
  let worstAccumCpu = 0;
  for (const [name, g2] of gpu2.grads) {
    t.true(g2.every(Number.isFinite), `${name}: non-finite gradient on CUDA`);
    const vsCpu = maxRelErr(g2, cpu2.grads.get(name)!);
    const vsFp32 = maxRelErr(g2, fp32.grads.get(name)!);
    const bf16Noise = maxRelErr(cpu2.grads.get(name)!, fp32.grads.get(name)!);
    // Same bounds as the unaccumulated CUDA step (cuda-train.test.ts): bf16's own noise sets the scale.
    t.true(vsCpu < 6e-2, `${name}: CUDA vs CPU bf16 (both accum 2) rel err ${vsCpu}`);
    t.true(vsFp32 <= 3.5 * Math.max(bf16Noise, 1e-2), `${name}: CUDA vs fp32 ${vsFp32}, bf16 rounding alone ${bf16Noise}`);
    // Accumulated vs not, on each backend: the same features and feature gradients, the
    // parameter gradients summed over two halves instead of in one product.
    const accumGpu = maxRelErr(g2, gpu1.grads.get(name)!);
    const accumCpu = maxRelErr(cpu2.grads.get(name)!, cpu1.grads.get(name)!);
    worstVsCpu = Math.max(worstVsCpu, vsCpu);
    worstAccumGpu = Math.max(worstAccumGpu, accumGpu);
    worstAccumCpu = Math.max(worstAccumCpu, accumCpu);
    t.true(accumGpu <= Math.max(4 * accumCpu, 1e-5), `${name}: CUDA accum 2 vs 1 ${accumGpu}, CPU's ${accumCpu}`);
  }
  t.log(`gradients, max rel err: CUDA vs CPU (accum 2) ${worstVsCpu.toExponential(2)}; accum 2 vs 1: CUDA ${worstAccumGpu.toExponential(2)}, CPU bf16 ${worstAccumCpu.toExponential(2)}`);
});

cudaTest('Trainer with accumFreq 2 on CUDA tracks the CPU (bf16, accumFreq 2) losses', async (t) => {
  ran();
  const opts = (extra: Partial<TrainerOptions>): TrainerOptions => ({ model: 'micro', data: data(), batchSize: 8, accumFreq: 2, samples: 24, lr: 2e-3, warmup: 1, seed: 3, logEvery: 1, gradClipNorm: 1, ...extra });
  const losses = async (o: TrainerOptions) => {
    using trainer = new Trainer(o);
    const out: number[] = [];
    for await (const r of trainer.run()) out.push(r.loss);
    return out;
  };
  const gpu = await losses(opts({ device: 'cuda' }));
  const cpu = await losses(opts({ precision: 'bf16' }));
  t.log(`losses CUDA ${gpu.map((l) => l.toFixed(5)).join(', ')}; CPU bf16 ${cpu.map((l) => l.toFixed(5)).join(', ')}`);
  t.is(gpu.length, 3);
  gpu.forEach((l, i) => t.true(Math.abs(l - cpu[i]) / cpu[i] < 2e-2, `step ${i + 1}: ${l} vs ${cpu[i]}`));
});
