// nn.LayerNorm over the last dimension (eps 1e-5), weight 1 and bias 0 at init.
import * as ops from '../ops.js';
import { linearInputDtype } from './activation_dtype.js';
import type { Tensor } from '../tensor.js';
import { constant } from './init.js';
import { Module, Parameter } from './module.js';

export class LayerNorm extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter;
  private input: Tensor | null = null;

  parameters(): Parameter[] {
    return [this.weight, this.bias];
  }

  private stats(rows: number): [Tensor, Tensor] {
    return [this.buffer('mean', [rows]), this.buffer('rstd', [rows])];
  }

  /**
   * `feedsLinear`: the output is read only by a linear (ln_1 → in_proj, ln_2 → c_fc), so on CUDA
   * in a bf16/fp16 run it is stored in that 16-bit type (backward needs x, mean and rstd only).
   */
  constructor(prefix: string, readonly width: number, readonly eps = 1e-5, readonly feedsLinear = false) {
    super();
    this.weight = new Parameter(`${prefix}.weight`, [width]);
    this.bias = new Parameter(`${prefix}.bias`, [width]);
    constant(this.weight, 1);
  }

  private outBuffer(x: Tensor): Tensor {
    return this.buffer('out', x.shape, this.feedsLinear ? linearInputDtype(x, this.width) : 'f32');
  }

  forward(x: Tensor): Tensor {
    const out = this.outBuffer(x);
    const [mean, rstd] = this.stats(x.numel / this.width);
    ops.layernormForward(x, this.weight.data, this.bias.data, out, mean, rstd, this.eps);
    this.input = this.retainForBackward() ? x : null;
    return out;
  }

  /** sum = x + residual (written to `sum`), then layernorm(sum). Backward treats `sum` as the input. */
  forwardResidual(x: Tensor, residual: Tensor, sum: Tensor): Tensor {
    const out = this.outBuffer(x);
    const [mean, rstd] = this.stats(x.numel / this.width);
    ops.residualLayernormForward(x, residual, sum, this.weight.data, this.bias.data, out, mean, rstd, this.eps);
    this.input = this.retainForBackward() ? sum : null;
    return out;
  }

  /**
   * Adds dγ, dβ into the gradients and returns dx in a buffer of this module; with `dadd`, dx
   * plus dadd (the gradient a residual sum gets from its other use), in the same pass on the CPU.
   * `into`: dx is written there instead (see SharedScratch); it must not be dout or dadd.
   */
  backward(dout: Tensor, dadd: Tensor | null = null, into?: Tensor): Tensor {
    this.assertBackwardAllowed(this.weight.name);
    const x = this.input;
    if (!x) throw new Error(`${this.weight.name}: backward before forward`);
    const dx = into ?? this.buffer('dx', x.shape);
    const [mean, rstd] = this.stats(x.numel / this.width);
    if (x.device === 'cpu') {
      // One pass: dx (+ dadd), dγ and dβ added straight into the gradients.
      ops.layernormBackward(dout, x, this.weight.data, mean, rstd, dx, this.weight.grad, this.bias.grad, { dadd, accumulate: true });
      return dx;
    }
    const dgamma = this.buffer('dgamma', [this.width]);
    const dbeta = this.buffer('dbeta', [this.width]);
    ops.layernormBackward(dout, x, this.weight.data, mean, rstd, dx, dgamma, dbeta);
    ops.axpy(1, dgamma, this.weight.grad);
    ops.axpy(1, dbeta, this.bias.grad);
    if (dadd) ops.add(dx, dadd, dx);
    return dx;
  }
}
