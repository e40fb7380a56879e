// Inference as OpenCLIP users know it: a model with its transforms and tokenizer, normalised features, similarity.
export { createModelAndTransforms, encodeImages, encodeTexts, similarity, type ClipModelAndTransforms, type CreateModelAndTransformsOptions, type ImageInput, type Preprocess, type SimilarityOptions } from './model.js';
export { getTokenizer, tokenizerForVocab, defaultNormalizationFor, normalizationFor, openaiVocabPath, defaultOpenaiTokenizer, defaultVocabFor, OPENAI_VOCAB_SIZE, type ClipTokenizer, type GetTokenizerOptions } from './tokenizer.js';
export { listImageFiles, IMAGE_EXTENSIONS } from './images.js';
export { readRunModel, type RunModel } from './run_config.js';
