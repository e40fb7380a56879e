// The one interface every communicator implements (single process, TCP, MPI, and
// in-process groups for tests). Every collective is async: training loops await it,
// and the event loop stays free while data moves. Collectives must be called in the
// same order on every rank (the SPMD rule, as in MPI and NCCL).
import { Tensor } from '../tensor.js';

/** What collectives move: f32 CPU tensors, or plain Float32Arrays (both are changed in place). */
export type CommBuffer = Tensor | Float32Array;

export type ReduceOp = 'sum' | 'mean';

export type CommBackend = 'single' | 'tcp' | 'mpi' | 'in-process' | 'nccl';

export interface Communicator {
  readonly backend: CommBackend;
  readonly rank: number;
  readonly size: number;
  /** Reduces `x` over all ranks; every rank ends with the result in `x`. */
  allReduce(x: CommBuffer, op?: ReduceOp): Promise<void>;
  /** Every rank's `input` (all the same length n), in rank order, into `output` (length size·n). */
  allGather(input: CommBuffer, output: CommBuffer): Promise<void>;
  /** Reduces `input` (length size·n) over ranks and gives rank r the slice [r·n, (r+1)·n) in `output`. */
  reduceScatter(input: CommBuffer, output: CommBuffer, op?: ReduceOp): Promise<void>;
  /** Rank `root`'s `x` into every rank's `x`. */
  broadcast(x: CommBuffer, root?: number): Promise<void>;
  barrier(): Promise<void>;
  /** Ends the communicator; later calls fail. Safe to call twice. */
  close(): Promise<void>;
}

/**
 * The Float32Array behind a buffer (zero-copy for tensors), with the checks every
 * communicator shares: f32, CPU, not disposed.
 */
export function floatsOf(x: CommBuffer, where: string, arg: string): Float32Array {
  if (x instanceof Float32Array) return x;
  if (!(x instanceof Tensor)) throw new TypeError(`${where}: ${arg} must be a Tensor or a Float32Array, got ${describeValue(x)}`);
  if (x.disposed) throw new Error(`${where}: ${arg} was disposed`);
  if (x.device !== 'cpu') {
    throw new Error(
      `${where}: ${arg} is on ${x.device}, and this communicator moves CPU buffers; GPU tensors need the NCCL ` +
        `communicator (createCommunicator({ device: '${x.device}' })), or move the tensor to the CPU.`,
    );
  }
  if (x.dtype !== 'f32') throw new TypeError(`${where}: ${arg} must be f32, got ${x.toString()}`);
  return x.view() as Float32Array;
}

function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'object';
  return typeof v;
}

export function checkReduceOp(op: unknown, where: string): ReduceOp {
  if (op !== 'sum' && op !== 'mean') throw new TypeError(`${where}: op must be 'sum' or 'mean', got ${JSON.stringify(op)}`);
  return op;
}

export function checkRoot(root: unknown, size: number, where: string): number {
  if (!Number.isInteger(root) || (root as number) < 0 || (root as number) >= size)
    throw new RangeError(`${where}: root must be a rank in 0..${size - 1}, got ${String(root)}`);
  return root as number;
}

/** Checks output.length == size · input.length (all-gather) and returns n. */
export function checkGatherLengths(input: Float32Array, output: Float32Array, size: number, where: string, inName: string, outName: string): number {
  if (output.length !== size * input.length)
    throw new RangeError(`${where}: ${outName} must hold ${size} × ${input.length} = ${size * input.length} floats (world size × ${inName}), got ${output.length}`);
  return input.length;
}

/** Rejects collectives after close(). */
export function checkOpen(closed: boolean, where: string): void {
  if (closed) throw new Error(`${where}: the communicator was closed`);
}
