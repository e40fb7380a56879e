// GPU collectives over NCCL, through the CUDA backend (native/cuda/nccl_comm.cpp).
// Rank 0 makes NCCL's 128-byte unique id and sends it to the others over a CPU
// communicator (MPI under mpirun, else the TCP rendezvous at MASTER_ADDR:MASTER_PORT),
// then every rank joins the NCCL communicator on its GPU. Collectives run on the
// device's stream (after the kernels that made their inputs) and each promise settles
// when the collective has finished on the GPU; a rank that died or hangs makes the
// others fail after CLIPSCALE_DIST_TIMEOUT_S (the NCCL communicator is aborted), not hang.
//
// Buffers: CUDA f32 tensors on the communicator's device move without copies; CPU
// tensors and Float32Arrays are staged through the GPU (a copy each way), so code
// written for CPU communicators (the distributed loss, bucketed gradients) works too.
// A buffer belongs to the collective until its promise settles.
import { native, type NativeTensor } from '../native.js';
import { Tensor } from '../tensor.js';
import { checkOpen, checkReduceOp, checkRoot, type CommBuffer, type Communicator, type ReduceOp } from './communicator.js';
import { readDistTimeouts } from './timeouts.js';

type NcclHandle = { readonly __nccl: unique symbol };

export interface NcclSupport {
  /** The CUDA backend loaded and libnccl.so.2 was found (a GPU is not needed to know). */
  available: boolean;
  /** NCCL's version code, e.g. 22703. */
  version?: number;
  /** "2.27.3" */
  versionString?: string;
  path?: string;
  reason?: string;
}

interface NcclBinding {
  ncclInfo(): { available: boolean; version?: number; path?: string; reason?: string };
  ncclUniqueId(): Uint8Array;
  ncclInitRank(device: number, nranks: number, rank: number, id: Uint8Array, timeoutSeconds: number): Promise<NcclHandle>;
  ncclAllReduce(h: NcclHandle, x: NativeTensor, op: ReduceOp): Promise<void>;
  ncclAllGather(h: NcclHandle, input: NativeTensor, output: NativeTensor): Promise<void>;
  ncclReduceScatter(h: NcclHandle, input: NativeTensor, output: NativeTensor, op: ReduceOp): Promise<void>;
  ncclBroadcast(h: NcclHandle, x: NativeTensor, root: number): Promise<void>;
  ncclCommInfo(h: NcclHandle): { rank: number; size: number; device: number; broken: boolean };
  ncclDestroy(h: NcclHandle): Promise<void>;
  ncclAbort(h: NcclHandle): void;
}

const nccl = native as unknown as NcclBinding;

/** NCCL 2.30 lets several ranks share one GPU when NCCL_MULTI_RANK_GPU_ENABLE=1. */
export const NCCL_SHARED_GPU_MIN_VERSION = 23000;

/** "2.27.3" from NCCL's version code (X·10000 + Y·100 + Z since 2.9; X·1000 + Y·100 + Z before). */
export function formatNcclVersion(code: number): string {
  if (code >= 10000) return `${Math.floor(code / 10000)}.${Math.floor((code % 10000) / 100)}.${code % 100}`;
  return `${Math.floor(code / 1000)}.${Math.floor((code % 1000) / 100)}.${code % 100}`;
}

/** Whether NCCL can be used here, and why not (the CUDA backend, libnccl.so.2). */
export function ncclSupport(): NcclSupport {
  const info = nccl.ncclInfo();
  if (!info.available) return { available: false, reason: info.reason };
  return { available: true, version: info.version, versionString: formatNcclVersion(info.version!), path: info.path };
}

/** The index N of 'cuda:N' ('cuda' alone is cuda:0). */
export function cudaDeviceIndex(device: string, where: string): number {
  const m = /^cuda(?::(\d+))?$/.exec(device);
  if (!m) throw new TypeError(`${where}: device must be 'cuda' or 'cuda:N', got ${JSON.stringify(device)}`);
  return m[1] === undefined ? 0 : Number(m[1]);
}

// The unique id travels as 129 floats: a status (1 = made, 0 = rank 0 failed) and the
// 128 bytes as the integers 0..255, which every float format and reduction keeps exactly.
const ID_BYTES = 128;
export function encodeNcclId(id: Uint8Array | null): Float32Array {
  const f = new Float32Array(ID_BYTES + 1);
  if (id) {
    f[0] = 1;
    for (let i = 0; i < ID_BYTES; i++) f[i + 1] = id[i];
  }
  return f;
}
/** The id from a packet; `where` starts the error messages. */
export function decodeNcclId(f: Float32Array, where: string): Uint8Array {
  if (f[0] !== 1) throw new Error(`${where}: rank 0 could not create the NCCL unique id (its own error says why)`);
  const id = new Uint8Array(ID_BYTES);
  for (let i = 0; i < ID_BYTES; i++) {
    const v = f[i + 1];
    if (!Number.isInteger(v) || v < 0 || v > 255) throw new Error(`${where}: the NCCL id from rank 0 is corrupt (byte ${i} = ${v})`);
    id[i] = v;
  }
  return id;
}

