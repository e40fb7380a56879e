// Linear probing of frozen features: multinomial logistic regression (logistic.ts) on L2-normalised
// features, with the L2 strength λ chosen on a validation split.
//
// Protocol (full data): split the training set (stratified, seeded) into fit and validation parts;
// fit each λ of a decade grid on the fit part, from strong to weak, each starting from the previous
// solution, stopping early after two values in a row that do not improve; refine around the best decade with its two half-decade neighbours; pick the λ with the
// best validation accuracy (ties go to the larger λ, the simpler model); refit on all training data
// with that λ; report test metrics (classification metrics as zero-shot reports them).
//
// Few-shot (k per class): for each seed, the same validation split is made first, then k examples
// per class are drawn from the rest; λ is chosen on the validation split with fits on the k-shot
// set, and the model fitted on the k-shot set at that λ is tested. The validation split uses labels
// beyond the k shots (as CLIP_benchmark's few-shot probe does); the classifier is trained on k per
// class only. Results: mean and sample standard deviation over seeds.
import { checkFeatures, l2Normalize, type FeatureMatrix } from './features.js';
import { fitLogistic, logisticLogits, type LogisticModel } from './logistic.js';
import { seededRandom, shuffleInPlace } from '../util/seeded_random.js';
import { mean, sampleStd } from './ranking.js';
import { checkLabels, classificationMetrics, type ZeroShotMetrics } from './zeroshot.js';

export interface LinearProbeOptions {
  /** Candidate λ values; default 10^0 … 10^−6 (decades), refined by half-decades around the best. */
  lambdas?: number[];
  /** Refine the best grid value with its neighbours at ×√10 and ÷√10 (default true with the default grid). */
  refine?: boolean;
  /** Share of each class's training examples held out for choosing λ (default 0.2). */
  valFraction?: number;
  /** Seed for the validation split and k-shot sampling (default 0). */
  seed?: number;
  /** Number of classes; default: the largest training label + 1. */
  numClasses?: number;
  /** What the label arrays are (file names), for messages. */
  trainLabelsName?: string;
  testLabelsName?: string;
  /** Stop going down the grid after this many values in a row without a better validation accuracy (default 2; Infinity tries all). */
  patience?: number;
  /** L-BFGS iteration cap per fit (default 500). */
  maxIterations?: number;
  /** L-BFGS gradient tolerance (default 1e-5 on the mean loss). */
  gradTol?: number;
}

/** The most classes a probe takes (ImageNet-21k has 21,841). */
export const MAX_PROBE_CLASSES = 1_000_000;
/** Class ids that may go unused below the largest one before the labels are refused. */
export const MAX_UNUSED_CLASS_IDS = 1000;

export const DEFAULT_LAMBDAS = [1, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6];

export interface ValidationPoint {
  lambda: number;
  val_acc1: number;
}

export interface LinearProbeResult extends ZeroShotMetrics {
  lambda: number;
  validation: ValidationPoint[];
  num_train: number;
  num_val: number;
  /** Training objective at the final fit and the optimiser's iterations for it. */
  train_loss: number;
  iterations: number;
}

export interface FewShotResult {
  shots: number;
  seeds: number;
  acc1_mean: number;
  acc1_std: number;
  acc5_mean: number;
  acc5_std: number;
  mean_per_class_recall_mean: number;
  mean_per_class_recall_std: number;
  runs: { seed: number; acc1: number; acc5: number; mean_per_class_recall: number; lambda: number }[];
}

function selectRows(m: FeatureMatrix, rows: ArrayLike<number>): FeatureMatrix {
  const d = m.cols;
  const out = new Float32Array(rows.length * d);
  for (let i = 0; i < rows.length; i++) out.set(m.data.subarray(rows[i] * d, rows[i] * d + d), i * d);
  return { data: out, rows: rows.length, cols: d };
}

function selectLabels(labels: ArrayLike<number>, rows: ArrayLike<number>): Int32Array {
  const out = new Int32Array(rows.length);
  for (let i = 0; i < rows.length; i++) out[i] = labels[rows[i]];
  return out;
}

