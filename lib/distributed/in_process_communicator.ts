// W communicators in one process that talk through shared memory: data-parallel
// training simulated in one test, with the same reduction order as the TCP path.
import { checkGatherLengths, checkOpen, checkReduceOp, checkRoot, floatsOf, type CommBuffer, type Communicator, type ReduceOp } from './communicator.js';
import { reduceParts } from './reduce.js';

interface Slot {
  what: string;
  parts: (Float32Array | undefined)[];
  arrived: number;
  done: Promise<Float32Array[]>;
  resolve: (parts: Float32Array[]) => void;
  reject: (err: Error) => void;
}

/** Where the ranks of one group meet: collective number k of every rank uses slot k. */
class Rendezvous {
  private slots = new Map<number, Slot>();
  constructor(readonly size: number) {}

  /** Posts rank's contribution (a copy) to collective `seq` and waits for every rank's. */
  meet(seq: number, rank: number, what: string, data: Float32Array): Promise<Float32Array[]> {
    let slot = this.slots.get(seq);
    if (!slot) {
      let resolve!: Slot['resolve'];
      let reject!: Slot['reject'];
      const done = new Promise<Float32Array[]>((res, rej) => ((resolve = res), (reject = rej)));
      slot = { what, parts: new Array(this.size), arrived: 0, done, resolve, reject };
      this.slots.set(seq, slot);
    }
    if (slot.what !== what) {
      const err = new Error(
        `clipscale dist (in-process): rank ${rank} called ${what} as collective #${seq} but another rank called ${slot.what}; ` +
          'every rank must call the same collectives in the same order with the same sizes',
      );
      slot.reject(err);
      return Promise.reject(err);
    }
    slot.parts[rank] = new Float32Array(data);
    if (++slot.arrived === this.size) {
      this.slots.delete(seq);
      slot.resolve(slot.parts as Float32Array[]);
    }
    return slot.done;
  }
}

export class InProcessCommunicator implements Communicator {
  readonly backend = 'in-process' as const;
  private seq = 0;
  private closed = false;

  constructor(private readonly group: Rendezvous, readonly rank: number) {}

  get size(): number {
    return this.group.size;
  }

  private meet(what: string, data: Float32Array): Promise<Float32Array[]> {
    return this.group.meet(this.seq++, this.rank, what, data);
  }

  async allReduce(x: CommBuffer, op: ReduceOp = 'sum'): Promise<void> {
    checkOpen(this.closed, 'allReduce');
    checkReduceOp(op, 'allReduce');
    const v = floatsOf(x, 'allReduce', 'x');
    const parts = await this.meet(`allReduce(${op}, ${v.length} floats)`, v);
    reduceParts(parts, v, op);
  }

  async allGather(input: CommBuffer, output: CommBuffer): Promise<void> {
    checkOpen(this.closed, 'allGather');
    const i = floatsOf(input, 'allGather', 'input');
    const o = floatsOf(output, 'allGather', 'output');
    const n = checkGatherLengths(i, o, this.size, 'allGather', 'input', 'output');
    const parts = await this.meet(`allGather(${n} floats)`, i);
    parts.forEach((p, r) => o.set(p, r * n));
  }

  async reduceScatter(input: CommBuffer, output: CommBuffer, op: ReduceOp = 'sum'): Promise<void> {
    checkOpen(this.closed, 'reduceScatter');
    checkReduceOp(op, 'reduceScatter');
    const i = floatsOf(input, 'reduceScatter', 'input');
    const o = floatsOf(output, 'reduceScatter', 'output');
    const n = checkGatherLengths(o, i, this.size, 'reduceScatter', 'output', 'input');
    const parts = await this.meet(`reduceScatter(${op}, ${i.length} floats)`, i);
    reduceParts(parts, o, op, this.rank * n);
  }

  async broadcast(x: CommBuffer, root = 0): Promise<void> {
    checkOpen(this.closed, 'broadcast');
    checkRoot(root, this.size, 'broadcast');
    const v = floatsOf(x, 'broadcast', 'x');
    const parts = await this.meet(`broadcast(root ${root}, ${v.length} floats)`, v);
    v.set(parts[root]);
  }

  async barrier(): Promise<void> {
    checkOpen(this.closed, 'barrier');
    await this.meet('barrier', new Float32Array(0));
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

/** `size` communicators, ranks 0..size-1, that must be driven concurrently (e.g. with Promise.all). */
export function createInProcessGroup(size: number): InProcessCommunicator[] {
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`createInProcessGroup: size must be a positive integer, got ${size}`);
  const group = new Rendezvous(size);
  return Array.from({ length: size }, (_, r) => new InProcessCommunicator(group, r));
}
