// OpenCLIP's front door for inference: create_model_and_transforms, encode_image/encode_text with
// normalised features, and the image–text similarity, in TypeScript.
//
//   using clip = await createModelAndTransforms('ViT-B-32', { pretrained: 'open_clip_model.safetensors' });
//   const images = await clip.encodeImages(listImageFiles('photos/'));
//   const texts = await clip.encodeTexts(['a photo of a cat', 'a photo of a dog']);
//   const probs = similarity(images, texts, { softmax: true });   // [images × texts], rows sum to 1
import { transformImage } from '../data/transforms.js';
import { featureMatrix, l2Normalize, type FeatureMatrix } from '../eval/features.js';
import { CLIP, createModel } from '../nn/clip.js';
import type { ClipConfig } from '../nn/config.js';
import { clipEncoder } from '../nn/encoder.js';
import { loadWeightsInto } from '../train/load.js';
import { isDirectory, readRunModel } from './run_config.js';
import type { Normalization } from '../data/normalize.js';
import { getTokenizer, normalizationFor, type ClipTokenizer } from './tokenizer.js';

export type { FeatureMatrix } from '../eval/features.js';

/** An image: a file path or encoded bytes (JPEG, PNG, WebP, …). */
export type ImageInput = string | Uint8Array;

/** Image → preprocessed pixels [3, S, S] (resize, crop, OpenAI's normalisation). */
export type Preprocess = (image: ImageInput) => Promise<Float32Array>;

export interface CreateModelAndTransformsOptions {
  /**
   * Weights: an OpenCLIP safetensors file (open_clip_model.safetensors, or a state dict saved with
   * safetensors.torch.save_file), a checkpoint-<step>.safetensors of clipscale train, or a run folder
   * (its latest checkpoint). Without it the model is freshly initialised.
   */
  pretrained?: string;
  /** Initialisation seed when there are no weights (default 0). */
  seed?: number;
  /** The vocabulary: 'openai', 'synthetic' or a BPE file (default: OpenAI's for 49,408-token models). */
  vocab?: string;
  /** Images a forward pass (default 64). */
  batchSize?: number;
  /**
   * Pixel normalisation (OpenCLIP's image_mean/image_std): 'openai', 'synthetic' or {mean, std}.
   * Default: OpenAI's for 49,408-token models, the synthetic world's otherwise (the CPU sizes trained on it).
   */
  normalization?: 'openai' | 'synthetic' | Normalization;
}

export interface ClipModelAndTransforms extends Disposable {
  readonly model: CLIP;
  readonly config: ClipConfig;
  /** OpenCLIP's preprocess_val: resize the shorter side (bicubic), centre crop, normalise. */
  readonly preprocess: Preprocess;
  /** OpenCLIP's preprocess_train: RandomResizedCrop(scale 0.9–1), normalise; `seed` picks the crop. */
  readonly preprocessTrain: (image: ImageInput, seed: number) => Promise<Float32Array>;
  readonly tokenizer: ClipTokenizer;
  /** The mean/std `preprocess` normalises with. */
  readonly normalization: Normalization;
  /** L2-normalised image features [n, embed_dim] of images (paths or bytes, preprocessed here). */
  encodeImages(images: readonly ImageInput[]): Promise<FeatureMatrix>;
  /** L2-normalised text features [n, embed_dim]. */
  encodeTexts(texts: readonly string[]): Promise<FeatureMatrix>;
  dispose(): void;
}

/** L2-normalised image features of preprocessed pixels (row-major [n, 3, S, S]). */
export async function encodeImages(model: CLIP, pixels: Float32Array, n: number, batchSize = 64): Promise<FeatureMatrix> {
  const d = model.config.embed_dim;
  const raw = await clipEncoder(model, batchSize).encodeImages(pixels, n);
  return l2Normalize(featureMatrix(raw, n, d, 'image features'), 'image features');
}

/** L2-normalised text features of captions, tokenized by `tokenizer` (default: the model's, see getTokenizer). */
export async function encodeTexts(model: CLIP, texts: readonly string[], tokenizer: ClipTokenizer = getTokenizer(model.config), batchSize = 64): Promise<FeatureMatrix> {
  if (tokenizer.contextLength !== model.config.text_cfg.context_length) {
    throw new Error(`encodeTexts: the tokenizer's context length is ${tokenizer.contextLength} but the model's is ${model.config.text_cfg.context_length}`);
  }
  const d = model.config.embed_dim;
  const raw = await clipEncoder(model, batchSize).encodeTexts(tokenizer(texts), texts.length);
  return l2Normalize(featureMatrix(raw, texts.length, d, 'text features'), 'text features');
}