/** Indices of each class, in order. */
function byClass(labels: ArrayLike<number>, numClasses: number): number[][] {
  const out: number[][] = Array.from({ length: numClasses }, () => []);
  for (let i = 0; i < labels.length; i++) out[labels[i]].push(i);
  return out;
}

/** Stratified split: round(valFraction × n_c) of each class's examples (shuffled by seed) go to validation. */
export function stratifiedSplit(labels: ArrayLike<number>, numClasses: number, valFraction: number, seed: number): { fit: number[]; val: number[] } {
  if (!(valFraction > 0 && valFraction < 1)) throw new Error(`linear probe: valFraction must be between 0 and 1, got ${valFraction}`);
  const random = seededRandom(seed * 2 + 1);
  const fit: number[] = [];
  const val: number[] = [];
  for (const idx of byClass(labels, numClasses)) {
    const shuffled = shuffleInPlace(Int32Array.from(idx), random);
    const nVal = Math.round(valFraction * shuffled.length);
    for (let i = 0; i < shuffled.length; i++) (i < nVal ? val : fit).push(shuffled[i]);
  }
  if (val.length === 0) throw new Error(`linear probe: ${labels.length} training examples leave no validation split at valFraction ${valFraction}; give more data or a larger fraction`);
  if (fit.length === 0) throw new Error('linear probe: the validation split took every training example');
  return { fit: fit.sort((a, b) => a - b), val: val.sort((a, b) => a - b) };
}

/** k examples of every class, drawn by seed from `pool` (indices into labels). */
export function sampleShots(labels: ArrayLike<number>, pool: readonly number[], numClasses: number, k: number, seed: number): number[] {
  if (!Number.isInteger(k) || k < 1) throw new Error(`linear probe: shots must be a positive integer, got ${k}`);
  const random = seededRandom(seed * 2 + 2);
  const classes = byClass(selectLabels(labels, pool), numClasses);
  const out: number[] = [];
  classes.forEach((idx, c) => {
    if (idx.length < k) {
      throw new Error(`linear probe: class ${c} has ${idx.length} training examples outside the validation split, fewer than the ${k} shots asked for`);
    }
    const shuffled = shuffleInPlace(Int32Array.from(idx), random);
    for (let i = 0; i < k; i++) out.push(pool[shuffled[i]]);
  });
  return out.sort((a, b) => a - b);
}

function accuracy(model: LogisticModel, features: FeatureMatrix, labels: Int32Array): number {
  return classificationMetrics(logisticLogits(model, features), labels, features.rows, model.numClasses).acc1;
}

interface Selection {
  lambda: number;
  model: LogisticModel;
  loss: number;
  iterations: number;
  validation: ValidationPoint[];
}

