// Zero-shot classification, as CLIP and CLIP_benchmark do it.
//
// Prompts: a JSON file `{"classnames": [...], "templates": ["a photo of a {c}.", ...]}`.
// Classifier: for each class, embed every template filled with the class name, L2-normalise each
// embedding, average them, and L2-normalise the mean. Logits: normalised image features · weightsᵀ.
// Metrics (CLIP_benchmark's names):
//   acc1                   top-1 accuracy
//   acc5                   top-k accuracy with k = min(5, number of classes) (as CLIP_benchmark does)
//   mean_per_class_recall  recall of each class that occurs in the labels, averaged (balanced accuracy)
// Ties follow ranking.ts: equal logits are ordered by class index, lowest first (torch.argmax's rule),
// so a tie between the true class and a lower-indexed class counts as a miss at top-1.

import { checkFeatures, featureMatrix, l2Normalize, similarity, type FeatureMatrix } from './features.js';
import type { TextEmbedder } from './encoder.js';
import { rankOf } from './ranking.js';
import { readRegularTextSync } from '../util/regular_file.js';

export interface PromptSpec {
  classnames: string[];
  templates: string[];
}

/** Validates a parsed prompts JSON value; `source` names it in errors. */
export function parsePromptSpec(value: unknown, source = 'prompts'): PromptSpec {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`${source}: expected an object {"classnames": [...], "templates": [...]}`);
  }
  const v = value as Record<string, unknown>;
  const strings = (key: string): string[] => {
    const a = v[key];
    if (!Array.isArray(a)) throw new Error(`${source}: "${key}" must be an array of strings, got ${a === undefined ? 'nothing' : typeof a}`);
    if (a.length === 0) throw new Error(`${source}: "${key}" is empty`);
    a.forEach((s, i) => {
      if (typeof s !== 'string' || s.trim() === '') throw new Error(`${source}: ${key}[${i}] must be a non-empty string, got ${JSON.stringify(s)}`);
    });
    return a as string[];
  };
  const classnames = strings('classnames');
  const templates = strings('templates');
  const seen = new Map<string, number>();
  classnames.forEach((c, i) => {
    const prev = seen.get(c);
    if (prev !== undefined) throw new Error(`${source}: class name "${c}" appears twice (classnames[${prev}] and classnames[${i}])`);
    seen.set(c, i);
  });
  templates.forEach((t, i) => {
    if (!t.includes('{c}')) throw new Error(`${source}: templates[${i}] ${JSON.stringify(t)} has no {c} placeholder for the class name`);
  });
  for (const key of Object.keys(v)) {
    if (key !== 'classnames' && key !== 'templates') throw new Error(`${source}: unknown key "${key}" (expected "classnames" and "templates")`);
  }
  return { classnames, templates };
}

