// CPU collectives over MPI, through the native binding (built when mpi.h was found).
// MPI starts when the first MPI communicator is made and ends when it is closed
// (MPI cannot restart in the same process). A rank that exits with an error aborts
// the MPI job, and a rank killed by a signal makes mpirun stop the job, so the others
// do not wait forever.
import { native } from '../native.js';
import { checkGatherLengths, checkReduceOp, checkRoot, floatsOf, type CommBuffer, type Communicator, type ReduceOp } from './communicator.js';

interface MpiBinding {
  mpiBuildInfo(): { built: boolean; reason?: string };
  mpiStart(): { rank: number; size: number; threadLevel: number; serialized: boolean; library: string };
  mpiFinish(): void;
  mpiAbort(code: number): void;
  mpiAllReduce(x: Float32Array, op: ReduceOp): Promise<void>;
  mpiAllGather(input: Float32Array, output: Float32Array): Promise<void>;
  mpiReduceScatter(input: Float32Array, output: Float32Array, op: ReduceOp): Promise<void>;
  mpiBroadcast(x: Float32Array, root: number): Promise<void>;
  mpiBarrier(): Promise<void>;
}

const mpi = native as unknown as MpiBinding;

let exitHookInstalled = false;
/**
 * At exit: a clean exit finalises MPI (mpirun counts a rank that exits without
 * MPI_Finalize as failed); a failing exit aborts the job, so the other ranks do not
 * wait forever in a collective or in MPI_Finalize, which synchronises the ranks.
 */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', (code) => {
    if (code === 0) mpi.mpiFinish();
    else mpi.mpiAbort(code);
  });
}

/** Whether this build of the addon has MPI, and why not. */
export function mpiSupport(): { built: boolean; reason?: string } {
  return mpi.mpiBuildInfo();
}

export class MpiCommunicator implements Communicator {
  readonly backend = 'mpi' as const;
  readonly rank: number;
  readonly size: number;
  /** The MPI library's version line, e.g. "Open MPI v4.1.4". */
  readonly library: string;
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;

  /** Starts MPI (MPI_Init_thread) if this process has not yet. */
  constructor() {
    const support = mpi.mpiBuildInfo();
    if (!support.built) throw new Error(`clipscale dist (mpi): ${support.reason}`);
    const w = mpi.mpiStart();
    installExitHook();
    this.rank = w.rank;
    this.size = w.size;
    this.library = w.library;
  }

  // One collective at a time, in call order: MPI needs the same order on every rank.
  private run(name: string, fn: () => Promise<void>): Promise<void> {
    if (this.closed) return Promise.reject(new Error(`clipscale dist (mpi, rank ${this.rank}/${this.size}): ${name} after close()`));
    const p = this.chain.catch(() => undefined).then(fn);
    this.chain = p;
    return p;
  }

  allReduce(x: CommBuffer, op: ReduceOp = 'sum'): Promise<void> {
    checkReduceOp(op, 'allReduce');
    const v = floatsOf(x, 'allReduce', 'x');
    return this.run('allReduce', () => mpi.mpiAllReduce(v, op));
  }

  allGather(input: CommBuffer, output: CommBuffer): Promise<void> {
    const i = floatsOf(input, 'allGather', 'input');
    const o = floatsOf(output, 'allGather', 'output');
    checkGatherLengths(i, o, this.size, 'allGather', 'input', 'output');
    return this.run('allGather', () => mpi.mpiAllGather(i, o));
  }

  reduceScatter(input: CommBuffer, output: CommBuffer, op: ReduceOp = 'sum'): Promise<void> {
    checkReduceOp(op, 'reduceScatter');
    const i = floatsOf(input, 'reduceScatter', 'input');
    const o = floatsOf(output, 'reduceScatter', 'output');
    checkGatherLengths(o, i, this.size, 'reduceScatter', 'output', 'input');
    return this.run('reduceScatter', () => mpi.mpiReduceScatter(i, o, op));
  }

  broadcast(x: CommBuffer, root = 0): Promise<void> {
    checkRoot(root, this.size, 'broadcast');
    const v = floatsOf(x, 'broadcast', 'x');
    return this.run('broadcast', () => mpi.mpiBroadcast(v, root));
  }

  barrier(): Promise<void> {
    return this.run('barrier', () => mpi.mpiBarrier());
  }

  /** Waits for running collectives, then finalises MPI. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.chain.catch(() => undefined);
    mpi.mpiFinish();
  }
}
