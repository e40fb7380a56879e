// OpenCLIP's VisionTransformer: conv1 patches, class token, positional embedding,
// ln_pre, transformer, class-token pooling, ln_post, proj.
import * as ops from '../ops.js';
import type { Tensor } from '../tensor.js';
import type { Rng } from '../util/rng.js';
import { type ClipConfig, mlpWidth, visionHeads, visionPatches } from './config.js';
import { normal, torchDefault } from './init.js';
import { LayerNorm } from './layernorm.js';
import { Module, Parameter } from './module.js';
import { Transformer } from './transformer.js';

export class VisionTransformer extends Module {
  readonly conv1: Parameter;
  readonly classEmbedding: Parameter;
  readonly positionalEmbedding: Parameter;
  readonly lnPre: LayerNorm;
  readonly transformer: Transformer;
  readonly lnPost: LayerNorm;
  readonly proj: Parameter;
  readonly width: number;
  readonly patch: number;
  readonly imageSize: number;
  readonly outputDim: number;
  private images: Tensor | null = null;
  private pooledNormed: Tensor | null = null;

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
    this.lnPre = new LayerNorm('visual.ln_pre', v.width);
    this.transformer = new Transformer('visual.transformer', {
      width: v.width,
      layers: v.layers,
      heads: visionHeads(cfg),
      mlpWidth: mlpWidth(v.width, v.mlp_ratio),
      quickGelu: cfg.quick_gelu,
      causal: false,
      recompute,
    });
    this.lnPost = new LayerNorm('visual.ln_post', v.width);
    this.proj = new Parameter('visual.proj', [v.width, cfg.embed_dim]);
  }

  parameters(): Parameter[] {
    return [
      this.classEmbedding,
      this.positionalEmbedding,
      this.proj,
      this.conv1,
      ...this.lnPre.parameters(),
      ...this.transformer.parameters(),
      ...this.lnPost.parameters(),
    ];
  }

  protected override children(): Module[] {
    return [this.lnPre, this.transformer, this.lnPost];
  }

  /** OpenCLIP: scale·randn for the class token, positions and proj (scale = width^−½); PyTorch defaults elsewhere. */
  init(rng: Rng): void {
    const scale = this.width ** -0.5;
    normal(this.classEmbedding, scale, rng);
    normal(this.positionalEmbedding, scale, rng);
    normal(this.proj, scale, rng);
    torchDefault(this.conv1, 3 * this.patch * this.patch, rng);
    this.transformer.initDefault(rng);
  }

  /** images [B, 3, H, W] (normalised) → features [B, embed_dim], not normalised (encode_image). */
  forward(images: Tensor): Tensor {
    const [b, c, hgt, wid] = images.shape;
    if (images.shape.length !== 4 || c !== 3 || hgt !== this.imageSize || wid !== this.imageSize) {
      throw new Error(`encodeImage: images must be [B, 3, ${this.imageSize}, ${this.imageSize}], got [${images.shape.join(', ')}]`);
    }
    const grid = (this.imageSize / this.patch) ** 2;
    const patches = this.buffer('patches', [b, grid, this.width]);
    ops.patchEmbedForward(images, this.conv1.data, patches);
    const tokens = this.buffer('tokens', [b, grid + 1, this.width]);
    ops.classTokenConcat(patches, this.classEmbedding.data, tokens);
    ops.posEmbedForward(tokens, this.positionalEmbedding.data, tokens);
    const z = this.transformer.forward(this.lnPre.forward(tokens));
    const pooled = this.buffer('pooled', [b, this.width]);
    ops.gatherRows(z, this.classIndex(b), pooled);
    const normed = this.lnPost.forward(pooled);
    const out = this.buffer('out', [b, this.outputDim]);
    ops.matmul(normed, this.proj.data, out);
    this.images = images;
    this.pooledNormed = normed;
    return out;
  }

  /** Accumulates every parameter gradient from d features [B, embed_dim]. */
  backward(dout: Tensor): void {
    const { images, pooledNormed } = this;
    if (!images || !pooledNormed) throw new Error('VisionTransformer: backward before forward');
    const b = images.shape[0];
    const grid = (this.imageSize / this.patch) ** 2;
    ops.matmul(pooledNormed, dout, this.proj.grad, { transA: true, beta: 1 });
    const dnormed = this.buffer('dnormed', [b, this.width]);
    ops.matmul(dout, this.proj.data, dnormed, { transB: true });
    const dpooled = this.lnPost.backward(dnormed);
    const dz = this.buffer('dz', [b, grid + 1, this.width]);
    ops.gatherRowsBackward(dpooled, this.classIndex(b), dz);
    const dtokens = this.lnPre.backward(this.transformer.backward(dz));
    const dpos = this.buffer('dpos', this.positionalEmbedding.shape);
    ops.posEmbedBackward(dtokens, dpos);
    ops.axpy(1, dpos, this.positionalEmbedding.grad);
    const dpatches = this.buffer('dpatches', [b, grid, this.width]);
    const dcls = this.buffer('dcls', [this.width]);
    ops.classTokenConcatBackward(dtokens, dpatches, dcls);
    ops.axpy(1, dcls, this.classEmbedding.grad);
    ops.patchEmbedBackward(images, this.conv1.data, dpatches, { dweight: this.conv1.grad, accumulate: true });
  }

  private classIndex(b: number): Tensor {
    const idx = this.buffer('cls_index', [b], 'i32');
    ops.fill(idx, 0);
    return idx;
  }
}