/** Fits every candidate λ on (X, y), scores it on the validation data, returns the best. */
function selectLambda(
  fitX: FeatureMatrix,
  fitY: Int32Array,
  valX: FeatureMatrix,
  valY: Int32Array,
  numClasses: number,
  options: LinearProbeOptions,
): Selection {
  const grid = [...(options.lambdas ?? DEFAULT_LAMBDAS)].sort((a, b) => b - a);
  if (grid.length === 0) throw new Error('linear probe: no λ values to try');
  for (const l of grid) if (!(l >= 0) || !Number.isFinite(l)) throw new Error(`linear probe: λ values must be finite and ≥ 0, got ${l}`);
  const refine = options.refine ?? options.lambdas === undefined;
  const fitOpts = { maxIterations: options.maxIterations ?? 500, gradTol: options.gradTol ?? 1e-5 };
  const tried = new Map<number, { acc: number; model: LogisticModel; loss: number; iterations: number }>();
  const run = (lambda: number, init?: LogisticModel) => {
    const fit = fitLogistic(fitX, fitY, numClasses, lambda, { ...fitOpts, init });
    const entry = { acc: accuracy(fit.model, valX, valY), model: fit.model, loss: fit.loss, iterations: fit.optimizer.iterations };
    tried.set(lambda, entry);
    return entry;
  };
  // Strong to weak, each from the previous solution (warm starts make the weak fits cheap). Weak λ
  // fits are the slow ones, so stop once `patience` grid values in a row have not beaten the best.
  const patience = options.patience ?? 2;
  let prev: LogisticModel | undefined;
  let bestAcc = -1;
  let sinceBest = 0;
  for (const l of grid) {
    const e = run(l, prev);
    prev = e.model;
    if (e.acc > bestAcc) {
      bestAcc = e.acc;
      sinceBest = 0;
    } else if (++sinceBest >= patience) break;
  }
  const best = (): number => {
    // Highest accuracy; among equals, the largest λ.
    let bl = NaN;
    let ba = -1;
    for (const [l, e] of [...tried.entries()].sort((a, b) => b[0] - a[0])) {
      if (e.acc > ba) {
        ba = e.acc;
        bl = l;
      }
    }
    return bl;
  };
  if (refine && grid.length > 1) {
    const b = best();
    for (const l of [b * Math.sqrt(10), b / Math.sqrt(10)]) {
      if (l <= grid[0] && l >= grid[grid.length - 1] && !tried.has(l)) run(l, tried.get(b)!.model);
    }
  }
  const lambda = best();
  const e = tried.get(lambda)!;
  const validation = [...tried.entries()].sort((a, b) => b[0] - a[0]).map(([l, v]) => ({ lambda: l, val_acc1: v.acc }));
  return { lambda, model: e.model, loss: e.loss, iterations: e.iterations, validation };
}

interface Prepared {
  train: FeatureMatrix;
  trainY: Int32Array;
  test: FeatureMatrix;
  testY: Int32Array;
  numClasses: number;
}

function prepare(train: FeatureMatrix, trainLabels: ArrayLike<number>, test: FeatureMatrix, testLabels: ArrayLike<number>, options: LinearProbeOptions): Prepared {
  checkFeatures(train, 'train features');
  checkFeatures(test, 'test features');
  if (train.cols !== test.cols) throw new Error(`linear probe: train features have dimension ${train.cols} but test features have ${test.cols}`);
  if (trainLabels.length !== train.rows) throw new Error(`linear probe: ${trainLabels.length} train labels for ${train.rows} train feature rows`);
  if (testLabels.length !== test.rows) throw new Error(`linear probe: ${testLabels.length} test labels for ${test.rows} test feature rows`);
  const trainName = options.trainLabelsName ?? 'train labels';
  const testName = options.testLabelsName ?? 'test labels';
  // The class count is bounded before any per-class array is made: by the distinct classes present
  // (ids may leave a few gaps, not millions) and a fixed maximum. A stray label of 2^31−1 would
  // otherwise size the classifier at 2^31 classes.
  let maxLabel = -1;
  let maxRow = -1;
  const distinct = new Set<number>();
  for (let i = 0; i < trainLabels.length; i++) {
    const y = trainLabels[i];
    distinct.add(y); // a bad id (negative, fractional) is reported by checkLabels below
    if (y > maxLabel) {
      maxLabel = y;
      maxRow = i;
    }
  }
  const numClasses = options.numClasses ?? maxLabel + 1;
  if (!Number.isInteger(numClasses) || numClasses < 2) throw new Error(`linear probe: need at least 2 classes, got ${numClasses}`);
  const allowed = Math.min(MAX_PROBE_CLASSES, distinct.size + MAX_UNUSED_CLASS_IDS);
  if (options.numClasses === undefined && numClasses > allowed) {
    throw new Error(
      `linear probe: ${trainName}: class id ${maxLabel} at row ${maxRow} implies ${numClasses} classes, but only ${distinct.size} distinct classes are present ` +
        `(at most ${allowed} accepted); labels must be class indices 0..C-1`,
    );
  }
  if (numClasses > MAX_PROBE_CLASSES) throw new Error(`linear probe: ${numClasses} classes is more than the maximum of ${MAX_PROBE_CLASSES}`);
  checkLabels(trainLabels, train.rows, numClasses, trainName);
  checkLabels(testLabels, test.rows, numClasses, `${testName} (the training labels define classes 0..${numClasses - 1})`);
  return {
    train: l2Normalize(train, 'train features'),
    trainY: Int32Array.from(trainLabels),
    test: l2Normalize(test, 'test features'),
    testY: Int32Array.from(testLabels),
    numClasses,
  };
}

