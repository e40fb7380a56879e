// The CUDA caching allocator's accounting (native.cudaMemoryStats) and the design's rule
// that a training step allocates nothing: after the first steps, which fill the cache with
// every size a step asks for, further steps make no cudaMalloc / cudaFree at all. Without a
// GPU these run on the emulated device (the `micro` model at batch 4).
import test from 'ava';

import { countCudaTests, cudaDeviceKind, noGpuReason } from './_helpers/cuda.js';
import { native, type CudaMemoryStats } from '../lib/native.js';
import { Tensor } from '../lib/tensor.js';
import { SyntheticData } from '../lib/train/sources.js';
import { Trainer } from '../lib/train/trainer.js';

const ran = countCudaTests(test, 'cuda-memory.test.ts');
const cudaTest = noGpuReason === null ? test.serial : test.serial.skip;
if (noGpuReason !== null) console.log(`cuda-memory: skipped: ${noGpuReason}`);

cudaTest(`memory stats count live, cached and peak bytes and the driver calls (${cudaDeviceKind})`, (t) => {
  ran();
  const before = native.cudaMemoryStats();
  native.cudaResetPeakMemory();
  t.is(native.cudaMemoryStats().peakAllocatedBytes, before.allocatedBytes);
  // An odd size no earlier test asked for: the cache has no block of it, so the driver is called.
  const n = 12345 + Math.floor(Math.random() * 1000);
  const a = Tensor.zeros([n], 'f32', 'cuda');
  const during = native.cudaMemoryStats();
  t.true(during.allocatedBytes >= before.allocatedBytes + 4 * n);
  t.is(during.peakAllocatedBytes, during.allocatedBytes);
  t.is(during.driverAllocs, before.driverAllocs + 1);
  t.is(during.allocs, before.allocs + 1);
  a.dispose();
  const after = native.cudaMemoryStats();
  t.is(after.allocatedBytes, before.allocatedBytes);
  t.true(after.cachedBytes >= before.cachedBytes + 4 * n);
  t.is(after.peakAllocatedBytes, during.peakAllocatedBytes, 'the peak stays until reset');
  // The same size again comes from the cache.
  const b = Tensor.zeros([n], 'f32', 'cuda:0');
  t.is(native.cudaMemoryStats().driverAllocs, after.driverAllocs);
  b.dispose();
  t.throws(() => native.cudaMemoryStats('cpu'), { message: /cudaMemoryStats: device must be a CUDA device/ });
});

async function statsByStep(cudaGraphs: boolean): Promise<Map<number, CudaMemoryStats>> {
  const data = new SyntheticData({ seed: 5, size: 64, imageSize: 32, contextLength: 32 });
  using trainer = new Trainer({ model: 'micro', data, batchSize: 4, samples: 28, lr: 2e-3, warmup: 1, seed: 3, logEvery: 1, device: 'cuda', cudaGraphs });
  const byStep = new Map<number, CudaMemoryStats>();
  // A record of step N is yielded once step N + 1 has been launched (deferred outcomes).
  for await (const r of trainer.run()) byStep.set(r.step, native.cudaMemoryStats());
  if (cudaGraphs) assertGraphsUsed(trainer);
  return byStep;
}

function assertGraphsUsed(trainer: Trainer): void {
  if (trainer.cudaGraphs?.captures !== 2) throw new Error(`expected 2 captured graphs, got ${trainer.cudaGraphs?.captures} (${trainer.cudaGraphs?.fallbackReason})`);
}

cudaTest(`after its first 2 steps a micro training run on CUDA makes no driver allocation (eager steps) (${cudaDeviceKind})`, async (t) => {
  ran();
  const byStep = await statsByStep(false);
  t.is(byStep.size, 7);
  const warm = byStep.get(2)!;
  const end = byStep.get(7)!;
  t.log(`driver allocations: ${warm.driverAllocs} by step 2, ${end.driverAllocs} by step 7; ` +
    `allocator calls per step ${(end.allocs - warm.allocs) / 5}; peak ${(end.peakAllocatedBytes / 2 ** 20).toFixed(2)} MiB`);
  t.is(end.driverAllocs, warm.driverAllocs, 'steps 3..7 called cudaMalloc');
  t.is(end.driverFrees, warm.driverFrees, 'steps 3..7 called cudaFree');
  t.true(end.allocs > warm.allocs, 'the steps do take scratch blocks from the cache');
  t.true(end.peakAllocatedBytes >= end.allocatedBytes);
});

cudaTest(`with CUDA graphs, replayed steps allocate nothing at all (the captures share one pool of blocks) (${cudaDeviceKind})`, async (t) => {
  ran();
  const byStep = await statsByStep(true);
  // Step N's record comes after step N + 1 was launched: the record of step 4 follows step 5's replay.
  const captured = byStep.get(3)!;
  const end = byStep.get(7)!;
  t.log(`driver allocations ${captured.driverAllocs} after the captures, ${end.driverAllocs} at the end; ` +
    `graph-reserved ${(captured.graphReservedBytes / 2 ** 20).toFixed(2)} MiB`);
  t.is(end.driverAllocs, captured.driverAllocs, 'a replayed step called cudaMalloc');
  t.is(end.allocs, captured.allocs, 'a replayed step asked the allocator for memory');
  t.true(captured.graphReservedBytes > 0);
});
