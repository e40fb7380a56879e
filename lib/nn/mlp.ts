// The transformer MLP: c_fc → GELU (erf or tanh form, or QuickGELU) → c_proj.
import * as ops from '../ops.js';
import type { Tensor } from '../tensor.js';
import { linearInputDtype } from './activation_dtype.js';
import { geluTanhBackward, geluTanhForward } from './gelu_tanh.js';
import { Linear } from './linear.js';
import { Module, type Parameter } from './module.js';
import type { SharedScratch } from './shared_scratch.js';

export type Activation = 'gelu' | 'gelu_tanh' | 'quick_gelu';

export class Mlp extends Module {
  readonly cFc: Linear;
  readonly cProj: Linear;
  get quickGelu(): boolean {
    return this.activation === 'quick_gelu';
  }
  private hidden: Tensor | null = null;

  readonly activation: Activation;

  /** `activation`: true/false for QuickGELU/GELU (the old form), or an Activation. */
  constructor(prefix: string, width: number, hiddenWidth: number, activation: boolean | Activation) {
    super();
    this.activation = activation === true ? 'quick_gelu' : activation === false ? 'gelu' : activation;
    this.cFc = new Linear(`${prefix}.c_fc`, width, hiddenWidth);
    this.cProj = new Linear(`${prefix}.c_proj`, hiddenWidth, width);
  }

  parameters(): Parameter[] {
    return [...this.cFc.parameters(), ...this.cProj.parameters()];
  }

  protected override children(): Module[] {
    return [this.cFc, this.cProj];
  }

  /** On the CPU, GELU (erf form) and QuickGELU run fused with c_fc: the same numbers, fewer passes. */
  private fused(x: Tensor): 'gelu' | 'quick_gelu' | null {
    return x.device === 'cpu' && this.activation !== 'gelu_tanh' ? this.activation : null;
  }

  /** `into`: c_proj's output goes there (see Linear.forward). */
  forward(x: Tensor, into?: Tensor): Tensor {
    if (x.device !== 'cpu' && this.activation !== 'quick_gelu') {
      // On CUDA the GELU (erf or tanh) is the c_fc GEMM's epilogue: no separate pass. In a bf16 /
      // fp16 run its output (c_proj's input) is stored in that 16-bit type: half the memory, and
      // c_proj reads it in place (forward, and dw = dyᵀ·a) instead of converting it.
      const hidden = this.cFc.outFeatures;
      const a = this.buffer('act', [...x.shape.slice(0, -1), hidden], linearInputDtype(x, hidden));
      const h = this.cFc.forwardGelu(x, this.activation === 'gelu' ? 'erf' : 'tanh', a);
      this.hidden = this.retainForBackward() ? h : null;
      return this.cProj.forward(a, into);
    }
    const a = this.buffer('act', [...x.shape.slice(0, -1), this.cFc.outFeatures]);
    const fused = this.fused(x);
    let h: Tensor;
    if (fused) {
      h = this.cFc.forwardActivation(x, a, fused);
    } else {
      h = this.cFc.forward(x);
      if (this.activation === 'quick_gelu') ops.quickGeluForward(h, a);
      else if (this.activation === 'gelu_tanh') geluTanhForward(h, a);
      else ops.geluForward(h, a);
    }
    this.hidden = this.retainForBackward() ? h : null;
    return this.cProj.forward(a, into);
  }

  /** `scratch`: where the gradients read once right after go (see SharedScratch). */
  backward(dout: Tensor, scratch?: SharedScratch): Tensor {
    this.assertBackwardAllowed(this.cFc.weight.name);
    const h = this.hidden;
    if (!h) throw new Error(`${this.cFc.weight.name}: backward before forward`);
    const da = this.cProj.backward(dout, true, false, scratch?.('hidden', h.shape)) as Tensor;
    const dx = scratch?.('width', dout.shape);
    const fused = this.fused(h);
    if (fused) {
      // GELU' · da and c_fc's bias gradient in one pass; c_fc's backward then skips its db.
      ops.activationBackwardBias(h, da, da, this.cFc.bias?.grad ?? null, fused, true);
      return this.cFc.backward(da, true, true, dx) as Tensor;
    }
    if (this.activation === 'quick_gelu') ops.quickGeluBackward(h, da, da);
    else if (this.activation === 'gelu_tanh') geluTanhBackward(h, da, da);
    else ops.geluBackward(h, da, da);
    return this.cFc.backward(da, true, false, dx) as Tensor;
  }
}
