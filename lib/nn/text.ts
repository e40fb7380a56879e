// OpenCLIP's text tower (the CLIP model's own token_embedding, positional_embedding,
// transformer, ln_final and text_projection; named `text.…` in a CustomTextCLIP):
// causal attention (unless no_causal_mask), pooling at the end-of-text token (the argmax
// of the token ids) or as pool_type says, a projection matrix, a biased linear layer
// (proj_bias) or none (proj_type 'none').
import * as ops from '../ops.js';
import type { Tensor } from '../tensor.js';
import type { Rng } from '../util/rng.js';
import { activationOf, type ClipConfig, mlpWidth, normEps, type TextPoolType } from './config.js';
import { normal } from './init.js';
import { LayerNorm } from './layernorm.js';
import { Linear } from './linear.js';
import { Module, Parameter } from './module.js';
import { pickPerSequence, pickPositions, type RowPick } from './row_pick.js';
import { Transformer } from './transformer.js';

/** CLIPSCALE_PACK_TEXT=0 trains the text tower at full length (for A/B comparisons). */
function packTextInTraining(): boolean {
  return process.env.CLIPSCALE_PACK_TEXT !== '0';
}

export class TextTransformer extends Module {
  readonly tokenEmbedding: Parameter;
  readonly positionalEmbedding: Parameter;
  readonly transformer: Transformer;
  readonly lnFinal: LayerNorm;
  /** The projection matrix [width, embed_dim] (OpenCLIP's default); null with proj_bias or proj_type 'none'. */
  readonly textProjection: Parameter | null;
  /** The projection as nn.Linear (proj_bias): `text_projection.weight` [embed_dim, width] and `.bias`. */
  readonly textProjectionLinear: Linear | null;
  readonly poolType: TextPoolType;
  readonly eosId: number;
  readonly width: number;
  readonly contextLength: number;
  readonly vocabSize: number;
  readonly outputDim: number;
  private ids: Tensor | null = null;
  private pooledNormed: Tensor | null = null;
  /** A packed training forward's pooled positions among the packed tokens (null: padded). */
  private packedEnds: number[] | null = null;
  /** Whether the forward's last block computed only the pooled rows (Transformer.canPickRows). */
  private pickedRows = false;

  /** `recompute`: activation recomputation per block (see TransformerOptions.recompute). */
  constructor(cfg: ClipConfig, recompute = false) {
    super();
    const t = cfg.text_cfg;
    const n = cfg.custom_text ? 'text.' : '';
    this.width = t.width;
    this.contextLength = t.context_length;
    this.vocabSize = t.vocab_size;
    this.poolType = t.pool_type ?? 'argmax';
    this.eosId = t.eos_id ?? 2;
    const project = (t.proj_type ?? 'linear') !== 'none';
    this.outputDim = project ? cfg.embed_dim : t.width;
    const eps = normEps(t);
    this.tokenEmbedding = new Parameter(`${n}token_embedding.weight`, [t.vocab_size, t.width]);
    this.positionalEmbedding = new Parameter(`${n}positional_embedding`, [t.context_length, t.width]);
    this.transformer = new Transformer(`${n}transformer`, {
      width: t.width,
      layers: t.layers,
      heads: t.heads,
      mlpWidth: mlpWidth(t.width, t.mlp_ratio),
      quickGelu: cfg.quick_gelu,
      activation: activationOf(cfg.quick_gelu, t),
      causal: !(t.no_causal_mask ?? false),
      recompute,
      ...(t.ls_init_value !== undefined ? { lsInitValue: t.ls_init_value } : {}),
      normEps: eps,
    });
    this.lnFinal = new LayerNorm(`${n}ln_final`, t.width, eps);
    this.textProjection = project && !t.proj_bias ? new Parameter(`${n}text_projection`, [t.width, cfg.embed_dim]) : null;
    this.textProjectionLinear = project && t.proj_bias ? new Linear(`${n}text_projection`, t.width, cfg.embed_dim) : null;
  }

  parameters(): Parameter[] {
    return [
      this.tokenEmbedding,
      this.positionalEmbedding,
      ...this.transformer.parameters(),
      ...this.lnFinal.parameters(),
      ...(this.textProjection ? [this.textProjection] : []),
      ...(this.textProjectionLinear?.parameters() ?? []),
    ];
  }

  protected override children(): Module[] {
    return [this.transformer, this.lnFinal, ...(this.textProjectionLinear ? [this.textProjectionLinear] : [])];
  }

