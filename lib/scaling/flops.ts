// Compute accounting: multiply-accumulates (MACs) per sample and parameter counts of a CLIP config,
// counted the way the scaling-laws paper's arch_info.csv counts them. That table came from fvcore's
// FlopCountAnalysis on OpenCLIP models, whose convention (worked out from the table's numbers, which
// this file reproduces to their two decimals for every ViT in it) is:
//   - every matmul: patch embedding (a stride-p convolution = one matmul per patch), qkv and output
//     projections, the MLP, and the final projection of the one pooled token;
//   - attention's QKᵀ and A·V products, S² terms included (S = patches + 1 class token for images,
//     the full context length for text; the causal mask saves nothing);
//   - layer norms at 5 MACs per element (fvcore's count for an affine layer norm);
//   - nothing for softmax, GELU, residual adds, LayerScale or embedding lookups.
// The OpenCLIP config fields beyond the plain ViT change the counts where they change the model:
// no_ln_pre, ln_post over every token (pool_type 'avg' without final_ln_after_pool), LayerScale
// gammas, a biased or absent text projection, a logit bias, the attentional pooler (its q/k/v and
// output projections, the queries' attention over the tokens, ln_q, ln_k, and ln_post over every query).
import type { ClipConfig } from '../nn/config.js';
import { mlpWidth, visionPatches } from '../nn/config.js';

export interface ComputeCost {
  /** MACs per sample of the image tower, in units of 10⁹. */
  image_gmacs: number;
  /** MACs per sample of the text tower, in units of 10⁹. */
  text_gmacs: number;
  /** image_gmacs + text_gmacs: the paper's "GMACs per sample". */
  gmacs: number;
  /** Trainable parameters of the whole model (both towers and the logit scale). */
  params: number;
  image_params: number;
  text_params: number;
}

/** fvcore counts an affine layer norm as 5 operations per element. */
const layerNormMacsPerElement = 5;

/** MACs of one pre-norm transformer block over `tokens` tokens of `width`, MLP hidden `hidden`. */
function blockMacs(tokens: number, width: number, hidden: number): number {
  const qkv = 3 * tokens * width * width;
  const attention = 2 * tokens * tokens * width; // QKᵀ and A·V over all heads together
  const out = tokens * width * width;
  const mlp = 2 * tokens * width * hidden;
  const norms = 2 * layerNormMacsPerElement * tokens * width;
  return qkv + attention + out + mlp + norms;
}

/** Parameters of one block: attention in/out projections with biases, two layer norms, the MLP. */
function blockParams(width: number, hidden: number): number {
  const attention = 3 * width * width + 3 * width + width * width + width;
  const norms = 2 * 2 * width;
  const mlp = width * hidden + hidden + hidden * width + width;
  return attention + norms + mlp;
}

/** MACs per sample of the image tower. */
export function imageMacs(cfg: ClipConfig): number {
  const v = cfg.vision_cfg;
  const patches = visionPatches(cfg);
  const tokens = patches + 1; // the class token
  const hidden = mlpWidth(v.width, v.mlp_ratio);
  const patchEmbed = patches * v.width * 3 * v.patch_size * v.patch_size;
  const lnPre = v.no_ln_pre ? 0 : layerNormMacsPerElement * tokens * v.width;
  const d = cfg.embed_dim;
  if (v.attentional_pool) {
    const q = v.attn_pooler_queries ?? 256;
    const pooler = q * d * d + 2 * tokens * v.width * d + 2 * q * tokens * d + q * d * d
      + layerNormMacsPerElement * (q * d + tokens * v.width);
    const lnPostAll = layerNormMacsPerElement * q * d;
    return patchEmbed + lnPre + v.layers * blockMacs(tokens, v.width, hidden) + pooler + lnPostAll + d * d;
  }
  // Applied to the pooled vector only, except under average pooling with ln_post first.
  const lnPostTokens = v.pool_type === 'avg' && !v.final_ln_after_pool ? tokens : 1;
  const lnPost = layerNormMacsPerElement * lnPostTokens * v.width;
  const projection = v.width * d;
  return patchEmbed + lnPre + v.layers * blockMacs(tokens, v.width, hidden) + lnPost + projection;
}

/** MACs per sample of the text tower. */
export function textMacs(cfg: ClipConfig): number {
  const t = cfg.text_cfg;
  const hidden = mlpWidth(t.width, t.mlp_ratio);
  const lnFinal = layerNormMacsPerElement * t.context_length * t.width; // applied to every token
  const projection = t.proj_type === 'none' ? 0 : t.width * cfg.embed_dim; // only the pooled token is projected
  return t.layers * blockMacs(t.context_length, t.width, hidden) + lnFinal + projection;
}

export function imageParams(cfg: ClipConfig): number {
  const v = cfg.vision_cfg;
  const tokens = visionPatches(cfg) + 1;
  const hidden = mlpWidth(v.width, v.mlp_ratio);
  const conv = 3 * v.patch_size * v.patch_size * v.width; // no bias, as in OpenCLIP
  const embeddings = v.width + tokens * v.width; // class embedding, positional embedding
  const d = cfg.embed_dim;
  const poolWidth = v.attentional_pool ? d : v.width;
  const norms = (v.no_ln_pre ? 0 : 2 * v.width) + 2 * poolWidth; // ln_pre, ln_post
  const layerScale = v.ls_init_value !== undefined ? 2 * v.width : 0;
  // query, q/k/v projections and their bias, out_proj, ln_q, ln_k
  const pooler = v.attentional_pool ? (v.attn_pooler_queries ?? 256) * d + d * d + 2 * d * v.width + 3 * d + d * d + d + 2 * d + 2 * v.width : 0;
  return conv + embeddings + norms + v.layers * (blockParams(v.width, hidden) + layerScale) + pooler + poolWidth * d;
}

export function textParams(cfg: ClipConfig): number {
  const t = cfg.text_cfg;
  const hidden = mlpWidth(t.width, t.mlp_ratio);
  const embeddings = t.vocab_size * t.width + t.context_length * t.width;
  const norms = 2 * t.width; // ln_final
  const layerScale = t.ls_init_value !== undefined ? 2 * t.width : 0;
  const projection = t.proj_type === 'none' ? 0 : t.width * cfg.embed_dim + (t.proj_bias ? cfg.embed_dim : 0);
  return embeddings + norms + t.layers * (blockParams(t.width, hidden) + layerScale) + projection;
}

/** MACs per sample (in GMACs) and parameters of a config. */
export function computeCost(cfg: ClipConfig): ComputeCost {
  const image = imageMacs(cfg);
  const text = textMacs(cfg);
  const image_params = imageParams(cfg);
  const text_params = textParams(cfg);
  return {
    image_gmacs: image / 1e9,
    text_gmacs: text / 1e9,
    gmacs: (image + text) / 1e9,
    params: image_params + text_params + 1 + (cfg.init_logit_bias !== undefined ? 1 : 0), // + logit_scale (and logit_bias)
    image_params,
    text_params,
  };
}
