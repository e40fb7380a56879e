// OpenCLIP's VisionTransformer: conv1 patches, class token, positional embedding,
// ln_pre (unless no_ln_pre), transformer, pooling (class token, or the mean of the patch
// tokens) with ln_post before or after it (final_ln_after_pool), proj.
import * as ops from '../ops.js';
import type { Tensor } from '../tensor.js';
import type { Rng } from '../util/rng.js';
import { activationOf, type ClipConfig, mlpWidth, normEps, type VisionPoolType, visionHeads, visionPatches } from './config.js';
import { AttentionalPooler } from './attentional_pooler.js';
import { normal, torchDefault } from './init.js';
import { LayerNorm } from './layernorm.js';
import { Module, Parameter } from './module.js';
import { pickPerSequence } from './row_pick.js';
import { Transformer } from './transformer.js';

export class VisionTransformer extends Module {
  readonly conv1: Parameter;
  readonly classEmbedding: Parameter;
  readonly positionalEmbedding: Parameter;
  /** Absent with no_ln_pre. */
  readonly lnPre: LayerNorm | null;
  readonly transformer: Transformer;
  readonly lnPost: LayerNorm;
  readonly proj: Parameter;
  readonly width: number;
  readonly patch: number;
  readonly imageSize: number;
  readonly outputDim: number;
  readonly poolType: VisionPoolType;
  /** OpenCLIP's attentional pooler (attentional_pool: true): queries over the tokens, before ln_post and pooling. */
  readonly attnPool: AttentionalPooler | null;
  /** Width of what is pooled: embed_dim after an attentional pooler, else the tower's width. */
  readonly poolWidth: number;
  readonly finalLnAfterPool: boolean;
  private images: Tensor | null = null;
  private pooledNormed: Tensor | null = null;
  /** Whether the forward's last block computed only the class tokens (pickClassTokens). */
  private pickedRows = false;

  /** `recompute`: activation recomputation per block (see TransformerOptions.recompute). */
  constructor(cfg: ClipConfig, recompute = false) {
    super();
    const v = cfg.vision_cfg;
    this.width = v.width;
    this.patch = v.patch_size;
    this.imageSize = v.image_size;
    this.outputDim = cfg.embed_dim;
    if (v.image_size % v.patch_size !== 0) throw new Error(`vision_cfg: image_size ${v.image_size} is not a multiple of patch_size ${v.patch_size}`);
    const tokens = visionPatches(cfg) + 1;
    this.conv1 = new Parameter('visual.conv1.weight', [v.width, 3, v.patch_size, v.patch_size]);
    this.classEmbedding = new Parameter('visual.class_embedding', [v.width]);
    this.positionalEmbedding = new Parameter('visual.positional_embedding', [tokens, v.width]);
    const eps = normEps(v);
    this.poolType = v.pool_type ?? 'tok';
    this.attnPool = v.attentional_pool
      ? new AttentionalPooler('visual.attn_pool', cfg.embed_dim, v.width, v.attn_pooler_heads ?? 8, v.attn_pooler_queries ?? 256, eps)
      : null;
    this.poolWidth = this.attnPool ? cfg.embed_dim : v.width;
    // OpenCLIP ignores final_ln_after_pool with the attentional pooler: ln_post, then pooling.
    this.finalLnAfterPool = this.attnPool ? false : (v.final_ln_after_pool ?? false);
    this.lnPre = v.no_ln_pre ? null : new LayerNorm('visual.ln_pre', v.width, eps);
    this.transformer = new Transformer('visual.transformer', {
      width: v.width,
      layers: v.layers,
      heads: visionHeads(cfg),
      mlpWidth: mlpWidth(v.width, v.mlp_ratio),
      quickGelu: cfg.quick_gelu,
      activation: activationOf(cfg.quick_gelu, v),
      causal: false,
      recompute,
      ...(v.ls_init_value !== undefined ? { lsInitValue: v.ls_init_value } : {}),
      normEps: eps,
    });
    this.lnPost = new LayerNorm('visual.ln_post', this.poolWidth, eps);
    this.proj = new Parameter('visual.proj', [this.poolWidth, cfg.embed_dim]);
  }

