// Zero-shot classification and retrieval straight from a CLIP model: embed the images and the
// prompts or captions with the model, then the same metrics as from precomputed features
// (zeroshot.ts, retrieval.ts), so both paths agree on the same features.
import { SyntheticWorld } from '../data/synthetic.js';
import type { Tokenizer } from '../data/tokenizer.js';
import type { CLIP } from '../nn/clip.js';
import { clipEncoder } from '../nn/encoder.js';
import { type ClipEncoder, type Tokenize, textEmbedder } from './encoder.js';
import { featureMatrix, type FeatureMatrix } from './features.js';
import { checkLabelledImages, type LabelledImages } from './labelled_images.js';
import { DEFAULT_RECALL_KS, retrievalMetrics, type RetrievalMetrics } from './retrieval.js';
import { buildZeroShotClassifier, checkLabels, type PromptSpec, zeroShotMetrics, type ZeroShotMetrics } from './zeroshot.js';

/** The model's tokenizer function, after checking the tokenizer's ids fit the model's vocabulary. */
export function modelTokenize(model: CLIP, tokenizer: Tokenizer): Tokenize {
  const { vocab_size: vocab, context_length: ctx } = model.config.text_cfg;
  if (tokenizer.vocabSize > vocab) {
    throw new Error(`the tokenizer has ${tokenizer.vocabSize} tokens but the model's vocabulary has ${vocab}: token ids would fall outside its embedding (is this the vocabulary the model was trained with?)`);
  }
  return (texts) => tokenizer.tokenize(texts, ctx);
}

/** Images must be at the model's input size. */
export function checkImagesFitModel(model: CLIP, data: { imageSize: number; source?: string }): void {
  const size = model.config.vision_cfg.image_size;
  if (data.imageSize !== size) {
    throw new Error(`the model takes ${size}-pixel images but ${data.source ?? 'the images'} are ${data.imageSize} pixels: preprocess them at ${size}`);
  }
}

/** The prompts must name as many classes as the data has, and every label must be one of them. */
export function checkPromptsMatchData(prompts: PromptSpec, data: LabelledImages): void {
  const c = prompts.classnames.length;
  if (data.classnames.length > 0 && data.classnames.length !== c) {
    throw new Error(
      `${data.source} has ${data.classnames.length} classes (${data.classnames.slice(0, 4).join(', ')}${data.classnames.length > 4 ? ', …' : ''}) but the prompts name ${c} (${prompts.classnames.slice(0, 4).join(', ')}${c > 4 ? ', …' : ''})`,
    );
  }
  checkLabels(data.labels, data.n, c, `labels of ${data.source}`);
}

/** The zero-shot classifier [C, D] from the text tower: normalised mean of normalised template embeddings. */
export async function zeroShotClassifier(model: CLIP, prompts: PromptSpec, tokenizer: Tokenizer): Promise<FeatureMatrix> {
  return buildZeroShotClassifier(prompts, textEmbedder(clipEncoder(model), modelTokenize(model, tokenizer)));
}

/** Embeds every image: [n, embedDim]. */
export async function imageFeatures(encoder: ClipEncoder, pixels: Float32Array, n: number): Promise<FeatureMatrix> {
  return featureMatrix(await encoder.encodeImages(pixels, n), n, encoder.embedDim, 'image features');
}

/** Zero-shot metrics (acc1, acc5, mean per-class recall) of any encoder on labelled images. */
export async function zeroShotEvalWithEncoder(encoder: ClipEncoder, data: LabelledImages, prompts: PromptSpec, tokenize: Tokenize): Promise<ZeroShotMetrics> {
  checkLabelledImages(data);
  checkPromptsMatchData(prompts, data);
  const classifier = await buildZeroShotClassifier(prompts, textEmbedder(encoder, tokenize));
  return zeroShotMetrics(await imageFeatures(encoder, data.pixels, data.n), data.labels, classifier);
}

/** Zero-shot classification of labelled images by a CLIP model with its tokenizer. */
export async function zeroShotEval(model: CLIP, data: LabelledImages, prompts: PromptSpec, tokenizer: Tokenizer): Promise<ZeroShotMetrics> {
  checkImagesFitModel(model, data);
  return zeroShotEvalWithEncoder(clipEncoder(model), data, prompts, modelTokenize(model, tokenizer));
}

export interface RetrievalImages {
  /** [n, 3, S, S] normalised pixels at the model's size. */
  pixels: Float32Array;
  n: number;
  imageSize: number;
}

/**
 * Image↔text retrieval: `captionImage[j]` is the image caption j describes (identity when absent,
 * then there are as many captions as images). Metric names as CLIP_benchmark's.
 */
export async function retrievalEval(
  model: CLIP,
  images: RetrievalImages,
  captions: readonly string[],
  captionImage: Int32Array | undefined,
  tokenizer: Tokenizer,
  ks: readonly number[] = DEFAULT_RECALL_KS,
): Promise<RetrievalMetrics> {
  checkImagesFitModel(model, images);
  const plane = 3 * images.imageSize * images.imageSize;
  if (images.pixels.length !== images.n * plane) throw new Error(`retrieval: ${images.pixels.length} pixel values for ${images.n} images of 3×${images.imageSize}×${images.imageSize}`);
  if (captions.length === 0) throw new Error('retrieval: no captions');
  if (captionImage && captionImage.length !== captions.length) throw new Error(`retrieval: ${captions.length} captions but ${captionImage.length} caption→image entries`);
  const encoder = clipEncoder(model);
  const imgs = await imageFeatures(encoder, images.pixels, images.n);
  const texts = await textEmbedder(encoder, modelTokenize(model, tokenizer))([...captions]);
  return retrievalMetrics(imgs, texts, captionImage, ks);
}

export interface SyntheticRetrievalOptions {
  /** Images (each with `captionsPerImage` captions). Default 200. */
  n?: number;
  /** Held-out draw. Default 0. */
  seed?: number;
  worldSeed?: number;
  captionsPerImage?: number;
}

/** Retrieval on the synthetic world's held-out retrieval set, at the model's image size. */
export async function syntheticRetrievalEval(model: CLIP, tokenizer: Tokenizer, opts: SyntheticRetrievalOptions & { imageSize?: number } = {}): Promise<RetrievalMetrics> {
  const imageSize = opts.imageSize ?? model.config.vision_cfg.image_size;
  const world = new SyntheticWorld({ seed: opts.worldSeed ?? 0, imageSize });
  const set = world.retrievalSet(opts.n ?? 200, opts.seed ?? 0, opts.captionsPerImage ?? 5);
  return retrievalEval(model, { pixels: set.images, n: set.n, imageSize }, set.captions, set.captionImage, tokenizer);
}
