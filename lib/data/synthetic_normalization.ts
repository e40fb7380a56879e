// The synthetic world's pixel statistics, used in place of OpenAI's to normalise its images.
//
// Its scenes are flat shapes on a dark background: per channel the bytes average about 0.21
// with a spread of about 0.15 (the photos OpenAI's mean/std were measured on average about
// 0.46 with 0.27). Under OpenAI's constants a synthetic image was a large shared offset (-0.87
// on average) plus a little content, so at initialisation a small ViT's class token saw almost
// only the offset: different images had image features with cosine similarity 0.995 (`tiny`,
// seed 0). The contrastive loss then gained most by flattening the logits (loss → ln B), and
// some seeds never left that plateau. Normalised with the world's own statistics, as one does
// for any data set, images are centred with unit spread (cosine 0.90 at initialisation) and
// every seed tried leaves the plateau. A test recomputes these from the renderer.
import type { Normalization } from './normalize.js';

export const SYNTHETIC_MEAN = [0.206, 0.205, 0.202] as const;
export const SYNTHETIC_STD = [0.155, 0.142, 0.142] as const;
export const SYNTHETIC_NORMALIZATION: Normalization = { mean: SYNTHETIC_MEAN, std: SYNTHETIC_STD };
