// Activations stored in the run's 16-bit type on CUDA (bf16 / fp16 runs): every activation that
// only a linear reads (lib/nn/activation_dtype.ts), the attention output (out_proj's input,
// which the attention backward also reads) and qkv (in_proj's output, read by the attention). A training step with them gives the same loss
// and gradients, to the last bit, as the same step storing them in f32 rounded to that type
// (setActivations16(false)), and the activation buffers shrink by exactly 2 bytes an element.
import test from 'ava';

import { countCudaTests, noGpuReason } from './_helpers/cuda.js';
import { native } from '../lib/native.js';
import { setActivations16 } from '../lib/nn/activation_dtype.js';
import { createModel, type CLIP } from '../lib/nn/clip.js';
import { Tensor } from '../lib/tensor.js';
import { SyntheticData } from '../lib/train/sources.js';
import { StepRunner } from '../lib/train/step.js';

const ran = countCudaTests(test, 'cuda-activations16.test.ts');
const cudaTest = noGpuReason === null ? test.serial : test.serial.skip;
if (noGpuReason !== null) console.log(`cuda-activations16: skipped: ${noGpuReason}`);

const n = 4;
const data = () => new SyntheticData({ seed: 5, size: 16, imageSize: 32, contextLength: 32 });

interface StepResult {
  loss: number;
  grads: Map<string, Float32Array>;
  activationBytes: number;
}

function step(model: CLIP, images: Float32Array, tokens: Int32Array, precision: 'bf16' | 'fp16', act16: boolean): StepResult {
  const batch = { images: Tensor.from(images, [n, 3, 32, 32]).to('cuda'), ids: Tensor.from(tokens, [n, 32]).to('cuda') };
  const previous = native.cudaSetPrecision(precision);
  const previousAct = setActivations16(act16);
  try {
    using runner = new StepRunner(model);
    model.zeroGrad();
    const loss = runner.forwardBackward([batch]);
    const grads = new Map(model.parameters().map((p) => [p.name, p.grad.hostFloat32()]));
    return { loss, grads, activationBytes: model.bufferBytes('training') };
  } finally {
    setActivations16(previousAct);
    native.cudaSetPrecision(previous);
    batch.images.dispose();
    batch.ids.dispose();
  }
}

/**
 * Elements stored 16-bit a step: per block and token, ln_1's and ln_2's outputs and the attention
 * output (width each), qkv (3 widths) and the MLP hidden activation (mlpWidth).
 */
function elements16(model: CLIP): number {
  let total = 0;
  for (const [tower, tokens] of [[model.visual.transformer, (32 / model.config.vision_cfg.patch_size) ** 2 + 1], [model.text.transformer, 32]] as const) {
    const { width, mlpWidth, layers } = tower.opts;
    total += layers * n * tokens * (6 * width + mlpWidth);
  }
  return total;
}

for (const modelName of ['micro', 'tiny']) {
  for (const precision of ['bf16', 'fp16'] as const) {
    cudaTest(`${modelName} ${precision} step on CUDA: layernorm outputs, qkv, attention output and MLP hidden stored ${precision === 'fp16' ? 'f16' : 'bf16'} give the loss and every gradient of f32-rounded storage bit for bit, 2 bytes an element less`, async (t) => {
      ran();
      const host = await data().batch(0, n);
      let expected = 0;
      const run = (act16: boolean) => {
        const model = createModel(modelName, { seed: 3 }).to('cuda');
        expected = 2 * elements16(model);
        try {
          return step(model, host.images, host.tokens, precision, act16);
        } finally {
          model.dispose();
        }
      };
      const wide = run(false);
      const half = run(true);
      const exact = native.cudaGemmBackend() === 'own';
      if (exact) t.is(half.loss, wide.loss);
      else t.true(Math.abs(half.loss - wide.loss) <= 1e-6 * Math.abs(wide.loss), `loss ${half.loss} vs ${wide.loss}`);
      for (const [name, g] of wide.grads) {
        if (exact) t.deepEqual(half.grads.get(name), g, name);
        else t.true(half.grads.get(name)!.every((v, i) => Math.abs(v - g[i]) <= 1e-4 * Math.max(1e-30, ...g.map(Math.abs))), name);
      }
      const saved = wide.activationBytes - half.activationBytes;
      t.log(`${modelName} ${precision}, batch ${n}: activation buffers ${wide.activationBytes} B with f32 storage, ${half.activationBytes} B with 16-bit (${saved} B saved, ${((100 * saved) / wide.activationBytes).toFixed(1)}%)`);
      t.is(saved, expected);
    });
  }
}
