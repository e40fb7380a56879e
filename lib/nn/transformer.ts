// OpenCLIP's pre-norm residual blocks and the stack of them:
//   x = x + attn(ln_1(x));  x = x + mlp(ln_2(x))
import * as ops from '../ops.js';
import type { Tensor } from '../tensor.js';
import type { Rng } from '../util/rng.js';
import { normal } from './init.js';
import { Attention } from './attention.js';
import { LayerNorm } from './layernorm.js';
import { LayerScale } from './layer_scale.js';
import { type Activation, Mlp } from './mlp.js';
import { Module, type Parameter } from './module.js';
import type { RowPick } from './row_pick.js';
import type { SharedScratch } from './shared_scratch.js';

export interface TransformerOptions {
  width: number;
  layers: number;
  heads: number;
  mlpWidth: number;
  quickGelu: boolean;
  /** Overrides quickGelu when given (e.g. GELU's tanh form from act_kwargs). */
  activation?: Activation;
  causal: boolean;
  /** LayerScale after attention and MLP (ls_1, ls_2), initialised to this; absent: none. */
  lsInitValue?: number;
  /** LayerNorm eps (norm_kwargs.eps), default 1e-5. */
  normEps?: number;
  /**
   * Activation recomputation (OpenCLIP's --grad-checkpointing): blocks share one set of
   * internal activations and each block's forward is run again just before its backward,
   * trading one more forward per block for memory that no longer grows with depth.
   */
  recompute?: boolean;
}

export class ResidualBlock extends Module {
  private pick: RowPick | null = null;
  private inputShape: readonly number[] = [];
  readonly ln1: LayerNorm;
  readonly attn: Attention;
  readonly ln2: LayerNorm;
  readonly mlp: Mlp;
  readonly ls1: LayerScale | null;
  readonly ls2: LayerScale | null;

  constructor(prefix: string, opts: TransformerOptions) {
    super();
    const eps = opts.normEps ?? 1e-5;
    this.ln1 = new LayerNorm(`${prefix}.ln_1`, opts.width, eps, true);
    this.attn = new Attention(`${prefix}.attn`, opts.width, opts.heads, opts.causal);
    this.ls1 = opts.lsInitValue !== undefined ? new LayerScale(`${prefix}.ls_1`, opts.width, opts.lsInitValue) : null;
    this.ln2 = new LayerNorm(`${prefix}.ln_2`, opts.width, eps, true);
    this.mlp = new Mlp(`${prefix}.mlp`, opts.width, opts.mlpWidth, opts.activation ?? opts.quickGelu);
    this.ls2 = opts.lsInitValue !== undefined ? new LayerScale(`${prefix}.ls_2`, opts.width, opts.lsInitValue) : null;
  }

  parameters(): Parameter[] {
    return [
      ...this.ln1.parameters(),
      ...this.attn.parameters(),
      ...(this.ls1?.parameters() ?? []),
      ...this.ln2.parameters(),
      ...this.mlp.parameters(),
      ...(this.ls2?.parameters() ?? []),
    ];
  }

  protected override children(): Module[] {
    return [this.ln1, this.attn, this.ln2, this.mlp, ...(this.ls1 ? [this.ls1] : []), ...(this.ls2 ? [this.ls2] : [])];
  }

  /**
   * For inference: the sub-modules' inference buffers become `internals`'s (every block's are dead
   * once its output is written), and the block's own (mid, out) become `outputs`'s — two blocks
   * apart in depth share them, so a block never writes over its own input.
   */
  shareInferenceBuffers(internals: ResidualBlock, outputs: ResidualBlock): void {
    const pairs: [Module | null, Module | null][] = [
      [this.ln1, internals.ln1],
      [this.attn, internals.attn],
      [this.ln2, internals.ln2],
      [this.mlp, internals.mlp],
      [this.ls1, internals.ls1],
      [this.ls2, internals.ls2],
    ];
    for (const [mine, theirs] of pairs) if (mine && theirs) mine.shareInferenceBuffersWith(theirs);
    this.shareOwnInferenceBuffersWith(outputs);
  }

  /** Shares the sub-modules' activations with `other` (the block's own input/output stay its own). */
  shareInternalsWith(other: ResidualBlock): void {
    this.ln1.shareBuffersWith(other.ln1);
    this.attn.shareBuffersWith(other.attn);
    this.ln2.shareBuffersWith(other.ln2);
    this.mlp.shareBuffersWith(other.mlp);
    if (this.ls1 && other.ls1) this.ls1.shareBuffersWith(other.ls1);
    if (this.ls2 && other.ls2) this.ls2.shareBuffersWith(other.ls2);
  }

  // x = x + ls_1(attn(ln_1(x)));  x = x + ls_2(mlp(ln_2(x)))   (ls_* are identities when absent)
  /**
   * `segments`: packed sequences (CPU; see Attention.forward). `pick`: everything after
   * attention runs on the picked rows, and the output is [count, W].
   * `scratch`: the tower's shared buffers (see SharedScratch); out_proj and c_proj write their
   * outputs there, unless LayerScale's backward will read them.
   */
  forward(x: Tensor, segments?: Tensor, pick?: RowPick, scratch?: SharedScratch): Tensor {
    const keep = this.retainForBackward(); // marks the mode for backward's check
    this.pick = keep ? (pick ?? null) : null;
    this.inputShape = x.shape;
    const into = scratch && !pick && !this.ls1 && !this.ls2 ? scratch('output', x.shape) : undefined;
    let a = this.attn.forward(this.ln1.forward(x), segments, pick, into);
    if (this.ls1) a = this.ls1.forward(a);
    let residual = x;
    if (pick) {
      residual = this.buffer('picked', a.shape);
      pick.gather(x, residual);
    }
    const mid = this.buffer('mid', residual.shape);
    let m = this.mlp.forward(this.ln2.forwardResidual(residual, a, mid), into);
    if (this.ls2) m = this.ls2.forward(m);
    const out = this.buffer('out', residual.shape);
    ops.add(mid, m, out);
    return out;
  }