/** Linear probe on all training data. */
export function linearProbe(
  train: FeatureMatrix,
  trainLabels: ArrayLike<number>,
  test: FeatureMatrix,
  testLabels: ArrayLike<number>,
  options: LinearProbeOptions = {},
): LinearProbeResult {
  const p = prepare(train, trainLabels, test, testLabels, options);
  const { fit, val } = stratifiedSplit(p.trainY, p.numClasses, options.valFraction ?? 0.2, options.seed ?? 0);
  const sel = selectLambda(selectRows(p.train, fit), selectLabels(p.trainY, fit), selectRows(p.train, val), selectLabels(p.trainY, val), p.numClasses, options);
  const final = fitLogistic(p.train, p.trainY, p.numClasses, sel.lambda, {
    init: sel.model,
    maxIterations: options.maxIterations ?? 500,
    gradTol: options.gradTol ?? 1e-5,
  });
  const metrics = classificationMetrics(logisticLogits(final.model, p.test), p.testY, p.test.rows, p.numClasses);
  return {
    ...metrics,
    lambda: sel.lambda,
    validation: sel.validation,
    num_train: p.train.rows,
    num_val: val.length,
    train_loss: final.loss,
    iterations: final.optimizer.iterations,
  };
}

/** k-shot linear probes over several seeds: mean and sample standard deviation of the test metrics. */
export function fewShotLinearProbe(
  train: FeatureMatrix,
  trainLabels: ArrayLike<number>,
  test: FeatureMatrix,
  testLabels: ArrayLike<number>,
  shots: number,
  seeds: number,
  options: LinearProbeOptions = {},
): FewShotResult {
  if (!Number.isInteger(seeds) || seeds < 1) throw new Error(`linear probe: seeds must be a positive integer, got ${seeds}`);
  if (!Number.isInteger(shots) || shots < 1) throw new Error(`linear probe: shots must be a positive integer, got ${shots}`);
  const p = prepare(train, trainLabels, test, testLabels, options);
  const base = options.seed ?? 0;
  const runs: FewShotResult['runs'] = [];
  for (let s = 0; s < seeds; s++) {
    const seed = base + s;
    const { fit, val } = stratifiedSplit(p.trainY, p.numClasses, options.valFraction ?? 0.2, seed);
    const shot = sampleShots(p.trainY, fit, p.numClasses, shots, seed);
    const sel = selectLambda(selectRows(p.train, shot), selectLabels(p.trainY, shot), selectRows(p.train, val), selectLabels(p.trainY, val), p.numClasses, options);
    const m = classificationMetrics(logisticLogits(sel.model, p.test), p.testY, p.test.rows, p.numClasses);
    runs.push({ seed, acc1: m.acc1, acc5: m.acc5, mean_per_class_recall: m.mean_per_class_recall, lambda: sel.lambda });
  }
  const col = (k: 'acc1' | 'acc5' | 'mean_per_class_recall') => runs.map((r) => r[k]);
  return {
    shots,
    seeds,
    acc1_mean: mean(col('acc1')),
    acc1_std: sampleStd(col('acc1')),
    acc5_mean: mean(col('acc5')),
    acc5_std: sampleStd(col('acc5')),
    mean_per_class_recall_mean: mean(col('mean_per_class_recall')),
    mean_per_class_recall_std: sampleStd(col('mean_per_class_recall')),
    runs,
  };
}
