// `clipscale eval <task>`: evaluation on precomputed features (.npy), printing JSON.
import { UsageError, type Command } from '../command.js';
import { intOption, MAX_INT_OPTION, numberOption, parse, requireOption } from '../args.js';
import { featuresFromNpy, intsFromNpy, l2Normalize } from '../../eval/features.js';
import { fewShotLinearProbe, linearProbe, type LinearProbeOptions } from '../../eval/linear_probe.js';
import { readNpy } from '../../eval/npy.js';
import { DEFAULT_RECALL_KS, retrievalMetrics } from '../../eval/retrieval.js';
import { classifierFromTemplateEmbeddings, zeroShotMetrics } from '../../eval/zeroshot.js';
import { finetuneCommand, finetuneUsage, modelZeroshotUsage, zeroshotFromModel } from './_eval_model.js';

const usage = `usage: clipscale eval zeroshot|retrieval|linear-probe|finetune [options]     (prints one JSON object)

tasks:
  retrieval     --image-features I.npy --text-features T.npy [--text-image IDX.npy] [--k 1,5,10]
                Image [N, D] and caption [M, D] features; IDX[j] is the image of caption j
                (identity when absent, then M = N). Reports image_retrieval_recall@K (a caption
                retrieves its image), text_retrieval_recall@K (an image retrieves any of its
                captions), and *_mean_rank / *_median_rank (1-based).

  linear-probe  --train-features X.npy --train-labels Y.npy --test-features X2.npy --test-labels Y2.npy
                [--shots K[,K...]] [--seeds N (default 3)] [--seed S (default 0)]
                [--val-fraction F (default 0.2)] [--lambdas L1,L2,...]
                Multinomial logistic regression (L-BFGS) on L2-normalised features, L2 strength
                chosen on a validation split. With --shots: k per class, mean and std over seeds.

  zeroshot      --image-features I.npy --labels Y.npy --class-features W.npy [--templates-per-class T]
                Zero-shot metrics (acc1, acc5, mean_per_class_recall) from image features and the
                text embeddings of the classes: W is [C, D] (one embedding per class), or with
                --templates-per-class T, [C*T, D] template embeddings laid out class by class, which
                are averaged into the classifier as CLIP does.

${modelZeroshotUsage}

${finetuneUsage}

Ties rank by index (lowest first). Labels are int32/int64 (or whole-valued float) 1-D arrays.`;

function list(command: string, name: string, value: string | undefined, bounds: { integer?: boolean; min?: number; above?: number } = {}): number[] | undefined {
  if (value === undefined) return undefined;
  const out = value.split(',').map((s) => (s.trim() === '' ? NaN : Number(s.trim())));
  const bad = (v: number) =>
    !Number.isFinite(v) ||
    (bounds.integer && !(Number.isSafeInteger(v) && v <= MAX_INT_OPTION)) ||
    (bounds.min !== undefined && v < bounds.min) ||
    (bounds.above !== undefined && !(v > bounds.above));
  if (out.length === 0 || out.some(bad)) {
    const what = bounds.integer ? 'numbers (integers)' : 'numbers';
    const range = bounds.min !== undefined ? ` ≥ ${bounds.min}` : bounds.above !== undefined ? ` > ${bounds.above}` : '';
    throw new UsageError(`clipscale ${command}: --${name} must be a comma-separated list of ${what}${range}, got '${value}'`);
  }
  return out;
}

async function retrieval(argv: string[]): Promise<number> {
  const cmd = 'eval retrieval';
  const { values } = parse(cmd, argv, {
    'image-features': { type: 'string' },
    'text-features': { type: 'string' },
    'text-image': { type: 'string' },
    k: { type: 'string' },
  });
  const imgPath = requireOption(cmd, 'image-features', values['image-features']);
  const txtPath = requireOption(cmd, 'text-features', values['text-features']);
  const ks = list(cmd, 'k', values.k, { integer: true, min: 1 }) ?? [...DEFAULT_RECALL_KS];
  const images = featuresFromNpy(readNpy(imgPath), `image features '${imgPath}'`);
  const texts = featuresFromNpy(readNpy(txtPath), `text features '${txtPath}'`);
  const idxPath = values['text-image'];
  const textImage = idxPath ? intsFromNpy(readNpy(idxPath), `text→image index '${idxPath}'`) : undefined;
  console.log(JSON.stringify(retrievalMetrics(images, texts, textImage, ks)));
  return 0;
}