  /**
   * `scratch`: the tower's shared buffers for the gradients read once (see SharedScratch). After a
   * forward with `pick`, dout is the picked rows' gradient [count, W]; the block's input gradient is
   * whole.
   */
  backward(dout: Tensor, scratch?: SharedScratch): Tensor {
    this.assertBackwardAllowed('ResidualBlock');
    const { pick } = this;
    // The picked rows' gradients are the block's own small buffers, not the tower's shared ones.
    const rowScratch = pick ? undefined : scratch;
    const dm = this.ls2 ? this.ls2.backward(dout) : dout;
    // Each residual sum's gradient: its layernorm's input gradient plus what reaches it directly.
    const dmid = this.ln2.backward(this.mlp.backward(dm, rowScratch), dout, rowScratch?.('mid', dout.shape));
    const da = this.ls1 ? this.ls1.backward(dmid) : dmid;
    const dattnIn = this.attn.backward(da, scratch);
    if (!pick) return this.ln1.backward(dattnIn, dmid, scratch?.('residual', dout.shape)); // into dout's buffer: not read after ln2's backward
    // The residual reaches only the picked rows of the input.
    const dresidual = this.buffer('dresidual', this.inputShape);
    pick.scatter(dmid, dresidual);
    return this.ln1.backward(dattnIn, dresidual, scratch?.('residual', this.inputShape));
  }
}

export class Transformer extends Module {
  readonly blocks: ResidualBlock[];

  /** `prefix` is e.g. `visual.transformer` or `transformer`; blocks are `${prefix}.resblocks.N`. */
  private inputs: Tensor[] = [];
  /** A training forward's packed sequences, for the blocks that backward recomputes. */
  private segments: Tensor | undefined;

  constructor(prefix: string, readonly opts: TransformerOptions) {
    super();
    this.blocks = Array.from({ length: opts.layers }, (_, i) => new ResidualBlock(`${prefix}.resblocks.${i}`, opts));
    if (opts.recompute) for (const b of this.blocks.slice(1)) b.shareInternalsWith(this.blocks[0]);
    // Inference: memory constant in depth (one set of internals, outputs in two ping-pong buffers).
    this.blocks.forEach((b, i) => {
      if (i > 0) b.shareInferenceBuffers(this.blocks[0], this.blocks[i % 2]);
    });
  }

  parameters(): Parameter[] {
    return this.blocks.flatMap((b) => b.parameters());
  }

  protected override children(): Module[] {
    return this.blocks;
  }

  /**
   * Whether a forward now may pick rows (`pick`) and pack sequences (`segments`): on the CPU, with
   * at least one block to compute them; in training unless CLIPSCALE_PICK_ROWS=0 (full rows through
   * the last block, as OpenCLIP computes them: for A/B comparisons).
   */
  get canPickRows(): boolean {
    return (this.inInference || process.env.CLIPSCALE_PICK_ROWS !== '0') && this.device === 'cpu' && this.blocks.length > 0;
  }

  /** PyTorch's defaults for every layer (what OpenCLIP leaves the image tower's blocks with). */
  initDefault(rng: Rng): void {
    for (const b of this.blocks) {
      b.attn.initDefault(rng);
      b.mlp.cFc.initDefault(rng);
      b.mlp.cProj.initDefault(rng);
      b.ls1?.init();
      b.ls2?.init();
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

  /**
   * `segments` (CPU): x [1, T, W] holds sequences of these lengths (i32 [n]) end to end, each
   * attending only within itself. `pick`: only these rows of the output are wanted; the last block
   * computes only them and the result is [count, W] (backward then takes their gradient).
   */
  forward(x: Tensor, segments?: Tensor, pick?: RowPick): Tensor {
    let h = x;
    const keep = this.retainForBackward();
    this.inputs = [];
    this.segments = keep ? segments : undefined;
    const last = this.blocks.length - 1;
    for (const [i, b] of this.blocks.entries()) {
      if (keep) this.inputs.push(h);
      h = b.forward(h, segments, i === last ? pick : undefined, this.scratch);
    }
    return h;
  }

  /**
   * Called after each block's backward with its index (last block first): that block's
   * parameter gradients are final then (data parallelism launches their all-reduce at once).
   */
  onBlockBackward: ((index: number) => void) | null = null;

  /** The buffers the blocks share (see SharedScratch), held by the tower; made when first asked for. */
  private readonly scratch: SharedScratch = (key, shape) => this.buffer(`shared-${key}`, shape);

  backward(dout: Tensor): Tensor {
    this.assertBackwardAllowed('Transformer');
    let d = dout;
    const last = this.blocks.length - 1;
    for (let i = last; i >= 0; i--) {
      // The shared internals hold the last block's activations after forward; every
      // other block recomputes its own from its saved input first.
      if (this.opts.recompute && i !== last) this.blocks[i].forward(this.inputs[i], this.segments);
      d = this.blocks[i].backward(d, this.scratch);
      this.onBlockBackward?.(i);
    }
    return d;
  }
}

