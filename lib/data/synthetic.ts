// The synthetic world: image–caption pairs drawn from (seed, index) alone, so sample i of
// seed s is the same on every machine, plus held-out zero-shot and retrieval tasks.
//
// `size` is how many distinct samples the world has; sample(i) for i ≥ size repeats sample
// i mod size, so training can see more samples than exist (the data-size axis of the
// scaling study). Caption styles make different "pre-training datasets": 'precise' (uniform
// attributes, true and complete captions), 'noisy' (skewed attribute frequencies,
// alt-text-like captions), and the study's pair 'labels' (WIT-like: class-label captions, a
// few describing the scene) and 'web' (LAION-like, favours retrieval); see synthetic_captions.ts.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { normalizeHwcToChw } from './normalize.js';
import { SYNTHETIC_NORMALIZATION } from './synthetic_normalization.js';
import { Rng } from './rng.js';
import { CAPTION_STYLES, labelsCaption, noisyCaption, paraphrases, preciseCaption, webCaption, type CaptionStyle } from './synthetic_captions.js';
import { COLOURS, SHAPES, drawScene } from './synthetic_draw.js';
import { SKEWED_PRIORS, UNIFORM_PRIORS, sampleScene, toDrawn, type SceneAttributes } from './synthetic_scene.js';
import { DEFAULT_CONTEXT_LENGTH, Tokenizer } from './tokenizer.js';

export { COLOURS, SHAPES } from './synthetic_draw.js';
export type { SceneAttributes } from './synthetic_scene.js';
export type { CaptionStyle } from './synthetic_captions.js';
export { CAPTION_STYLES } from './synthetic_captions.js';

export interface SyntheticWorldOptions {
  /** Seed of the world (default 0). */
  seed?: number;
  /** Number of distinct samples (default 1,000,000). */
  size?: number;
  /** Image side in pixels (default 32). */
  imageSize?: number;
  /** Caption distribution (default 'precise'). */
  captions?: CaptionStyle;
  /**
   * Bytes of rendered training images kept for reuse by `batch` (default 256 MiB; 0 keeps none).
   * Training past `size` samples draws each sample again every epoch, and rendering is most of a
   * small model's step (100 µs a 32-pixel image, against 1.3 ms for a `micro` step of 32): the
   * first `imageCacheBytes / (3·imageSize²)` samples drawn are rendered once.
   */
  imageCacheBytes?: number;
}

export interface SyntheticSample {
  index: number;
  /** Normalised CHW floats, 3 × imageSize × imageSize. */
  pixels: Float32Array;
  caption: string;
  attributes: SceneAttributes;
}

export interface SyntheticBatch {
  /** [B, 3, imageSize, imageSize] normalised floats. */
  pixels: Float32Array;
  captions: string[];
  attributes: SceneAttributes[];
  /** [B, contextLength] token ids, when a tokenizer was given. */
  tokens?: Int32Array;
}

export interface ZeroShotTask {
  name: ZeroShotTaskName;
  /** [n, 3, imageSize, imageSize] normalised floats. */
  images: Float32Array;
  labels: Int32Array;
  classnames: string[];
  /** Prompt templates with '{c}' where the class name goes. */
  templates: string[];
  n: number;
  imageSize: number;
}

export interface RetrievalSet {
  /** [n, 3, imageSize, imageSize] normalised floats. */
  images: Float32Array;
  /** All captions, image by image: captions of image i are [i·k, (i+1)·k). */
  captions: string[];
  /** The image each caption describes. */
  captionImage: Int32Array;
  captionsPerImage: number;
  n: number;
  imageSize: number;
}

export type ZeroShotTaskName = 'shape' | 'colour' | 'shape_colour';

const ZERO_SHOT_ALIASES: Record<string, ZeroShotTaskName> = {
  shape: 'shape', colour: 'colour', color: 'colour', shape_colour: 'shape_colour', 'shape+colour': 'shape_colour',
  shape_color: 'shape_colour', 'shape+color': 'shape_colour',
};
export const ZERO_SHOT_TASKS: readonly ZeroShotTaskName[] = ['shape', 'colour', 'shape_colour'];

const TEMPLATES: Record<ZeroShotTaskName, string[]> = {
  shape: ['a photo of a {c}.', 'a drawing of a {c}.', 'a {c}.', 'a picture of a {c}.', 'a small {c}.', 'a large {c}.'],
  colour: ['a {c} shape.', 'a {c} object.', 'a photo of something {c}.', 'a drawing of something {c}.', 'something {c}.'],
  shape_colour: ['a photo of a {c}.', 'a drawing of a {c}.', 'a {c}.', 'a picture of a {c}.', 'a small {c}.', 'a large {c}.'],
};

// Streams keep training samples, their captions and held-out sets apart.
const STREAM_SCENE = 1;
const STREAM_CAPTION = 2;
const STREAM_ZERO_SHOT = 101;
const STREAM_RETRIEVAL = 102;

