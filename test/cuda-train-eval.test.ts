// Evaluation during training on CUDA: the Trainer's periodic zero-shot / retrieval evaluation
// runs the device model (inference forward on the device, each call's features gathered there
// and copied back once), and its results equal evaluating the same weights on the CPU within
// bf16 bounds. Without a GPU this runs on the emulated device.
import test from 'ava';

import { countCudaTests, noGpuReason } from './_helpers/cuda.js';
import { relErr } from './_helpers/numeric.js';
import { defaultSyntheticTokenizer } from '../lib/data/synthetic.js';
import { evaluateSynthetic } from '../lib/eval/synthetic_suite.js';
import { native } from '../lib/native.js';
import { createModel, type CLIP } from '../lib/nn/clip.js';
import { clipEncoder } from '../lib/nn/encoder.js';
import { SyntheticData } from '../lib/train/sources.js';
import { Trainer } from '../lib/train/trainer.js';

const ran = countCudaTests(test, 'cuda-train-eval.test.ts');
const cudaTest = noGpuReason === null ? test.serial : test.serial.skip;
if (noGpuReason !== null) console.log(`cuda-train-eval: skipped: ${noGpuReason}`);

const evalOpts = { seed: 5, imageSize: 32, contextLength: 32, tokenizer: defaultSyntheticTokenizer(), tasks: ['colour'] as const, zeroShotImages: 48, retrievalImages: 24 };

interface Check {
  step: number;
  gpu: Record<string, number>;
  cpu: Record<string, number>;
  featuresVsCpu: number;
  bf16Noise: number;
}

cudaTest('evaluation during CUDA training runs on the device and equals evaluating the same weights on the CPU (bf16 bounds)', async (t) => {
  ran();
  const checks: Check[] = [];
  /** The same weights as `model`, on the CPU. */
  const cpuCopy = (model: CLIP): CLIP => {
    const cpu = createModel('micro', { seed: 0 });
    cpu.loadStateDict(model.stateDict());
    return cpu;
  };
  const evaluate = async (model: CLIP) => {
    t.is(model.device, 'cuda:0');
    // Batches of 16: several batches per call gather in one device tensor.
    const gpuMetrics = await evaluateSynthetic(clipEncoder(model, 16), evalOpts);
    using cpu = cpuCopy(model);
    const cpuMetrics = await evaluateSynthetic(clipEncoder(cpu, 16), evalOpts);
    // Features of one set of images: the device's against the CPU's bf16 emulation (the Trainer
    // has it on during a bf16 run) and, for the scale of bf16 noise, the CPU's fp32.
    const world = new SyntheticData({ seed: 5, size: 24, imageSize: 32, contextLength: 32 });
    const b = await world.batch(0, 24);
    const fGpu = await clipEncoder(model, 16).encodeImages(b.images, 24);
    const fCpu = await clipEncoder(cpu, 16).encodeImages(b.images, 24);
    native.setBf16Emulation(false);
    const fFp32 = await clipEncoder(cpu, 16).encodeImages(b.images, 24);
    native.setBf16Emulation(true);
    const tGpu = await clipEncoder(model, 16).encodeTexts(b.tokens, 24);
    const tCpu = await clipEncoder(cpu, 16).encodeTexts(b.tokens, 24);
    checks.push({
      step: checks.length,
      gpu: gpuMetrics,
      cpu: cpuMetrics,
      featuresVsCpu: Math.max(relErr(fGpu, fCpu), relErr(tGpu, tCpu)),
      bf16Noise: relErr(fCpu, fFp32),
    });
    return gpuMetrics;
  };
  using trainer = new Trainer({ model: 'micro', data: new SyntheticData({ seed: 5, size: 64, imageSize: 32, contextLength: 32 }), batchSize: 8, samples: 24, lr: 2e-3, seed: 3, logEvery: 10, evalEvery: 16, evaluate, device: 'cuda' });
  const records = [];
  for await (const r of trainer.run()) records.push(r);
  // Evaluated after 16 samples (step 2) and at the end (step 3), each time in that step's record.
  t.deepEqual(records.map((r) => r.step), [2, 3]);
  t.is(checks.length, 2);
  for (const [i, c] of checks.entries()) {
    t.log(`evaluation ${i + 1}: CUDA ${JSON.stringify(c.gpu)}; CPU ${JSON.stringify(c.cpu)}; features CUDA vs CPU bf16 rel ${c.featuresVsCpu.toExponential(2)} (bf16 vs fp32 on the CPU ${c.bf16Noise.toExponential(2)})`);
    t.deepEqual(Object.keys(c.gpu).sort(), Object.keys(c.cpu).sort());
    for (const [k, v] of Object.entries(c.gpu)) {
      t.is(records[i][k], v, `${k} is in the record of step ${records[i].step}`);
      if (k.startsWith('retrieval_num_')) t.is(v, c.cpu[k], k);
      // A rank moves by one place for each near tie that bf16 noise reorders.
      else if (k.endsWith('_rank')) t.true(Math.abs(v - c.cpu[k]) <= Math.max(1, 0.05 * c.cpu[k]), `${k}: CUDA ${v} vs CPU ${c.cpu[k]}`);
      // An accuracy or recall moves by 1/48 (zero-shot) or 1/120 (retrieval) for each item it flips.
      else t.true(Math.abs(v - c.cpu[k]) <= 0.07, `${k}: CUDA ${v} vs CPU ${c.cpu[k]}`);
    }
    t.true(c.featuresVsCpu <= 3.5 * Math.max(c.bf16Noise, 1e-2), `features: CUDA vs CPU ${c.featuresVsCpu}, bf16 noise ${c.bf16Noise}`);
  }
  // The evaluation left training as it was: the device model trains on.
  t.true(trainer.model.parameters().every((p) => p.data.device === 'cuda:0'));
});