export function readPromptSpec(path: string): PromptSpec {
  let text: string;
  try {
    text = readRegularTextSync(path, { what: 'prompts', maxBytes: 1 << 28 });
  } catch (err) {
    throw new Error(`prompts: cannot read '${path}': ${(err as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`prompts '${path}': not valid JSON: ${(err as Error).message}`);
  }
  return parsePromptSpec(value, `prompts '${path}'`);
}

/** Every prompt, class-major: class 0 with each template, then class 1, … */
export function promptTexts(spec: PromptSpec): string[] {
  const out: string[] = [];
  for (const c of spec.classnames) for (const t of spec.templates) out.push(t.replaceAll('{c}', c));
  return out;
}

/**
 * Classifier weights [C, D] from template embeddings [C·T, D] laid out class-major (as promptTexts):
 * per class, the mean of the L2-normalised template embeddings, L2-normalised again.
 */
export function classifierFromTemplateEmbeddings(embeddings: FeatureMatrix, numClasses: number, numTemplates: number): FeatureMatrix {
  if (embeddings.rows !== numClasses * numTemplates) {
    throw new Error(`zero-shot: expected ${numClasses} classes × ${numTemplates} templates = ${numClasses * numTemplates} text embeddings, got ${embeddings.rows}`);
  }
  checkFeatures(embeddings, 'template embeddings');
  const normed = l2Normalize(embeddings, 'template embeddings');
  const d = embeddings.cols;
  const mean = new Float32Array(numClasses * d);
  for (let c = 0; c < numClasses; c++) {
    const acc = new Float64Array(d);
    for (let t = 0; t < numTemplates; t++) {
      const o = (c * numTemplates + t) * d;
      for (let k = 0; k < d; k++) acc[k] += normed.data[o + k];
    }
    for (let k = 0; k < d; k++) mean[c * d + k] = acc[k] / numTemplates;
  }
  return l2Normalize(featureMatrix(mean, numClasses, d), 'class weights (mean template embedding; templates cancel out)');
}

/** Builds the zero-shot classifier [C, D] by embedding every prompt. */
export async function buildZeroShotClassifier(spec: PromptSpec, embedTexts: TextEmbedder): Promise<FeatureMatrix> {
  const texts = promptTexts(spec);
  const emb = await embedTexts(texts);
  return classifierFromTemplateEmbeddings(emb, spec.classnames.length, spec.templates.length);
}

/** Checks labels: one per row, each a class id in 0..numClasses−1. */
export function checkLabels(labels: ArrayLike<number>, rows: number, numClasses: number, what = 'labels'): void {
  if (labels.length !== rows) throw new Error(`${what}: ${labels.length} labels for ${rows} feature rows (one label per row)`);
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    if (!Number.isInteger(y) || y < 0 || y >= numClasses) {
      throw new Error(`${what}: unknown class id ${y} at index ${i} (class ids run 0..${numClasses - 1})`);
    }
  }
}

export interface ZeroShotMetrics {
  acc1: number;
  acc5: number;
  mean_per_class_recall: number;
  /** The k that acc5 was computed with: min(5, classes). */
  acc5_k: number;
  num_samples: number;
  num_classes: number;
}

/**
 * Classification metrics for image features [N, D] against class weights [C, D] (the zero-shot
 * classifier, or any linear head without bias): logits = normalise(images) · weightsᵀ.
 */
export function zeroShotMetrics(images: FeatureMatrix, labels: ArrayLike<number>, classWeights: FeatureMatrix): ZeroShotMetrics {
  checkFeatures(images, 'image features');
  checkFeatures(classWeights, 'class weights');
  if (images.cols !== classWeights.cols) {
    throw new Error(`zero-shot: image features have dimension ${images.cols} but class weights have ${classWeights.cols}`);
  }
  checkLabels(labels, images.rows, classWeights.rows);
  const logits = similarity(l2Normalize(images, 'image features'), classWeights, 'image features', 'class weights');
  return classificationMetrics(logits, labels, images.rows, classWeights.rows);
}

/** acc1, acc5 (k = min(5, C)) and mean per-class recall from logits [N, C], under the tie rule. */
export function classificationMetrics(logits: ArrayLike<number>, labels: ArrayLike<number>, n: number, numClasses: number): ZeroShotMetrics {
  if (logits.length !== n * numClasses) throw new Error(`classification metrics: ${logits.length} logits for ${n} samples × ${numClasses} classes`);
  checkLabels(labels, n, numClasses);
  const k5 = Math.min(5, numClasses);
  let top1 = 0;
  let top5 = 0;
  const seen = new Float64Array(numClasses);
  const hit = new Float64Array(numClasses);
  for (let i = 0; i < n; i++) {
    const y = labels[i];
    const r = rankOf(logits, i * numClasses, numClasses, y);
    seen[y]++;
    if (r === 1) {
      top1++;
      hit[y]++;
    }
    if (r <= k5) top5++;
  }
  let recallSum = 0;
  let present = 0;
  for (let c = 0; c < numClasses; c++) {
    if (seen[c] > 0) {
      recallSum += hit[c] / seen[c];
      present++;
    }
  }
  return { acc1: top1 / n, acc5: top5 / n, mean_per_class_recall: recallSum / present, acc5_k: k5, num_samples: n, num_classes: numClasses };
}
