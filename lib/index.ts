// clipscale's public API.
export { Tensor, numelOf } from './tensor.js';
export type { DType } from './tensor.js';
export { native } from './native.js';
export * as ops from './ops.js';
export { version } from './version.js';

// Models
export { CLIP, createModel, INIT_LOGIT_SCALE, MAX_LOGIT_SCALE, type CreateModelOptions } from './nn/clip.js';
export { loadModelConfig, listModelConfigs, parseModelConfig, type ClipConfig } from './nn/config.js';
export { clipEncoder } from './nn/encoder.js';
export { Module, Parameter, noGrad } from './nn/module.js';

// Training
export { Trainer, type TrainerOptions, type Precision } from './train/trainer.js';
export { SyntheticData, type TrainingData, type HostBatch } from './train/sources.js';
export { StepRunner } from './train/step.js';
export { loadCheckpoint, loadWeightsInto, type LoadCheckpointOptions } from './train/load.js';
export { WebDatasetData, type WebDatasetDataOptions } from './train/webdataset_source.js';
export { ClipLoss } from './loss/contrastive.js';
export { AdamW } from './optim/adamw.js';
export * from './optim/schedules.js';
export { ADAMW_DEFAULTS, usesWeightDecay } from './optim/param_groups.js';
export * from './train/checkpoint.js';
export { readSafetensors, writeSafetensors, SafetensorsReader } from './train/safetensors.js';
export { Rng } from './util/rng.js';

// Data
export { SyntheticWorld, defaultSyntheticTokenizer } from './data/synthetic.js';
export { Tokenizer } from './data/tokenizer.js';
export * as data from './data/index.js';

// Evaluation
export * as evaluation from './eval/index.js';
export { evaluateSynthetic } from './eval/synthetic_suite.js';

// Scaling
export { computeCost } from './scaling/flops.js';
export { fitPowerLaw } from './scaling/fit.js';
export { bootstrapFit, predictWithInterval } from './scaling/bootstrap.js';
export { writeReport } from './scaling/report.js';
export * from './scaling/record.js';

// Distributed
export * from './distributed/index.js';
export { distributedClipLoss, referenceLocalClipLoss, nativeLocalClipLoss } from './loss/distributed.js';

// Inference (OpenCLIP's create_model_and_transforms / get_tokenizer)
export * from './inference/index.js';
