// Deferred step outcomes (a GPU run): each step leaves its loss, gradient norm (an f64 held
// in an i64 tensor), logit scale and logit bias (SigLIP) in one of two device slots, and an event recorded on
// the compute stream right after the step's last kernel marks when they are final. Step N's
// outcome is read once its event has completed, while step N + 1 (the other slot) may still
// be running: the host waits for that event only, never for the whole stream.
import { native, type CudaEvent } from '../native.js';
import { Tensor } from '../tensor.js';

export interface StepOutcome {
  loss: number;
  /** The gradient norm (NaN when the loss was not finite: the norm is not computed then). */
  norm: number;
  logitScale: number;
  /** The logit bias after the step (NaN for a model without one). */
  logitBias: number;
}

export class DeferredOutcomes implements Disposable {
  readonly loss: [Tensor, Tensor];
  readonly norm: [Tensor, Tensor];
  readonly logitScale: [Tensor, Tensor];
  /** Written by steps of a model with a logit bias (SigLIP); read only then. */
  readonly logitBias: [Tensor, Tensor];
  /** AdamW updates applied so far (the gated update's bias correction reads it on the device). */
  readonly applied: Tensor;
  private readonly done: [CudaEvent, CudaEvent] | null;

  constructor(readonly device: string, appliedSoFar: number) {
    const two = (dtype: 'f32' | 'i64'): [Tensor, Tensor] => [Tensor.zeros([1], dtype, device), Tensor.zeros([1], dtype, device)];
    this.loss = two('f32');
    this.norm = two('i64');
    this.logitScale = two('f32');
    this.logitBias = two('f32');
    this.applied = Tensor.zeros([1], 'i64', device);
    this.setApplied(appliedSoFar);
    this.done = device === 'cpu' ? null : [native.cudaEventCreate(device), native.cudaEventCreate(device)];
  }

  /** Sets the device's count of applied updates (at the start of a run, after a resume). */
  setApplied(count: number): void {
    const host = Tensor.from(new BigInt64Array([BigInt(count)]), [1], 'i64');
    this.applied.copyFrom(host);
    host.dispose();
  }

  /** Marks the end of the step that wrote `slot` (call after its last kernel is queued). */
  stepQueued(slot: number): void {
    if (this.done) native.cudaEventRecord(this.done[slot], 'compute');
  }

  /** The outcome in `slot`, once the step that wrote it has completed (waits for that step only). */
  read(slot: number, withBias = false): StepOutcome {
    const bytes = (t: Tensor): ArrayBuffer => (this.done ? native.cudaReadAfter(this.done[slot], t.handle) : t.handle.view().slice(0));
    const loss = new Float32Array(bytes(this.loss[slot]))[0];
    const norm = Number.isFinite(loss) ? new Float64Array(bytes(this.norm[slot]))[0] : NaN;
    const logitScale = new Float32Array(bytes(this.logitScale[slot]))[0];
    const logitBias = withBias ? new Float32Array(bytes(this.logitBias[slot]))[0] : NaN;
    return { loss, norm, logitScale, logitBias };
  }

  dispose(): void {
    for (const t of [...this.loss, ...this.norm, ...this.logitScale, ...this.logitBias, this.applied]) t.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
