// End-to-end fine-tuning, CLIP style (as the scaling-laws paper and WiSE-FT do it): the image tower
// is trained against a classifier head built once from the text tower (the zero-shot classifier:
// per class the normalised mean of the normalised template embeddings) and then frozen, so the text
// tower and the logit scale never change.
//
//   logits = scale · normalize(f_img) · Wᵀ,   loss = mean cross-entropy over the batch
//
// `scale` defaults to the model's own logit scale exp(logit_scale) (at most 100), as WiSE-FT's
// head multiplies the zero-shot weights by logit_scale.exp(). The loss and its gradient with
// respect to the image features are small ([B, D] against [C, D]) and are computed here in float64;
// the rest flows through model.visual.backward. AdamW updates the visual parameters only, with
// OpenCLIP's decay rule, on its own cosine schedule with linear warmup. Defaults follow WiSE-FT
// (lr 3e-5, weight decay 0.1). The model is changed in place; copy its stateDict() first to keep it.
import type { Tokenizer } from '../data/tokenizer.js';
import { Rng } from '../data/rng.js';
import { MAX_LOGIT_SCALE, type CLIP } from '../nn/clip.js';
import { clipEncoder } from '../nn/encoder.js';
import * as ops from '../ops.js';
import { AdamW } from '../optim/adamw.js';
import { makeLrSchedule, type LrScheduleName } from '../optim/schedules.js';
import { Tensor } from '../tensor.js';
import { checkFeatures, type FeatureMatrix } from './features.js';
import { checkLabelledImages, type LabelledImages } from './labelled_images.js';
import { checkImagesFitModel, checkPromptsMatchData, imageFeatures, zeroShotClassifier } from './model_eval.js';
import { zeroShotMetrics, type ZeroShotMetrics } from './zeroshot.js';

export interface FinetuneLossResult {
  /** Mean cross-entropy over the batch. */
  loss: number;
  /** d loss / d features, [n, D] (the features before normalisation). */
  grad: Float32Array;
  /** Rows whose top logit is the label (ties go to the lower class id). */
  correct: number;
}

/**
 * The fine-tuning loss for image features [n, D] (not normalised) against frozen class weights
 * [C, D]: mean over rows of −log softmax(scale · normalize(f) · Wᵀ)[label], and its gradient.
 */
export function finetuneLoss(features: Float32Array, n: number, labels: ArrayLike<number>, classWeights: FeatureMatrix, scale: number): FinetuneLossResult {
  const d = classWeights.cols;
  const c = classWeights.rows;
  if (features.length !== n * d) throw new Error(`finetuneLoss: ${features.length} feature values for ${n} rows of dimension ${d}`);
  if (labels.length !== n) throw new Error(`finetuneLoss: ${labels.length} labels for ${n} rows`);
  if (!(scale > 0) || !Number.isFinite(scale)) throw new Error(`finetuneLoss: scale must be a positive finite number, got ${scale}`);
  const w = classWeights.data;
  const grad = new Float32Array(n * d);
  const u = new Float64Array(d);
  const z = new Float64Array(c);
  const du = new Float64Array(d);
  let loss = 0;
  let correct = 0;
  for (let i = 0; i < n; i++) {
    const y = labels[i];
    if (!Number.isInteger(y) || y < 0 || y >= c) throw new Error(`finetuneLoss: label ${y} at row ${i} is not a class id (0..${c - 1})`);
    let sq = 0;
    for (let k = 0; k < d; k++) sq += features[i * d + k] ** 2;
    const norm = Math.sqrt(sq);
    if (!(norm > 0) || !Number.isFinite(norm)) throw new Error(`finetuneLoss: image features of row ${i} have norm ${norm}`);
    for (let k = 0; k < d; k++) u[k] = features[i * d + k] / norm;
    let max = -Infinity;
    let arg = 0;
    for (let j = 0; j < c; j++) {
      let s = 0;
      for (let k = 0; k < d; k++) s += u[k] * w[j * d + k];
      z[j] = scale * s;
      if (z[j] > max) {
        max = z[j];
        arg = j;
      }
    }
    if (arg === y) correct++;
    let sum = 0;
    for (let j = 0; j < c; j++) {
      z[j] = Math.exp(z[j] - max);
      sum += z[j];
    }
    loss += Math.log(sum) - Math.log(z[y]);
    // dz = (softmax − onehot) / n; du = scale · dzᵀW; df = (du − u (u·du)) / ‖f‖.
    du.fill(0);
    for (let j = 0; j < c; j++) {
      const g = (scale * (z[j] / sum - (j === y ? 1 : 0))) / n;
      if (g === 0) continue;
      for (let k = 0; k < d; k++) du[k] += g * w[j * d + k];
    }
    let dot = 0;
    for (let k = 0; k < d; k++) dot += u[k] * du[k];
    for (let k = 0; k < d; k++) grad[i * d + k] = (du[k] - u[k] * dot) / norm;
  }
  return { loss: loss / n, grad, correct };
}

