// Chance levels of the synthetic suite's metrics, and whether a task was learned at all: a task whose
// best score stays near chance has no law to report ("error falls" would be noise around chance).
import { COLOURS, SHAPES } from '../data/synthetic_draw.js';

/** Classes of each zero-shot task of the synthetic world. */
const ZERO_SHOT_CLASSES: Record<string, number> = {
  shape: SHAPES.length,
  colour: COLOURS.length,
  shape_colour: SHAPES.length * COLOURS.length,
};

/** Captions per image of the synthetic retrieval set (SyntheticWorld.retrievalSet's default). */
const CAPTIONS_PER_IMAGE = 5;

/**
 * The score a model with random embeddings gets on a metric, or null when the metric is not one of
 * the synthetic suite's. Retrieval sizes come from the record's eval details (200 images, 1000 captions
 * by default).
 */
export function chanceScore(metric: string, record?: Record<string, unknown>): number | null {
  const zs = /^zeroshot_(.+)_(acc(\d+)|mean_per_class_recall)$/.exec(metric);
  if (zs) {
    const classes = ZERO_SHOT_CLASSES[zs[1]];
    if (!classes) return null;
    const k = zs[3] ? Number(zs[3]) : 1;
    return Math.min(1, k / classes);
  }
  const rt = /^retrieval_(image|text)_retrieval_recall@(\d+)$/.exec(metric);
  if (rt) {
    const details = (record?.eval_details ?? {}) as Record<string, unknown>;
    const images = typeof details.retrieval_num_images === 'number' ? details.retrieval_num_images : 200;
    const texts = typeof details.retrieval_num_texts === 'number' ? details.retrieval_num_texts : images * CAPTIONS_PER_IMAGE;
    const k = Number(rt[2]);
    // image retrieval: a caption's one image among `images`; text retrieval: any of an image's captions among `texts`
    if (rt[1] === 'image') return Math.min(1, k / images);
    const perImage = texts / images;
    let miss = 1;
    for (let i = 0; i < k; i++) miss *= (texts - perImage - i) / (texts - i);
    return 1 - miss;
  }
  return null;
}

/** The score a task must reach to count as learned: 1.5 × chance and chance + 0.05, whichever is higher. */
export function learnedThreshold(chance: number): number {
  return Math.min(1, Math.max(1.5 * chance, chance + 0.05));
}