/** The package root, from lib/data/*.ts and dist/data/*.js alike. */
export function packageRoot(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..');
}

/** Path of the BPE vocabulary shipped for the synthetic world. */
export function syntheticVocabPath(): string {
  const path = join(packageRoot(), 'lib', 'data', 'vocab', 'synthetic_bpe.txt.gz');
  if (!existsSync(path)) throw new Error(`the synthetic world's vocabulary is missing: expected it at ${path}`);
  return path;
}

let syntheticTokenizer: Tokenizer | undefined;
/** The tokenizer of the shipped synthetic vocabulary (loaded once). */
export function defaultSyntheticTokenizer(): Tokenizer {
  syntheticTokenizer ??= Tokenizer.fromFile(syntheticVocabPath());
  return syntheticTokenizer;
}

function checkInt(name: string, v: number, min: number): number {
  if (!Number.isInteger(v) || v < min) throw new Error(`SyntheticWorld: ${name} must be an integer ≥ ${min}, got ${v}`);
  return v;
}

export class SyntheticWorld {
  readonly seed: number;
  readonly size: number;
  readonly imageSize: number;
  readonly captions: CaptionStyle;
  /** The most rendered training images `batch` keeps (see imageCacheBytes). */
  readonly imageCacheLimit: number;
  // Rendered training images by sample (views into slabs of a few MiB each, so that thousands of
  // images are not thousands of separately allocated buffers).
  private readonly cachedImages = new Map<number, Uint8Array>();
  private cacheSlab: Uint8Array | null = null;
  private cacheSlabUsed = 0;

  constructor(options: SyntheticWorldOptions = {}) {
    this.seed = checkInt('seed', options.seed ?? 0, 0);
    this.size = checkInt('size', options.size ?? 1_000_000, 1);
    this.imageSize = checkInt('imageSize', options.imageSize ?? 32, 8);
    this.captions = options.captions ?? 'precise';
    const cacheBytes = options.imageCacheBytes ?? 256 * 1024 * 1024;
    if (!(Number.isFinite(cacheBytes) && cacheBytes >= 0)) throw new Error(`SyntheticWorld: imageCacheBytes must be a number ≥ 0, got ${cacheBytes}`);
    this.imageCacheLimit = Math.min(this.size, Math.floor(cacheBytes / (3 * this.imageSize * this.imageSize)));
    if (!CAPTION_STYLES.includes(this.captions)) {
      throw new Error(`SyntheticWorld: captions must be ${CAPTION_STYLES.map((c) => `'${c}'`).join(', ')}, got '${String(this.captions)}'`);
    }
  }

  /** Floats per image: 3 × imageSize². */
  get pixelsPerImage(): number {
    return 3 * this.imageSize * this.imageSize;
  }

  /** The scene of sample i (i is taken modulo size). */
  attributes(i: number): SceneAttributes {
    const k = this.wrap(i);
    return sampleScene(Rng.of(this.seed, STREAM_SCENE, k), this.captions === 'noisy' ? SKEWED_PRIORS : UNIFORM_PRIORS);
  }

  /** Sample i's image as HWC RGB bytes (what a shard would store). */
  imageBytes(i: number): Uint8Array {
    return this.materialise(i).bytes;
  }

  caption(i: number): string {
    const k = this.wrap(i);
    return this.captionOf(k, this.attributes(k));
  }

  sample(i: number): SyntheticSample {
    const { index, bytes, caption, attributes } = this.materialise(i);
    const pixels = new Float32Array(this.pixelsPerImage);
    normalizeHwcToChw(bytes, this.imageSize, this.imageSize, 3, pixels, 0, SYNTHETIC_NORMALIZATION);
    return { index, pixels, caption, attributes };
  }

  /** Several samples as one batch; with a tokenizer, also their token ids. */
  batch(indices: readonly number[], options: { tokenizer?: Tokenizer; contextLength?: number } = {}): SyntheticBatch {
    const n = this.pixelsPerImage;
    const pixels = new Float32Array(indices.length * n);
    const captions: string[] = [];
    const attributes: SceneAttributes[] = [];
    indices.forEach((i, b) => {
      const k = this.wrap(i);
      const scene = this.attributes(k);
      normalizeHwcToChw(this.trainingImage(k, scene), this.imageSize, this.imageSize, 3, pixels, b * n, SYNTHETIC_NORMALIZATION);
      captions.push(this.captionOf(k, scene));
      attributes.push(scene);
    });
    const tokens = options.tokenizer?.tokenize(captions, options.contextLength ?? DEFAULT_CONTEXT_LENGTH);
    return { pixels, captions, attributes, ...(tokens ? { tokens } : {}) };
  }