export interface SimilarityOptions {
  /** Multiplies every score (OpenCLIP's examples use 100, the trained logit scale's ceiling). Default 1. */
  scale?: number;
  /** Softmax over each row (label probabilities per image). Default false. */
  softmax?: boolean;
}

/**
 * Scores a·bᵀ [a.rows × b.rows] of two feature matrices (cosine similarities when both are
 * normalised), optionally scaled and softmaxed per row: `similarity(images, texts, { scale: 100, softmax: true })`
 * is OpenCLIP's `(100.0 * image_features @ text_features.T).softmax(dim=-1)`.
 */
export function similarity(a: FeatureMatrix, b: FeatureMatrix, options: SimilarityOptions = {}): FeatureMatrix {
  if (a.cols !== b.cols) throw new Error(`similarity: the first features have ${a.cols} columns but the second ${b.cols}; they must come from the same model`);
  const scale = options.scale ?? 1;
  if (!Number.isFinite(scale)) throw new Error(`similarity: scale must be a finite number, got ${scale}`);
  const out = new Float32Array(a.rows * b.rows);
  const d = a.cols;
  for (let i = 0; i < a.rows; i++) {
    for (let j = 0; j < b.rows; j++) {
      let s = 0;
      for (let k = 0; k < d; k++) s += a.data[i * d + k] * b.data[j * d + k];
      out[i * b.rows + j] = scale * s;
    }
    if (options.softmax) {
      const row = out.subarray(i * b.rows, (i + 1) * b.rows);
      let max = -Infinity;
      for (const v of row) max = Math.max(max, v);
      let sum = 0;
      for (let j = 0; j < row.length; j++) sum += row[j] = Math.exp(row[j] - max);
      for (let j = 0; j < row.length; j++) row[j] /= sum;
    }
  }
  return { data: out, rows: a.rows, cols: b.rows };
}

/**
 * A model with its image transforms and tokenizer, as OpenCLIP's create_model_and_transforms +
 * get_tokenizer. `model` is a config name ('ViT-B-32', 'ViT-B-32-quickgelu', 'tiny'), a config
 * JSON path or object; or omitted (undefined) when `pretrained` is a run folder of clipscale
 * train, whose saved config names it.
 */
export async function createModelAndTransforms(model: string | ClipConfig | undefined, options: CreateModelAndTransformsOptions = {}): Promise<ClipModelAndTransforms> {
  let spec = model;
  if (spec === undefined) {
    if (options.pretrained === undefined || !(await isDirectory(options.pretrained))) {
      throw new Error('createModelAndTransforms: give a model name or config, or a run folder of clipscale train as `pretrained` (its saved config names the model)');
    }
    spec = (await readRunModel(options.pretrained)).config;
  }
  const clip = createModel(spec, { seed: options.seed ?? 0 });
  try {
    if (options.pretrained !== undefined) await loadWeightsInto(clip, options.pretrained);
    const tokenizer = getTokenizer(clip.config, options.vocab !== undefined ? { vocab: options.vocab } : {});
    const size = clip.config.vision_cfg.image_size;
    const batchSize = options.batchSize ?? 64;
    const normalization = normalizationFor(options.normalization, clip.config.text_cfg.vocab_size);
    const preprocess: Preprocess = (image) => transformImage(image, { size, train: false, normalization });
    const preprocessTrain = (image: ImageInput, seed: number) => transformImage(image, { size, train: true, seed, normalization });
    const px = 3 * size * size;
    return {
      model: clip,
      config: clip.config,
      preprocess,
      preprocessTrain,
      tokenizer,
      normalization,
      async encodeImages(images) {
        const pixels = new Float32Array(images.length * px);
        for (let i = 0; i < images.length; i++) {
          const image = images[i];
          try {
            await transformImage(image, { size, train: false, normalization }, pixels, i * px);
          } catch (err) {
            throw new Error(`encodeImages: cannot read image ${typeof image === 'string' ? `'${image}'` : `#${i}`}: ${(err as Error).message}`);
          }
        }
        return encodeImages(clip, pixels, images.length, batchSize);
      },
      encodeTexts: (texts) => encodeTexts(clip, texts, tokenizer, batchSize),
      dispose: () => clip.dispose(),
      [Symbol.dispose]: () => clip.dispose(),
    };
  } catch (err) {
    clip.dispose();
    throw err;
  }
}
