// Labelled evaluation images in memory: preprocessed pixels [n, 3, S, S], one class id each, and
// the class names. Three sources: the synthetic world's zero-shot tasks, an image folder (a folder
// per class, torchvision's ImageFolder) and classification webdataset shards (`cls` member or a
// json `label`), the last two decoded with the evaluation transform (resize the shorter side,
// centre crop, OpenAI normalisation). Evaluation sets are small enough to hold in memory;
// training-size data belongs to the data loader.
import { existsSync, statSync } from 'node:fs';

import { expandBraces } from '../data/braces.js';
import { ImageFolderSource } from '../data/image_folder.js';
import { DataLoader } from '../data/loader.js';
import type { Normalization } from '../data/normalize.js';
import { Rng } from '../data/rng.js';
import type { RawSample } from '../data/sample.js';
import { SkipCounter } from '../data/skip_counter.js';
import { SyntheticWorld } from '../data/synthetic.js';
import { readTar } from '../data/tar.js';
import { IMAGE_EXTENSIONS } from '../data/webdataset.js';
import type { PromptSpec } from './zeroshot.js';

export interface LabelledImages {
  /** [n, 3, imageSize, imageSize] normalised pixels, row-major. */
  pixels: Float32Array;
  labels: Int32Array;
  n: number;
  imageSize: number;
  /** Class names by id (folder names with '_' read as spaces; none for unnamed shard classes). */
  classnames: string[];
  /** The prompts that go with this data when it ships its own (the synthetic tasks' templates). */
  prompts?: PromptSpec;
  /** Where the images came from, for messages and reports. */
  source: string;
  /** Samples that could not be decoded or had no usable label, by reason. */
  skipped?: Record<string, number>;
}

/** The one template used when data names its classes but brings no prompts. */
export const DEFAULT_TEMPLATES: readonly string[] = ['a photo of a {c}.'];

/** Checks that pixels, labels and counts agree; `what` names the set in errors. */
export function checkLabelledImages(data: LabelledImages, what = 'images'): void {
  const plane = 3 * data.imageSize * data.imageSize;
  if (!Number.isInteger(data.n) || data.n < 1) throw new Error(`${what} (${data.source}): no images`);
  if (data.pixels.length !== data.n * plane) {
    throw new Error(`${what} (${data.source}): ${data.pixels.length} pixel values for ${data.n} images of 3×${data.imageSize}×${data.imageSize}`);
  }
  if (data.labels.length !== data.n) throw new Error(`${what} (${data.source}): ${data.labels.length} labels for ${data.n} images`);
}

export interface SyntheticTaskImagesOptions {
  imageSize: number;
  /** Images (classes in turn). Default 256. */
  n?: number;
  /** Which held-out draw; different seeds give disjoint sets of images. Default 0. */
  seed?: number;
  /** The world's seed. Default 0. */
  worldSeed?: number;
}

/** A synthetic zero-shot task ('shape', 'colour', 'shape_colour') with its classes and templates. */
export function syntheticTaskImages(task: string, opts: SyntheticTaskImagesOptions): LabelledImages {
  const world = new SyntheticWorld({ seed: opts.worldSeed ?? 0, imageSize: opts.imageSize });
  const t = world.zeroShotTask(task, opts.n ?? 256, opts.seed ?? 0);
  return {
    pixels: t.images,
    labels: t.labels,
    n: t.n,
    imageSize: t.imageSize,
    classnames: t.classnames,
    prompts: { classnames: t.classnames, templates: t.templates },
    source: `synthetic:${t.name} (seed ${opts.seed ?? 0})`,
  };
}

export interface DecodeOptions {
  imageSize: number;
  /** Decode worker threads (0: sharp's own threads from the main thread, the default). */
  workers?: number;
  /** Images decoded at a time. Default 64. */
  batchSize?: number;
  /** Mean/std of the pixel normalisation (default OpenAI's). */
  normalization?: Normalization;
}

/** Decodes labelled samples with the evaluation transform; undecodable ones are skipped and counted. */
async function decodeLabelled(samples: RawSample[], opts: DecodeOptions, source: string, skipped: SkipCounter): Promise<{ pixels: Float32Array; labels: Int32Array; n: number }> {
  const plane = 3 * opts.imageSize * opts.imageSize;
  const loader = new DataLoader({
    source: samples,
    batchSize: opts.batchSize ?? 64,
    imageSize: opts.imageSize,
    train: false,
    workers: opts.workers ?? 0,
    dropLast: false,
    skipped,
    ...(opts.normalization ? { normalization: opts.normalization } : {}),
  });
  const pixels = new Float32Array(samples.length * plane);
  const labels = new Int32Array(samples.length);
  let n = 0;
  for await (const b of loader) {
    if (!b.labels) throw new Error(`${source}: a batch came back without labels`);
    pixels.set(b.pixels, n * plane);
    labels.set(b.labels, n);
    n += b.size;
  }
  if (n === 0) throw new Error(`${source}: none of the ${samples.length} images could be decoded (${JSON.stringify(skipped.toJSON())})`);
  return { pixels: pixels.slice(0, n * plane), labels: labels.slice(0, n), n };
}

/** Every image under ROOT/<class>/, classes sorted by folder name, decoded for evaluation. */
export async function imageFolderImages(root: string, opts: DecodeOptions): Promise<LabelledImages> {
  const folder = new ImageFolderSource(root);
  if (folder.length === 0) {
    throw new Error(`image folder '${root}' has ${folder.classnames.length} class folder(s) (${folder.classnames.slice(0, 5).join(', ')}) but no images in them (.jpg, .jpeg, .png, .webp)`);
  }
  const skipped = new SkipCounter();
  const source = `image folder '${root}'`;
  const { pixels, labels, n } = await decodeLabelled([...folder], opts, source, skipped);
  return {
    pixels,
    labels,
    n,
    imageSize: opts.imageSize,
    classnames: folder.classnames.map((c) => c.replace(/_/g, ' ')),
    source,
    ...(skipped.total ? { skipped: skipped.toJSON() } : {}),
  };
}

