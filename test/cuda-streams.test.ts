// Streams, events and pinned uploads on CUDA: the copy stream's work is ordered against the
// compute stream only by events, and the Trainer's batches go through pinned staging on the
// copy stream (lib/train/pinned_batches.ts). The emulated device runs the copy stream lazily
// (native/cuda/emu/streams.cpp), so a missing wait reads stale memory there every time; on a
// GPU it would be a race, and the tests that plant one run on the emulated device only.
import test from 'ava';

import { countCudaTests, cudaDeviceKind, emulated, noGpuReason } from './_helpers/cuda.js';
import { native } from '../lib/native.js';
import { createModel } from '../lib/nn/clip.js';
import * as ops from '../lib/ops.js';
import { Tensor } from '../lib/tensor.js';
import { DeviceBatches } from '../lib/train/device_placement.js';
import { PinnedDeviceBatches } from '../lib/train/pinned_batches.js';
import { SyntheticData } from '../lib/train/sources.js';
import { type Batch, StepRunner } from '../lib/train/step.js';
import { Trainer } from '../lib/train/trainer.js';

const ran = countCudaTests(test, 'cuda-streams.test.ts');
const cudaTest = noGpuReason === null ? test.serial : test.serial.skip;
if (noGpuReason !== null) console.log(`cuda-streams: skipped: ${noGpuReason}`);
// The planted-bug tests need the emulated device's lazy streams (on a GPU a missing wait is a
// race, not a certain failure): on a GPU they are not registered (and not counted as skipped).
const emuTest = noGpuReason !== null ? test.serial.skip : emulated ? test.serial : (title: string, _body?: unknown) => {
  console.log(`cuda-streams: on the emulated device only, not run on this GPU: ${title}`);
};

cudaTest(`an upload on the copy stream is seen by the compute stream after it waits for the copy's event (${cudaDeviceKind})`, (t) => {
  ran();
  const n = 1000;
  const pinned = new Float32Array(native.cudaPinnedBuffer(n * 4));
  for (let i = 0; i < n; i++) pinned[i] = i + 0.5;
  using dst = Tensor.zeros([n], 'f32', 'cuda');
  using out = Tensor.zeros([n], 'f32', 'cuda');
  const copied = native.cudaEventCreate();
  native.cudaUploadAsync(dst.handle, pinned, 'copy');
  native.cudaEventRecord(copied, 'copy');
  native.cudaStreamWaitEvent('compute', copied);
  ops.copy(dst, out);
  const after = native.cudaReadAfter(copied, out.handle);
  t.is(after.byteLength, 4 * n);
  t.deepEqual(out.hostFloat32(), pinned);
  t.true(native.cudaEventQuery(copied));
  t.throws(() => native.cudaEventRecord(copied, 'side' as 'copy'), { message: /stream must be 'compute' or 'copy', got 'side'/ });
  t.throws(() => native.cudaUploadAsync(dst.handle, new Float32Array(3), 'copy'), { message: /src has 12 bytes but dst \[1000\] holds 4000/ });
});

emuTest('emulated device: a kernel that does not wait for the copy reads the memory as it was; the copy lands when its event is waited for', (t) => {
  ran();
  const n = 64;
  const pinned = new Float32Array(native.cudaPinnedBuffer(n * 4));
  pinned.fill(7);
  using dst = Tensor.zeros([n], 'f32', 'cuda');
  using out = Tensor.zeros([n], 'f32', 'cuda');
  const copied = native.cudaEventCreate();
  native.cudaUploadAsync(dst.handle, pinned, 'copy');
  native.cudaEventRecord(copied, 'copy');
  // The host rewrites the pinned buffer before the copy has run: the copy carries the new bytes.
  pinned.fill(9);
  ops.copy(dst, out); // no wait: reads dst before the copy
  t.deepEqual([...out.hostFloat32()].slice(0, 3), [0, 0, 0]);
  t.false(native.cudaEventQuery(copied), 'pending work is reported not ready when first asked');
  t.true(native.cudaEventQuery(copied));
  t.deepEqual([...dst.hostFloat32()].slice(0, 3), [9, 9, 9]);
});

/** Pinned uploads with the compute stream's wait for the copy left out (a planted bug). */
class NoWaitBatches extends PinnedDeviceBatches {
  protected override waitForUpload(): void {}
}

/** Pinned uploads with the host's wait before rewriting a set's staging left out (a planted bug). */
class NoStagingWaitBatches extends PinnedDeviceBatches {
  protected override waitForStaging(): void {}
}

/** Pinned uploads whose copy does not wait for the step that last read its buffers (a planted bug). */
class NoReaderWaitBatches extends PinnedDeviceBatches {
  protected override waitForReaders(): void {}
}

/**
 * Four steps queued without reading anything back (each loss left in its own device tensor),
 * read at the end; with `lazy`, the emulated compute stream runs its work only when waited for,
 * as a busy GPU would, so uploads and steps are still queued when the host moves on.
 */
async function queuedLosses(kind: 'pageable' | 'pinned' | 'pinned-no-staging-wait' | 'pinned-no-reader-wait', lazy: boolean): Promise<number[]> {
  const data = new SyntheticData({ seed: 5, size: 64, imageSize: 32, contextLength: 32 });
  using model = createModel('micro', { seed: 1 }).to('cuda');
  const make = { pageable: DeviceBatches, pinned: PinnedDeviceBatches, 'pinned-no-staging-wait': NoStagingWaitBatches, 'pinned-no-reader-wait': NoReaderWaitBatches }[kind];
  using batches = new make(model.device, 32, 32);
  using runner = new StepRunner(model);
  const out = Array.from({ length: 4 }, () => Tensor.zeros([1], 'f32', 'cuda'));
  if (lazy) native.cudaEmuComputeStream(true);
  try {
    for (let i = 0; i < 4; i++) {
      const b = batches.fill(await data.batch(4 * i, 4), 1);
      model.zeroGrad();
      runner.forwardBackward(b, 1, out[i]);
    }
  } finally {
    if (lazy) native.cudaEmuComputeStream(false); // eager again: runs what is queued
  }
  const losses = out.map((t) => t.hostFloat32()[0]);
  for (const t of out) t.dispose();
  return losses;
}

