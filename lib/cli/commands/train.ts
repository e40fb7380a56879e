// `clipscale train`: OpenCLIP's training recipe from the command line, on the synthetic world or
// webdataset shards, with checkpoints, exact resume and JSON-lines logs.
import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { UsageError, type Command } from '../command.js';
import { intOption, numberOption, parse, requireOption, type NumberBounds } from '../args.js';
import { MAX_BATCH_SIZE, MAX_DECODE_WORKERS, MAX_SHUFFLE_BUFFER, newTrainerForCli } from './_train_limits.js';
import { CAPTION_STYLES, defaultSyntheticTokenizer, ZERO_SHOT_TASKS, type ZeroShotTaskName } from '../../data/synthetic.js';
import type { CaptionStyle } from '../../data/synthetic.js';
import type { Tokenizer } from '../../data/tokenizer.js';
import { tokenizerForVocab } from '../../inference/tokenizer.js';
import { evaluateSynthetic } from '../../eval/synthetic_suite.js';
import type { CLIP } from '../../nn/clip.js';
import { listModelConfigs, loadModelConfig, type NamedClipConfig } from '../../nn/config.js';
import { createCommunicator } from '../../distributed/create.js';
import { readDistEnvironment } from '../../distributed/environment.js';
import { rankDevice } from '../../distributed/rank_device.js';
import { clipEncoder } from '../../nn/encoder.js';
import { LR_SCHEDULE_NAMES, type LrScheduleName } from '../../optim/schedules.js';
import { findLatestCheckpoint } from '../../train/checkpoint.js';
import type { TextSink } from '../../train/logging.js';
import { SyntheticData, type TrainingData } from '../../train/sources.js';
import { checkpointToResume, Trainer, type Precision, type TrainerOptions } from '../../train/trainer.js';
import { ResumeMismatchError } from '../../train/resume_check.js';
import { isDirectory } from '../../inference/run_config.js';
import { headerLine, runParams, writeParams } from '../run_header.js';
import { IMAGE_NORMALIZATION_OPTIONS, imageNormalization } from '../image_normalization.js';
import { checkPretrained, folderOfResumePath, mapPrecision, OPENCLIP_TRAIN_OPTIONS, parseReportTo, runFolder, splitResume } from '../openclip_flags.js';
import { WebDatasetData, webDatasetPositionOf } from '../../train/webdataset_source.js';

