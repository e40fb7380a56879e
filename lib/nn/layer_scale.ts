// OpenCLIP's LayerScale (ls_1 / ls_2 in a residual block): y = x · gamma, gamma [W] learned,
// initialised to ls_init_value. Computed on the host over the tensors' memory (CPU backend).
import type { Tensor } from '../tensor.js';
import { constant } from './init.js';
import { Module, Parameter } from './module.js';

export class LayerScale extends Module {
  readonly gamma: Parameter;
  private input: Tensor | null = null;

  constructor(prefix: string, readonly width: number, readonly initValue: number) {
    super();
    this.gamma = new Parameter(`${prefix}.gamma`, [width]);
    constant(this.gamma, initValue);
  }

  parameters(): Parameter[] {
    return [this.gamma];
  }

  /** OpenCLIP's init: init_values · ones(dim). */
  init(): void {
    constant(this.gamma, this.initValue);
  }

  /** x [..., W] → x · gamma (a buffer of this module). x is kept for backward. */
  forward(x: Tensor): Tensor {
    const out = this.buffer('out', x.shape);
    const xs = x.view() as Float32Array;
    const ys = out.view() as Float32Array;
    const g = this.gamma.values();
    const w = this.width;
    for (let i = 0; i < xs.length; i += w) for (let j = 0; j < w; j++) ys[i + j] = xs[i + j] * g[j];
    this.input = this.retainForBackward() ? x : null;
    return out;
  }

  /** Adds dgamma = Σ rows dout·x into gamma's gradient; returns dx = dout·gamma. */
  backward(dout: Tensor): Tensor {
    this.assertBackwardAllowed(this.gamma.name);
    const x = this.input;
    if (!x) throw new Error(`${this.gamma.name}: backward before forward`);
    const dx = this.buffer('dx', x.shape);
    const xs = x.view() as Float32Array;
    const ds = dout.view() as Float32Array;
    const dxs = dx.view() as Float32Array;
    const g = this.gamma.values();
    const dg = this.gamma.grad.view() as Float32Array;
    const w = this.width;
    const acc = new Float64Array(w);
    for (let i = 0; i < xs.length; i += w) {
      for (let j = 0; j < w; j++) {
        acc[j] += ds[i + j] * xs[i + j];
        dxs[i + j] = ds[i + j] * g[j];
      }
    }
    for (let j = 0; j < w; j++) dg[j] += acc[j];
    return dx;
  }
}