export interface NcclCommunicatorOptions {
  /** 'cuda:N': this rank's GPU. */
  device: string;
  /** A CPU communicator of the same ranks, used once to send rank 0's NCCL id (and closed with this one). */
  bootstrap: Communicator;
  /** Limit on joining and on every collective, ms (default CLIPSCALE_DIST_TIMEOUT_S, 300 s). */
  timeoutMs?: number;
}

/** A staged buffer: the device tensor a collective runs on, and how its result gets back. */
interface Staged {
  tensor: Tensor;
  copyBack(): void;
  release(): void;
}

export class NcclCommunicator implements Communicator {
  readonly backend = 'nccl' as const;
  readonly rank: number;
  readonly size: number;
  /** 'cuda:N' */
  readonly device: string;
  readonly deviceIndex: number;
  /** NCCL's version code and file, e.g. 22703 and …/libnccl.so.2. */
  readonly ncclVersion: number;
  readonly ncclPath: string;
  private readonly handle: NcclHandle;
  private readonly bootstrap: Communicator;
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;
  private barrierTensor: Tensor | null = null;

  private constructor(handle: NcclHandle, bootstrap: Communicator, deviceIndex: number, support: NcclSupport) {
    this.handle = handle;
    this.bootstrap = bootstrap;
    this.rank = bootstrap.rank;
    this.size = bootstrap.size;
    this.deviceIndex = deviceIndex;
    this.device = `cuda:${deviceIndex}`;
    this.ncclVersion = support.version!;
    this.ncclPath = support.path!;
  }

  /**
   * Joins every rank of `bootstrap` in an NCCL communicator on `device`. On failure
   * the bootstrap communicator is closed too.
   */
  static async create(opts: NcclCommunicatorOptions): Promise<NcclCommunicator> {
    const { bootstrap } = opts;
    const where = `clipscale dist (nccl, rank ${bootstrap.rank}/${bootstrap.size})`;
    const timeoutMs = opts.timeoutMs ?? readDistTimeouts().collectiveMs;
    if (!(timeoutMs > 0)) throw new RangeError(`${where}: timeoutMs must be positive, got ${timeoutMs}`);
    const deviceIndex = cudaDeviceIndex(opts.device, where);
    try {
      const support = ncclSupport();
      let ownError: unknown = null;
      let id: Uint8Array | null = null;
      if (bootstrap.rank === 0) {
        try {
          if (!support.available) throw new Error(`${where}: NCCL cannot be used: ${support.reason}`);
          id = nccl.ncclUniqueId();
        } catch (e) {
          ownError = e;
        }
      }
      // Rank 0 always takes part, so a failure there reaches the others as a status, not a hang.
      const packet = encodeNcclId(id);
      await bootstrap.broadcast(packet, 0);
      if (ownError) throw ownError;
      let received: Uint8Array;
      try {
        received = decodeNcclId(packet, where);
      } catch (e) {
        // Rank 0's failure first; this rank's own problem, if any, after it.
        throw new Error((e as Error).message + (support.available ? '' : `; NCCL cannot be used on this rank either: ${support.reason}`));
      }
      if (!support.available) throw new Error(`${where}: NCCL cannot be used: ${support.reason}`);
      const handle = await nccl.ncclInitRank(deviceIndex, bootstrap.size, bootstrap.rank, received, timeoutMs / 1000);
      return new NcclCommunicator(handle, bootstrap, deviceIndex, support);
    } catch (e) {
      await bootstrap.close().catch(() => undefined);
      throw e;
    }
  }

  private where(op: string): string {
    return `clipscale dist (nccl, rank ${this.rank}/${this.size}, ${this.device}): ${op}`;
  }

  // One collective at a time, in call order: NCCL needs the same order on every rank.
  private run(op: string, fn: () => Promise<void>): Promise<void> {
    try {
      checkOpen(this.closed, this.where(op));
    } catch (e) {
      return Promise.reject(e);
    }
    const p = this.chain.catch(() => undefined).then(fn);
    this.chain = p;
    return p;
  }

  /** The buffer as an f32 tensor on this device: itself when it already is one, else a copy. */
  private stage(x: CommBuffer, op: string, arg: string, copyIn: boolean): Staged {
    if (x instanceof Float32Array) {
      let t: Tensor;
      if (copyIn) {
        const host = Tensor.from(x);
        t = host.to(this.device);
        host.dispose();
      } else {
        t = Tensor.empty([x.length], 'f32', this.device);
      }
      return {
        tensor: t,
        copyBack: () => {
          const host = t.to('cpu');
          x.set(host.view() as Float32Array);
          host.dispose();
        },
        release: () => t.dispose(),
      };
    }
    if (!(x instanceof Tensor)) throw new TypeError(`${this.where(op)}: ${arg} must be a Tensor or a Float32Array`);
    if (x.disposed) throw new Error(`${this.where(op)}: ${arg} was disposed`);
    if (x.dtype !== 'f32') throw new TypeError(`${this.where(op)}: ${arg} must be f32, got ${x.toString()}`);
    if (x.device === this.device) return { tensor: x, copyBack: () => undefined, release: () => undefined };
    if (x.device !== 'cpu') throw new Error(`${this.where(op)}: ${arg} is on ${x.device} but this communicator's GPU is ${this.device}`);
    return this.stage(x.view() as Float32Array, op, arg, copyIn);
  }