function labelOf(members: Map<string, Buffer>, labelKey: string): number | undefined {
  const cls = members.get('cls');
  if (cls) {
    const text = cls.toString('utf8').trim();
    return /^\d+$/.test(text) ? Number(text) : undefined;
  }
  const json = members.get('json');
  if (!json) return undefined;
  try {
    const v = (JSON.parse(json.toString('utf8')) as Record<string, unknown>)[labelKey];
    return typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : undefined;
  } catch {
    return undefined;
  }
}

export interface ShardImagesOptions extends DecodeOptions {
  /** Class names by id (the shards hold only ids). */
  classnames: string[];
  /** json key holding the class id when a sample has no `cls` member. Default 'label'. */
  labelKey?: string;
}

/**
 * Labelled webdataset shards (CLIP_benchmark's layout): members `<key>.<jpg|png|webp>` and
 * `<key>.cls` (the class id as text) or `<key>.json` with a class id under `labelKey`.
 */
export async function webdatasetImages(urls: string, opts: ShardImagesOptions): Promise<LabelledImages> {
  const shards = urls.split('::').flatMap((p) => expandBraces(p));
  if (shards.length === 0) throw new Error(`webdataset '${urls}': no shards`);
  for (const s of shards) {
    if (!existsSync(s) || !statSync(s).isFile()) throw new Error(`webdataset: shard '${s}' does not exist or is not a file`);
  }
  const skipped = new SkipCounter();
  const labelKey = opts.labelKey ?? 'label';
  const samples: RawSample[] = [];
  const flush = (shard: string, key: string, members: Map<string, Buffer>) => {
    const where = `${shard}:${key}`;
    const ext = IMAGE_EXTENSIONS.find((e) => members.has(e));
    if (!ext) return skipped.add('missing_image', where);
    const label = labelOf(members, labelKey);
    if (label === undefined) return skipped.add('missing_label', where);
    if (label >= opts.classnames.length) {
      throw new Error(`webdataset ${where}: class id ${label} but only ${opts.classnames.length} class names were given (ids run 0..${opts.classnames.length - 1})`);
    }
    samples.push({ key: where, image: members.get(ext)!, label });
  };
  for (const shard of shards) {
    let group: { key: string; members: Map<string, Buffer> } | undefined;
    for await (const m of readTar(shard, (kind, detail) => skipped.add(kind, detail))) {
      const slash = m.name.lastIndexOf('/');
      const dot = m.name.indexOf('.', slash + 1);
      if (dot < 0) continue;
      const key = m.name.slice(0, dot);
      if (group && group.key !== key) flush(shard, group.key, group.members);
      if (!group || group.key !== key) group = { key, members: new Map() };
      group.members.set(m.name.slice(dot + 1).toLowerCase(), m.data);
    }
    if (group) flush(shard, group.key, group.members);
  }
  const source = `webdataset '${urls}'`;
  if (samples.length === 0) throw new Error(`${source}: no labelled images (each sample needs an image and a .cls member or a json "${labelKey}"; skipped: ${JSON.stringify(skipped.toJSON())})`);
  const { pixels, labels, n } = await decodeLabelled(samples, opts, source, skipped);
  return {
    pixels,
    labels,
    n,
    imageSize: opts.imageSize,
    classnames: [...opts.classnames],
    source,
    ...(skipped.total ? { skipped: skipped.toJSON() } : {}),
  };
}

/** The images at `indices`, in that order. */
export function subsetImages(data: LabelledImages, indices: ArrayLike<number>, source = data.source): LabelledImages {
  const plane = 3 * data.imageSize * data.imageSize;
  const pixels = new Float32Array(indices.length * plane);
  const labels = new Int32Array(indices.length);
  for (let j = 0; j < indices.length; j++) {
    const i = indices[j];
    if (!Number.isInteger(i) || i < 0 || i >= data.n) throw new Error(`subsetImages: index ${i} is outside ${data.n} images`);
    pixels.set(data.pixels.subarray(i * plane, (i + 1) * plane), j * plane);
    labels[j] = data.labels[i];
  }
  return { ...data, pixels, labels, n: indices.length, source };
}

/**
 * A seeded split, class by class (each class keeps round(testFraction · its count) test images,
 * at least one when it has two or more), so both halves see every class.
 */
export function splitImages(data: LabelledImages, testFraction: number, seed = 0): { train: LabelledImages; test: LabelledImages } {
  if (!(testFraction > 0 && testFraction < 1)) throw new Error(`splitImages: testFraction must be in (0, 1), got ${testFraction}`);
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < data.n; i++) {
    const list = byClass.get(data.labels[i]) ?? [];
    list.push(i);
    byClass.set(data.labels[i], list);
  }
  const rng = new Rng(seed);
  const train: number[] = [];
  const test: number[] = [];
  for (const c of [...byClass.keys()].sort((a, b) => a - b)) {
    const idx = rng.shuffle(byClass.get(c)!);
    const k = idx.length < 2 ? 0 : Math.min(idx.length - 1, Math.max(1, Math.round(testFraction * idx.length)));
    test.push(...idx.slice(0, k));
    train.push(...idx.slice(k));
  }
  if (test.length === 0) throw new Error(`splitImages: ${data.source} has too few images per class to hold any out for testing`);
  train.sort((a, b) => a - b);
  test.sort((a, b) => a - b);
  return { train: subsetImages(data, train, `${data.source} (train split)`), test: subsetImages(data, test, `${data.source} (test split)`) };
}
