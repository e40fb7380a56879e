// OpenCLIP's pre-norm residual blocks and the stack of them:
//   x = x + attn(ln_1(x));  x = x + mlp(ln_2(x))
import * as ops from '../ops.js';
import type { Tensor } from '../tensor.js';
import type { Rng } from '../util/rng.js';
import { normal } from './init.js';
import { Attention } from './attention.js';
import { LayerNorm } from './layernorm.js';
import { Mlp } from './mlp.js';
import { Module, type Parameter } from './module.js';

export interface TransformerOptions {
  width: number;
  layers: number;
  heads: number;
  mlpWidth: number;
  quickGelu: boolean;
  causal: boolean;
  /**
   * Activation recomputation (OpenCLIP's --grad-checkpointing): blocks share one set of
   * internal activations and each block's forward is run again just before its backward,
   * trading one more forward per block for memory that no longer grows with depth.
   */
  recompute?: boolean;
}

export class ResidualBlock extends Module {
  readonly ln1: LayerNorm;
  readonly attn: Attention;
  readonly ln2: LayerNorm;
  readonly mlp: Mlp;

  constructor(prefix: string, opts: TransformerOptions) {
    super();
    this.ln1 = new LayerNorm(`${prefix}.ln_1`, opts.width);
    this.attn = new Attention(`${prefix}.attn`, opts.width, opts.heads, opts.causal);
    this.ln2 = new LayerNorm(`${prefix}.ln_2`, opts.width);
    this.mlp = new Mlp(`${prefix}.mlp`, opts.width, opts.mlpWidth, opts.quickGelu);
  }

  parameters(): Parameter[] {
    return [...this.ln1.parameters(), ...this.attn.parameters(), ...this.ln2.parameters(), ...this.mlp.parameters()];
  }

  protected override children(): Module[] {
    return [this.ln1, this.attn, this.ln2, this.mlp];
  }

  /** Shares the sub-modules' activations with `other` (the block's own input/output stay its own). */
  shareInternalsWith(other: ResidualBlock): void {
    this.ln1.shareBuffersWith(other.ln1);
    this.attn.shareBuffersWith(other.attn);
    this.ln2.shareBuffersWith(other.ln2);
    this.mlp.shareBuffersWith(other.mlp);
  }

  forward(x: Tensor): Tensor {
    const a = this.attn.forward(this.ln1.forward(x));
    const mid = this.buffer('mid', x.shape);
    const m = this.mlp.forward(this.ln2.forwardResidual(x, a, mid));
    const out = this.buffer('out', x.shape);
    ops.add(mid, m, out);
    return out;
  }

  backward(dout: Tensor): Tensor {
    const dmid = this.ln2.backward(this.mlp.backward(dout));
    ops.add(dmid, dout, dmid);
    const dx = this.ln1.backward(this.attn.backward(dmid));
    ops.add(dx, dmid, dx);
    return dx;
  }
}

export class Transformer extends Module {
  readonly blocks: ResidualBlock[];

  /** `prefix` is e.g. `visual.transformer` or `transformer`; blocks are `${prefix}.resblocks.N`. */
  private inputs: Tensor[] = [];

  constructor(prefix: string, readonly opts: TransformerOptions) {
    super();
    this.blocks = Array.from({ length: opts.layers }, (_, i) => new ResidualBlock(`${prefix}.resblocks.${i}`, opts));
    if (opts.recompute) for (const b of this.blocks.slice(1)) b.shareInternalsWith(this.blocks[0]);
  }

  parameters(): Parameter[] {
    return this.blocks.flatMap((b) => b.parameters());
  }

  protected override children(): Module[] {
    return this.blocks;
  }

  /** PyTorch's defaults for every layer (what OpenCLIP leaves the image tower's blocks with). */
  initDefault(rng: Rng): void {
    for (const b of this.blocks) {
      b.attn.initDefault(rng);
      b.mlp.cFc.initDefault(rng);
      b.mlp.cProj.initDefault(rng);
    }
  }

  /** OpenCLIP's TextTransformer.init_parameters for the blocks: normal weights scaled by depth. */
  initText(rng: Rng): void {
    const { width, layers } = this.opts;
    const projStd = width ** -0.5 * (2 * layers) ** -0.5;
    const attnStd = width ** -0.5;
    const fcStd = (2 * width) ** -0.5;
    this.initDefault(rng); // biases keep PyTorch's defaults
    for (const b of this.blocks) {
      normal(b.attn.inProjWeight, attnStd, rng);
      normal(b.attn.outProj.weight, projStd, rng);
      normal(b.mlp.cFc.weight, fcStd, rng);
      normal(b.mlp.cProj.weight, projStd, rng);
    }
  }

  forward(x: Tensor): Tensor {
    let h = x;
    this.inputs = [];
    for (const b of this.blocks) {
      this.inputs.push(h);
      h = b.forward(h);
    }
    return h;
  }

  backward(dout: Tensor): Tensor {
    let d = dout;
    const last = this.blocks.length - 1;
    for (let i = last; i >= 0; i--) {
      // The shared internals hold the last block's activations after forward; every
      // other block recomputes its own from its saved input first.
      if (this.opts.recompute && i !== last) this.blocks[i].forward(this.inputs[i]);
      d = this.blocks[i].backward(d);
    }
    return d;
  }
}

