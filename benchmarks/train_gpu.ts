// Full CLIP training steps on CUDA (clipscale's side of the GPU training benchmark; the PyTorch
// side is benchmarks/train_gpu_pytorch.py, run in the same GPU check). PREPARED, NOT YET RUN ON A
// GPU: only dry runs on the emulated device (--dry-run: micro at batch 4) have run it.
//
//   node --import=tsx benchmarks/train_gpu.ts [--configs ViT-B-32:256,ViT-B-16:128,ViT-L-14:64]
//        [--steps 10] [--warmup 3] [--graphs on|off] [--peak-tflops 989] [--dump DIR | --meta DIR] [--out FILE] [--dry-run]
//
// Each step is the Trainer's deferred CUDA step: zero gradients, forward, fused contrastive loss
// (left on the device), backward, global gradient norm (on the device), gated AdamW (OpenCLIP's
// defaults and decay groups; lr and bias corrections from the device schedule record),
// logit-scale clamp; bf16; 224-pixel images and context 77 as the configs say; the batch is made
// once and already on the GPU (no loader). With --graphs on (the default, as the Trainer) the step
// is captured in a CUDA graph after 2 eager steps and replayed (lib/train/cuda_graph_step.ts).
// Timing: after the warm-up steps (at least 3, so the graph is captured), `steps` steps are queued
// back to back and the time runs until the last step's loss is on the host (an event after it):
// step time = that window / steps, i.e. throughput as a training loop that reads its loss a step
// late sees it. launch_ms is the host's time to queue one step.
// MFU = 6 · MACs/sample · batch / step time / peak bf16 dense FLOP/s (forward 2 FLOPs per MAC,
// backward twice the forward): MACs from lib/scaling/flops.ts (the scaling-law paper's count);
// peak 989 TFLOP/s (H100/H200 SXM dense bf16) unless --peak-tflops says otherwise.
// Peak memory: the caching allocator's peak of bytes in live blocks (native.cudaMemoryStats,
// reset before each config's model is made): weights, moments, gradients, activations, scratch
// and the graphs' pool; the CUDA context and cuBLASLt's workspace are not in it
// (torch.cuda.max_memory_allocated counts the same way on the PyTorch side).
// Breakdown: after the timed window, 3 eager steps with timed events between their phases
// (image tower forward, text tower forward, loss, image backward, text backward, optimizer: norm,
// AdamW, clamp); medians in ms (on the emulated device: the host's time running the emulation).
//
// --dump DIR writes, per config, what the PyTorch side needs for its parity check: the initial
// weights (OpenCLIP names), the batch, and this library's loss and gradients of one step from
// those weights, plus meta.json (MACs per sample, batch, config path). --meta DIR writes meta.json
// only (the PyTorch side's MFU uses its MACs).
// --dry-run: micro:4, 2 steps after 3 warm-up steps, on the emulated device when there is no GPU
// (CLIPSCALE_CUDA=emulate unless set): shows the script runs, measures nothing.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { native } from '../lib/native.js';
import { CudaGraphSteps, scheduledAdamwUpdate } from '../lib/train/cuda_graph_step.js';
import { createModel } from '../lib/nn/clip.js';
import { loadModelConfig } from '../lib/nn/config.js';
import { MAX_LOGIT_SCALE } from '../lib/nn/clip.js';
import { AdamW } from '../lib/optim/adamw.js';
import { ClipLoss } from '../lib/loss/contrastive.js';
import * as ops from '../lib/ops.js';
import { computeCost } from '../lib/scaling/flops.js';
import { Tensor } from '../lib/tensor.js';
import { writeSafetensors } from '../lib/train/safetensors.js';
import { StepRunner } from '../lib/train/step.js';
import { Rng } from '../lib/util/rng.js';