export interface FinetuneOptions {
  train: LabelledImages;
  /** Held-out images: accuracy before (zero-shot) and after is measured here. */
  test: LabelledImages;
  classnames: string[];
  templates: string[];
  tokenizer: Tokenizer;
  /** Optimizer steps; or give `epochs` (steps = ceil(epochs · train.n / batchSize)). */
  steps?: number;
  epochs?: number;
  batchSize: number;
  /** Peak learning rate. Default 3e-5 (WiSE-FT). */
  lr?: number;
  /** Linear warmup steps. Default 0. */
  warmup?: number;
  /** Default 'cosine'. */
  schedule?: LrScheduleName;
  /** Default 0.1 (WiSE-FT), under AdamW's default rule 'openclip-3': no decay on gains, biases, class embedding, logit_scale. */
  weightDecay?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Clip the visual gradients to this global norm. */
  gradClipNorm?: number;
  /** Logit multiplier of the frozen head. Default: the model's exp(logit_scale), at most 100. */
  scale?: number;
  /** Seed of the batch order (each epoch a fresh permutation of the training images). Default 0. */
  seed?: number;
  /** Record every N steps (and the last). Default 10. */
  logEvery?: number;
  /** Also measure test accuracy every N steps. Default: only before and after. */
  evalEvery?: number;
  /** Called with each record as it is made. */
  onLog?: (record: FinetuneLogRecord) => void;
}

export interface FinetuneLogRecord {
  step: number;
  samples: number;
  lr: number;
  /** Mean loss over the steps since the previous record. */
  loss: number;
  /** Training-batch accuracy over the same steps. */
  train_acc: number;
  grad_norm: number;
  test_acc1?: number;
}

export interface FinetuneResult {
  /** Test metrics of the zero-shot head before any step. */
  before: ZeroShotMetrics;
  /** Test metrics after the last step, with the same head. */
  after: ZeroShotMetrics;
  history: FinetuneLogRecord[];
  steps: number;
  batchSize: number;
  scale: number;
  seconds: number;
}

function checkOptions(o: FinetuneOptions, trainN: number): number {
  const where = 'finetune';
  if (!Number.isInteger(o.batchSize) || o.batchSize < 1) throw new Error(`${where}: batchSize must be a positive integer, got ${o.batchSize}`);
  if (o.steps !== undefined && o.epochs !== undefined) throw new Error(`${where}: give steps or epochs, not both`);
  let steps: number;
  if (o.steps !== undefined) {
    if (!Number.isInteger(o.steps) || o.steps < 1) throw new Error(`${where}: steps must be a positive integer, got ${o.steps}`);
    steps = o.steps;
  } else if (o.epochs !== undefined) {
    if (!(o.epochs > 0)) throw new Error(`${where}: epochs must be positive, got ${o.epochs}`);
    steps = Math.max(1, Math.ceil((o.epochs * trainN) / o.batchSize));
  } else {
    throw new Error(`${where}: give the length of training as steps or epochs`);
  }
  const warmup = o.warmup ?? 0;
  if (!Number.isInteger(warmup) || warmup < 0 || warmup >= steps) throw new Error(`${where}: warmup must be an integer in [0, steps = ${steps}), got ${warmup}`);
  if (o.lr !== undefined && !(o.lr >= 0 && Number.isFinite(o.lr))) throw new Error(`${where}: lr must be a finite number ≥ 0, got ${o.lr}`);
  return steps;
}

