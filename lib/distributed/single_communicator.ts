// The communicator of a world of one process: collectives are identities or copies.
import { checkGatherLengths, checkOpen, checkReduceOp, checkRoot, floatsOf, type CommBuffer, type Communicator, type ReduceOp } from './communicator.js';

export class SingleProcessCommunicator implements Communicator {
  readonly backend = 'single' as const;
  readonly rank = 0;
  readonly size = 1;
  private closed = false;

  async allReduce(x: CommBuffer, op: ReduceOp = 'sum'): Promise<void> {
    checkOpen(this.closed, 'allReduce');
    checkReduceOp(op, 'allReduce');
    floatsOf(x, 'allReduce', 'x');
  }

  async allGather(input: CommBuffer, output: CommBuffer): Promise<void> {
    checkOpen(this.closed, 'allGather');
    const i = floatsOf(input, 'allGather', 'input');
    const o = floatsOf(output, 'allGather', 'output');
    checkGatherLengths(i, o, 1, 'allGather', 'input', 'output');
    if (o !== i) o.set(i);
  }

  async reduceScatter(input: CommBuffer, output: CommBuffer, op: ReduceOp = 'sum'): Promise<void> {
    checkOpen(this.closed, 'reduceScatter');
    checkReduceOp(op, 'reduceScatter');
    const i = floatsOf(input, 'reduceScatter', 'input');
    const o = floatsOf(output, 'reduceScatter', 'output');
    checkGatherLengths(o, i, 1, 'reduceScatter', 'output', 'input');
    if (o !== i) o.set(i);
  }

  async broadcast(x: CommBuffer, root = 0): Promise<void> {
    checkOpen(this.closed, 'broadcast');
    checkRoot(root, 1, 'broadcast');
    floatsOf(x, 'broadcast', 'x');
  }

  async barrier(): Promise<void> {
    checkOpen(this.closed, 'barrier');
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