  parameters(): Parameter[] {
    return [
      this.classEmbedding,
      this.positionalEmbedding,
      this.proj,
      this.conv1,
      ...(this.lnPre?.parameters() ?? []),
      ...this.transformer.parameters(),
      ...(this.attnPool?.parameters() ?? []),
      ...this.lnPost.parameters(),
    ];
  }

  protected override children(): Module[] {
    return [...(this.lnPre ? [this.lnPre] : []), this.transformer, ...(this.attnPool ? [this.attnPool] : []), this.lnPost];
  }

  /** OpenCLIP: scale·randn for the class token, positions and proj (scale = width^−½); PyTorch defaults elsewhere. */
  init(rng: Rng): void {
    const scale = this.width ** -0.5;
    normal(this.classEmbedding, scale, rng);
    normal(this.positionalEmbedding, scale, rng);
    normal(this.proj, scale, rng);
    torchDefault(this.conv1, 3 * this.patch * this.patch, rng);
    this.transformer.initDefault(rng);
    this.attnPool?.init(rng);
  }

  /** images [B, 3, H, W] (normalised) → features [B, embed_dim], not normalised (encode_image). */
  forward(images: Tensor): Tensor {
    const [b, c, hgt, wid] = images.shape;
    if (images.shape.length !== 4 || c !== 3 || hgt !== this.imageSize || wid !== this.imageSize) {
      throw new Error(`encodeImage: images must be [B, 3, ${this.imageSize}, ${this.imageSize}], got [${images.shape.join(', ')}]`);
    }
    const grid = (this.imageSize / this.patch) ** 2;
    const patches = this.buffer('patches', [b, grid, this.width]);
    ops.patchEmbedForward(images, this.conv1.data, patches, this.inferencePacked(this.conv1));
    const tokens = this.buffer('tokens', [b, grid + 1, this.width]);
    ops.classTokenConcat(patches, this.classEmbedding.data, tokens);
    ops.posEmbedForward(tokens, this.positionalEmbedding.data, tokens);
    this.pickedRows = this.pickClassTokens(b);
    const normed = this.pickedRows ? this.encodeClassTokens(tokens, b) : this.pool(this.encodeTokens(tokens), b);
    const out = this.buffer('out', [b, this.outputDim]);
    ops.matmul(normed, this.proj.data, out);
    const keep = this.retainForBackward();
    this.images = keep ? images : null;
    this.pooledNormed = keep ? normed : null;
    return out;
  }

  /** Accumulates every parameter gradient from d features [B, embed_dim]. */
  backward(dout: Tensor): void {
    this.assertBackwardAllowed('VisionTransformer');
    const { images, pooledNormed } = this;
    if (!images || !pooledNormed) throw new Error('VisionTransformer: backward before forward');
    const b = images.shape[0];
    const grid = (this.imageSize / this.patch) ** 2;
    ops.matmul(pooledNormed, dout, this.proj.grad, { transA: true, beta: 1 });
    const dnormed = this.buffer('dnormed', [b, this.poolWidth]);
    ops.matmul(dout, this.proj.data, dnormed, { transB: true });
    let dtz: Tensor;
    if (this.pickedRows) {
      dtz = this.transformer.backward(this.lnPost.backward(dnormed)); // the last block computed only the class tokens
    } else {
      const pooledTokens = this.attnPool ? this.attnPool.queries : grid + 1;
      const dpool = this.poolBackward(dnormed, b, pooledTokens);
      dtz = this.transformer.backward(this.attnPool ? this.attnPool.backward(dpool) : dpool);
    }
    const dtokens = this.lnPre ? this.lnPre.backward(dtz) : dtz;
    const dpos = this.buffer('dpos', this.positionalEmbedding.shape);
    ops.posEmbedBackward(dtokens, dpos);
    ops.axpy(1, dpos, this.positionalEmbedding.grad);
    const dpatches = this.buffer('dpatches', [b, grid, this.width]);
    const dcls = this.buffer('dcls', [this.width]);
    ops.classTokenConcatBackward(dtokens, dpatches, dcls);
    ops.axpy(1, dcls, this.classEmbedding.grad);
    ops.patchEmbedBackward(images, this.conv1.data, dpatches, { dweight: this.conv1.grad, accumulate: true });
  }