const usage = `usage: clipscale train --model NAME|config.json --data SPEC --batch-size B --samples N [options]

Trains a CLIP with OpenCLIP's recipe (AdamW, warmup + schedule, logit scale clamped to 100).

model and data:
  --model NAME|FILE        a shipped config (${listModelConfigs().join(', ')}) or a config JSON (OpenCLIP schema)
  --data SPEC              synthetic[:size=100000,captions=precise|noisy|labels|web,seed=0]
                             the synthetic world (its tokenizer is shipped; the model's text_cfg.vocab_size
                             must be at least its vocabulary size)
                           shards/{00000..00009}.tar (brace patterns; several joined by '::')
                             webdataset shards of image + .txt/.json caption
  --vocab openai|synthetic|FILE   BPE vocabulary for shard captions (default: 'openai', OpenAI's CLIP
                           vocabulary shipped with clipscale, for models with text_cfg.vocab_size 49408;
                           'synthetic' otherwise); FILE: a vocabulary in OpenAI's format
  --workers N              image decode threads for shards (default: cores, at most 8)
  --shuffle-buffer N       shard samples in the shuffle buffer (default 1000)
  --dataset-resampled      draw shards with replacement (OpenCLIP's flag of that name)
  --jpeg-draft             decode shard JPEGs shrunk on load (1/2, 1/4, 1/8 in libjpeg's IDCT, as PIL's
                           Image.draft) where every random crop still covers the image size: about
                           1.5-3x less decode work on large photos; not OpenCLIP's exact preprocessing
                           (which decodes at full size), so off by default
  --image-mean R,G,B --image-std R,G,B   pixel normalisation of shard images ('openai' or 'synthetic'
                           also work; default OpenAI's for text_cfg.vocab_size 49408, else the synthetic world's)

optimisation (OpenCLIP's defaults):
  --batch-size B           samples per step (per rank, as OpenCLIP's); at least 2
  --samples N              samples to train on (steps = ceil(N / B))
  --lr X                   peak learning rate (5e-4)
  --warmup STEPS           linear warmup (0)
  --wd X                   weight decay (0.2; none on gains, biases, logit_scale)
  --wd-rule RULE           openclip-3 (released OpenCLIP and the scaling-laws runs: no decay for ndim < 2
                           or names with bn/ln/bias/logit_scale) | openclip-main (OpenCLIP's main branch:
                           also none on positional/class embeddings) (openclip-3)
  --siglip                 SigLIP's sigmoid loss with a learned logit bias (init -10, logit scale ln 10),
                           as OpenCLIP's --siglip (default: the CLIP contrastive loss)
  --beta1 X --beta2 X --eps X   AdamW (0.9, 0.98, 1e-6)
  --schedule NAME          ${LR_SCHEDULE_NAMES.join(' | ')} (cosine)
  --cooldown-steps N --lr-cooldown-end X --lr-cooldown-power P   for const-cooldown
  --accum-freq K           micro-batches per step, exact (features cached, recomputed per micro-batch) (1)
  --grad-clip-norm X       clip gradients to this global norm
  --grad-checkpointing     recompute each block's activations in backward (less memory, more compute)
  --precision P            fp32 | amp_bf16 = bf16 | pure_bf16 | amp = fp16 (default: fp32 on the CPU, bf16 on
                           CUDA; bf16 on the CPU runs on AVX-512 BF16 where it has it, else is emulated;
                           fp16 on CUDA only, with dynamic loss scaling)
  --device cpu|cuda|cuda:N where parameters, optimizer state and activations live (cpu); CUDA needs the
                           backend library (npm run build:cuda), or CLIPSCALE_CUDA=emulate for the emulated device
  --cuda-graphs on|off     on CUDA, capture the whole step in a CUDA graph after 2 steps and replay it (on;
                           a step that cannot be captured runs eagerly, saying why)
  --loss-scaling dynamic|none   dynamic loss scaling: skip steps whose gradients overflow, halve the scale,
                           double it after 2000 good steps (default: dynamic with fp16, none otherwise)
  --seed S                 initialisation seed; also the data order's seed (0)

output:
  --out DIR                checkpoints (checkpoint-<step>.safetensors in OpenCLIP's names, optimizer
                           state beside it) and log.jsonl
  --resume [latest|PATH]   continue from the latest whole checkpoint in --out (exact: the same result as
                           an uninterrupted run); PATH: a run folder or a checkpoint-<step>.safetensors
                           (without --out, training goes on in that folder)
  --report-to tensorboard  also write TensorBoard event files to DIR/tensorboard (loss, lr, logit scale,
                           samples/s, evaluation metrics); view with 'tensorboard --logdir DIR'
  --pretrained FILE        start from these weights (a local OpenCLIP safetensors file, or a checkpoint
                           or run folder of clipscale train); the optimizer starts fresh
  --log-every STEPS        a log record every STEPS steps and at the end (10)
  --checkpoint-every STEPS also checkpoint during training (default: only at the end)
  --stop-after-steps N     stop after N steps of this invocation (checkpoint saved; continue with --resume)
  --eval-every SAMPLES     evaluate every SAMPLES samples and at the end (synthetic data only)
  --eval-tasks LIST        zero-shot tasks: ${ZERO_SHOT_TASKS.join(',')} (all); retrieval is always run;
                           given alone, evaluates at the end
  --json                   JSON lines on stdout (human lines go to stderr)

OpenCLIP's names are accepted too: --train-data (= --data), --train-num-samples N with --epochs E
(= --samples N×E; --epochs alone on synthetic data counts its size; default 32 epochs), --save-frequency
EPOCHS (default 1 with --epochs), --lr-scheduler (= --schedule), --log-every-n-steps (= --log-every),
--logs DIR --name NAME (= --out DIR/NAME), --force-quick-gelu, --local-loss and --gather-with-grad
(always so here). DIR/params.txt records every setting as OpenCLIP's does, with versions and the model config.

A terminal gets a progress bar; otherwise one plain line per log step. Ctrl-C stops after the current
step and saves a checkpoint (with --out). Exit codes: 0 done, 1 error, 2 usage, 130 interrupted, 143 terminated (SIGTERM: saved like Ctrl-C).`;

