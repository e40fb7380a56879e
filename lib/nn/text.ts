// OpenCLIP's text tower (the CLIP model's own token_embedding, positional_embedding,
// transformer, ln_final and text_projection): causal attention, pooling at the
// end-of-text token (the argmax of the token ids).
import * as ops from '../ops.js';
import type { Tensor } from '../tensor.js';
import type { Rng } from '../util/rng.js';
import { type ClipConfig, mlpWidth } from './config.js';
import { normal } from './init.js';
import { LayerNorm } from './layernorm.js';
import { Module, Parameter } from './module.js';
import { Transformer } from './transformer.js';

export class TextTransformer extends Module {
  readonly tokenEmbedding: Parameter;
  readonly positionalEmbedding: Parameter;
  readonly transformer: Transformer;
  readonly lnFinal: LayerNorm;
  readonly textProjection: Parameter;
  readonly width: number;
  readonly contextLength: number;
  readonly vocabSize: number;
  readonly outputDim: number;
  private ids: Tensor | null = null;
  private pooledNormed: Tensor | null = null;

  /** `recompute`: activation recomputation per block (see TransformerOptions.recompute). */
  constructor(cfg: ClipConfig, recompute = false) {
    super();
    const t = cfg.text_cfg;
    this.width = t.width;
    this.contextLength = t.context_length;
    this.vocabSize = t.vocab_size;
    this.outputDim = cfg.embed_dim;
    this.tokenEmbedding = new Parameter('token_embedding.weight', [t.vocab_size, t.width]);
    this.positionalEmbedding = new Parameter('positional_embedding', [t.context_length, t.width]);
    this.transformer = new Transformer('transformer', {
      width: t.width,
      layers: t.layers,
      heads: t.heads,
      mlpWidth: mlpWidth(t.width, t.mlp_ratio),
      quickGelu: cfg.quick_gelu,
      causal: true,
      recompute,
    });
    this.lnFinal = new LayerNorm('ln_final', t.width);
    this.textProjection = new Parameter('text_projection', [t.width, cfg.embed_dim]);
  }

  parameters(): Parameter[] {
    return [
      this.tokenEmbedding,
      this.positionalEmbedding,
      ...this.transformer.parameters(),
      ...this.lnFinal.parameters(),
      this.textProjection,
    ];
  }

  protected override children(): Module[] {
    return [this.transformer, this.lnFinal];
  }

  /** OpenCLIP's TextTransformer.init_parameters. */
  init(rng: Rng): void {
    normal(this.tokenEmbedding, 0.02, rng);
    normal(this.positionalEmbedding, 0.01, rng);
    this.transformer.initText(rng);
    normal(this.textProjection, this.width ** -0.5, rng);
  }

  /** ids i32 [B, context_length] → features [B, embed_dim], not normalised (encode_text). */
  forward(ids: Tensor): Tensor {
    const [b, s] = ids.shape;
    if (ids.dtype !== 'i32' || ids.shape.length !== 2 || s !== this.contextLength) {
      throw new Error(`encodeText: token ids must be i32 [B, ${this.contextLength}], got ${ids.dtype}[${ids.shape.join(', ')}]`);
    }
    const x = this.buffer('embedded', [b, s, this.width]);
    ops.embeddingForward(ids, this.tokenEmbedding.data, x);
    ops.posEmbedForward(x, this.positionalEmbedding.data, x);
    const z = this.transformer.forward(x);
    const eot = this.buffer('eot', [b], 'i32');
    ops.argmaxIds(ids, eot);
    const pooled = this.buffer('pooled', [b, this.width]);
    ops.gatherRows(z, eot, pooled);
    // ln_final is per token, so pooling first and normalising after gives OpenCLIP's result.
    const normed = this.lnFinal.forward(pooled);
    const out = this.buffer('out', [b, this.outputDim]);
    ops.matmul(normed, this.textProjection.data, out);
    this.ids = ids;
    this.pooledNormed = normed;
    return out;
  }

  backward(dout: Tensor): void {
    const { ids, pooledNormed } = this;
    if (!ids || !pooledNormed) throw new Error('TextTransformer: backward before forward');
    const [b, s] = ids.shape;
    ops.matmul(pooledNormed, dout, this.textProjection.grad, { transA: true, beta: 1 });
    const dnormed = this.buffer('dnormed', [b, this.width]);
    ops.matmul(dout, this.textProjection.data, dnormed, { transB: true });
    const dpooled = this.lnFinal.backward(dnormed);
    const dz = this.buffer('dz', [b, s, this.width]);
    ops.gatherRowsBackward(dpooled, this.buffer('eot', [b], 'i32'), dz);
    const dx = this.transformer.backward(dz);
    const dpos = this.buffer('dpos', this.positionalEmbedding.shape);
    ops.posEmbedBackward(dx, dpos);
    ops.axpy(1, dpos, this.positionalEmbedding.grad);
    const dtable = this.buffer('dtable', this.tokenEmbedding.shape);
    ops.embeddingBackward(ids, dx, dtable);
    ops.axpy(1, dtable, this.tokenEmbedding.grad);
  }
}
