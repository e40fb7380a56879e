// nn.MultiheadAttention as OpenCLIP uses it: packed in_proj (q, k, v stacked on the
// output dimension), fused attention, out_proj.
import * as ops from '../ops.js';
import { linearInputDtype, storedDtype } from './activation_dtype.js';
import type { Tensor } from '../tensor.js';
import type { Rng } from '../util/rng.js';
import { constant, xavierUniform } from './init.js';
import { Linear } from './linear.js';
import { Module, Parameter } from './module.js';
import type { RowPick } from './row_pick.js';
import type { SharedScratch } from './shared_scratch.js';

export class Attention extends Module {
  readonly inProjWeight: Parameter;
  readonly inProjBias: Parameter;
  readonly outProj: Linear;
  private input: Tensor | null = null;
  private qkv: Tensor | null = null;
  private attnOut: Tensor | null = null;
  private segments: Tensor | null = null;
  private pick: RowPick | null = null;

  constructor(prefix: string, readonly width: number, readonly heads: number, readonly causal: boolean) {
    super();
    if (width % heads !== 0) throw new Error(`${prefix}: width ${width} is not divisible by ${heads} heads`);
    this.inProjWeight = new Parameter(`${prefix}.in_proj_weight`, [3 * width, width]);
    this.inProjBias = new Parameter(`${prefix}.in_proj_bias`, [3 * width]);
    this.outProj = new Linear(`${prefix}.out_proj`, width, width);
  }

  parameters(): Parameter[] {
    return [this.inProjWeight, this.inProjBias, ...this.outProj.parameters()];
  }

  protected override children(): Module[] {
    return [this.outProj];
  }

  override linearWeights(): Parameter[] {
    return [this.inProjWeight, ...super.linearWeights()];
  }

  /** nn.MultiheadAttention's own initialisation. */
  initDefault(rng: Rng): void {
    xavierUniform(this.inProjWeight, this.width, 3 * this.width, rng);
    constant(this.inProjBias, 0);
    this.outProj.initDefault(rng, true);
  }

  /**
   * `segments` (CPU): x is [1, T, W] holding sequences of these lengths (i32 [n], summing to T) end
   * to end, each attending only within itself (TextTransformer's packing), in training too.
   * `pick`: out_proj runs on the picked rows only and returns [count, W] (backward takes their gradient).
   * `into`: out_proj's output goes there (see Linear.forward).
   */
  forward(x: Tensor, segments?: Tensor, pick?: RowPick, into?: Tensor): Tensor {
    const [b, s] = x.shape;
    const keep = this.retainForBackward();
    // in_proj's output is read only by the attention (forward and backward pack passes, which
    // repack it head-major): 16-bit in a CUDA bf16/fp16 run.
    const qkv = this.buffer('qkv', [b, s, 3 * this.width], storedDtype(x));
    ops.linearForward(x, this.inProjWeight.data, this.inProjBias.data, qkv, this.inProjWeight.halfCopy, this.inferencePacked(this.inProjWeight));
    // Read only by out_proj and by backward's D = rowsum(dO∘O): 16-bit in a CUDA bf16/fp16 run.
    const out = this.buffer('attn', [b, s, this.width], linearInputDtype(x, this.width));
    const opts = { heads: this.heads, causal: this.causal };
    // With a pick only its rows' outputs are read (out_proj below, and backward's rows with gradient):
    // on the CPU the attention computes just those queries.
    const queryRows = pick && qkv.device === 'cpu' ? this.buffer('queryRows', [pick.count], 'i32') : null;
    if (queryRows) pick!.tokenRows(s, queryRows);
    if (segments) ops.attentionForwardPacked(qkv, out, segments, opts, keep ? this.lse(b, s, true) : null, queryRows);
    else ops.attentionForward(qkv, out, this.lse(b, s, false), opts, queryRows);
    this.input = keep ? x : null;
    this.qkv = keep ? qkv : null;
    this.attnOut = keep ? out : null;
    this.segments = keep ? (segments ?? null) : null;
    this.pick = keep ? (pick ?? null) : null;
    if (!pick) return this.outProj.forward(out, into);
    // out_proj over the picked rows only.
    const rows = this.buffer('attnPicked', [pick.count, this.width], out.dtype as 'f32');
    pick.gather(out, rows);
    return this.outProj.forward(rows);
  }

  /** The softmax log-sum-exps forward saves for backward: [B, heads, S], or [heads·T] packed. */
  private lse(b: number, s: number, packed: boolean): Tensor {
    return this.buffer('lse', packed ? [this.heads * s] : [b, this.heads, s]);
  }

  /** `scratch`: where the gradients read once right after go (see SharedScratch). */
  backward(dout: Tensor, scratch?: SharedScratch): Tensor {
    this.assertBackwardAllowed(this.inProjWeight.name);
    const { input: x, qkv, attnOut } = this;
    if (!x || !qkv || !attnOut) throw new Error(`${this.inProjWeight.name}: backward before forward`);
    const [b, s] = x.shape;
    const dattn = scratch ? scratch('width', [b, s, this.width]) : this.buffer('dattn', [b, s, this.width]);
    if (this.pick) this.pick.scatter(this.outProj.backward(dout) as Tensor, dattn);  // out_proj ran on the picked rows
    else this.outProj.backward(dout, true, false, dattn);
    const dqkv = scratch ? scratch('qkv', qkv.shape) : this.buffer('dqkv', qkv.shape);
    const opts = { heads: this.heads, causal: this.causal };
    const { segments } = this;
    if (segments) ops.attentionBackwardPacked(qkv, attnOut, dattn, this.lse(b, s, true), dqkv, segments, opts);
    else ops.attentionBackward(qkv, attnOut, dattn, this.lse(b, s, false), dqkv, opts);
    // dattn is read only by the attention backward above, so dx can take its scratch.
    const dx = scratch ? scratch('width', x.shape) : this.buffer('dx', x.shape);
    ops.linearBackward(x, this.inProjWeight.data, dqkv, { dx, dw: this.inProjWeight.grad, db: this.inProjBias.grad, accumulate: true, w16: this.inProjWeight.halfCopy });
    return dx;
  }
}