  /** OpenCLIP's TextTransformer.init_parameters. */
  init(rng: Rng): void {
    normal(this.tokenEmbedding, 0.02, rng);
    normal(this.positionalEmbedding, 0.01, rng);
    this.transformer.initText(rng);
    if (this.textProjection) normal(this.textProjection, this.width ** -0.5, rng);
    if (this.textProjectionLinear) {
      normal(this.textProjectionLinear.weight, this.width ** -0.5, rng);
      this.textProjectionLinear.bias?.values().fill(0);
    }
    for (const b of this.transformer.blocks) {
      b.ls1?.init();
      b.ls2?.init();
    }
  }

  /** ids i32 [B, context_length] → features [B, embed_dim], not normalised (encode_text). */
  forward(ids: Tensor): Tensor {
    const [b, s] = ids.shape;
    if (ids.dtype !== 'i32' || ids.shape.length !== 2 || s !== this.contextLength) {
      throw new Error(`encodeText: token ids must be i32 [B, ${this.contextLength}], got ${ids.dtype}[${ids.shape.join(', ')}]`);
    }
    const eot = this.buffer('eot', [b], 'i32');
    this.poolIndex(ids, eot);
    this.packedEnds = null;
    const pooled = this.encodePacked(ids, eot) ?? this.encodePadded(ids, eot);
    // ln_final is per token, so pooling first and normalising after gives OpenCLIP's result.
    const normed = this.lnFinal.forward(pooled);
    const keep = this.retainForBackward();
    this.ids = keep ? ids : null;
    this.pooledNormed = keep ? normed : null;
    if (this.textProjectionLinear) return this.textProjectionLinear.forward(normed);
    if (!this.textProjection) return normed;
    const out = this.buffer('out', [b, this.outputDim]);
    ops.matmul(normed, this.textProjection.data, out);
    return out;
  }

  /**
   * On the CPU under the causal mask, a token sees only the tokens before it, so the pooled
   * token's features do not depend on anything after it. Each row is then run only up to its
   * pooled token (the end-of-text token with argmax pooling), the rows' tokens packed end to end,
   * attention within each row: the padding OpenCLIP computes is skipped (a caption of 15 tokens
   * costs 15 of the 77 positions), and every op sees the same values it would padded. In training
   * too (the padding's gradients are exactly zero; CLIPSCALE_PACK_TEXT=0 trains at full length).
   * Returns the pooled rows [B, W], or null where this does not apply (no causal mask, a GPU, or no
   * padding to skip).
   */
  private encodePacked(ids: Tensor, eot: Tensor): Tensor | null {
    const pack = this.inInference || packTextInTraining();
    if (!pack || !this.transformer.opts.causal || ids.device !== 'cpu' || this.transformer.blocks.length === 0) return null;
    const [b, s] = ids.shape;
    const segments = this.buffer('segments', [b], 'i32');
    const lengths = segments.view() as Int32Array;
    let total = 0;
    (eot.view() as Int32Array).forEach((p, i) => (total += lengths[i] = p + 1));
    if (total === b * s) return null;
    const w = this.width;
    // Embedded at full length (two cheap ops), then each row's first tokens copied end to end.
    const padded = this.buffer('embedded', [b, s, w]);
    ops.embeddingForward(ids, this.tokenEmbedding.data, padded);
    ops.posEmbedForward(padded, this.positionalEmbedding.data, padded);
    const x = this.buffer('packed', [1, total, w]);
    const from = padded.view() as Float32Array;
    const to = x.view() as Float32Array;
    const ends: number[] = [];
    for (let i = 0, start = 0; i < b; start += lengths[i], i++) {
      to.set(from.subarray(i * s * w, (i * s + lengths[i]) * w), start * w);
      ends.push(start + lengths[i] - 1);
    }
    this.packedEnds = ends;
    return this.encodeRows(x, segments, pickPositions(ends), b);
  }

  /** The blocks over x, then each row's pooled token [B, W]: the last block computes only those where it may. */
  private encodeRows(x: Tensor, segments: Tensor | undefined, pick: RowPick, b: number): Tensor {
    this.pickedRows = this.transformer.canPickRows;
    if (this.pickedRows) return this.transformer.forward(x, segments, pick);
    const pooled = this.buffer('pooled', [b, this.width]);
    pick.gather(this.transformer.forward(x, segments), pooled);
    return pooled;
  }