/** Fine-tunes `model`'s image tower in place; returns test accuracy before and after and the log. */
export async function finetune(model: CLIP, o: FinetuneOptions): Promise<FinetuneResult> {
  const t0 = performance.now();
  checkLabelledImages(o.train, 'training images');
  checkLabelledImages(o.test, 'test images');
  checkImagesFitModel(model, o.train);
  checkImagesFitModel(model, o.test);
  const prompts = { classnames: o.classnames, templates: o.templates };
  checkPromptsMatchData(prompts, o.train);
  checkPromptsMatchData(prompts, o.test);
  const steps = checkOptions(o, o.train.n);
  const scale = o.scale ?? Math.exp(Math.min(model.logitScale.values()[0], MAX_LOGIT_SCALE));
  if (!(scale > 0) || !Number.isFinite(scale)) throw new Error(`finetune: scale must be a positive finite number, got ${scale}`);

  // The head: built once from the text tower, then fixed.
  const head = await zeroShotClassifier(model, prompts, o.tokenizer);
  checkFeatures(head, 'zero-shot head');
  const encoder = clipEncoder(model);
  const testAccuracy = async () => zeroShotMetrics(await imageFeatures(encoder, o.test.pixels, o.test.n), o.test.labels, head);
  const before = await testAccuracy();

  const params = model.visual.parameters();
  const hyper = {
    lr: o.lr ?? 3e-5,
    weightDecay: o.weightDecay ?? 0.1,
    ...(o.beta1 !== undefined ? { beta1: o.beta1 } : {}),
    ...(o.beta2 !== undefined ? { beta2: o.beta2 } : {}),
    ...(o.eps !== undefined ? { eps: o.eps } : {}),
  };
  using optimizer = new AdamW(params, hyper);
  // After the optimizer: on the CPU it rebinds the parameters' tensors to views of flat buffers.
  const grads = params.map((p) => p.grad);
  const lrAt = makeLrSchedule({ name: o.schedule ?? 'cosine', baseLr: optimizer.hyper.lr, warmupSteps: o.warmup ?? 0, totalSteps: steps });

  const size = o.train.imageSize;
  const plane = 3 * size * size;
  const b = o.batchSize;
  const pixels = new Float32Array(b * plane);
  const labels = new Int32Array(b);
  const rng = new Rng(o.seed ?? 0);
  let order: number[] = [];
  let cursor = 0;
  const logEvery = o.logEvery ?? 10;
  const history: FinetuneLogRecord[] = [];
  let windowLoss = 0;
  let windowCorrect = 0;
  let windowSteps = 0;
  let after: ZeroShotMetrics | undefined;
  for (let step = 0; step < steps; step++) {
    // A stream of epochs, each a fresh permutation: every batch is full.
    for (let j = 0; j < b; j++) {
      if (cursor === order.length) {
        order = rng.shuffle(Array.from({ length: o.train.n }, (_, i) => i));
        cursor = 0;
      }
      const i = order[cursor++];
      pixels.set(o.train.pixels.subarray(i * plane, (i + 1) * plane), j * plane);
      labels[j] = o.train.labels[i];
    }
    const lr = lrAt(step);
    model.visual.zeroGrad();
    let result: FinetuneLossResult;
    {
      using images = Tensor.from(pixels, [b, 3, size, size]);
      const features = model.visual.forward(images);
      result = finetuneLoss(features.view() as Float32Array, b, labels, head, scale);
      using dfeatures = Tensor.from(result.grad, [b, head.cols]);
      model.visual.backward(dfeatures);
    }
    if (!Number.isFinite(result.loss)) throw new Error(`finetune: the loss became ${result.loss} at step ${step}; lower the learning rate`);
    const norm = o.gradClipNorm !== undefined ? ops.clipGradNorm(grads, o.gradClipNorm) : ops.gradNorm(grads);
    optimizer.update(lr);
    windowLoss += result.loss;
    windowCorrect += result.correct;
    windowSteps++;
    const done = step + 1;
    const evalNow = o.evalEvery !== undefined && done % o.evalEvery === 0 && done < steps;
    if (done % logEvery === 0 || done === steps || evalNow) {
      const rec: FinetuneLogRecord = {
        step: done,
        samples: done * b,
        lr,
        loss: windowLoss / windowSteps,
        train_acc: windowCorrect / (windowSteps * b),
        grad_norm: norm,
      };
      if (done === steps) {
        after = await testAccuracy();
        rec.test_acc1 = after.acc1;
      } else if (evalNow) {
        rec.test_acc1 = (await testAccuracy()).acc1;
      }
      history.push(rec);
      o.onLog?.(rec);
      windowLoss = windowCorrect = windowSteps = 0;
    }
  }
  model.visual.zeroGrad();
  if (!after) throw new Error('finetune: no step was taken');
  return { before, after, history, steps, batchSize: b, scale, seconds: (performance.now() - t0) / 1000 };
}
