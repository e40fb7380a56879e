// One rank of an NCCL test (test/dist-nccl.test.ts), started by `clipscale launch` or
// directly with torchrun-style variables. Prints one JSON line {rank, result} or {rank, error}.
//   collectives: every collective on CUDA tensors (values depend on the rank), results reported
//   die:         joins, then rank 1 exits at once; rank 0 reports how its allReduce failed
// The GPU is NCCL_TEST_DEVICE (default cuda:LOCAL_RANK), so 2 ranks may share cuda:0.
import { createCommunicator } from '../../lib/distributed/create.js';
import { readDistEnvironment } from '../../lib/distributed/environment.js';
import type { NcclCommunicator } from '../../lib/distributed/nccl_communicator.js';
import { Tensor } from '../../lib/tensor.js';

const mode = process.argv[2];
const env = readDistEnvironment();
const device = process.env.NCCL_TEST_DEVICE ?? env.cudaDevice;

function report(o: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify({ rank: env.rank, ...o }) + '\n');
}

const values = (n: number, rank: number) => Float32Array.from({ length: n }, (_, i) => (rank + 1) * 100 + i);
const onGpu = (a: Float32Array) => Tensor.from(a).to(device);
const host = (t: Tensor) => Array.from(t.to('cpu').view() as Float32Array);

async function collectives(comm: NcclCommunicator): Promise<Record<string, unknown>> {
  const r = comm.rank;
  const sum = onGpu(values(5, r));
  await comm.allReduce(sum, 'sum');
  const mean = onGpu(values(5, r));
  await comm.allReduce(mean, 'mean');
  const gathered = Tensor.zeros([3 * comm.size], 'f32', device);
  await comm.allGather(onGpu(values(3, r)), gathered);
  const scattered = Tensor.zeros([2], 'f32', device);
  await comm.reduceScatter(onGpu(values(2 * comm.size, r)), scattered, 'sum');
  const bcast = onGpu(values(4, r));
  await comm.broadcast(bcast, comm.size - 1);
  await comm.barrier();
  // CPU buffers are staged through the GPU.
  const staged = values(3, r);
  await comm.allReduce(staged, 'sum');
  const cpuTensor = Tensor.from(values(3, r));
  await comm.allReduce(cpuTensor, 'mean');
  // A large buffer: 4 Mi floats, above NCCL's small-message paths.
  const big = Tensor.full([1 << 22], r + 1, 'f32', device);
  await comm.allReduce(big, 'sum');
  const bigHost = big.to('cpu').view() as Float32Array;
  // All-gather and reduce-scatter above 1 Mi floats a rank (several chunks of the emulated device's stand-in).
  const m = 3 << 19;
  const bigGathered = Tensor.zeros([m * comm.size], 'f32', device);
  await comm.allGather(Tensor.full([m], r + 1, 'f32', device), bigGathered);
  const g = bigGathered.to('cpu').view() as Float32Array;
  const bigScattered = Tensor.zeros([m], 'f32', device);
  await comm.reduceScatter(Tensor.full([m * comm.size], r + 1, 'f32', device), bigScattered, 'sum');
  const rs = bigScattered.to('cpu').view() as Float32Array;
  return {
    backend: comm.backend,
    size: comm.size,
    device: comm.device,
    ncclVersion: comm.ncclVersion,
    sum: host(sum),
    mean: host(mean),
    gathered: host(gathered),
    scattered: host(scattered),
    bcast: host(bcast),
    staged: Array.from(staged),
    cpuTensor: Array.from(cpuTensor.view() as Float32Array),
    big: [bigHost[0], bigHost[bigHost.length - 1], bigHost.every((v) => v === bigHost[0])],
    bigGather: Array.from({ length: comm.size }, (_, q) => g.subarray(q * m, (q + 1) * m).every((v) => v === q + 1)),
    bigScatter: [rs[0], rs.every((v) => v === rs[0])],
  };
}

try {
  const comm = (await createCommunicator({ device })) as NcclCommunicator;
  if (mode === 'collectives') {
    report({ result: await collectives(comm) });
    await comm.close();
  } else if (mode === 'die') {
    await comm.barrier();
    if (comm.rank === 1) process.exit(3); // gone without a word to rank 0
    await new Promise((res) => setTimeout(res, 500));
    const t0 = Date.now();
    const x = Tensor.full([1 << 20], 1, 'f32', device);
    let failed: string | undefined;
    try {
      await comm.allReduce(x, 'sum');
      await comm.allReduce(x, 'sum');
    } catch (e) {
      failed = (e as Error).message;
    }
    report({ result: { failed, ms: Date.now() - t0, broken: comm.broken } });
    await comm.close().catch(() => undefined);
  } else {
    throw new Error(`nccl-worker: unknown mode ${mode}`);
  }
} catch (e) {
  report({ error: (e as Error).stack ?? String(e) });
  process.exitCode = 1;
}
