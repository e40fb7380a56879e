// nn.Linear with PyTorch's [out, in] weight layout.
import * as ops from '../ops.js';
import type { Tensor } from '../tensor.js';
import type { Rng } from '../util/rng.js';
import { constant, torchDefault } from './init.js';
import { Module, Parameter } from './module.js';

export class Linear extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  private input: Tensor | null = null;

  /** `prefix` is the OpenCLIP module name: parameters are `${prefix}.weight` and `${prefix}.bias`. */
  constructor(prefix: string, readonly inFeatures: number, readonly outFeatures: number, bias = true) {
    super();
    this.weight = new Parameter(`${prefix}.weight`, [outFeatures, inFeatures]);
    this.bias = bias ? new Parameter(`${prefix}.bias`, [outFeatures]) : null;
  }

  parameters(): Parameter[] {
    return this.bias ? [this.weight, this.bias] : [this.weight];
  }

  override linearWeights(): Parameter[] {
    return [this.weight];
  }

  /** PyTorch's default initialisation (weight and bias U(±1/√in)); `zeroBias` as nn.MultiheadAttention's out_proj. */
  initDefault(rng: Rng, zeroBias = false): void {
    torchDefault(this.weight, this.inFeatures, rng);
    if (this.bias) {
      if (zeroBias) constant(this.bias, 0);
      else torchDefault(this.bias, this.inFeatures, rng);
    }
  }

  /**
   * y = x·Wᵀ + b; x [..., in]. The input is kept (not copied) for backward. `into`: y is written
   * there instead of this layer's own buffer (an output read once right after, shared by layers).
   */
  forward(x: Tensor, into?: Tensor): Tensor {
    const shape = x.shape;
    const y = into ?? this.buffer('y', [...shape.slice(0, -1), this.outFeatures]);
    ops.linearForward(x, this.weight.data, this.bias?.data ?? null, y, this.weight.halfCopy, this.inferencePacked(this.weight));
    this.input = this.retainForBackward() ? x : null;
    return y;
  }

  /**
   * GELU(x·Wᵀ + b) into `out` in one op (on CUDA the GELU is the GEMM's epilogue); returns the
   * pre-activation x·Wᵀ + b, which backward's GELU derivative needs. Backward is `backward`'s.
   */
  forwardGelu(x: Tensor, form: 'erf' | 'tanh', out: Tensor): Tensor {
    const y = this.buffer('y', [...x.shape.slice(0, -1), this.outFeatures]);
    ops.linearGeluForward(x, this.weight.data, this.bias?.data ?? null, y, out, form, this.weight.halfCopy);
    this.input = this.retainForBackward() ? x : null;
    return y;
  }

  /**
   * y = x·Wᵀ + b and a = activation(y) in one pass (CPU only; see ops.linearActivationForward);
   * returns y (kept by the caller for the activation's backward). x is kept as by forward.
   */
  forwardActivation(x: Tensor, a: Tensor, activation: 'gelu' | 'quick_gelu'): Tensor {
    const y = this.buffer('y', [...x.shape.slice(0, -1), this.outFeatures]);
    ops.linearActivationForward(x, this.weight.data, this.bias?.data ?? null, y, a, activation, this.inferencePacked(this.weight));
    this.input = this.retainForBackward() ? x : null;
    return y;
  }

  /**
   * Adds dW, db into the parameters' gradients and returns dx (or null when not needed).
   * `biasGradDone`: the caller has already added db (ops.activationBackwardBias). `into`: dx is
   * written there instead of this layer's own buffer (see SharedScratch).
   */
  backward(dy: Tensor, needInputGrad = true, biasGradDone = false, into?: Tensor): Tensor | null {
    this.assertBackwardAllowed(this.weight.name);
    const x = this.input;
    if (!x) throw new Error(`${this.weight.name}: backward before forward`);
    const dx = needInputGrad ? (into ?? this.buffer('dx', x.shape)) : null;
    const db = biasGradDone ? null : (this.bias?.grad ?? null);
    ops.linearBackward(x, this.weight.data, dy, { dx, dw: this.weight.grad, db, accumulate: true, w16: this.weight.halfCopy });
    return dx;
  }
}
