// One rank of a distributed test: creates a communicator from the environment (as
// launched by the test, mpirun or `clipscale launch`), runs a scenario and prints
// one JSON line `{"rank":…,"result":…}` or `{"rank":…,"error":…}`.
import { createCommunicator } from '../../lib/distributed/create.js';
import type { Communicator } from '../../lib/distributed/communicator.js';
import { distributedClipLoss, referenceLocalClipLoss } from '../../lib/loss/distributed.js';
import { Tensor } from '../../lib/tensor.js';
import { randn } from '../_helpers/numeric.js';

const [scenario = 'collectives', backend = 'auto'] = process.argv.slice(2);

function report(rank: number, payload: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify({ rank, ...payload }) + '\n');
}

function expectEqual(what: string, got: ArrayLike<number>, want: ArrayLike<number>, tol = 0): void {
  if (got.length !== want.length) throw new Error(`${what}: length ${got.length}, expected ${want.length}`);
  for (let i = 0; i < want.length; i++) {
    if (!(Math.abs(got[i] - want[i]) <= tol * Math.max(1, Math.abs(want[i])))) throw new Error(`${what}[${i}] = ${got[i]}, expected ${want[i]}`);
  }
}

/** Rank r's data: values that sum exactly in f32 whatever the order. */
function dataOf(rank: number, n: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => (rank + 1) * 1000 + i - 0.5);
}

async function collectives(c: Communicator): Promise<Record<string, unknown>> {
  const { rank, size } = c;
  const n = 1000;
  // allReduce sum on a Tensor, mean on a Float32Array
  const t = Tensor.from(dataOf(rank, n));
  await c.allReduce(t, 'sum');
  const sum = new Float32Array(n);
  for (let r = 0; r < size; r++) dataOf(r, n).forEach((v, i) => (sum[i] += v));
  expectEqual('allReduce(sum)', t.view() as Float32Array, sum);
  const m = dataOf(rank, n);
  await c.allReduce(m, 'mean');
  expectEqual('allReduce(mean)', m, sum.map((v) => v / size), 1e-6);
  // allGather of rank-sized slices
  const out = new Float32Array(size * 7);
  await c.allGather(dataOf(rank, 7), out);
  const gathered = new Float32Array(size * 7);
  for (let r = 0; r < size; r++) gathered.set(dataOf(r, 7), r * 7);
  expectEqual('allGather', out, gathered);
  // reduceScatter: every rank contributes size·5 values; rank r gets slice r of the sum
  const rsIn = dataOf(rank, size * 5);
  const rsOut = new Float32Array(5);
  await c.reduceScatter(rsIn, rsOut, 'sum');
  const rsWant = new Float32Array(5);
  for (let r = 0; r < size; r++) dataOf(r, size * 5).subarray(rank * 5, rank * 5 + 5).forEach((v, i) => (rsWant[i] += v));
  expectEqual('reduceScatter', rsOut, rsWant);
  // broadcast from rank 0 and from the last rank
  for (const root of [0, size - 1]) {
    const b = dataOf(rank, 9);
    await c.broadcast(b, root);
    expectEqual(`broadcast(root ${root})`, b, dataOf(root, 9));
  }
  await c.barrier();
  return { size, backend: c.backend, checked: ['allReduce(sum)', 'allReduce(mean)', 'allGather', 'reduceScatter', 'broadcast', 'barrier'] };
}

/** The last rank exits after the first collective; the others go on and must fail. */
async function die(c: Communicator): Promise<Record<string, unknown>> {
  const x = new Float32Array(16).fill(c.rank);
  await c.allReduce(x);
  if (c.rank === c.size - 1) process.exit(3);
  const start = Date.now();
  try {
    await c.allReduce(x);
    await c.allReduce(x);
    return { unexpected: 'the collectives after a rank died succeeded' };
  } catch (err) {
    return { failed: (err as Error).message, ms: Date.now() - start };
  }
}

/** The last rank stops calling collectives but stays alive; the others must time out. */
async function hang(c: Communicator): Promise<Record<string, unknown>> {
  const x = new Float32Array(16).fill(c.rank);
  await c.allReduce(x);
  if (c.rank === c.size - 1) {
    setTimeout(() => process.exit(0), 20_000); // never joins; the test kills it sooner
    return new Promise(() => undefined);
  }
  const start = Date.now();
  try {
    await c.allReduce(x);
    return { unexpected: 'the collective without the hung rank succeeded' };
  } catch (err) {
    return { failed: (err as Error).message, ms: Date.now() - start };
  }
}

/**
 * The distributed CLIP loss across real processes: each rank's gradient must equal its
 * rows of the global-batch gradient, which every rank also computes alone from the
 * same seeded data (the reference kernel over all rows is the global loss).
 */
async function loss(c: Communicator): Promise<Record<string, unknown>> {
  const [B, D, logT] = [4, 8, Math.log(10)];
  const N = B * c.size;
  const img = randn(N * D, 101);
  const txt = randn(N * D, 102);
  const own = (v: Float32Array) => v.slice(c.rank * B * D, (c.rank + 1) * B * D);
  const res = await distributedClipLoss(c, own(img), own(txt), D, logT, { reduction: 'sum', globalLoss: true });
  const global = referenceLocalClipLoss(img, txt, N, D, 0, N, logT);
  expectEqual('dImage', res.dImage, own(global.dImage), 1e-5);
  expectEqual('dText', res.dText, own(global.dText), 1e-5);
  expectEqual('globalLoss', [res.globalLoss!], [global.loss], 1e-6);
  const parts = new Float32Array([res.dLogitScale]);
  await c.allReduce(parts, 'sum');
  expectEqual('dLogitScale', parts, [global.dLogitScale], 1e-5);
  return { size: c.size, backend: c.backend, loss: res.loss, globalLoss: res.globalLoss };
}

const scenarios: Record<string, (c: Communicator) => Promise<Record<string, unknown>>> = { collectives, die, hang, loss, 'exit-early': collectives };

// 'exit-early': rank 0 fails before the rendezvous; the others wait in it (for the launcher to stop them).
if (scenario === 'exit-early' && process.env.RANK === '0') {
  console.error('rank 0 fails on purpose');
  process.exit(4);
}

let rank = -1;
try {
  const c = await createCommunicator({ backend: backend as 'auto' });
  rank = c.rank;
  const result = await scenarios[scenario](c);
  report(rank, { result });
  await c.close();
} catch (err) {
  report(rank, { error: (err as Error).message });
  process.exitCode = 1;
}
