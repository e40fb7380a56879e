// What evaluation needs from a model: image and text embeddings. Any CLIP model clipscale trains
// or loads can be adapted to this, and so can features computed elsewhere.
import { featureMatrix, type FeatureMatrix } from './features.js';

export interface ClipEncoder {
  /** Width of the joint embedding space. */
  readonly embedDim: number;
  /** Embeds n preprocessed images (pixels row-major [n, 3, H, W]); returns [n, embedDim]. */
  encodeImages(pixels: Float32Array, n: number): Promise<Float32Array>;
  /** Embeds n token sequences (row-major [n, contextLength]); returns [n, embedDim]. */
  encodeTexts(tokens: Int32Array, n: number): Promise<Float32Array>;
}

/** Turns captions into token ids, row-major [texts.length, contextLength]. */
export type Tokenize = (texts: string[]) => Int32Array;

/** Embeds a list of strings; what zero-shot classifier building needs. */
export type TextEmbedder = (texts: string[]) => Promise<FeatureMatrix>;

/** A TextEmbedder from a model and a tokenizer, embedding `batchSize` strings at a time. */
export function textEmbedder(encoder: ClipEncoder, tokenize: Tokenize, batchSize = 256): TextEmbedder {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`textEmbedder: batchSize must be a positive integer, got ${batchSize}`);
  return async (texts) => {
    const d = encoder.embedDim;
    const out = new Float32Array(texts.length * d);
    for (let s = 0; s < texts.length; s += batchSize) {
      const chunk = texts.slice(s, s + batchSize);
      const emb = await encoder.encodeTexts(tokenize(chunk), chunk.length);
      if (emb.length !== chunk.length * d) {
        throw new Error(`textEmbedder: the encoder returned ${emb.length} values for ${chunk.length} texts of dimension ${d}`);
      }
      out.set(emb, s * d);
    }
    return featureMatrix(out, texts.length, d, 'text embeddings');
  };
}

/** A batch of preprocessed images with their class ids (for classification) or none (for retrieval). */
export interface ImageBatch {
  pixels: Float32Array;
  n: number;
  labels?: Int32Array;
}

/** Embeds every batch; returns the features and, when every batch has them, the labels. */
export async function encodeImageBatches(
  encoder: ClipEncoder,
  batches: Iterable<ImageBatch> | AsyncIterable<ImageBatch>,
): Promise<{ features: FeatureMatrix; labels?: Int32Array }> {
  const d = encoder.embedDim;
  const parts: Float32Array[] = [];
  const labelParts: Int32Array[] = [];
  let rows = 0;
  let allLabelled = true;
  for await (const b of batches) {
    const emb = await encoder.encodeImages(b.pixels, b.n);
    if (emb.length !== b.n * d) throw new Error(`encodeImageBatches: the encoder returned ${emb.length} values for ${b.n} images of dimension ${d}`);
    if (b.labels && b.labels.length !== b.n) throw new Error(`encodeImageBatches: a batch of ${b.n} images has ${b.labels.length} labels`);
    parts.push(emb);
    if (b.labels) labelParts.push(b.labels);
    else allLabelled = false;
    rows += b.n;
  }
  const data = new Float32Array(rows * d);
  let o = 0;
  for (const p of parts) {
    data.set(p, o);
    o += p.length;
  }
  const features = featureMatrix(data, rows, d, 'image embeddings');
  if (!allLabelled || labelParts.length === 0) return { features };
  const labels = new Int32Array(rows);
  o = 0;
  for (const p of labelParts) {
    labels.set(p, o);
    o += p.length;
  }
  return { features, labels };
}
