// Full CLIP training steps on CUDA (clipscale's side of the GPU training benchmark; the PyTorch
// side is benchmarks/train_gpu_pytorch.py, run in the same GPU check). PREPARED, NOT YET RUN ON A
// GPU: only a dry run on the emulated device (CLIPSCALE_CUDA=emulate, --configs micro:4) has run it.
//
//   node --import=tsx benchmarks/train_gpu.ts [--configs ViT-B-32:256,ViT-B-16:128,ViT-L-14:64]
//        [--steps 10] [--warmup 3] [--peak-tflops 989] [--dump DIR] [--out FILE]
//
// Each step is the Trainer's: zero gradients, forward, fused contrastive loss, backward, global
// gradient norm, AdamW (OpenCLIP's defaults and decay groups), logit-scale clamp; bf16 (the CUDA
// kernels' precision); 224-pixel images and context 77 as the configs say; the batch is made once
// and already on the GPU (no loader). A step ends when its loss reaches the host, which waits for
// the GPU, so wall time per step is GPU time plus launch overhead.
// MFU = 3 · 2 · MACs/sample · batch / step time / peak bf16 dense FLOP/s: MACs from
// lib/scaling/flops.ts (the scaling-law paper's count, forward only; backward = 2 × forward),
// peak 989 TFLOP/s for H100/H200 SXM unless --peak-tflops says otherwise.
// Peak memory: the caching allocator's peak of bytes in live blocks (native.cudaMemoryStats,
// reset before each config's model is made), i.e. weights, moments, gradients, activations and
// scratch; the CUDA context and cuBLASLt's workspace are not in it (torch.cuda.max_memory_allocated
// counts the same way on the PyTorch side). Not measured yet: a per-phase step-time breakdown.
//
// --dump DIR writes, per config, what the PyTorch side needs for its parity check: the initial
// weights (OpenCLIP names), the batch, and this library's loss and gradients of one step from
// those weights, plus meta.json (MACs per sample, batch, config path).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { native } from '../lib/native.js';
import { createModel } from '../lib/nn/clip.js';
import { loadModelConfig } from '../lib/nn/config.js';
import { MAX_LOGIT_SCALE } from '../lib/nn/clip.js';
import { AdamW } from '../lib/optim/adamw.js';
import * as ops from '../lib/ops.js';
import { computeCost } from '../lib/scaling/flops.js';
import { Tensor } from '../lib/tensor.js';
import { writeSafetensors } from '../lib/train/safetensors.js';
import { StepRunner } from '../lib/train/step.js';
import { Rng } from '../lib/util/rng.js';

const { values } = parseArgs({
  options: {
    configs: { type: 'string', default: 'ViT-B-32:256,ViT-B-16:128,ViT-L-14:64' },
    steps: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '3' },
    'peak-tflops': { type: 'string', default: '989' },
    device: { type: 'string', default: 'cuda' },
    dump: { type: 'string' },
    out: { type: 'string' },
  },
});

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Normal pixels and token ids with an end-of-text token (the largest id) at a random length. */
function makeBatch(n: number, imageSize: number, context: number, vocab: number, seed: number) {
  const rng = new Rng(seed);
  const images = new Float32Array(n * 3 * imageSize * imageSize);
  for (let i = 0; i < images.length; i++) images[i] = rng.normal();
  const ids = new Int32Array(n * context);
  for (let b = 0; b < n; b++) {
    const len = 2 + Math.floor(rng.uniform() * (context - 2));
    ids[b * context] = vocab - 2; // start of text
    for (let s = 1; s < len - 1; s++) ids[b * context + s] = 1 + Math.floor(rng.uniform() * (vocab - 3));
    ids[b * context + len - 1] = vocab - 1; // end of text: the argmax
  }
  return { images, ids };
}

const lines: string[] = [];
const emit = (o: Record<string, unknown>) => {
  const line = JSON.stringify(o);
  lines.push(line);
  console.log(line);
};

const device = values.device!;
const steps = Number(values.steps);
const warmup = Number(values.warmup);
const peak = Number(values['peak-tflops']) * 1e12;
const deviceName = (native.cudaBackendStatus as () => { emulated: boolean })().emulated ? 'emulated device' : 'gpu';

for (const spec of values.configs!.split(',')) {
  const [name, b] = spec.split(':');
  const batch = Number(b);
  const cfg = loadModelConfig(name);
  const imageSize = cfg.vision_cfg.image_size;
  const context = cfg.text_cfg.context_length;
  const macs = computeCost(cfg).gmacs * 1e9;
  native.cudaResetPeakMemory(device);
  const model = createModel(name, { seed: 0 });
  const initial = values.dump ? model.stateDict() : null;
  model.to(device);
  const host = makeBatch(batch, imageSize, context, cfg.text_cfg.vocab_size, 1);
  const images = Tensor.from(host.images, [batch, 3, imageSize, imageSize]);
  const ids = Tensor.from(host.ids, [batch, context]);
  const onDevice = { images: images.to(device), ids: ids.to(device) };
  const runner = new StepRunner(model);
  const optimizer = new AdamW(model.parameters(), {});
  const grads = model.parameters().map((p) => p.grad);
  const times: number[] = [];
  let loss = NaN;
  for (let i = 0; i < warmup + steps; i++) {
    const t0 = performance.now();
    model.zeroGrad();
    loss = runner.forwardBackward([onDevice]);
    if (i === 0 && values.dump && initial) {
      const dir = join(values.dump, name);
      mkdirSync(dir, { recursive: true });
      const rec = (shape: number[], data: Float32Array) => ({ dtype: 'F32' as const, shape, data });
      await writeSafetensors(join(dir, 'weights.safetensors'), Object.fromEntries([...initial].map(([k, v]) => [k, rec(v.shape, v.data)])));
      await writeSafetensors(join(dir, 'grads.safetensors'), Object.fromEntries(model.parameters().map((p) => [p.name, rec(p.shape, p.grad.hostFloat32())])));
      await writeSafetensors(join(dir, 'batch.safetensors'), {
        images: rec([batch, 3, imageSize, imageSize], host.images),
        ids: { dtype: 'I32', shape: [batch, context], data: host.ids },
      });
      writeFileSync(join(dir, 'meta.json'), JSON.stringify({ config: name, batch, loss, macs_per_sample: macs, precision: 'bf16', device: deviceName }));
    }
    ops.gradNorm(grads);
    optimizer.update(5e-4);
    ops.clamp(model.logitScale.data, 0, MAX_LOGIT_SCALE);
    if (!Number.isFinite(loss)) throw new Error(`${name}: non-finite loss at step ${i}`);
    if (i >= warmup) times.push((performance.now() - t0) / 1000);
  }
  const step = median(times);
  emit({
    bench: 'train_step', impl: 'clipscale', device: deviceName, config: name, batch, precision: 'bf16', image_size: imageSize, context,
    step_ms: Number((step * 1e3).toFixed(2)), samples_per_s: Number((batch / step).toFixed(1)),
    mfu: Number(((6 * macs * batch) / step / peak).toFixed(4)), peak_tflops: peak / 1e12, macs_per_sample: macs,
    peak_memory_bytes: native.cudaMemoryStats(device).peakAllocatedBytes, loss_last: loss,
  });
  runner.dispose();
  optimizer.dispose();
  model.dispose();
  for (const t of [images, ids, onDevice.images, onDevice.ids]) t.dispose();
}
if (values.out) writeFileSync(values.out, lines.join('\n') + '\n');
