// Evaluation: zero-shot classification, retrieval and linear probing on features, .npy files.
export * from './npy.js';
export * from './features.js';
export * from './ranking.js';
export * from './encoder.js';
export * from './zeroshot.js';
export * from './retrieval.js';
export * from './lbfgs.js';
export * from './logistic.js';
export * from './linear_probe.js';
export * from '../util/seeded_random.js';
export * from './labelled_images.js';
export * from './model_eval.js';
export * from './finetune.js';
