// The model-based forms of `clipscale eval`: zero-shot classification from a model with weights
// and images (synthetic task, image folder or labelled shards), and end-to-end fine-tuning.
// Used by eval.ts; the leading underscore keeps main.ts from listing it as a command.
import { existsSync, statSync } from 'node:fs';

import { UsageError } from '../command.js';
import { intOption, numberOption, parse, requireOption } from '../args.js';
import { modelOrRunConfig } from '../run_model.js';
import { IMAGE_NORMALIZATION_OPTIONS, imageNormalization, imageNormalizationUsage } from '../image_normalization.js';
import type { Normalization } from '../../data/normalize.js';
import type { Tokenizer } from '../../data/tokenizer.js';
import { tokenizerForVocab } from '../../inference/tokenizer.js';
import { finetune, type FinetuneOptions } from '../../eval/finetune.js';
import {
  DEFAULT_TEMPLATES,
  imageFolderImages,
  splitImages,
  syntheticTaskImages,
  webdatasetImages,
  type LabelledImages,
} from '../../eval/labelled_images.js';
import { zeroShotEval } from '../../eval/model_eval.js';
import { readPromptSpec, type PromptSpec } from '../../eval/zeroshot.js';
import type { CLIP } from '../../nn/clip.js';
import { loadCheckpoint } from '../../train/load.js';
import { writeSafetensors, type TensorRecord } from '../../train/safetensors.js';

export const modelZeroshotUsage = `  zeroshot      [--model NAME|config.json] --weights FILE|RUN_DIR
                (--data synthetic:TASK | --data FOLDER | --images FOLDER | --shards PATTERN)
                [--prompts FILE.json] [--vocab FILE|synthetic] [--n N] [--seed S] [--workers W]
                Zero-shot classification by a model: images are embedded by the image tower, the
                prompts {"classnames": [...], "templates": [...]} by the text tower. TASK is shape,
                colour or shape_colour (the synthetic world, N held-out images, default 1000, draw S);
                a FOLDER holds a folder per class (class names from folder names, '_' read as a space;
                without --prompts the template is "a photo of a {c}."); shards hold <key>.jpg|png|webp
                with <key>.cls or a json "label", and need --prompts for the class names. Images get
                the eval transform (resize, centre crop, normalise). --model may be left out when
                --weights is a run folder of 'clipscale train' (its saved config names the model).
                --vocab: the vocabulary the model was trained with: 'openai', 'synthetic' or a BPE
                file (default 'openai' for text_cfg.vocab_size 49408, else 'synthetic').
                ${imageNormalizationUsage}.`;

export const finetuneUsage = `  finetune      [--model NAME|config.json] --weights FILE|RUN_DIR --data synthetic:TASK|FOLDER
                (--steps N | --epochs E) --batch-size B [--lr LR (3e-5)] [--warmup W (0)] [--wd WD (0.1)]
                [--scale S] [--grad-clip-norm G] [--test FOLDER | --test-fraction F (0.2)]
                [--n N (2048)] [--test-n N (1000)] [--prompts FILE.json] [--vocab FILE|synthetic]
                [--seed S] [--save FILE.safetensors] [--history]
                Trains the image tower end to end against the frozen zero-shot head from the text
                tower (logits = scale · normalize(image) · Wᵀ, cross-entropy; scale defaults to the
                model's exp(logit_scale)), AdamW on the visual parameters with a cosine schedule.
                Prints test acc1/acc5/mean_per_class_recall before (zero-shot) and after. Synthetic
                tasks train on N images of one draw and test on a different draw; a FOLDER is split
                class by class unless --test gives a test folder. --save writes the fine-tuned model.`;

const DATA_OPTIONS = {
  model: { type: 'string' },
  weights: { type: 'string' },
  data: { type: 'string' },
  images: { type: 'string' },
  shards: { type: 'string' },
  prompts: { type: 'string' },
  vocab: { type: 'string' },
  'label-key': { type: 'string' },
  seed: { type: 'string' },
  workers: { type: 'string' },
  ...IMAGE_NORMALIZATION_OPTIONS,
} as const;

/** --vocab, or the default for the model's vocab size (OpenAI's for 49,408 tokens, else the synthetic world's). */
function tokenizerFor(cmd: string, vocab: string | undefined, model: CLIP): Tokenizer {
  return tokenizerForVocab(vocab, model.config.text_cfg.vocab_size, `clipscale ${cmd}`);
}

async function loadModel(cmd: string, values: { model?: string; weights?: string }): Promise<CLIP> {
  const weights = requireOption(cmd, 'weights', values.weights);
  return loadCheckpoint(await modelOrRunConfig(cmd, values.model, weights), weights);
}