  /** Every row at full length (training, and where packing does not apply); the pooled rows [B, W]. */
  private encodePadded(ids: Tensor, eot: Tensor): Tensor {
    const [b, s] = ids.shape;
    const x = this.buffer('embedded', [b, s, this.width]);
    ops.embeddingForward(ids, this.tokenEmbedding.data, x);
    ops.posEmbedForward(x, this.positionalEmbedding.data, x);
    return this.encodeRows(x, undefined, pickPerSequence(eot), b);
  }

  /** The pooled position per row (OpenCLIP's text_global_pool). */
  private poolIndex(ids: Tensor, index: Tensor): void {
    if (this.poolType === 'argmax') {
      ops.argmaxIds(ids, index);
      return;
    }
    const [b, s] = ids.shape;
    const is = ids.view() as Int32Array;
    const out = index.view() as Int32Array;
    for (let i = 0; i < b; i++) {
      if (this.poolType === 'first') out[i] = 0;
      else if (this.poolType === 'last') out[i] = s - 1;
      else {
        // (text == eos_id).int().argmax(-1): the first match, or 0 when there is none.
        let at = 0;
        for (let j = 0; j < s; j++) {
          if (is[i * s + j] === this.eosId) {
            at = j;
            break;
          }
        }
        out[i] = at;
      }
    }
  }

  /** The pooled rows' gradient [B, W] back through the blocks (their last one computed only those rows, or every row). */
  private blocksBackward(dpooled: Tensor, pick: RowPick, tokens: readonly number[]): Tensor {
    if (this.pickedRows) return this.transformer.backward(dpooled);
    const dz = this.buffer('dz', tokens);
    pick.scatter(dpooled, dz);
    return this.transformer.backward(dz);
  }

  /** The padded path's gradient of the embedded tokens [B, S, W]. */
  private paddedBackward(dpooled: Tensor, b: number, s: number): Tensor {
    return this.blocksBackward(dpooled, pickPerSequence(this.buffer('eot', [b], 'i32')), [b, s, this.width]);
  }

  /**
   * The packed path's: the pooled rows' gradients into the packed tokens (zero elsewhere), back
   * through the blocks, then out to full length with zeros at the padding (what the padded path's
   * gradient holds there: no token the loss reads sees it).
   */
  private packedBackward(dpooled: Tensor, ends: readonly number[], b: number, s: number): Tensor {
    const w = this.width;
    const lengths = this.buffer('segments', [b], 'i32').view() as Int32Array;
    const total = ends[ends.length - 1] + 1;
    const dxPacked = this.blocksBackward(dpooled, pickPositions(ends), [1, total, w]).view() as Float32Array;
    const dx = this.buffer('dxPadded', [b, s, w]);
    const dxv = dx.view() as Float32Array;
    dxv.fill(0);
    for (let i = 0, start = 0; i < b; start += lengths[i], i++) dxv.set(dxPacked.subarray(start * w, (start + lengths[i]) * w), i * s * w);
    return dx;
  }

  backward(dout: Tensor): void {
    this.assertBackwardAllowed('TextTransformer');
    const { ids, pooledNormed } = this;
    if (!ids || !pooledNormed) throw new Error('TextTransformer: backward before forward');
    const [b, s] = ids.shape;
    let dnormed: Tensor;
    if (this.textProjectionLinear) {
      dnormed = this.textProjectionLinear.backward(dout) as Tensor;
    } else if (this.textProjection) {
      ops.matmul(pooledNormed, dout, this.textProjection.grad, { transA: true, beta: 1 });
      dnormed = this.buffer('dnormed', [b, this.width]);
      ops.matmul(dout, this.textProjection.data, dnormed, { transB: true });
    } else {
      dnormed = dout;
    }
    const dpooled = this.lnFinal.backward(dnormed);
    const dx = this.packedEnds ? this.packedBackward(dpooled, this.packedEnds, b, s) : this.paddedBackward(dpooled, b, s);
    const dpos = this.buffer('dpos', this.positionalEmbedding.shape);
    ops.posEmbedBackward(dx, dpos);
    ops.axpy(1, dpos, this.positionalEmbedding.grad);
    const dtable = this.buffer('dtable', this.tokenEmbedding.shape);
    ops.embeddingBackward(ids, dx, dtable);
    ops.axpy(1, dtable, this.tokenEmbedding.grad);
  }
}