emuTest('emulated device: with the steps still queued, a host that rewrites pinned staging before its copy ran is caught', async (t) => {
  ran();
  const reference = await queuedLosses('pageable', false);
  t.deepEqual(await queuedLosses('pinned', true), reference, 'the waits keep queued uploads right');
  const broken = await queuedLosses('pinned-no-staging-wait', true);
  t.log(`without the staging wait: ${broken.join(', ')}; with it: ${reference.join(', ')}`);
  // Step 1's copy ran only after the host had written step 3's batch into the same staging.
  t.is(broken[0], reference[2]);
  t.notDeepEqual(broken, reference);
});

emuTest('emulated device: with the steps still queued, an upload that does not wait for the buffers\' last reader is caught', async (t) => {
  ran();
  // The first upload lands before the allocator's (queued) fill of the fresh buffers: the step
  // then reads the fill's bytes (ids -1), which the embedding kernel reports.
  await t.throwsAsync(queuedLosses('pinned-no-reader-wait', true), { message: /ids \(flat index 0\) = -1 is out of range/ });
});

async function losses(model: ReturnType<typeof createModel>, fill: (i: number) => Promise<Batch[]>, steps: number): Promise<number[]> {
  using runner = new StepRunner(model);
  const out: number[] = [];
  for (let i = 0; i < steps; i++) {
    const batches = await fill(i);
    model.zeroGrad();
    out.push(runner.forwardBackward(batches));
  }
  return out;
}

async function run(kind: 'pageable' | 'pinned' | 'pinned-no-wait'): Promise<number[]> {
  const data = new SyntheticData({ seed: 5, size: 64, imageSize: 32, contextLength: 32 });
  using model = createModel('micro', { seed: 1 }).to('cuda');
  const make = { pageable: DeviceBatches, pinned: PinnedDeviceBatches, 'pinned-no-wait': NoWaitBatches }[kind];
  using batches = new make(model.device, 32, 32);
  return await losses(model, async (i) => batches.fill(await data.batch(4 * i, 4), 1), 4);
}

cudaTest(`pinned uploads on the copy stream give the same losses bit for bit as uploads on the compute stream (${cudaDeviceKind})`, async (t) => {
  ran();
  const reference = await run('pageable');
  const pinned = await run('pinned');
  t.log(`losses ${pinned.join(', ')}`);
  t.true(reference.every(Number.isFinite));
  t.deepEqual(pinned, reference);
  // Four different batches: a loss repeated would hide a stale batch.
  t.is(new Set(reference).size, 4);
});

emuTest('emulated device: pinned uploads whose step does not wait for the copy are caught (the step reads unwritten ids)', async (t) => {
  ran();
  // The first step reads device buffers no copy has written yet: fresh memory holds all-ones
  // bytes, so the token ids are -1, which the embedding kernel reports.
  await t.throwsAsync(run('pinned-no-wait'), { message: /embeddingForward: ids \(flat index 0\) = -1 is out of range/ });
});

/** A deferred micro run: each record with the compute stream's queued works and host waits at that point. */
async function deferredRun(): Promise<{ step: number; loss: number; pending: number; streamSyncs: number; eventWaits: number }[]> {
  const data = new SyntheticData({ seed: 5, size: 64, imageSize: 32, contextLength: 32 });
  using trainer = new Trainer({ model: 'micro', data, batchSize: 4, samples: 24, lr: 2e-3, warmup: 1, seed: 3, logEvery: 1, device: 'cuda' });
  const out = [];
  for await (const r of trainer.run()) out.push({ step: r.step, loss: r.loss, pending: native.cudaEmuComputeStream(null), ...native.cudaWaitStats() });
  // Steps 3.. are CUDA graph replays (the Trainer's default on CUDA).
  if (trainer.cudaGraphs?.captures !== 2) throw new Error(`CUDA graphs not used: ${trainer.cudaGraphs?.fallbackReason}`);
  return out;
}

emuTest('emulated device: a deferred run reads step N after its own event while step N + 1 is still queued, never syncing the stream', async (t) => {
  ran();
  const eager = await deferredRun();
  // A lazy compute stream stands for a busy GPU: its work runs only when something waits for it.
  native.cudaEmuComputeStream(true);
  let lazy;
  try {
    lazy = await deferredRun();
  } finally {
    native.cudaEmuComputeStream(false);
  }
  t.log(lazy.map((r) => `step ${r.step}: ${r.pending} works queued`).join('; '));
  t.deepEqual(lazy.map((r) => r.loss), eager.map((r) => r.loss), 'the same losses bit for bit');
  // Step N's record is made after step N + 1 was launched: its kernels are still queued then.
  for (const r of lazy.slice(0, -1)) t.true(r.pending > 0, `step ${r.step + 1} had run when step ${r.step} was read`);
  const first = lazy[0];
  const last = lazy[lazy.length - 1];
  t.is(last.streamSyncs, first.streamSyncs, 'the steps waited for the whole compute stream');
  t.true(last.eventWaits > first.eventWaits);
});