/** `synthetic:TASK` or a folder. */
function parseDataSpec(cmd: string, spec: string): { synthetic: string } | { folder: string } {
  if (spec.startsWith('synthetic:')) {
    const task = spec.slice('synthetic:'.length);
    if (!task) throw new UsageError(`clipscale ${cmd}: --data synthetic:TASK needs a task (shape, colour, shape_colour)`);
    return { synthetic: task };
  }
  if (!existsSync(spec)) throw new UsageError(`clipscale ${cmd}: --data '${spec}' is neither synthetic:TASK nor an existing folder`);
  if (!statSync(spec).isDirectory()) throw new UsageError(`clipscale ${cmd}: --data '${spec}' is not a folder (a folder per class is expected)`);
  return { folder: spec };
}

interface DataArgs {
  data?: string;
  images?: string;
  shards?: string;
  'label-key'?: string;
  workers?: string;
}

async function loadLabelled(cmd: string, v: DataArgs, imageSize: number, n: number, seed: number, prompts: PromptSpec | undefined, normalization?: Normalization): Promise<LabelledImages> {
  const given = [v.data, v.images, v.shards].filter((x) => x !== undefined).length;
  if (given !== 1) throw new UsageError(`clipscale ${cmd}: give exactly one of --data synthetic:TASK|FOLDER, --images FOLDER, --shards PATTERN`);
  const workers = intOption(cmd, 'workers', v.workers, 0, { max: 256 });
  if (v.shards !== undefined) {
    if (!prompts) throw new UsageError(`clipscale ${cmd}: --shards holds class ids only; give --prompts FILE.json with the class names`);
    return webdatasetImages(v.shards, { imageSize, workers, classnames: prompts.classnames, labelKey: v['label-key'], ...(normalization ? { normalization } : {}) });
  }
  const spec = v.images !== undefined ? { folder: v.images } : parseDataSpec(cmd, v.data!);
  if ('synthetic' in spec) return syntheticTaskImages(spec.synthetic, { imageSize, n, seed });
  return imageFolderImages(spec.folder, { imageSize, workers, ...(normalization ? { normalization } : {}) });
}

/** The prompts: --prompts, else the data's own (synthetic), else its class names with one template. */
function promptsFor(data: LabelledImages, file: PromptSpec | undefined): PromptSpec {
  return file ?? data.prompts ?? { classnames: data.classnames, templates: [...DEFAULT_TEMPLATES] };
}

/** `clipscale eval zeroshot --model … --weights …`. */
export async function zeroshotFromModel(argv: string[]): Promise<number> {
  const cmd = 'eval zeroshot';
  const { values } = parse(cmd, argv, { ...DATA_OPTIONS, n: { type: 'string' } });
  const filePrompts = values.prompts ? readPromptSpec(values.prompts) : undefined;
  const model = await loadModel(cmd, values);
  try {
    const size = model.config.vision_cfg.image_size;
    const normalization = imageNormalization(cmd, values, model.config.text_cfg.vocab_size);
    const data = await loadLabelled(cmd, values, size, intOption(cmd, 'n', values.n, 1000, { min: 1, max: 10_000_000 }), intOption(cmd, 'seed', values.seed, 0, { max: Number.MAX_SAFE_INTEGER }), filePrompts, normalization);
    const prompts = promptsFor(data, filePrompts);
    const metrics = await zeroShotEval(model, data, prompts, tokenizerFor(cmd, values.vocab, model));
    console.log(JSON.stringify({ task: 'zeroshot', data: data.source, ...metrics, ...(data.skipped ? { skipped: data.skipped } : {}) }));
    return 0;
  } finally {
    model.dispose();
  }
}

