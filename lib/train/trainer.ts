// The training loop: OpenCLIP's recipe (AdamW with its decay groups, warmup +
// schedule, gradient clipping, exact gradient accumulation, logit scale clamped to
// ln 100), checkpoints with exact resume, and a log record per log step.
import { mkdir, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

import type { Communicator } from '../distributed/communicator.js';
import { allReduceTensors, broadcastTensors } from '../distributed/tensors.js';
import { native } from '../native.js';
import { CLIP, MAX_LOGIT_SCALE, createModel } from '../nn/clip.js';
import { loadModelConfig, parseModelConfig, type ClipConfig, type ClipConfigOverrides } from '../nn/config.js';
import { checkFits, trainingBytes } from '../nn/memory_estimate.js';
import { AdamW } from '../optim/adamw.js';
import { type AdamWHyperparameters, DEFAULT_WEIGHT_DECAY_RULE, type WeightDecayRule } from '../optim/param_groups.js';
import { type LrScheduleConfig, type LrScheduleName, makeLrSchedule } from '../optim/schedules.js';
import * as ops from '../ops.js';
import { Tensor } from '../tensor.js';
import {
  checkpointPaths,
  findLatestCheckpoint,
  type CheckpointPaths,
  loadTrainingCheckpoint,
  scanCheckpoints,
  saveTrainingCheckpoint,
  type JsonValue,
  type TrainingState,
} from './checkpoint.js';
import { JsonLinesFile, type TextSink, TrainingLogger, type TrainLogRecord } from './logging.js';
import { loadWeightsInto } from './load.js';
import { TensorBoardWriter } from './tensorboard.js';
import type { TensorRecord } from './safetensors.js';
import type { HostBatch, TrainingData } from './sources.js';
import { DeviceBatches, isGpuDevice, type Precision, resolvePrecision } from './device_placement.js';
import { PinnedDeviceBatches } from './pinned_batches.js';
import { DeferredOutcomes } from './step_outcomes.js';
import { CudaGraphSteps, scheduledAdamwUpdate } from './cuda_graph_step.js';
import { LossScaler, type LossScalerOptions, type LossScalerState } from './loss_scaler.js';
import { StepRunner } from './step.js';
import { enterPrecision, lossScalerFor } from './precision_mode.js';
import { DeviceDataParallel } from './device_data_parallel.js';
import { DeviceLossScale } from './device_loss_scale.js';
import { ResumeMismatchError, resumeDifferences } from './resume_check.js';

export type { Precision } from './device_placement.js';

export interface TrainerOptions {
  /** A config name, a path to a config JSON, or a config object. */
  model: string | ClipConfig;
  modelOverrides?: ClipConfigOverrides;
  data: TrainingData;
  /** Samples per optimizer step (per rank). */
  batchSize: number;
  /** Samples to train on in all; steps = ceil(samples / batchSize). */
  samples: number;
  /** Micro-batches per step (OpenCLIP's --accum-freq); the batch is split evenly. Default 1. */
  accumFreq?: number;
  lr?: number;
  /** Warmup steps. Default 0. */
  warmup?: number;
  wd?: number;
  /**
   * Which parameters are decayed: 'openclip-3' (default; released open_clip_train 3.x and the
   * scaling-laws runs: ndim < 2 or a name containing bn/ln/bias/logit_scale is exempt) or
   * 'openclip-main' (OpenCLIP's main branch: ndim <= 1 and the model's no_weight_decay names).
   */
  weightDecayRule?: WeightDecayRule;
  /**
   * Train with OpenCLIP's SigLipLoss (its --siglip) instead of the CLIP loss. As open_clip_train
   * does, the model gets a learned logit_bias initialised to -10 and logit_scale starts at ln 10.
   */
  siglip?: boolean;
  beta1?: number;
  beta2?: number;
  eps?: number;
  schedule?: LrScheduleName;
  cooldownSteps?: number;
  cooldownEndLr?: number;
  cooldownPower?: number;
  /** Activation recomputation per block (OpenCLIP's --grad-checkpointing): less memory, ~1/3 more compute. */
  gradCheckpointing?: boolean;
  /** Clip gradients to this global norm (OpenCLIP's --grad-clip-norm). */
  gradClipNorm?: number;
  /** Default fp32 on the CPU, bf16 on CUDA; fp16 on CUDA only (with dynamic loss scaling by default). */
  precision?: Precision;
  /** 'cpu' (default), 'cuda' or 'cuda:N': parameters, gradients, moments and activations live there. */
  device?: string;
  /**
   * Dynamic loss scaling (GradScaler's rule, see lib/train/loss_scaler.ts): 'dynamic' for the
   * defaults or the scaler's options, 'none' for none. Steps with non-finite gradients are skipped
   * and counted. Default: dynamic in fp16, none otherwise.
   */
  lossScaling?: 'dynamic' | 'none' | LossScalerOptions;
  /** Seed of the initialisation. Default 0. */
  seed?: number;
  /** Output directory: checkpoints and log.jsonl. */
  out?: string;
  /** Continue from the latest checkpoint in `out` when there is one. */
  resume?: boolean;
  /**
   * Continue from this checkpoint instead (OpenCLIP's --resume PATH): a checkpoint-<step>.safetensors
   * of a run (with its state and optimizer files beside it) or a run folder (its latest checkpoint).
   * Training goes on writing to `out`.
   */
  resumeFrom?: string;
  /**
   * Start from these weights (OpenCLIP's --pretrained): an OpenCLIP safetensors state dict or a
   * checkpoint of ours; the optimizer starts fresh. Ignored when the run resumes from a checkpoint.
   */
  pretrained?: string;
  /** Log every N steps (and at the last). Default 10. */
  logEvery?: number;
  /** Checkpoint every N steps (and at the end) when `out` is set. Default: only at the end. */
  checkpointEvery?: number;
  keepCheckpoints?: number;
  /** Evaluate every N samples (and at the end); the results join that step's log record. */
  evalEvery?: number;
  evaluate?: (model: CLIP) => Promise<Record<string, number>> | Record<string, number>;
  /** Consecutive non-finite losses tolerated (each skips its step) before training stops. Default 5. */
  maxNonFinite?: number;
  /** Where people read progress (a terminal gets a bar). Default: none. */
  console?: TextSink | null;
  /** Extra JSON-lines sinks (log.jsonl in `out` is always written). */
  jsonl?: TextSink[];
  /** Also report to these (OpenCLIP's --report-to): 'tensorboard' writes event files to `tensorboardDir`. */
  reportTo?: 'tensorboard'[];
  /** Where TensorBoard event files go (default `out`/tensorboard). */
  tensorboardDir?: string;
  /** Stop after this many steps of this call (to test resume); the schedule still spans the whole run. */
  stopAfterSteps?: number;
  /**
   * Data parallelism: this rank's communicator (see lib/dist). `batchSize` is per rank, as in
   * OpenCLIP; the global batch is batchSize × world size, each rank reading its slice of it.
   * Parameters are broadcast from rank 0 at the start, gradients averaged every step, and
   * only rank 0 writes checkpoints and logs.
   */
  comm?: Communicator;
  /** Data parallelism on a GPU: gradient buckets of about this many MB, each all-reduced as soon as backward has written it (PyTorch DDP's bucket_cap_mb). Default 25. */
  bucketCapMb?: number;
  /**
   * On a GPU: read each step's loss and gradient norm after the next step is launched (records
   * arrive a step late; the non-finite check and clipping happen on the device, and a skipped
   * step leaves weights and moments untouched there; with loss scaling the scale is kept and
   * updated there too). Default: on where possible (one rank); false reads them every step.
   */
  deferOutcomes?: boolean;
  /**
   * On a GPU with deferred outcomes: capture the whole step in a CUDA graph after two eager steps
   * and replay it (lib/train/cuda_graph_step.ts). Default on there; where a step cannot be
   * captured the run goes on eagerly and says why in one line.
   */
  cudaGraphs?: boolean;
}

export class NonFiniteLossError extends Error {}

/** The checkpoint `path` names: a run folder's latest whole one, or checkpoint-<step>.safetensors and the files beside it. */
export async function checkpointToResume(path: string): Promise<CheckpointPaths> {
  let info;
  try {
    info = await stat(path);
  } catch {
    throw new Error(`Trainer: resume: '${path}' does not exist`);
  }
  if (info.isDirectory()) {
    const found = await findLatestCheckpoint(path);
    if (!found) throw new Error(`Trainer: resume: '${path}' holds no whole checkpoint`);
    return found;
  }
  const m = /^checkpoint-(\d+)\.safetensors$/.exec(basename(path));
  if (!m) throw new Error(`Trainer: resume: '${path}' is not a checkpoint-<step>.safetensors of clipscale train (to start from other weights, use pretrained)`);
  return checkpointPaths(dirname(path), Number(m[1]));
}

/** "zeroshot_colour_acc1 0.625, retrieval_…" for the console. */
function formatMetrics(metrics: Record<string, number>): string {
  return Object.entries(metrics).map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toPrecision(4)}`).join(', ') || '(no metrics)';
}

/** A step launched on the device; its outcome is known at once or, deferred, read later. */
interface LaunchedStep {
  step: number;
  samplesSeen: number;
  lr: number;
  /** NaN until read when deferred. */
  loss: number;
  norm: number;
  lossScale: number;
  /** Which of the two outcome slots the step wrote (deferred). */
  slot: number;
  outcome: 'applied' | 'bad' | 'overflow' | 'pending';
  dataTime: number;
  stepTime: number;
}

/** open_clip_train's --siglip initial values: logit_scale ln 10, logit_bias -10. */
export const SIGLIP_INIT_LOGIT_SCALE = Math.log(10);
export const SIGLIP_INIT_LOGIT_BIAS = -10;

function check(cond: boolean, message: string): void {
  if (!cond) throw new Error(`Trainer: ${message}`);
}

export class Trainer implements Disposable {
  readonly model: CLIP;
  readonly optimizer: AdamW;
  readonly options: Required<Pick<TrainerOptions, 'batchSize' | 'samples' | 'accumFreq' | 'logEvery' | 'maxNonFinite'>> & TrainerOptions;
  readonly totalSteps: number;
  readonly schedule: LrScheduleConfig;
  step = 0;
  /** Samples seen by all ranks together. */
  samplesSeen = 0;
  readonly world: number;
  readonly rank: number;
  /** Samples per optimizer step over all ranks. */
  readonly globalBatch: number;
  skippedSteps = 0;
  readonly precision: Precision;
  /** Dynamic loss scaling, when asked for. */
  readonly scaler: LossScaler | null;
  private readonly runner: StepRunner;
  private readonly batches: DeviceBatches | PinnedDeviceBatches;
  private readonly lrAt: (step: number) => number;
  /** Whether each step's loss and gradient norm are read a step late, the step decided on the device. */
  readonly deferOutcomes: boolean;
  private outcomes: DeferredOutcomes | null = null;
  /** CUDA graph capture and replay of deferred steps (null: eager steps); `cudaGraphsOff` says why not. */
  readonly cudaGraphs: CudaGraphSteps | null = null;
  readonly cudaGraphsOff: string | null = null;
  /** Data parallelism on device buffers (a GPU and an NCCL communicator). */
  private readonly ddp: DeviceDataParallel | null = null;
  /** Loss scaling decided on the device (deferred outcomes with a scaler). */
  readonly deviceScale: DeviceLossScale | null = null;

  constructor(options: TrainerOptions) {
    const o = { accumFreq: 1, logEvery: 10, maxNonFinite: 5, ...options };
    check(Number.isInteger(o.batchSize) && o.batchSize >= 2, `batchSize must be an integer ≥ 2 (the contrastive loss needs negatives), got ${o.batchSize}`);
    check(Number.isInteger(o.samples) && o.samples >= o.batchSize, `samples must be an integer ≥ batchSize, got ${o.samples}`);
    check(Number.isInteger(o.accumFreq) && o.accumFreq >= 1 && o.batchSize % o.accumFreq === 0, `accumFreq must divide batchSize ${o.batchSize}, got ${o.accumFreq}`);
    const device = o.device ?? 'cpu';
    const gpu = isGpuDevice(device);
    this.precision = resolvePrecision(o.precision, gpu);
    this.scaler = lossScalerFor(o.lossScaling, this.precision);
    if (this.scaler && (o.comm?.size ?? 1) > 1 && !gpu) {
      // (fp16 is CUDA's only; this is a loss scaler asked for on the CPU's data-parallel path.)
      throw new Error('Trainer: loss scaling together with data parallelism is supported on CUDA devices only (the ranks agree on skipped steps through a device all-reduce)');
    }
    this.options = o;
    // Estimated before the model is allocated: a config that cannot fit is refused with the estimate.
    const planned = typeof o.model === 'string' ? loadModelConfig(o.model, o.modelOverrides ?? {}) : parseModelConfig(o.model);
    checkFits(trainingBytes(planned, o.batchSize), `Trainer: training at batch size ${o.batchSize}`);
    const siglip = o.siglip ?? false;
    check(typeof siglip === 'boolean', `siglip must be true or false, got ${JSON.stringify(o.siglip)}`);
    this.model = createModel(o.model, {
      seed: o.seed ?? 0,
      overrides: siglip ? { ...o.modelOverrides, init_logit_bias: SIGLIP_INIT_LOGIT_BIAS } : o.modelOverrides,
      recompute: o.gradCheckpointing ?? false,
      ...(siglip ? { initLogitScale: SIGLIP_INIT_LOGIT_SCALE } : {}),
    });
    // Initialised on the host (the seeded initialisation is the CPU's), then moved once.
    if (gpu) this.model.to(device);
    // On a GPU: pinned staging, uploads on the copy stream while the previous step computes.
    this.batches = new (gpu ? PinnedDeviceBatches : DeviceBatches)(this.model.device, o.data.imageSize, o.data.contextLength);
    const cfg = this.model.config;
    check(cfg.vision_cfg.image_size === o.data.imageSize, `the model takes ${cfg.vision_cfg.image_size}-pixel images but the data gives ${o.data.imageSize}`);
    check(cfg.text_cfg.context_length === o.data.contextLength, `the model's context length is ${cfg.text_cfg.context_length} but the data's is ${o.data.contextLength}`);
    check(cfg.text_cfg.vocab_size >= o.data.vocabSize, `the model's vocabulary (${cfg.text_cfg.vocab_size}) is smaller than the tokenizer's (${o.data.vocabSize})`);
    const hyper: Partial<AdamWHyperparameters> = {};
    if (o.lr !== undefined) hyper.lr = o.lr;
    if (o.wd !== undefined) hyper.weightDecay = o.wd;
    if (o.beta1 !== undefined) hyper.beta1 = o.beta1;
    if (o.beta2 !== undefined) hyper.beta2 = o.beta2;
    if (o.eps !== undefined) hyper.eps = o.eps;
    this.optimizer = new AdamW(this.model.parameters(), hyper, { weightDecayRule: o.weightDecayRule ?? DEFAULT_WEIGHT_DECAY_RULE });
    const world = o.comm?.size ?? 1;
    this.world = world;
    this.rank = o.comm?.rank ?? 0;
    this.globalBatch = o.batchSize * world;
    this.totalSteps = Math.ceil(o.samples / this.globalBatch);
    this.schedule = {
      name: o.schedule ?? 'cosine',
      baseLr: this.optimizer.hyper.lr,
      warmupSteps: o.warmup ?? 0,
      totalSteps: this.totalSteps,
      ...(o.cooldownSteps !== undefined ? { cooldownSteps: o.cooldownSteps } : {}),
      ...(o.cooldownEndLr !== undefined ? { cooldownEndLr: o.cooldownEndLr } : {}),
      ...(o.cooldownPower !== undefined ? { cooldownPower: o.cooldownPower } : {}),
    };
    this.lrAt = makeLrSchedule(this.schedule);
    this.runner = new StepRunner(this.model, siglip ? 'siglip' : 'clip');
    if (gpu && world > 1) this.ddp = new DeviceDataParallel(this.model, siglip ? 'siglip' : 'clip', o.comm!, o.bucketCapMb);
    // Deferred outcomes need the step decided on the device, on one rank (any accumFreq: the
    // loss is computed once, over the whole batch; either loss: SigLIP's logit bias is copied to
    // the outcome slot like the logit scale). With loss scaling the scale lives on the device and
    // is updated there (DeviceLossScale); the host's scaler follows a step late.
    const deferrable = gpu && world === 1;
    if (o.deferOutcomes === true && !deferrable) {
      throw new Error(`Trainer: deferOutcomes needs a GPU device and one rank (got device '${device}'${world > 1 ? `, ${world} ranks` : ''})`);
    }
    this.deferOutcomes = o.deferOutcomes ?? deferrable;
    if (this.deferOutcomes && this.scaler) this.deviceScale = new DeviceLossScale(this.model.device, this.scaler);
    if (gpu && o.cudaGraphs !== false) {
      if (this.deferOutcomes) this.cudaGraphs = new CudaGraphSteps(this.model.device, this.optimizer);
      else this.cudaGraphsOff = 'CUDA graphs need deferred outcomes (one rank)';
    } else if (!gpu && o.cudaGraphs === true) {
      this.cudaGraphsOff = `CUDA graphs are for CUDA devices, not '${device}'`;
    }
  }

  private state(): TrainingState {
    const o = this.options;
    return {
      step: this.step,
      samplesSeen: this.samplesSeen,
      schedule: this.schedule as unknown as JsonValue,
      dataPosition: { samples: this.samplesSeen, data: o.data.describe() },
      rng: null,
      config: { model: this.model.config as unknown as JsonValue, batchSize: o.batchSize, worldSize: this.world, samples: o.samples, seed: o.seed ?? 0, accumFreq: o.accumFreq, weightDecayRule: this.optimizer.weightDecayRule, loss: this.runner.lossName },
      precision: this.precision,
      extra: {
        skippedSteps: this.skippedSteps,
        adamStep: this.optimizer.step,
        ...(this.scaler ? { lossScaler: this.scaler.state() as unknown as JsonValue } : {}),
      },
    };
  }

  /** The weights file of the last checkpoint this trainer wrote (null before the first save). */
  lastCheckpoint: string | null = null;
  /** What the last restore() did: the checkpoint it resumed from and those it passed over. */
  resumedFrom: { weights: string; step: number; skipped: string[]; notes: string[] } | null = null;

  /** A line for the person running this (rank 0, to the console when there is one). */
  private notice(line: string): void {
    if (this.rank === 0) this.options.console?.write(`${line}\n`);
  }

  /** Saves a checkpoint of the current state in `out`. */
  async save(): Promise<void> {
    const out = this.options.out;
    if (!out || this.rank !== 0) return;
    const weights: Record<string, TensorRecord> = {};
    const m: Record<string, TensorRecord> = {};
    const v: Record<string, TensorRecord> = {};
    this.optimizer.params.forEach((p, i) => {
      // Downloads from a GPU (each waits for the device); copies on the CPU.
      weights[p.name] = { dtype: 'F32', shape: p.shape, data: p.hostValues() };
      m[p.name] = { dtype: 'F32', shape: p.shape, data: this.optimizer.m[i].hostFloat32() };
      v[p.name] = { dtype: 'F32', shape: p.shape, data: this.optimizer.v[i].hostFloat32() };
    });
    const paths = await saveTrainingCheckpoint(out, { weights, optimizer: { m, v }, state: this.state() }, { keepLast: this.options.keepCheckpoints ?? 2 });
    this.lastCheckpoint = paths.weights;
  }

  /** Loads `resumeFrom`, else the latest checkpoint in `out`; returns whether one was found. */
  async restore(): Promise<boolean> {
    const { out, resumeFrom } = this.options;
    let found: CheckpointPaths | null;
    let skipped: string[] = [];
    if (resumeFrom !== undefined) {
      found = await checkpointToResume(resumeFrom);
    } else {
      if (!out) return false;
      const scan = await scanCheckpoints(out);
      found = scan.found;
      skipped = scan.skipped;
      if (!found) {
        // Never start over silently over checkpoint files: a later save would prune them.
        if (scan.stepFiles.length > 0) {
          throw new Error(
            `Trainer: resume: ${out} holds checkpoint files (${scan.stepFiles.slice(0, 6).join(', ')}${scan.stepFiles.length > 6 ? ', …' : ''}) but no whole checkpoint: ` +
              `${skipped.join('; ') || 'no state-<step>.json'}. Refusing to start over; move them away or train into another directory`,
          );
        }
        this.notice(`resume: no checkpoint in ${out} yet; starting at step 0`);
        return false;
      }
    }
    const ck = await loadTrainingCheckpoint(found, { asF32: true });
    const notes: string[] = [];
    const differences = resumeDifferences(ck.state, this.state(), notes);
    if (differences.length > 0) {
      throw new ResumeMismatchError(
        `Trainer: resume: the arguments differ from those of the checkpoint ${found.state}:\n  ${differences.join('\n  ')}\n` +
          'Resume with the saved values, or train into another directory',
        differences,
      );
    }
    const weights = new Map([...ck.weights].map(([k, r]) => [k, { shape: r.shape, data: r.data as Float32Array }]));
    this.model.loadStateDict(weights);
    this.optimizer.params.forEach((p, i) => {
      const mr = ck.optimizer.m.get(p.name);
      const vr = ck.optimizer.v.get(p.name);
      if (!mr || !vr) throw new Error(`Trainer: checkpoint ${found.state} lacks optimizer moments for ${p.name}`);
      for (const [moment, rec] of [[this.optimizer.m[i], mr], [this.optimizer.v[i], vr]] as const) {
        const host = Tensor.from(rec.data as Float32Array, p.shape);
        moment.copyFrom(host);
        host.dispose();
      }
    });
    this.step = ck.state.step;
    this.samplesSeen = ck.state.samplesSeen;
    const extra = (ck.state.extra ?? {}) as { skippedSteps?: number; adamStep?: number; lossScaler?: LossScalerState };
    this.skippedSteps = extra.skippedSteps ?? 0;
    if (this.scaler && extra.lossScaler) this.scaler.load(extra.lossScaler);
    this.optimizer.step = extra.adamStep ?? ck.state.step;
    this.resumedFrom = { weights: found.weights, step: this.step, skipped, notes };
    for (const s of skipped) this.notice(`resume: passed over a damaged checkpoint: ${s}`);
    this.notice(`resume: continuing from ${found.weights} (step ${this.step})${notes.length ? `; ${notes.join('; ')}` : ''}`);
    return true;
  }

  /** Trains to the end (or `stopAfterSteps`), yielding a record at each log step. */
  async *run(): AsyncGenerator<TrainLogRecord> {
    const o = this.options;
    const lead = this.rank === 0;
    const jsonl: TextSink[] = lead ? [...(o.jsonl ?? [])] : [];
    let logFile: JsonLinesFile | null = null;
    let pretrainedFrom: string | null = null;
    const tensorboard = o.reportTo?.includes('tensorboard') ?? false;
    const tensorboardDir = o.tensorboardDir ?? (o.out ? join(o.out, 'tensorboard') : undefined);
    if (tensorboard && !tensorboardDir) throw new Error("Trainer: reportTo 'tensorboard' needs `out` or `tensorboardDir` (where the event files go)");
    if (o.out) {
      if (lead) await mkdir(o.out, { recursive: true });
      if (o.resume || o.resumeFrom !== undefined) await this.restore();
      if (lead) {
        logFile = await JsonLinesFile.open(join(o.out, 'log.jsonl'), { append: o.resume ?? false });
        jsonl.push(logFile);
      }
    }
    if (!o.out && o.resumeFrom !== undefined) await this.restore();
    if (o.pretrained !== undefined && !this.resumedFrom) {
      const report = await loadWeightsInto(this.model, o.pretrained);
      if (lead) pretrainedFrom = report.path;
    }
    if (this.ddp) {
      await this.ddp.broadcast([...this.model.parameters().map((p) => p.data), ...this.optimizer.m, ...this.optimizer.v]);
    } else if (o.comm && this.world > 1) {
      // Every rank starts from rank 0's parameters and optimizer state.
      await broadcastTensors(o.comm, [...this.model.parameters().map((p) => p.data), ...this.optimizer.m, ...this.optimizer.v]);
    }
    const logger = new TrainingLogger({ totalSamples: this.totalSteps * this.globalBatch, startSamples: this.samplesSeen, console: lead ? (o.console ?? null) : null, jsonl });
    if (o.cudaGraphs === true && this.cudaGraphsOff) logger.message(`cuda graphs: off, steps run eagerly: ${this.cudaGraphsOff}`);
    if (this.resumedFrom) logger.message(`resumed from step ${this.step} (checkpoint ${this.resumedFrom.weights})`);
    else if (pretrainedFrom) logger.message(`starting from pretrained weights ${pretrainedFrom}`);
    const events = tensorboard && lead ? new TensorBoardWriter(tensorboardDir!) : null;
    const restorePrecision = enterPrecision(this.precision, isGpuDevice(o.device ?? 'cpu'), this.model);
    const grads = this.model.parameters().map((p) => p.grad);
    const deferred = this.deferOutcomes ? this.outcomeBuffers() : null;
    let consecutiveBad = 0;
    let nextEval = o.evalEvery ? (Math.floor(this.samplesSeen / o.evalEvery) + 1) * o.evalEvery : Infinity;
    let windowStart = performance.now();
    let windowSamples = 0;
    let dataTime = 0;
    let stepTime = 0;
    let stepsThisCall = 0;
    let lastGoodStep = this.step;
    let lastSavedStep = this.step;
    let lastLoss = NaN;
    // Whether the last update left the gradients zero (AdamW on flat CPU buffers clears them as it
    // reads them), so the next step need not zero them.
    let gradsLeftZero = false;

    // Runs one step on the device. Synchronous mode: the loss and norm are read and the
    // step's fate decided here. Deferred mode (a GPU): the loss and norm stay on the device,
    // AdamW applies the update only if both are finite (and clipping is done there too),
    // and nothing waits: `settle` reads the outcome after the next step is launched.
    const launch = async (): Promise<LaunchedStep> => {
      const t0 = performance.now();
      // This rank's slice of the global batch at the global position.
      const host = await o.data.batch(this.samplesSeen + this.rank * o.batchSize, o.batchSize);
      const batches = this.batches.fill(host, o.accumFreq);
      const t1 = performance.now();
      const lr = this.lrAt(this.step);
      // In a deferred step the zeroing is part of the step's work (and of its CUDA graph);
      // flat CPU gradients are zeroed by the optimizer in one fill, or were left zero by the last
      // applied update (which clears them as it reads them).
      if (!deferred && !gradsLeftZero && !this.optimizer.zeroGrad()) this.model.zeroGrad();
      gradsLeftZero = false;
      // With loss scaling the gradients are `lossScale` times too large until the optimizer
      // divides them back; the norm and the clipping threshold are scaled to match.
      // With the scale on the device (deferred steps) the kernels get 1 and the scale is applied there.
      const deviceScale = deferred ? this.deviceScale : null;
      const lossScale = deviceScale ? 1 : (this.scaler?.scale ?? 1);
      let loss = NaN;
      let norm = NaN;
      let outcome: LaunchedStep['outcome'] = 'pending';
      const slot = this.step % 2;
      if (deferred) {
        const gate = { loss: deferred.loss[slot], norm: deferred.norm[slot], applied: deferred.applied };
        const graphs = this.cudaGraphs;
        const work = (): void => {
          this.model.zeroGrad();
          this.runner.forwardBackward(batches, lossScale, gate.loss, deviceScale ? (g) => deviceScale.scale(g) : undefined);
          // GradScaler's unscale_: the norm, clipping and AdamW see the true gradients.
          deviceScale?.unscale(grads);
          if (o.gradClipNorm !== undefined) ops.clipGradNorm(grads, o.gradClipNorm * lossScale, gate.norm);
          else ops.gradNorm(grads, gate.norm);
          if (graphs) scheduledAdamwUpdate(this.optimizer, 1 / lossScale, gate, graphs.schedule);
          else this.optimizer.update(lr, 1 / lossScale, gate);
          // The scale for the next step, from this step's loss and norm (a skipped step backs off).
          deviceScale?.update(gate);
          // A no-op after a skipped step (the logit scale is untouched and already in range).
          ops.clamp(this.model.logitScale.data, 0, MAX_LOGIT_SCALE);
          // The logit scale of this step, for its record (the next step will have changed it).
          ops.copy(this.model.logitScale.data, deferred.logitScale[slot]);
          if (this.model.logitBias) ops.copy(this.model.logitBias.data, deferred.logitBias[slot]);
        };
        if (graphs) {
          const off = graphs.fallbackReason;
          graphs.run(slot, batches[0].images, lr, this.optimizer.step + 1, work);
          if (off === null && graphs.fallbackReason !== null) this.notice(`cuda graphs: off, steps run eagerly: ${graphs.fallbackReason}`);
        } else {
          work();
        }
        deferred.stepQueued(slot);
      } else {
        if (this.ddp) {
          loss = await this.ddp.forwardBackward(batches, lossScale);
        } else if (o.comm && this.world > 1) {
          loss = await this.runner.forwardBackwardDistributed(batches, o.comm);
          await allReduceTensors(o.comm, grads, 'mean');
        } else {
          loss = this.runner.forwardBackward(batches, lossScale);
        }
        if (Number.isFinite(loss)) {
          norm = (o.gradClipNorm !== undefined ? ops.clipGradNorm(grads, o.gradClipNorm * lossScale) : ops.gradNorm(grads)) / lossScale;
        }
        // Data parallel with loss scaling: every rank skips (and shrinks its scale) when any rank
        // found a non-finite value, so scales and weights stay identical on all ranks.
        const finite = this.ddp && this.scaler ? await this.ddp.allFinite(Number.isFinite(loss) && Number.isFinite(norm)) : Number.isFinite(loss) && Number.isFinite(norm);
        if (!finite && Number.isFinite(norm)) norm = NaN;
        if (this.scaler && Number.isFinite(loss) && !finite) {
          // Overflowed gradients under loss scaling: skip the step and shrink the scale (not an error).
          this.scaler.update(false);
          outcome = 'overflow';
        } else if (!Number.isFinite(loss) || !Number.isFinite(norm)) {
          outcome = 'bad';
        } else {
          this.scaler?.update(true);
          gradsLeftZero = this.optimizer.update(lr, 1 / lossScale, undefined, true);
          // OpenCLIP clamps the logit scale to [0, ln 100] after each step (on its device).
          ops.clamp(this.model.logitScale.data, 0, MAX_LOGIT_SCALE);
          outcome = 'applied';
        }
      }
      this.step++;
      stepsThisCall++;
      this.samplesSeen += this.globalBatch;
      return { step: this.step, samplesSeen: this.samplesSeen, lr, loss, norm, lossScale, slot, outcome, dataTime: (t1 - t0) / 1000, stepTime: (performance.now() - t1) / 1000 };
    };

    // Whether a step's outcome must be known before the next step runs: evaluation and
    // checkpoints read the model as that step left it, and the last step ends the run.
    const mustSettleNow = (s: LaunchedStep): boolean =>
      s.step === this.totalSteps ||
      (o.stopAfterSteps !== undefined && stepsThisCall >= o.stopAfterSteps) ||
      s.samplesSeen >= nextEval ||
      Boolean(o.out && o.checkpointEvery && s.step % o.checkpointEvery === 0);

    // Counts the step's outcome, makes its record and evaluates when due; says whether a
    // checkpoint is due (saved after the record is yielded).
    const settle = async (s: LaunchedStep): Promise<{ rec: TrainLogRecord | null; save: boolean }> => {
      let { loss, norm, outcome } = s;
      let logitScale: number | null = null;
      let logitBias: number | null = null;
      if (deferred) {
        // Read once this step's event has completed (the next step may still run); final there.
        const r = deferred.read(s.slot, this.model.logitBias !== null);
        loss = r.loss;
        norm = r.norm / s.lossScale;
        outcome = Number.isFinite(loss) && Number.isFinite(norm) ? 'applied' : 'bad';
        if (outcome === 'applied') this.optimizer.step++;
        if (this.deviceScale) {
          // The device applied the scaler's rule to this step; the host's scaler follows it (the
          // same rule on the same outcome: its scale is the device's after this step).
          if (outcome === 'applied') this.scaler!.update(true);
          else if (Number.isFinite(loss)) {
            this.scaler!.update(false);
            outcome = 'overflow';
          }
        }
        logitScale = r.logitScale;
        if (this.model.logitBias) logitBias = r.logitBias;
      }
      if (outcome === 'overflow') {
        this.skippedSteps++;
      } else if (outcome === 'bad') {
        this.skippedSteps++;
        consecutiveBad++;
        if (consecutiveBad > o.maxNonFinite) {
          // Skipped steps leave the weights and moments untouched: they are still the last good
          // state. Save them when good steps were taken since the last checkpoint (else they are lost).
          const unsavedGood = o.out && lastGoodStep > lastSavedStep;
          if (unsavedGood) await this.save();
          throw new NonFiniteLossError(
            `Trainer: ${consecutiveBad} non-finite losses in a row at step ${s.step - 1}; stopping. ` +
              (unsavedGood && this.lastCheckpoint
                ? `The last good state (after step ${lastGoodStep}) is saved in ${this.lastCheckpoint}.`
                : o.out
                  ? `The last good checkpoint in ${o.out} is kept.`
                  : 'No checkpoint directory was given.'),
          );
        }
      } else {
        consecutiveBad = 0;
        lastGoodStep = s.step;
      }
      lastLoss = loss;
      windowSamples += this.globalBatch;
      dataTime += s.dataTime;
      stepTime += s.stepTime;
      logger.progress(s.samplesSeen, { loss });
      const last = s.step === this.totalSteps;
      const record: Record<string, number | string | boolean | null> = {};
      if (s.samplesSeen >= nextEval || (last && o.evaluate)) {
        const e0 = performance.now();
        if (o.evaluate && lead) {
          logger.message(`evaluating… (step ${s.step}, ${s.samplesSeen} samples)`);
          const metrics = await o.evaluate(this.model);
          // A terminal shows only the bar; elsewhere the metrics are in this step's log line.
          if (o.console?.isTTY) logger.message(`evaluation at step ${s.step}: ${formatMetrics(metrics)}`);
          Object.assign(record, metrics);
        }
        // Evaluation time is not training time: keep it out of samples/s.
        windowStart += performance.now() - e0;
        nextEval = o.evalEvery ? (Math.floor(s.samplesSeen / o.evalEvery) + 1) * o.evalEvery : Infinity;
      }
      let rec: TrainLogRecord | null = null;
      if (s.step % o.logEvery === 0 || last || Object.keys(record).length) {
        const elapsed = (performance.now() - windowStart) / 1000;
        const steps = Math.max(1, windowSamples / this.globalBatch);
        rec = {
          step: s.step,
          samples: s.samplesSeen,
          loss,
          lr: s.lr,
          logit_scale: Math.exp(logitScale ?? this.model.logitScale.hostValues()[0]),
          ...(this.model.logitBias ? { logit_bias: logitBias ?? this.model.logitBias.hostValues()[0] } : {}),
          samples_per_s: windowSamples / Math.max(elapsed, 1e-9),
          data_time_s: dataTime / steps,
          step_time_s: stepTime / steps,
          grad_norm: norm,
          skipped_steps: this.skippedSteps,
          ...(this.scaler ? { loss_scale: this.scaler.scale } : {}),
          ...record,
        };
        logger.log(rec);
        events?.record(rec);
        windowStart = performance.now();
        windowSamples = 0;
        dataTime = 0;
        stepTime = 0;
      }
      // No checkpoint in the middle of a run of non-finite steps: the last good one stays the latest.
      return { rec, save: Boolean(o.out && o.checkpointEvery && s.step % o.checkpointEvery === 0 && !last && consecutiveBad === 0) };
    };

    try {
      let pending: LaunchedStep | null = null;
      while (this.step < this.totalSteps) {
        // One turn of the event loop a step, so signals and timers are served even when
        // batches are ready at once (synthetic data).
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (o.stopAfterSteps !== undefined && stepsThisCall >= o.stopAfterSteps) break;
        const launched = await launch();
        // The previous step's outcome, read while this one is queued on the device.
        if (pending) {
          // Never a checkpoint here: a step that needs one is settled before the next launch.
          const { rec } = await settle(pending);
          pending = null;
          if (rec) yield rec;
        }
        if (deferred && !mustSettleNow(launched)) {
          pending = launched;
          continue;
        }
        const { rec, save } = await settle(launched);
        if (rec) yield rec;
        if (save) {
          await this.save();
          lastSavedStep = this.step;
        }
      }
      if (pending) {
        const { rec } = await settle(pending);
        if (rec) yield rec;
      }
      // Non-finite last steps were skipped (no update), so the weights are the last good state: save
      // them too (not saving lost every good step since the last checkpoint).
      if (o.out && stepsThisCall > 0) await this.save();
    } finally {
      restorePrecision();
      logger.finish();
      events?.close();
      await logFile?.close();
    }
  }

  /** Runs to the end and returns the last record. */
  async train(): Promise<TrainLogRecord | undefined> {
    let last: TrainLogRecord | undefined;
    for await (const r of this.run()) last = r;
    return last;
  }

  /** The deferred outcomes' device slots and events, made once; the applied-update count set from the optimizer's. */
  private outcomeBuffers(): DeferredOutcomes {
    if (!this.outcomes) this.outcomes = new DeferredOutcomes(this.model.device, this.optimizer.step);
    else this.outcomes.setApplied(this.optimizer.step);
    // The device's scale from the host's (a resume may have loaded it).
    this.deviceScale?.load();
    return this.outcomes;
  }

  dispose(): void {
    this.cudaGraphs?.dispose();
    this.outcomes?.dispose();
    this.deviceScale?.dispose();
    this.batches.dispose();
    this.ddp?.dispose();
    this.runner.dispose();
    this.optimizer.dispose();
    this.model.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