async function linearProbeCommand(argv: string[]): Promise<number> {
  const cmd = 'eval linear-probe';
  const { values } = parse(cmd, argv, {
    'train-features': { type: 'string' },
    'train-labels': { type: 'string' },
    'test-features': { type: 'string' },
    'test-labels': { type: 'string' },
    shots: { type: 'string' },
    seeds: { type: 'string' },
    seed: { type: 'string' },
    'val-fraction': { type: 'string' },
    lambdas: { type: 'string' },
  });
  const load = (name: 'train-features' | 'test-features') => {
    const p = requireOption(cmd, name, values[name]);
    return featuresFromNpy(readNpy(p), `${name.replace('-', ' ')} '${p}'`);
  };
  const loadLabels = (name: 'train-labels' | 'test-labels') => {
    const p = requireOption(cmd, name, values[name]);
    return intsFromNpy(readNpy(p), `${name.replace('-', ' ')} '${p}'`);
  };
  // Options first: a bad value is a usage error before any file is read.
  const options: LinearProbeOptions = {
    seed: intOption(cmd, 'seed', values.seed, 0, { max: Number.MAX_SAFE_INTEGER }),
    valFraction: numberOption(cmd, 'val-fraction', values['val-fraction'], 0.2, { above: 0, below: 1 }),
    lambdas: list(cmd, 'lambdas', values.lambdas, { min: 0 }),
    trainLabelsName: `train labels '${values['train-labels']}'`,
    testLabelsName: `test labels '${values['test-labels']}'`,
  };
  const shots = list(cmd, 'shots', values.shots, { integer: true, min: 1 });
  const seedCount = shots ? intOption(cmd, 'seeds', values.seeds, 3, { min: 1, max: 10_000 }) : 0;
  const trainX = load('train-features');
  const trainY = loadLabels('train-labels');
  const testX = load('test-features');
  const testY = loadLabels('test-labels');
  if (!shots) {
    console.log(JSON.stringify({ task: 'linear-probe', ...linearProbe(trainX, trainY, testX, testY, options) }));
    return 0;
  }
  const seeds = seedCount;
  for (const k of shots) if (!Number.isInteger(k) || k < 1) throw new UsageError(`clipscale ${cmd}: --shots values must be positive integers, got ${k}`);
  if (seeds < 1) throw new UsageError(`clipscale ${cmd}: --seeds must be at least 1, got ${seeds}`);
  const results = shots.map((k) => fewShotLinearProbe(trainX, trainY, testX, testY, k, seeds, options));
  console.log(JSON.stringify({ task: 'linear-probe-few-shot', results }));
  return 0;
}

async function zeroshot(argv: string[]): Promise<number> {
  const cmd = 'eval zeroshot';
  // With a model the images and prompts are embedded here; otherwise the features are given.
  if (argv.some((a) => /^--(model|weights|data|images|shards)(=|$)/.test(a))) return zeroshotFromModel(argv);
  const { values } = parse(cmd, argv, {
    'image-features': { type: 'string' },
    labels: { type: 'string' },
    'class-features': { type: 'string' },
    'templates-per-class': { type: 'string' },
  });
  if (!values['image-features'] && !values['class-features']) {
    throw new UsageError(
      `clipscale ${cmd} needs a model and images (--weights FILE|RUN_DIR [--model NAME] --data synthetic:TASK|FOLDER) or precomputed features: --image-features I.npy --labels Y.npy --class-features W.npy`,
    );
  }
  const imgPath = requireOption(cmd, 'image-features', values['image-features']);
  const labelsPath = requireOption(cmd, 'labels', values.labels);
  const classPath = requireOption(cmd, 'class-features', values['class-features']);
  const images = featuresFromNpy(readNpy(imgPath), `image features '${imgPath}'`);
  const labels = intsFromNpy(readNpy(labelsPath), `labels '${labelsPath}'`);
  const classFeatures = featuresFromNpy(readNpy(classPath), `class features '${classPath}'`);
  const perClass = intOption(cmd, 'templates-per-class', values['templates-per-class'], 1, { min: 1 });
  if (perClass < 1) throw new UsageError(`clipscale ${cmd}: --templates-per-class must be at least 1, got ${perClass}`);
  if (classFeatures.rows % perClass !== 0) {
    throw new UsageError(`clipscale ${cmd}: ${classFeatures.rows} class feature rows are not a whole number of classes at ${perClass} templates per class`);
  }
  const weights =
    perClass === 1
      ? l2Normalize(classFeatures, `class features '${classPath}'`)
      : classifierFromTemplateEmbeddings(classFeatures, classFeatures.rows / perClass, perClass);
  console.log(JSON.stringify({ task: 'zeroshot', ...zeroShotMetrics(images, labels, weights) }));
  return 0;
}

export const command: Command = {
  name: 'eval',
  summary: 'zero-shot, retrieval, linear-probe (from features or a model) and fine-tuning evaluation, as JSON',
  usage,
  async run(argv) {
    const [task, ...rest] = argv;
    switch (task) {
      case 'retrieval':
        return retrieval(rest);
      case 'linear-probe':
        return linearProbeCommand(rest);
      case 'zeroshot':
        return zeroshot(rest);
      case 'finetune':
        return finetuneCommand(rest);
      case undefined:
        throw new UsageError(`clipscale eval: give a task (zeroshot, retrieval, linear-probe, finetune)\n\n${usage}`);
      default:
        throw new UsageError(`clipscale eval: unknown task '${task}' (zeroshot, retrieval, linear-probe, finetune)`);
    }
  },
};