const TASK_ALIASES: Record<string, ZeroShotTaskName> = {
  shape: 'shape', colour: 'colour', color: 'colour', shape_colour: 'shape_colour', 'shape+colour': 'shape_colour', shape_color: 'shape_colour', 'shape+color': 'shape_colour',
};

export interface SyntheticSpec {
  kind: 'synthetic';
  size: number;
  captions: CaptionStyle;
  seed: number;
}

/** Parses `synthetic[:size=N,captions=precise|noisy|labels|web,seed=S]`; anything else is a shard pattern. */
export function parseDataSpec(spec: string): SyntheticSpec | { kind: 'webdataset'; urls: string[] } {
  const m = /^synthetic(?::(.*))?$/.exec(spec);
  if (!m) {
    const urls = spec.split('::').filter((s) => s !== '');
    if (urls.length === 0) throw new UsageError(`clipscale train: --data '${spec}' names no shards`);
    return { kind: 'webdataset', urls };
  }
  const out: SyntheticSpec = { kind: 'synthetic', size: 100_000, captions: 'precise', seed: 0 };
  for (const part of (m[1] ?? '').split(',').filter((p) => p.trim() !== '')) {
    const [key, value, ...rest] = part.split('=').map((s) => s.trim());
    if (value === undefined || rest.length) throw new UsageError(`clipscale train: --data synthetic: expected key=value, got '${part}'`);
    if (key === 'size' || key === 'seed') {
      const n = Number(value);
      if (!Number.isSafeInteger(n) || n < (key === 'size' ? 1 : 0)) throw new UsageError(`clipscale train: --data synthetic: ${key} must be an integer ≥ ${key === 'size' ? 1 : 0}, got '${value}'`);
      out[key] = n;
    } else if (key === 'captions') {
      if (!(CAPTION_STYLES as readonly string[]).includes(value)) throw new UsageError(`clipscale train: --data synthetic: captions must be one of ${CAPTION_STYLES.join(', ')}, got '${value}'`);
      out.captions = value as CaptionStyle;
    } else {
      throw new UsageError(`clipscale train: --data synthetic: unknown setting '${key}' (settings: size, captions, seed)`);
    }
  }
  return out;
}

function parseTasks(value: string | undefined): ZeroShotTaskName[] | undefined {
  if (value === undefined) return undefined;
  const tasks = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  return tasks.map((t) => {
    const task = TASK_ALIASES[t];
    if (!task) throw new UsageError(`clipscale train: --eval-tasks: unknown task '${t}' (tasks: ${ZERO_SHOT_TASKS.join(', ')})`);
    return task;
  });
}

function checkVocab(tokenizer: Tokenizer, cfg: NamedClipConfig, what: string): void {
  if (tokenizer.vocabSize > cfg.text_cfg.vocab_size) {
    throw new Error(
      `clipscale train: ${what} has ${tokenizer.vocabSize} tokens but model '${cfg.name}' has text_cfg.vocab_size ${cfg.text_cfg.vocab_size}; ` +
        `use a config whose vocab_size is at least ${tokenizer.vocabSize}`,
    );
  }
}

/** The data position saved in the checkpoint resumed from (`dir`'s latest, or a checkpoint file), if any. */
async function savedDataDescription(dirOrFile: string): Promise<unknown> {
  const found = (await isDirectory(dirOrFile)) ? await findLatestCheckpoint(dirOrFile) : await checkpointToResume(dirOrFile);
  if (!found) return undefined;
  const doc = JSON.parse(await readFile(found.state, 'utf8')) as { state?: { dataPosition?: { data?: unknown } } };
  return doc.state?.dataPosition?.data;
}

/**
 * The same data, with a turn of the event loop before each batch: a synthetic batch resolves
 * without one, and without it a signal (Ctrl-C) would wait for the whole run to end.
 */