/** `clipscale eval finetune …`. */
export async function finetuneCommand(argv: string[]): Promise<number> {
  const cmd = 'eval finetune';
  const { values } = parse(cmd, argv, {
    ...DATA_OPTIONS,
    test: { type: 'string' },
    'test-fraction': { type: 'string' },
    n: { type: 'string' },
    'test-n': { type: 'string' },
    steps: { type: 'string' },
    epochs: { type: 'string' },
    'batch-size': { type: 'string' },
    lr: { type: 'string' },
    warmup: { type: 'string' },
    wd: { type: 'string' },
    scale: { type: 'string' },
    'grad-clip-norm': { type: 'string' },
    save: { type: 'string' },
    history: { type: 'boolean' },
  });
  if (values.weights === undefined) {
    throw new UsageError(`clipscale ${cmd} needs a model with weights: --weights FILE|RUN_DIR [--model NAME|config.json] (see 'clipscale help eval')`);
  }
  if (values.shards !== undefined) throw new UsageError(`clipscale ${cmd}: fine-tuning takes --data synthetic:TASK or a FOLDER (labelled shards are for zeroshot)`);
  if (values.steps === undefined && values.epochs === undefined) throw new UsageError(`clipscale ${cmd}: give --steps N or --epochs E`);
  const batchSize = intOption(cmd, 'batch-size', values['batch-size'], undefined, { min: 1, max: 65_536 });
  const seed = intOption(cmd, 'seed', values.seed, 0, { max: 2 ** 40 });
  const filePrompts = values.prompts ? readPromptSpec(values.prompts) : undefined;
  const model = await loadModel(cmd, values);
  try {
    const size = model.config.vision_cfg.image_size;
    const spec = values.images !== undefined ? { folder: values.images } : parseDataSpec(cmd, requireOption(cmd, 'data', values.data));
    let train: LabelledImages;
    let test: LabelledImages;
    if ('synthetic' in spec) {
      if (values.test !== undefined) throw new UsageError(`clipscale ${cmd}: --test is for folders; a synthetic task tests on its own held-out draw`);
      // Train and test on different held-out draws of the task (disjoint images).
      train = syntheticTaskImages(spec.synthetic, { imageSize: size, n: intOption(cmd, 'n', values.n, 2048, { min: 1, max: 10_000_000 }), seed: 2 * seed + 1 });
      test = syntheticTaskImages(spec.synthetic, { imageSize: size, n: intOption(cmd, 'test-n', values['test-n'], 1000, { min: 1, max: 10_000_000 }), seed: 2 * seed + 2 });
    } else {
      const workers = intOption(cmd, 'workers', values.workers, 0, { max: 256 });
      const normalization = imageNormalization(cmd, values, model.config.text_cfg.vocab_size);
      const all = await imageFolderImages(spec.folder, { imageSize: size, workers, normalization });
      if (values.test !== undefined) {
        train = all;
        test = await imageFolderImages(values.test, { imageSize: size, workers, normalization });
        if (test.classnames.join('\n') !== train.classnames.join('\n')) {
          throw new Error(`clipscale ${cmd}: the test folder's classes (${test.classnames.join(', ')}) differ from the training folder's (${train.classnames.join(', ')})`);
        }
      } else {
        ({ train, test } = splitImages(all, numberOption(cmd, 'test-fraction', values['test-fraction'], 0.2, { above: 0, below: 1 }), seed));
      }
    }
    const prompts = promptsFor(train, filePrompts);
    const options: FinetuneOptions = {
      train,
      test,
      ...prompts,
      tokenizer: tokenizerFor(cmd, values.vocab, model),
      batchSize,
      seed,
      ...(values.steps !== undefined ? { steps: intOption(cmd, 'steps', values.steps, undefined, { min: 1, max: 100_000_000 }) } : {}),
      ...(values.epochs !== undefined ? { epochs: numberOption(cmd, 'epochs', values.epochs, undefined, { above: 0, max: 1_000_000 }) } : {}),
      ...(values.lr !== undefined ? { lr: numberOption(cmd, 'lr', values.lr, undefined, { min: 0 }) } : {}),
      ...(values.warmup !== undefined ? { warmup: intOption(cmd, 'warmup', values.warmup, undefined, { min: 0 }) } : {}),
      ...(values.wd !== undefined ? { weightDecay: numberOption(cmd, 'wd', values.wd, undefined, { min: 0 }) } : {}),
      ...(values.scale !== undefined ? { scale: numberOption(cmd, 'scale', values.scale, undefined, { above: 0 }) } : {}),
      ...(values['grad-clip-norm'] !== undefined ? { gradClipNorm: numberOption(cmd, 'grad-clip-norm', values['grad-clip-norm'], undefined, { above: 0 }) } : {}),
    };
    const r = await finetune(model, options);
    if (values.save) {
      const tensors: Record<string, TensorRecord> = {};
      for (const [name, t] of model.stateDict()) tensors[name] = { dtype: 'F32', shape: t.shape, data: t.data };
      await writeSafetensors(values.save, tensors, { 'clipscale.finetuned_on': train.source });
    }
    console.log(
      JSON.stringify({
        task: 'finetune',
        data: train.source,
        test_data: test.source,
        train_images: train.n,
        test_images: test.n,
        steps: r.steps,
        batch_size: r.batchSize,
        scale: r.scale,
        before: r.before,
        after: r.after,
        final_loss: r.history[r.history.length - 1].loss,
        seconds: r.seconds,
        ...(values.save ? { saved: values.save } : {}),
        ...(values.history ? { history: r.history } : {}),
      }),
    );
    return 0;
  } finally {
    model.dispose();
  }
}