  /** Sample k's image for a training batch: from the cache, or rendered (and kept while there is room). */
  private trainingImage(k: number, scene: SceneAttributes): Uint8Array {
    const kept = this.cachedImages.get(k);
    if (kept) return kept;
    const bytes = this.render(scene, Rng.of(this.seed, STREAM_SCENE, k, 1));
    if (this.cachedImages.size < this.imageCacheLimit) {
      const slabImages = Math.max(1, Math.floor((4 << 20) / bytes.length));
      if (!this.cacheSlab || this.cacheSlabUsed + bytes.length > this.cacheSlab.length) {
        this.cacheSlab = new Uint8Array(Math.min(slabImages, this.imageCacheLimit - this.cachedImages.size) * bytes.length);
        this.cacheSlabUsed = 0;
      }
      const view = this.cacheSlab.subarray(this.cacheSlabUsed, this.cacheSlabUsed + bytes.length);
      view.set(bytes);
      this.cacheSlabUsed += bytes.length;
      this.cachedImages.set(k, view);
    }
    return bytes;
  }

  /** Sample i's scene, image bytes and caption, each drawn once. */
  materialise(i: number): { index: number; attributes: SceneAttributes; bytes: Uint8Array; caption: string } {
    const k = this.wrap(i);
    const attributes = this.attributes(k);
    const bytes = this.render(attributes, Rng.of(this.seed, STREAM_SCENE, k, 1));
    return { index: k, attributes, bytes, caption: this.captionOf(k, attributes) };
  }

  /**
   * A held-out zero-shot classification task of `n` single-object images (labels balanced),
   * with class names and prompt templates. Task names: 'shape', 'colour', 'shape_colour'
   * (also 'color', 'shape+colour').
   */
  zeroShotTask(name: string, n: number, seed = 0): ZeroShotTask {
    const task = ZERO_SHOT_ALIASES[name];
    if (!task) throw new Error(`SyntheticWorld.zeroShotTask: unknown task '${name}'; tasks: ${ZERO_SHOT_TASKS.join(', ')}`);
    checkInt('n', n, 1);
    const classnames =
      task === 'shape' ? [...SHAPES] : task === 'colour' ? [...COLOURS] : COLOURS.flatMap((c) => SHAPES.map((s) => `${c} ${s}`));
    const images = new Float32Array(n * this.pixelsPerImage);
    const labels = new Int32Array(n);
    const taskId = ZERO_SHOT_TASKS.indexOf(task);
    for (let j = 0; j < n; j++) {
      const label = j % classnames.length;
      const rng = Rng.of(this.seed, STREAM_ZERO_SHOT, seed, taskId, j);
      const pin =
        task === 'shape' ? { shape: SHAPES[label] } : task === 'colour' ? { colour: COLOURS[label] }
          : { colour: COLOURS[Math.floor(label / SHAPES.length)], shape: SHAPES[label % SHAPES.length] };
      const scene = sampleScene(rng, UNIFORM_PRIORS, { kind: 'single', ...pin });
      normalizeHwcToChw(this.render(scene, rng), this.imageSize, this.imageSize, 3, images, j * this.pixelsPerImage, SYNTHETIC_NORMALIZATION);
      labels[j] = label;
    }
    return { name: task, images, labels, classnames, templates: [...TEMPLATES[task]], n, imageSize: this.imageSize };
  }

  /** A held-out retrieval set: `n` scenes of all kinds, each with `captionsPerImage` true captions. */
  retrievalSet(n: number, seed = 0, captionsPerImage = 5): RetrievalSet {
    checkInt('n', n, 1);
    checkInt('captionsPerImage', captionsPerImage, 1);
    const images = new Float32Array(n * this.pixelsPerImage);
    const captions: string[] = [];
    const captionImage = new Int32Array(n * captionsPerImage);
    for (let j = 0; j < n; j++) {
      const rng = Rng.of(this.seed, STREAM_RETRIEVAL, seed, j);
      const scene = sampleScene(rng, UNIFORM_PRIORS);
      normalizeHwcToChw(this.render(scene, rng), this.imageSize, this.imageSize, 3, images, j * this.pixelsPerImage, SYNTHETIC_NORMALIZATION);
      for (const c of paraphrases(scene, captionsPerImage)) {
        captionImage[captions.length] = j;
        captions.push(c);
      }
    }
    return { images, captions, captionImage, captionsPerImage, n, imageSize: this.imageSize };
  }

  private captionOf(k: number, scene: SceneAttributes): string {
    switch (this.captions) {
      case 'precise':
        return preciseCaption(scene);
      case 'noisy':
        return noisyCaption(scene, Rng.of(this.seed, STREAM_CAPTION, k));
      case 'labels':
        return labelsCaption(scene, Rng.of(this.seed, STREAM_CAPTION, k));
      case 'web':
        return webCaption(scene, Rng.of(this.seed, STREAM_CAPTION, k));
    }
  }

  private render(scene: SceneAttributes, rng: Rng): Uint8Array {
    return drawScene(toDrawn(scene, this.imageSize), this.imageSize, rng);
  }

  private wrap(i: number): number {
    if (!Number.isInteger(i) || i < 0) throw new Error(`SyntheticWorld: sample index must be an integer ≥ 0, got ${i}`);
    return i % this.size;
  }
}
