// Collectives over many tensors at once, for data parallelism: gradients averaged
// and parameters broadcast in a few large messages (buckets) instead of one per
// tensor, since each collective costs a round trip.
import { floatsOf, type CommBuffer, type Communicator, type ReduceOp } from './communicator.js';

/** Floats per bucket by default: 4 Mi floats (16 MiB). */
export const DEFAULT_BUCKET_FLOATS = 1 << 22;

function buckets(arrays: Float32Array[], bucketFloats: number): Float32Array[][] {
  if (!Number.isInteger(bucketFloats) || bucketFloats < 1) throw new RangeError(`bucketFloats must be a positive integer, got ${bucketFloats}`);
  const out: Float32Array[][] = [];
  let cur: Float32Array[] = [];
  let size = 0;
  for (const a of arrays) {
    if (cur.length > 0 && size + a.length > bucketFloats) {
      out.push(cur);
      cur = [];
      size = 0;
    }
    cur.push(a);
    size += a.length;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

async function bucketed(arrays: Float32Array[], bucketFloats: number, collective: (flat: Float32Array) => Promise<void>): Promise<void> {
  for (const group of buckets(arrays, bucketFloats)) {
    if (group.length === 1) {
      await collective(group[0]);
      continue;
    }
    const flat = new Float32Array(group.reduce((n, a) => n + a.length, 0));
    let at = 0;
    for (const a of group) {
      flat.set(a, at);
      at += a.length;
    }
    await collective(flat);
    at = 0;
    for (const a of group) {
      a.set(flat.subarray(at, at + a.length));
      at += a.length;
    }
  }
}

/**
 * All-reduces every tensor in place ('mean' by default: data-parallel gradient
 * averaging). Every rank must pass tensors of the same sizes in the same order.
 */
export async function allReduceTensors(comm: Communicator, tensors: readonly CommBuffer[], op: ReduceOp = 'mean', bucketFloats = DEFAULT_BUCKET_FLOATS): Promise<void> {
  const arrays = tensors.map((t, i) => floatsOf(t, 'allReduceTensors', `tensors[${i}]`));
  if (comm.size === 1) return;
  await bucketed(arrays, bucketFloats, (flat) => comm.allReduce(flat, op));
}

/** Rank `root`'s values into every rank's tensors (parameters at the start of training). */
export async function broadcastTensors(comm: Communicator, tensors: readonly CommBuffer[], root = 0, bucketFloats = DEFAULT_BUCKET_FLOATS): Promise<void> {
  const arrays = tensors.map((t, i) => floatsOf(t, 'broadcastTensors', `tensors[${i}]`));
  if (comm.size === 1) return;
  await bucketed(arrays, bucketFloats, (flat) => comm.broadcast(flat, root));
}
