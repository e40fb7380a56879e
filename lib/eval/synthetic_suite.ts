// The synthetic world's held-out tasks run on a model: zero-shot classification
// (shape, colour, shape+colour) and retrieval, as one flat record of metrics.
import { SyntheticWorld, ZERO_SHOT_TASKS, type ZeroShotTaskName } from '../data/synthetic.js';
import type { Tokenizer } from '../data/tokenizer.js';
import type { ClipEncoder } from './encoder.js';
import { textEmbedder } from './encoder.js';
import { featureMatrix } from './features.js';
import { retrievalMetrics } from './retrieval.js';
import { buildZeroShotClassifier, zeroShotMetrics } from './zeroshot.js';

export interface SyntheticSuiteOptions {
  /** The world's seed and image size must match training's (captions style does not matter: tasks are held out). */
  seed?: number;
  imageSize: number;
  contextLength: number;
  tokenizer: Tokenizer;
  tasks?: readonly ZeroShotTaskName[];
  /** Images per zero-shot task. Default 256. */
  zeroShotImages?: number;
  /** Images in the retrieval set (5 captions each). Default 200. */
  retrievalImages?: number;
  /** Which held-out draw (keeps evaluation sets fixed across a study). Default 0. */
  evalSeed?: number;
}

/** Keys: `zeroshot_<task>_acc1`, `…_acc5`, `…_mean_per_class_recall`, and retrieval's metric names prefixed `retrieval_`. */
export async function evaluateSynthetic(encoder: ClipEncoder, opts: SyntheticSuiteOptions): Promise<Record<string, number>> {
  const world = new SyntheticWorld({ seed: opts.seed ?? 0, imageSize: opts.imageSize });
  const tokenize = (texts: string[]) => opts.tokenizer.tokenize(texts, opts.contextLength);
  const embed = textEmbedder(encoder, tokenize);
  const out: Record<string, number> = {};
  for (const name of opts.tasks ?? ZERO_SHOT_TASKS) {
    const task = world.zeroShotTask(name, opts.zeroShotImages ?? 256, opts.evalSeed ?? 0);
    const classifier = await buildZeroShotClassifier({ classnames: task.classnames, templates: task.templates }, embed);
    const images = featureMatrix(await encoder.encodeImages(task.images, task.n), task.n, encoder.embedDim, 'image features');
    const m = zeroShotMetrics(images, task.labels, classifier);
    out[`zeroshot_${name}_acc1`] = m.acc1;
    out[`zeroshot_${name}_acc5`] = m.acc5;
    out[`zeroshot_${name}_mean_per_class_recall`] = m.mean_per_class_recall;
  }
  const set = world.retrievalSet(opts.retrievalImages ?? 200, opts.evalSeed ?? 0);
  const images = featureMatrix(await encoder.encodeImages(set.images, set.n), set.n, encoder.embedDim, 'image features');
  const texts = await embed(set.captions);
  for (const [k, v] of Object.entries(retrievalMetrics(images, texts, set.captionImage))) out[`retrieval_${k}`] = v;
  return out;
}