  private encodeTokens(tokens: Tensor): Tensor {
    const z = this.transformer.forward(this.lnPre ? this.lnPre.forward(tokens) : tokens);
    return this.attnPool ? this.attnPool.forward(z) : z;
  }

  /**
   * On the CPU with class-token pooling, only the class token is read after the last block: that
   * block computes only it (see row_pick.ts; in training too unless CLIPSCALE_PICK_ROWS=0), and
   * ln_post follows as in `pool`.
   */
  private pickClassTokens(b: number): boolean {
    return b > 0 && this.transformer.canPickRows && this.poolType === 'tok' && !this.attnPool;
  }

  private encodeClassTokens(tokens: Tensor, b: number): Tensor {
    const x = this.lnPre ? this.lnPre.forward(tokens) : tokens;
    return this.lnPost.forward(this.transformer.forward(x, undefined, pickPerSequence(this.classIndex(b))));
  }

  /**
   * z [B, S, W] → the pooled, ln_post'ed vector [B, W] (OpenCLIP's _pool): with the class token
   * ('tok') ln_post is per token, so pooling first gives the same result; with 'avg' the order
   * is final_ln_after_pool's.
   */
  private pool(z: Tensor, b: number): Tensor {
    const pooled = this.buffer('pooled', [b, this.poolWidth]);
    if (this.poolType === 'tok') {
      ops.gatherRows(z, this.classIndex(b), pooled);
      return this.lnPost.forward(pooled);
    }
    if (this.finalLnAfterPool) {
      meanPatchTokens(z, pooled);
      return this.lnPost.forward(pooled);
    }
    meanPatchTokens(this.lnPost.forward(z), pooled);
    return pooled;
  }

  /** d(pooled, normed) [B, W] → dz [B, S, W]; adds ln_post's parameter gradients. */
  private poolBackward(dnormed: Tensor, b: number, tokens: number): Tensor {
    const dz = this.buffer('dz', [b, tokens, this.poolWidth]);
    if (this.poolType === 'tok') {
      ops.gatherRowsBackward(this.lnPost.backward(dnormed), this.classIndex(b), dz);
      return dz;
    }
    if (this.finalLnAfterPool) {
      meanPatchTokensBackward(this.lnPost.backward(dnormed), dz);
      return dz;
    }
    meanPatchTokensBackward(dnormed, dz);
    return this.lnPost.backward(dz);
  }

  private classIndex(b: number): Tensor {
    const idx = this.buffer('cls_index', [b], 'i32');
    ops.fill(idx, 0);
    return idx;
  }
}


/** out[b] = mean over s ≥ 1 of z[b, s] (OpenCLIP's 'avg': x[:, 1:].mean(dim=1)); host loops, double sums. */
function meanPatchTokens(z: Tensor, out: Tensor): void {
  const [b, s, w] = z.shape;
  const zs = z.view() as Float32Array;
  const os = out.view() as Float32Array;
  const acc = new Float64Array(w);
  for (let i = 0; i < b; i++) {
    acc.fill(0);
    for (let t = 1; t < s; t++) {
      const row = (i * s + t) * w;
      for (let j = 0; j < w; j++) acc[j] += zs[row + j];
    }
    for (let j = 0; j < w; j++) os[i * w + j] = acc[j] / (s - 1);
  }
}

/** dz [B, S, W] (overwritten): 0 at the class token, dout[b] / (S − 1) at every patch token. */
function meanPatchTokensBackward(dout: Tensor, dz: Tensor): void {
  const [b, s, w] = dz.shape;
  const ds = dout.view() as Float32Array;
  const dzs = dz.view() as Float32Array;
  for (let i = 0; i < b; i++) {
    dzs.fill(0, i * s * w, (i * s + 1) * w);
    for (let t = 1; t < s; t++) {
      const row = (i * s + t) * w;
      for (let j = 0; j < w; j++) dzs[row + j] = ds[i * w + j] / (s - 1);
    }
  }
}
