// The transformer MLP: c_fc → GELU (or QuickGELU) → c_proj.
import * as ops from '../ops.js';
import type { Tensor } from '../tensor.js';
import { Linear } from './linear.js';
import { Module, type Parameter } from './module.js';

export class Mlp extends Module {
  readonly cFc: Linear;
  readonly cProj: Linear;
  private hidden: Tensor | null = null;

  constructor(prefix: string, width: number, hiddenWidth: number, readonly quickGelu: boolean) {
    super();
    this.cFc = new Linear(`${prefix}.c_fc`, width, hiddenWidth);
    this.cProj = new Linear(`${prefix}.c_proj`, hiddenWidth, width);
  }

  parameters(): Parameter[] {
    return [...this.cFc.parameters(), ...this.cProj.parameters()];
  }

  protected override children(): Module[] {
    return [this.cFc, this.cProj];
  }

  forward(x: Tensor): Tensor {
    const h = this.cFc.forward(x);
    const a = this.buffer('act', h.shape);
    if (this.quickGelu) ops.quickGeluForward(h, a);
    else ops.geluForward(h, a);
    this.hidden = h;
    return this.cProj.forward(a);
  }

  backward(dout: Tensor): Tensor {
    const h = this.hidden;
    if (!h) throw new Error(`${this.cFc.weight.name}: backward before forward`);
    const da = this.cProj.backward(dout) as Tensor;
    if (this.quickGelu) ops.quickGeluBackward(h, da, da);
    else ops.geluBackward(h, da, da);
    return this.cFc.backward(da) as Tensor;
  }
}
