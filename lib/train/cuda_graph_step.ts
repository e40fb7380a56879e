// CUDA graph capture of a deferred GPU training step. Once two steps have run eagerly (the
// caching allocator then holds every size a step asks for), the step's work — forward,
// loss, backward, gradient norm and clipping, the gated AdamW update, the logit-scale clamp
// and the outcome copies — is captured once per outcome slot (steps alternate between two
// slots and two batch buffers, so the pointers differ by parity) and replayed every step
// after: one launch instead of thousands. What changes from step to step comes from device
// memory: the batch (uploaded into the same buffers), the outcome slots, and AdamW's lr and
// bias corrections (a schedule record written before each launch; the scheduled update is
// bit for bit the gated one). When the step cannot be captured (it synchronises, reads back,
// allocates beyond the cache or keeps a tensor made inside it), the run falls back to eager
// steps and `fallbackReason` says why in one line.
import { type CudaGraph, native } from '../native.js';
import * as ops from '../ops.js';
import type { AdamW } from '../optim/adamw.js';
import { Tensor } from '../tensor.js';

/** Eager steps before the first capture (they fill the allocator's cache). */
const WARM_STEPS = 2;
/** Two slots × two batch buffers. */
const MAX_GRAPHS = 4;

/** The gated AdamW update of every parameter, lr and step numbers read from `schedule` on the device. */
export function scheduledAdamwUpdate(optimizer: AdamW, gradScale: number, gate: ops.AdamWGate, schedule: Tensor): void {
  const { beta1, beta2, eps, weightDecay } = optimizer.hyper;
  optimizer.params.forEach((p, i) => {
    const wd = optimizer.usesDecay(p.name) ? weightDecay : 0;
    native.adamwStepScheduled(
      // The parameter's 16-bit copy (the linears' GEMM operand) is rewritten in the same kernel.
      p.data.handle, p.grad.handle, optimizer.m[i].handle, optimizer.v[i].handle, p.halfCopy?.handle ?? null,
      beta1, beta2, eps, wd, gradScale, gate.loss.handle, gate.norm.handle, gate.applied.handle, schedule.handle,
    );
  });
  ops.adamwCommit(gate);
}

export class CudaGraphSteps implements Disposable {
  /** The schedule record (32 bytes) the scheduled AdamW update reads. */
  readonly schedule: Tensor;
  /** Graphs by outcome slot and batch tensor (a run resumed in the same Trainer may pair them anew). */
  private readonly graphs = new Map<number, Map<Tensor, CudaGraph>>();
  private graphCount = 0;
  private eagerSteps = 0;
  /** Why steps run eagerly from now on (null while graphs are in use). */
  fallbackReason: string | null = null;
  captures = 0;
  replays = 0;

  constructor(readonly device: string, private readonly optimizer: AdamW) {
    this.schedule = Tensor.zeros([4], 'i64', device);
  }

  /**
   * Queues one step. `work()` queues the step's kernels; `input` is the batch tensor the step
   * reads: a graph is captured per (slot, input) pair and replayed for that pair.
   * `lr` and `step` (1-based, the optimizer's known count + 1) go to the schedule record.
   */
  run(slot: number, input: Tensor, lr: number, step: number, work: () => void): void {
    const { beta1, beta2 } = this.optimizer.hyper;
    // In stream order before the step's kernels (eager or replayed); never inside a capture.
    native.adamwSchedule(this.schedule.handle, lr, beta1, beta2, step);
    const known = this.graphs.get(slot)?.get(input);
    if (known) {
      try {
        native.cudaGraphLaunch(known);
        this.replays++;
        return;
      } catch (err) {
        // Not replayable any more (a tensor it uses was freed): this step runs eagerly.
        this.fallBack(firstLine(err));
        work();
        return;
      }
    }
    if (this.graphCount >= MAX_GRAPHS) this.fallBack(`more than ${MAX_GRAPHS} (slot, batch buffer) pairs to capture`);
    if (this.fallbackReason !== null || this.eagerSteps < WARM_STEPS) {
      work();
      this.eagerSteps++;
      return;
    }
    native.cudaGraphBeginCapture(this.device);
    let graph: CudaGraph;
    try {
      work();
    } catch (err) {
      this.abortCapture();
      this.fallBack(`the step could not be captured: ${firstLine(err)}`);
      work(); // nothing ran while capturing: run the step eagerly
      return;
    }
    try {
      graph = native.cudaGraphEndCapture(this.device);
    } catch (err) {
      this.fallBack(firstLine(err));
      work();
      return;
    }
    if (!this.graphs.has(slot)) this.graphs.set(slot, new Map());
    this.graphs.get(slot)!.set(input, graph);
    this.graphCount++;
    this.captures++;
    native.cudaGraphLaunch(graph); // capturing ran nothing: this is the step
    this.replays++;
  }

  private abortCapture(): void {
    try {
      native.cudaGraphEndCapture(this.device);
    } catch {
      // the capture is over either way; its reason was the error caught by the caller
    }
  }

  private fallBack(reason: string): void {
    this.fallbackReason ??= reason;
    this.disposeGraphs();
  }

  private disposeGraphs(): void {
    for (const bySlot of this.graphs.values()) for (const graph of bySlot.values()) native.cudaGraphDestroy(graph);
    this.graphs.clear();
    this.graphCount = 0;
  }

  dispose(): void {
    this.disposeGraphs();
    this.schedule.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0];
}
