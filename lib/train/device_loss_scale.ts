// Dynamic loss scaling with the decision on the device (a deferred fp16 step on a GPU, which
// may be captured in a CUDA graph): the scale and the count of good steps live in device
// memory; the loss gradient is multiplied by the scale there, the parameter gradients are
// unscaled there (GradScaler's unscale_, before the norm and clipping, so those see true
// gradients), the gated AdamW skips a step whose norm is not finite, and the LossScaler's rule
// updates the scale there from the step's loss and norm. The host's LossScaler replays the same
// rule when it reads each step's outcome (a step late), so its scale, good-step count and skips
// equal the device's once a step is settled; checkpoints save the host's.
import * as ops from '../ops.js';
import { Tensor } from '../tensor.js';
import type { LossScaler } from './loss_scaler.js';

export class DeviceLossScale implements Disposable {
  /** i64 [2] holding two f64s: the scale and the finite steps since the last growth or skip. */
  readonly state: Tensor;

  constructor(readonly device: string, private readonly scaler: LossScaler) {
    this.state = Tensor.zeros([2], 'i64', device);
    this.load();
  }

  /** Sets the device's state from the host scaler (at the start of a run, after a resume): outside any step. */
  load(): void {
    const f64 = new Float64Array([this.scaler.scale, this.scaler.goodSteps]);
    using host = Tensor.from(new BigInt64Array(f64.buffer), [2], 'i64');
    this.state.copyFrom(host);
  }

  /** The device's scale and good-step count (reads the device: for tests and checks, never in a step). */
  read(): { scale: number; goodSteps: number } {
    const bits = this.state.to('cpu');
    const f64 = new Float64Array((bits.view() as BigInt64Array).slice().buffer);
    bits.dispose();
    return { scale: f64[0], goodSteps: f64[1] };
  }

  /** The loss gradients (of the features, the logit scale and bias) times the scale, before backward. */
  scale(tensors: readonly Tensor[]): void {
    ops.lossScaleApply(tensors, this.state, false);
  }

  /** The parameter gradients divided by the scale, after backward. */
  unscale(grads: readonly Tensor[]): void {
    ops.lossScaleApply(grads, this.state, true);
  }

  /** The scale's update after the step, from the step's loss and norm (the AdamW gate's). */
  update(gate: { loss: Tensor; norm: Tensor }): void {
    const s = this.scaler;
    ops.lossScaleUpdate(this.state, gate.loss, gate.norm, {
      growthFactor: s.growthFactor,
      backoffFactor: s.backoffFactor,
      growthInterval: s.growthInterval,
      minScale: s.minScale,
      maxScale: s.maxScale,
    });
  }

  dispose(): void {
    this.state.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
