// The data API in one place (re-exported by the package as `data`).
export { Tokenizer, DEFAULT_CONTEXT_LENGTH, OPENAI_MAX_MERGES, splitWords, bytesToUnicode } from './tokenizer.js';
export { trainBpe, writeMergesFile, formatMerges } from './bpe_train.js';
export { htmlUnescape } from './html_unescape.js';
export { clipCleanText, fixTextLite, whitespaceClean } from './text_clean.js';
export {
  SyntheticWorld, defaultSyntheticTokenizer, syntheticVocabPath, packageRoot, ZERO_SHOT_TASKS, SHAPES, COLOURS,
  type SyntheticWorldOptions, type SyntheticSample, type SyntheticBatch, type ZeroShotTask, type RetrievalSet,
  type ZeroShotTaskName, type SceneAttributes, type CaptionStyle,
} from './synthetic.js';
export { WebDataset, IMAGE_EXTENSIONS, type WebDatasetOptions, type ShardSample } from './webdataset.js';
export { expandBraces } from './braces.js';
export { readTar, type TarMember } from './tar.js';
export { TarWriter } from './tar_write.js';
export { CsvSource, parseCsv, type CsvOptions } from './csv.js';
export { ImageFolderSource } from './image_folder.js';
export { DataLoader, syntheticSource, type Batch, type LoaderOptions } from './loader.js';
export { transformImage, randomResizedCropBox, type TransformSpec, type CropBox } from './transforms.js';
export { OPENAI_MEAN, OPENAI_STD, OPENAI_NORMALIZATION, normalizeHwcToChw, type Normalization } from './normalize.js';
export { SYNTHETIC_MEAN, SYNTHETIC_STD, SYNTHETIC_NORMALIZATION } from './synthetic_normalization.js';
export { SkipCounter, type SkipReason } from './skip_counter.js';
export { writeShards, inspectShards, syntheticInputs } from './make_shards.js';
export { Rng, hashInts } from './rng.js';
export type { RawSample } from './sample.js';
