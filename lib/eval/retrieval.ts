// Zero-shot retrieval metrics from image and caption features, named as CLIP_benchmark names them.
//
//   image_retrieval_recall@K  a caption retrieves its image among all images (text → image):
//                             the share of captions whose image ranks in the top K.
//   text_retrieval_recall@K   an image retrieves its captions among all captions (image → text):
//                             the share of images with at least one of their captions in the top K.
//   image_retrieval_mean_rank, image_retrieval_median_rank
//                             1-based rank of the right image, over captions.
//   text_retrieval_mean_rank, text_retrieval_median_rank
//                             1-based rank of the best-ranked right caption, over images.
//
// Similarity is cosine (both sides L2-normalised, as CLIP_benchmark does). Ties follow ranking.ts:
// equal scores are ordered by index, lowest first, so a tie with a wrong candidate at a lower
// index counts against. The median of an even count is the mean of the two middle ranks.
import { checkFeatures, l2Normalize, rowDot, similarity, type FeatureMatrix } from './features.js';
import { bestRankOf, mean, median } from './ranking.js';

export const DEFAULT_RECALL_KS = [1, 5, 10] as const;

export type RetrievalMetrics = Record<string, number>;

function sliceRows(m: FeatureMatrix, start: number, end: number): FeatureMatrix {
  return { data: m.data.subarray(start * m.cols, end * m.cols), rows: end - start, cols: m.cols };
}

/** Checks caption→image indices: one per caption, each a valid image, every image with a caption. */
export function checkTextImage(textImage: Int32Array, numTexts: number, numImages: number): void {
  if (textImage.length !== numTexts) {
    throw new Error(`retrieval: the text→image index has ${textImage.length} entries but there are ${numTexts} text features (one entry per caption)`);
  }
  const captions = new Int32Array(numImages);
  for (let j = 0; j < textImage.length; j++) {
    const i = textImage[j];
    if (!Number.isInteger(i) || i < 0 || i >= numImages) {
      throw new Error(`retrieval: caption ${j} belongs to image ${i}, but image indices run 0..${numImages - 1}`);
    }
    captions[i]++;
  }
  const without = captions.indexOf(0);
  if (without >= 0) throw new Error(`retrieval: image ${without} has no caption (every image needs at least one for text retrieval)`);
}

/**
 * Retrieval metrics for images [I, D] and captions [T, D], where caption j describes image
 * `textImage[j]` (identity when omitted, which then needs T = I).
 */
export function retrievalMetrics(
  images: FeatureMatrix,
  texts: FeatureMatrix,
  textImage?: Int32Array,
  ks: readonly number[] = DEFAULT_RECALL_KS,
): RetrievalMetrics {
  checkFeatures(images, 'image features');
  checkFeatures(texts, 'text features');
  if (images.cols !== texts.cols) {
    throw new Error(`retrieval: image features have dimension ${images.cols} but text features have ${texts.cols}`);
  }
  for (const k of ks) if (!Number.isInteger(k) || k < 1) throw new Error(`retrieval: recall K must be a positive integer, got ${k}`);
  if (!textImage) {
    if (texts.rows !== images.rows) {
      throw new Error(`retrieval: ${texts.rows} text features but ${images.rows} image features; give the text→image index when captions and images differ in number`);
    }
    textImage = Int32Array.from({ length: texts.rows }, (_, j) => j);
  }
  checkTextImage(textImage, texts.rows, images.rows);
  const img = l2Normalize(images, 'image features');
  const txt = l2Normalize(texts, 'text features');
  const nI = img.rows;
  const nT = txt.rows;

  const captionsOf: number[][] = Array.from({ length: nI }, () => []);
  for (let j = 0; j < nT; j++) captionsOf[textImage[j]].push(j);

  // One pass over the similarity matrix, a block of images × all captions at a time (memory stays
  // small). Text retrieval ranks each image's captions within its row; image retrieval counts, for
  // each caption, the images that beat the caption's own image, whose score is computed up front by
  // the same arithmetic as the block (so equal scores compare equal).
  const ownScore = new Float64Array(nT);
  for (let j = 0; j < nT; j++) ownScore[j] = rowDot(img, textImage[j], txt, j);
  const imageRanks = new Float64Array(nT).fill(1);
  const textRanks = new Float64Array(nI);
  const block = 64;
  for (let s = 0; s < nI; s += block) {
    const e = Math.min(nI, s + block);
    const sim = similarity(sliceRows(img, s, e), txt, 'image features', 'text features');
    for (let i = s; i < e; i++) {
      const o = (i - s) * nT;
      textRanks[i] = bestRankOf(sim, o, nT, captionsOf[i]);
      for (let j = 0; j < nT; j++) {
        const v = sim[o + j];
        const own = ownScore[j];
        if (v > own || (v === own && i < textImage[j])) imageRanks[j]++;
      }
    }
  }

  const out: RetrievalMetrics = {};
  for (const k of ks) out[`image_retrieval_recall@${k}`] = share(imageRanks, k);
  for (const k of ks) out[`text_retrieval_recall@${k}`] = share(textRanks, k);
  out.image_retrieval_mean_rank = mean(imageRanks);
  out.image_retrieval_median_rank = median(imageRanks);
  out.text_retrieval_mean_rank = mean(textRanks);
  out.text_retrieval_median_rank = median(textRanks);
  out.num_images = nI;
  out.num_texts = nT;
  return out;
}

function share(ranks: Float64Array, k: number): number {
  let hit = 0;
  for (let i = 0; i < ranks.length; i++) if (ranks[i] <= k) hit++;
  return hit / ranks.length;
}