function yieldingEachBatch(data: TrainingData): TrainingData {
  return {
    imageSize: data.imageSize,
    contextLength: data.contextLength,
    vocabSize: data.vocabSize,
    async batch(position, size) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      return data.batch(position, size);
    },
    describe: () => data.describe(),
  };
}

export interface TrainResult {
  steps: number;
  samples: number;
  loss: number | null;
  seconds: number;
  /** The run reached --samples (false after --stop-after-steps or Ctrl-C). */
  finished: boolean;
  /** Stopped early by Ctrl-C (or the abort signal). */
  interrupted: boolean;
  checkpoint: string | null;
  skipped_samples?: Record<string, number>;
  eval?: Record<string, number>;
}

/** Runs `clipscale train` with its arguments; human output to `console`, JSON lines to `jsonl`. */
export async function runTrain(argv: string[], io: { console?: TextSink | null; jsonl?: TextSink[]; signal?: AbortSignal } = {}): Promise<TrainResult> {
  const cmd = 'train';
  const { values } = parse(cmd, splitResume(argv), {
    ...OPENCLIP_TRAIN_OPTIONS,
    ...IMAGE_NORMALIZATION_OPTIONS,
    model: { type: 'string' },
    data: { type: 'string' },
    vocab: { type: 'string' },
    workers: { type: 'string' },
    'shuffle-buffer': { type: 'string' },
    'dataset-resampled': { type: 'boolean' },
    'jpeg-draft': { type: 'boolean' },
    'batch-size': { type: 'string' },
    samples: { type: 'string' },
    lr: { type: 'string' },
    warmup: { type: 'string' },
    wd: { type: 'string' },
    'wd-rule': { type: 'string' },
    siglip: { type: 'boolean' },
    beta1: { type: 'string' },
    beta2: { type: 'string' },
    eps: { type: 'string' },
    schedule: { type: 'string' },
    'cooldown-steps': { type: 'string' },
    'lr-cooldown-end': { type: 'string' },
    'lr-cooldown-power': { type: 'string' },
    'accum-freq': { type: 'string' },
    'grad-clip-norm': { type: 'string' },
    'grad-checkpointing': { type: 'boolean' },
    precision: { type: 'string' },
    device: { type: 'string' },
    'cuda-graphs': { type: 'string' },
    'loss-scaling': { type: 'string' },
    seed: { type: 'string' },
    out: { type: 'string' },
    resume: { type: 'boolean' },
    'log-every': { type: 'string' },
    'checkpoint-every': { type: 'string' },
    'stop-after-steps': { type: 'string' },
    'eval-every': { type: 'string' },
    'eval-tasks': { type: 'string' },
    json: { type: 'boolean' },
  });
  const modelName = requireOption(cmd, 'model', values.model);
  if (values.data !== undefined && values['train-data'] !== undefined) throw new UsageError('clipscale train: give --data or --train-data (the same option), not both');
  const dataSpec = parseDataSpec(requireOption(cmd, 'data', values.data ?? values['train-data']));
  const batchSize = intOption(cmd, 'batch-size', values['batch-size'], undefined, { min: 0, max: MAX_BATCH_SIZE });
  if (batchSize < 2) throw new UsageError(`clipscale train: --batch-size must be at least 2 (the contrastive loss needs negatives), got ${batchSize}`);
  // OpenCLIP's run folder, resume and epochs, mapped onto --out, --resume and --samples.
  const dist = readDistEnvironment();
  let out = runFolder(values.out, values.logs, values.name);
  const resumeValue = values['resume-from'];
  const resumeFrom = resumeValue !== undefined && resumeValue !== 'latest' ? resumeValue : undefined;
  if (resumeFrom !== undefined) {
    if (!existsSync(resumeFrom)) throw new UsageError(`clipscale train: --resume '${resumeFrom}' does not exist (give 'latest', a run folder or a checkpoint-<step>.safetensors)`);
    out ??= folderOfResumePath(resumeFrom, statSync(resumeFrom).isDirectory());
  }
  if (resumeValue !== undefined) values.resume = true;
  values.out = out;
  const epochsForm = values.epochs !== undefined || values['train-num-samples'] !== undefined;
  if (epochsForm && values.samples !== undefined) throw new UsageError('clipscale train: give --samples N, or --train-num-samples N with --epochs E (OpenCLIP\'s form), not both');
  let samples: number;
  let stepsPerEpoch: number | undefined;
  if (epochsForm) {
    const epochs = intOption(cmd, 'epochs', values.epochs, 32, { min: 1, max: 1_000_000 }); // OpenCLIP's default
    if (epochs < 1) throw new UsageError(`clipscale train: --epochs must be ≥ 1, got ${epochs}`);
    let perEpoch: number;
    if (values['train-num-samples'] !== undefined) perEpoch = intOption(cmd, 'train-num-samples', values['train-num-samples'], undefined, { min: 1, max: Number.MAX_SAFE_INTEGER });
    else if (dataSpec.kind === 'synthetic') perEpoch = dataSpec.size;
    else throw new UsageError('clipscale train: --epochs on shards needs --train-num-samples N (samples an epoch), as OpenCLIP\'s webdataset does');
    if (perEpoch < batchSize * dist.worldSize) throw new UsageError(`clipscale train: --train-num-samples (${perEpoch}) must be at least one global batch (${batchSize * dist.worldSize})`);
    samples = perEpoch * epochs;
    stepsPerEpoch = Math.ceil(perEpoch / (batchSize * dist.worldSize));
  } else {
    samples = intOption(cmd, 'samples', values.samples, undefined, { min: 2, max: Number.MAX_SAFE_INTEGER });
  }
  if (samples < batchSize) throw new UsageError(`clipscale train: --samples (${samples}) must be at least --batch-size (${batchSize})`);
  if (values['save-frequency'] !== undefined) {
    if (stepsPerEpoch === undefined) throw new UsageError('clipscale train: --save-frequency counts epochs; it needs --epochs (or --train-num-samples); with --samples use --checkpoint-every STEPS');
    if (values['checkpoint-every'] !== undefined) throw new UsageError('clipscale train: give --save-frequency EPOCHS or --checkpoint-every STEPS, not both');
    const every = intOption(cmd, 'save-frequency', values['save-frequency'], undefined, { min: 0, max: 1_000_000 });
    if (every < 0) throw new UsageError(`clipscale train: --save-frequency must be ≥ 0, got ${every}`);
    if (every > 0) values['checkpoint-every'] = String(every * stepsPerEpoch);
  } else if (stepsPerEpoch !== undefined && values['checkpoint-every'] === undefined) {
    values['checkpoint-every'] = String(stepsPerEpoch); // OpenCLIP saves every epoch by default
  }
  if (values['log-every-n-steps'] !== undefined) {
    if (values['log-every'] !== undefined) throw new UsageError('clipscale train: give --log-every or --log-every-n-steps (the same option), not both');
    values['log-every'] = values['log-every-n-steps'];
  }
  if (values['lr-scheduler'] !== undefined) {
    if (values.schedule !== undefined && values.schedule !== values['lr-scheduler']) throw new UsageError('clipscale train: --schedule and --lr-scheduler (the same option) disagree');
    values.schedule = values['lr-scheduler'];
  }
  const reportTo = parseReportTo(values['report-to']);
  if (reportTo.length && !out) throw new UsageError('clipscale train: --report-to tensorboard needs --out DIR (the event files go to DIR/tensorboard)');
  const pretrained = checkPretrained(values.pretrained);
  const optNumber = (name: string, bounds: NumberBounds) =>
    values[name as keyof typeof values] === undefined ? undefined : numberOption(cmd, name, values[name as keyof typeof values] as string, undefined, bounds);
  const optInt = (name: string, min: number, max?: number) => {
    const raw = values[name as keyof typeof values] as string | undefined;
    return raw === undefined ? undefined : intOption(cmd, name, raw, undefined, { min, ...(max !== undefined ? { max } : {}) });
  };
  const schedule = values.schedule;
  if (schedule !== undefined && !(LR_SCHEDULE_NAMES as readonly string[]).includes(schedule)) {
    throw new UsageError(`clipscale train: --schedule must be one of ${LR_SCHEDULE_NAMES.join(', ')}, got '${schedule}'`);
  }
  const precision = values.precision === undefined ? undefined : mapPrecision(values.precision, values.device ?? 'cpu');
  if (values.resume && !values.out) throw new UsageError('clipscale train: --resume needs --out DIR (where the checkpoints are), or --resume PATH');
  const stopAfter = optInt('stop-after-steps', 1);
  if (stopAfter !== undefined && !values.out) throw new UsageError('clipscale train: --stop-after-steps needs --out DIR (to save the checkpoint to resume from)');
  const evalTasks = parseTasks(values['eval-tasks']);
  const evalEvery = optInt('eval-every', 1);
  const evaluating = evalTasks !== undefined || evalEvery !== undefined;
  if (evaluating && dataSpec.kind !== 'synthetic') throw new UsageError('clipscale train: --eval-every/--eval-tasks evaluate on the synthetic world\'s held-out tasks; they need --data synthetic[...]');
  if (dataSpec.kind === 'synthetic' && values.vocab) throw new UsageError('clipscale train: --vocab is for shard data; synthetic data has its own tokenizer');

  let cfg: NamedClipConfig;
  try {
    cfg = loadModelConfig(modelName, values['force-quick-gelu'] ? { quick_gelu: true } : {});
  } catch (err) {
    throw new UsageError(`clipscale train: --model: ${(err as Error).message}`);
  }
  const seed = optInt('seed', 0, Number.MAX_SAFE_INTEGER) ?? 0;
  if (values.out && !values.resume) {
    const existing = await findLatestCheckpoint(values.out);
    if (existing) throw new UsageError(`clipscale train: ${values.out} already holds a checkpoint (step ${existing.step}); pass --resume to continue it, or choose another --out`);
  }

  // The data, sized by the model.
  const imageSize = cfg.vision_cfg.image_size;
  const contextLength = cfg.text_cfg.context_length;
  let data: TrainingData;
  let shards: WebDatasetData | null = null;
  if (dataSpec.kind === 'synthetic') {
    if (values['jpeg-draft']) throw new UsageError('clipscale train: --jpeg-draft is for JPEGs in webdataset shards; the synthetic world has none');
    const tokenizer = defaultSyntheticTokenizer();
    checkVocab(tokenizer, cfg, "the synthetic world's tokenizer");
    data = new SyntheticData({ size: dataSpec.size, seed: dataSpec.seed, captions: dataSpec.captions, imageSize, contextLength, tokenizer });
  } else {
    let tokenizer: Tokenizer;
    try {
      tokenizer = tokenizerForVocab(values.vocab, cfg.text_cfg.vocab_size, 'clipscale train');
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const resumePosition = values.resume && values.out ? webDatasetPositionOf(await savedDataDescription(resumeFrom ?? values.out)) : undefined;
    shards = new WebDatasetData({
      urls: dataSpec.urls,
      imageSize,
      contextLength,
      tokenizer,
      seed,
      resampled: values['dataset-resampled'] ?? false,
      ...(values['shuffle-buffer'] !== undefined ? { shuffleBuffer: optInt('shuffle-buffer', 0, MAX_SHUFFLE_BUFFER)! } : {}),
      ...(values.workers !== undefined ? { workers: optInt('workers', 0, MAX_DECODE_WORKERS)! } : {}),
      ...(values['jpeg-draft'] ? { jpegDraft: true } : {}),
      ...(resumePosition ? { resumeFrom: resumePosition } : {}),
      normalization: imageNormalization(cmd, values, cfg.text_cfg.vocab_size),
    });
    data = shards;
  }

  let evaluate: ((model: CLIP) => Promise<Record<string, number>>) | undefined;
  if (evaluating && dataSpec.kind === 'synthetic') {
    const tokenizer = defaultSyntheticTokenizer();
    evaluate = (model) => evaluateSynthetic(clipEncoder(model), { seed: dataSpec.seed, imageSize, contextLength, tokenizer, ...(evalTasks ? { tasks: evalTasks } : {}) });
  }

  const options: TrainerOptions = {
    model: modelName,
    data: yieldingEachBatch(data),
    batchSize,
    samples,
    seed,
    ...(precision !== undefined ? { precision: precision as Precision } : {}),
    device: values.device ?? 'cpu',
    ...(values['loss-scaling'] !== undefined ? { lossScaling: lossScalingOption(values['loss-scaling']) } : {}),
    resume: values.resume ?? false,
    console: io.console ?? null,
    jsonl: io.jsonl ?? [],
    ...(values.out ? { out: values.out } : {}),
    ...(evaluate ? { evaluate } : {}),
    ...(evalEvery !== undefined ? { evalEvery } : {}),
    ...(stopAfter !== undefined ? { stopAfterSteps: stopAfter } : {}),
    ...(resumeFrom !== undefined ? { resumeFrom } : {}),
    ...(pretrained !== undefined ? { pretrained } : {}),
    ...(reportTo.length ? { reportTo } : {}),
    ...(values['force-quick-gelu'] ? { modelOverrides: { quick_gelu: true } } : {}),
  };
  const put = <K extends keyof TrainerOptions>(key: K, v: TrainerOptions[K] | undefined) => {
    if (v !== undefined) options[key] = v;
  };
  put('lr', optNumber('lr', { min: 0 }));
  put('warmup', optInt('warmup', 0));
  put('wd', optNumber('wd', { min: 0 }));
  if (values['wd-rule'] !== undefined) {
    if (values['wd-rule'] !== 'openclip-3' && values['wd-rule'] !== 'openclip-main') {
      throw new UsageError(`${cmd}: --wd-rule must be openclip-3 or openclip-main, got '${values['wd-rule']}'`);
    }
    options.weightDecayRule = values['wd-rule'];
  }
  if (values.siglip) options.siglip = true;
  put('beta1', optNumber('beta1', { min: 0, below: 1 }));
  put('beta2', optNumber('beta2', { min: 0, below: 1 }));
  put('eps', optNumber('eps', { above: 0 }));
  put('schedule', schedule as LrScheduleName | undefined);
  put('cooldownSteps', optInt('cooldown-steps', 0));
  put('cooldownEndLr', optNumber('lr-cooldown-end', { min: 0 }));
  put('cooldownPower', optNumber('lr-cooldown-power', { min: 0 }));
  const accumFreq = optInt('accum-freq', 1, batchSize);
  if (accumFreq !== undefined && batchSize % accumFreq !== 0) throw new UsageError(`clipscale train: --accum-freq (${accumFreq}) must divide --batch-size (${batchSize})`);
  put('accumFreq', accumFreq);
  put('gradClipNorm', optNumber('grad-clip-norm', { above: 0 }));
  put('gradCheckpointing', values['grad-checkpointing']);
  const graphs = values['cuda-graphs'];
  if (graphs !== undefined && graphs !== 'on' && graphs !== 'off') throw new UsageError(`clipscale train: --cuda-graphs must be on or off, got '${graphs}'`);
  if (graphs !== undefined) put('cudaGraphs', graphs === 'on');
  put('logEvery', optInt('log-every', 1));
  put('checkpointEvery', optInt('checkpoint-every', 1));

  // Launched as one of several ranks (clipscale launch, srun, mpirun): data parallelism, with
  // NCCL on a GPU ('cuda' is this rank's: cuda:LOCAL_RANK, wrapped around the GPUs there are).
  if (dist.worldSize > 1 && options.device !== 'cpu') options.device = rankDevice(options.device ?? 'cpu', dist);
  const comm = dist.worldSize > 1 ? await createCommunicator({ device: options.device ?? 'cpu' }) : undefined;
  if (comm) options.comm = comm;

  const t0 = performance.now();
  const trainer = newTrainerForCli(options);
  if (trainer.rank === 0) {
    io.console?.write(`${headerLine(trainer, values.out)}\n`);
    if (values.out) writeParams(values.out, runParams(values as Record<string, unknown>, trainer));
  }
  let interrupted = false;
  const stop = () => {
    interrupted = true;
    // The trainer checks this before each step; ending the run this way saves a checkpoint.
    trainer.options.stopAfterSteps = 0;
  };
  // A signal that fired while the run was being set up (parsing, model building) must still stop
  // it: 'abort' listeners added to an aborted signal are never called.
  if (io.signal?.aborted) stop();
  else io.signal?.addEventListener('abort', stop, { once: true });
  try {
    let last: Record<string, unknown> | undefined;
    let lastEval: Record<string, number> | undefined;
    try {
      for await (const record of trainer.run()) {
        last = record;
        const ev = Object.fromEntries(Object.entries(record).filter(([k, v]) => (k.startsWith('zeroshot_') || k.startsWith('retrieval_')) && typeof v === 'number')) as Record<string, number>;
        if (Object.keys(ev).length) lastEval = ev;
      }
    } catch (err) {
      if (err instanceof ResumeMismatchError) throw new UsageError(`clipscale train: ${err.message.replace(/^Trainer: /, '')}`);
      throw err;
    }
    const result: TrainResult = {
      steps: trainer.step,
      samples: trainer.samplesSeen,
      loss: typeof last?.loss === 'number' && Number.isFinite(last.loss) ? last.loss : null,
      seconds: (performance.now() - t0) / 1000,
      finished: trainer.step === trainer.totalSteps,
      interrupted: interrupted && trainer.step < trainer.totalSteps,
      // Only a file this run wrote (or resumed from): never a name that was not saved.
      checkpoint: trainer.lastCheckpoint ?? trainer.resumedFrom?.weights ?? null,
      ...(shards ? { skipped_samples: shards.skipped.toJSON() } : {}),
      ...(lastEval ? { eval: lastEval } : {}),
    };
    return result;
  } finally {
    io.signal?.removeEventListener('abort', stop);
    await shards?.close();
    trainer.dispose();
    await comm?.close();
  }
}

export const command: Command = {
  name: 'train',
  summary: 'train a CLIP (OpenCLIP recipe) on synthetic data or webdataset shards',
  usage,
  async run(argv) {
    const json = argv.includes('--json');
    const human = json ? process.stderr : process.stdout;
    const controller = new AbortController();
    // SIGTERM (SLURM, docker stop, launch --grace) is treated as Ctrl-C: save, then exit 128 + 15.
    let signalled: NodeJS.Signals | undefined;
    const onSignal = (sig: NodeJS.Signals) => {
      // A second signal ends the process at once.
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      signalled = sig;
      human.write(`\n${sig === 'SIGTERM' ? 'terminated (SIGTERM)' : 'interrupted'}: stopping after this step and saving a checkpoint (${sig === 'SIGTERM' ? 'send it again' : 'Ctrl-C again'} to quit now)\n`);
      controller.abort();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
      const r = await runTrain(argv, { console: human, jsonl: json ? [process.stdout] : [], signal: controller.signal });
      if (readDistEnvironment().rank !== 0) {
        // One summary for the run: rank 0's (the others' would repeat it, without the weights).
      } else if (json) {
        process.stdout.write(`${JSON.stringify({ summary: true, ...r })}\n`);
      } else {
        const parts = [
          `${r.finished ? 'done' : r.interrupted ? 'interrupted' : 'stopped'}: ${r.steps} steps, ${r.samples} samples in ${r.seconds.toFixed(1)} s${r.finished ? '' : ' (continue with --resume)'}`,
          r.loss !== null ? `final loss ${r.loss.toFixed(4)}` : '',
          r.checkpoint ? `weights ${r.checkpoint}` : '',
          r.skipped_samples && Object.keys(r.skipped_samples).length ? `skipped ${JSON.stringify(r.skipped_samples)}` : '',
        ];
        human.write(`${parts.filter((p) => p).join('; ')}\n`);
      }
      return r.interrupted ? (signalled === 'SIGTERM' ? 143 : 130) : 0;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  },
};

function lossScalingOption(value: string): 'dynamic' | 'none' {
  if (value !== 'dynamic' && value !== 'none') throw new UsageError(`clipscale train: --loss-scaling takes 'dynamic' or 'none', got '${value}'`);
  return value;
}