const { values } = parseArgs({
  options: {
    configs: { type: 'string' },
    steps: { type: 'string' },
    warmup: { type: 'string' },
    graphs: { type: 'string', default: 'on' },
    'dry-run': { type: 'boolean', default: false },
    'peak-tflops': { type: 'string', default: '989' },
    device: { type: 'string', default: 'cuda' },
    dump: { type: 'string' },
    meta: { type: 'string' },
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

const dryRun = values['dry-run']!;
if (dryRun) process.env.CLIPSCALE_CUDA ??= (native.probeGpu as () => { driver: { found: boolean } })().driver.found ? 'gpu' : 'emulate';
const configs = values.configs ?? (dryRun ? 'micro:4' : 'ViT-B-32:256,ViT-B-16:128,ViT-L-14:64');
const device = values.device!;
const steps = Number(values.steps ?? (dryRun ? 2 : 10));
const warmup = Math.max(3, Number(values.warmup ?? 3));
const peak = Number(values['peak-tflops']) * 1e12;
if (values.graphs !== 'on' && values.graphs !== 'off') throw new Error(`--graphs must be on or off, got ${values.graphs}`);
const useGraphs = values.graphs === 'on';
const deviceName = (native.cudaBackendStatus as () => { emulated: boolean })().emulated ? 'emulated device' : 'gpu';

for (const spec of configs.split(',')) {
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
  const gate = { loss: Tensor.zeros([1], 'f32', device), norm: Tensor.zeros([1], 'i64', device), applied: Tensor.zeros([1], 'i64', device) };
  const graphs = useGraphs ? new CudaGraphSteps(model.device, optimizer) : null;
  const done = native.cudaEventCreate(device);
  const lr = 5e-4;
  // One deferred step (the Trainer's): nothing is read back; AdamW applies it only if finite.
  const queueStep = () => {
    const work = () => {
      model.zeroGrad();
      runner.forwardBackward([onDevice], 1, gate.loss);
      ops.gradNorm(grads, gate.norm);
      if (graphs) scheduledAdamwUpdate(optimizer, 1, gate, graphs.schedule);
      else optimizer.update(lr, 1, gate);
      ops.clamp(model.logitScale.data, 0, MAX_LOGIT_SCALE);
    };
    if (graphs) graphs.run(0, onDevice.images, lr, optimizer.step + 1, work);
    else work();
    native.cudaEventRecord(done, 'compute');
  };
  const readLoss = () => new Float32Array(native.cudaReadAfter(done, gate.loss.handle))[0];
  let loss = NaN;
  const launchTimes: number[] = [];
  for (let i = 0; i < warmup; i++) {
    if (i === 0 && values.dump && initial) {
      // The parity dump: one eager forward+backward from the initial weights, gradients read back.
      model.zeroGrad();
      runner.forwardBackward([onDevice], 1, gate.loss);
      const dir = join(values.dump, name);
      mkdirSync(dir, { recursive: true });
      const rec = (shape: number[], data: Float32Array) => ({ dtype: 'F32' as const, shape, data });
      await writeSafetensors(join(dir, 'weights.safetensors'), Object.fromEntries([...initial].map(([k, v]) => [k, rec(v.shape, v.data)])));
      await writeSafetensors(join(dir, 'grads.safetensors'), Object.fromEntries(model.parameters().map((p) => [p.name, rec(p.shape, p.grad.hostFloat32())])));
      await writeSafetensors(join(dir, 'batch.safetensors'), {
        images: rec([batch, 3, imageSize, imageSize], host.images),
        ids: { dtype: 'I32', shape: [batch, context], data: host.ids },
      });
      writeFileSync(join(dir, 'meta.json'), JSON.stringify({ config: name, batch, loss: gate.loss.hostFloat32()[0], macs_per_sample: macs, precision: 'bf16', device: deviceName }));
    }
    queueStep();
    loss = readLoss();
    if (!Number.isFinite(loss)) throw new Error(`${name}: non-finite loss at warm-up step ${i}`);
    optimizer.step++; // the gated update was applied (finite loss and norm)
  }
  if (values.meta && !values.dump) {
    mkdirSync(join(values.meta, name), { recursive: true });
    writeFileSync(join(values.meta, name, 'meta.json'), JSON.stringify({ config: name, batch, macs_per_sample: macs, precision: 'bf16', device: deviceName }));
  }
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) {
    const l0 = performance.now();
    queueStep();
    launchTimes.push(performance.now() - l0);
    // The host knows a step's outcome a step late; here every step is finite (checked at the end).
    optimizer.step++;
  }
  loss = readLoss();
  const step = (performance.now() - t0) / 1000 / steps;
  if (!Number.isFinite(loss)) throw new Error(`${name}: non-finite loss after the timed steps`);
  // The step-time breakdown: eager steps with a timed event between phases (the StepRunner's
  // single-micro-batch path, spelled out).
  const phases = ['image_forward', 'text_forward', 'loss', 'image_backward', 'text_backward', 'optimizer'] as const;
  const marks = Array.from({ length: phases.length + 1 }, () => native.cudaEventCreate(device, true));
  const spent: Record<string, number[]> = Object.fromEntries(phases.map((p) => [p, []]));
  using clipLoss = new ClipLoss();
  for (let i = 0; i < 3; i++) {
    native.cudaEventRecord(marks[0], 'compute');
    model.zeroGrad();
    const fi = model.encodeImage(onDevice.images);
    native.cudaEventRecord(marks[1], 'compute');
    const ft = model.encodeText(onDevice.ids);
    native.cudaEventRecord(marks[2], 'compute');
    const r = clipLoss.forwardBackward(fi, ft, model.logitScale.data, 1, gate.loss);
    ops.axpy(1, r.dLogitScaleTensor!, model.logitScale.grad);
    native.cudaEventRecord(marks[3], 'compute');
    model.visual.backward(r.dImage);
    native.cudaEventRecord(marks[4], 'compute');
    model.text.backward(r.dText);
    native.cudaEventRecord(marks[5], 'compute');
    ops.gradNorm(grads, gate.norm);
    optimizer.update(lr, 1, gate);
    ops.clamp(model.logitScale.data, 0, MAX_LOGIT_SCALE);
    native.cudaEventRecord(marks[6], 'compute');
    optimizer.step++;
    phases.forEach((p, k) => spent[p].push(native.cudaEventElapsedMs(marks[k], marks[k + 1])));
  }
  const breakdown = Object.fromEntries(phases.map((p) => [p, Number(median(spent[p]).toFixed(3))]));
  emit({
    bench: 'train_step', impl: 'clipscale', device: deviceName, config: name, batch, precision: 'bf16', image_size: imageSize, context,
    graphs: graphs ? (graphs.fallbackReason === null ? 'on' : `off: ${graphs.fallbackReason}`) : 'off',
    step_ms: Number((step * 1e3).toFixed(2)), launch_ms: Number(median(launchTimes).toFixed(2)), samples_per_s: Number((batch / step).toFixed(1)),
    mfu: Number(((6 * macs * batch) / step / peak).toFixed(4)), peak_tflops: peak / 1e12, macs_per_sample: macs,
    peak_memory_bytes: native.cudaMemoryStats(device).peakAllocatedBytes, loss_last: loss,
    eager_breakdown_ms: breakdown, dry_run: dryRun,
  });
  graphs?.dispose();
  runner.dispose();
  optimizer.dispose();
  model.dispose();
  for (const t of [images, ids, onDevice.images, onDevice.ids, gate.loss, gate.norm, gate.applied]) t.dispose();
}
if (values.out) writeFileSync(values.out, lines.join('\n') + '\n');