  private async withStaged(buffers: { x: CommBuffer; arg: string; copyIn: boolean; out: boolean }[], op: string, fn: (t: Tensor[]) => Promise<void>): Promise<void> {
    const staged: Staged[] = [];
    try {
      for (const b of buffers) staged.push(this.stage(b.x, op, b.arg, b.copyIn));
      await fn(staged.map((s) => s.tensor));
      buffers.forEach((b, i) => b.out && staged[i].copyBack());
    } finally {
      for (const s of staged) s.release();
    }
  }

  private static numel(x: CommBuffer): number {
    return x instanceof Float32Array ? x.length : x.numel;
  }

  // async: a bad argument rejects the promise, as with every other communicator (the
  // collective is still queued in call order: the body runs at once up to run()).
  async allReduce(x: CommBuffer, op: ReduceOp = 'sum'): Promise<void> {
    checkReduceOp(op, 'allReduce');
    return this.run('allReduce', () =>
      this.withStaged([{ x, arg: 'x', copyIn: true, out: true }], 'allReduce', async ([t]) => {
        if (t.numel > 0) await nccl.ncclAllReduce(this.handle, t.handle, op);
      }),
    );
  }

  async allGather(input: CommBuffer, output: CommBuffer): Promise<void> {
    const n = NcclCommunicator.numel(input);
    const m = NcclCommunicator.numel(output);
    if (m !== this.size * n) throw new RangeError(`allGather: output must hold ${this.size} × ${n} = ${this.size * n} floats (world size × input), got ${m}`);
    return this.run('allGather', () =>
      this.withStaged(
        [
          { x: input, arg: 'input', copyIn: true, out: false },
          { x: output, arg: 'output', copyIn: false, out: true },
        ],
        'allGather',
        async ([i, o]) => {
          if (n > 0) await nccl.ncclAllGather(this.handle, i.handle, o.handle);
        },
      ),
    );
  }

  async reduceScatter(input: CommBuffer, output: CommBuffer, op: ReduceOp = 'sum'): Promise<void> {
    checkReduceOp(op, 'reduceScatter');
    const n = NcclCommunicator.numel(output);
    const m = NcclCommunicator.numel(input);
    if (m !== this.size * n) throw new RangeError(`reduceScatter: input must hold ${this.size} × ${n} = ${this.size * n} floats (world size × output), got ${m}`);
    return this.run('reduceScatter', () =>
      this.withStaged(
        [
          { x: input, arg: 'input', copyIn: true, out: false },
          { x: output, arg: 'output', copyIn: false, out: true },
        ],
        'reduceScatter',
        async ([i, o]) => {
          if (n > 0) await nccl.ncclReduceScatter(this.handle, i.handle, o.handle, op);
        },
      ),
    );
  }

  async broadcast(x: CommBuffer, root = 0): Promise<void> {
    checkRoot(root, this.size, 'broadcast');
    return this.run('broadcast', () =>
      this.withStaged([{ x, arg: 'x', copyIn: true, out: true }], 'broadcast', async ([t]) => {
        if (t.numel > 0) await nccl.ncclBroadcast(this.handle, t.handle, root);
      }),
    );
  }

  /** An all-reduce of one float on the GPU: every rank has reached it, and its earlier GPU work is done. */
  barrier(): Promise<void> {
    return this.run('barrier', async () => {
      this.barrierTensor ??= Tensor.zeros([1], 'f32', this.device);
      await nccl.ncclAllReduce(this.handle, this.barrierTensor.handle, 'sum');
    });
  }

  /** Whether an earlier failure (a timeout, a dead peer) aborted the NCCL communicator. */
  get broken(): boolean {
    return !this.closed && nccl.ncclCommInfo(this.handle).broken;
  }

  /**
   * Waits for running collectives, finalises NCCL with the other ranks (bounded by the
   * timeout; a broken communicator is aborted instead), then closes the bootstrap communicator.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.chain.catch(() => undefined);
    this.barrierTensor?.dispose();
    this.barrierTensor = null;
    try {
      await nccl.ncclDestroy(this.handle);
    } finally {
      await this.bootstrap.close();
    }
  }

  /**
   * Ends the NCCL communicator without the other ranks (for a rank that is failing). A
   * collective in flight finishes or times out first (it holds the communicator).
   */
  abort(): void {
    this.closed = true;
    nccl.ncclAbort(this.handle);
  }
}
