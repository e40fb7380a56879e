// Writing webdataset shards from a CSV, an image folder or the synthetic world, and
// inspecting shards (counting samples and what would be skipped).
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import { extname, join } from 'node:path';
import sharp from 'sharp';

import { CsvSource, type CsvOptions } from './csv.js';
import { ImageFolderSource } from './image_folder.js';
import type { RawSample } from './sample.js';
import { SkipCounter } from './skip_counter.js';
import { SyntheticWorld, type SyntheticWorldOptions } from './synthetic.js';
import { TarWriter } from './tar_write.js';
import { WebDataset } from './webdataset.js';
import { imageHeaderSize } from './image_header.js';
import { DEFAULT_PIXEL_BUDGET, PixelBudget } from './pixel_budget.js';
import { MAX_IMAGE_FILE_BYTES, readRegularFileSync } from '../util/regular_file.js';

export interface ShardSummary {
  shards: number;
  samples: number;
  skipped: Record<string, number>;
  pattern: string;
}

interface ShardInput {
  key: string;
  ext: string;
  image: Uint8Array;
  caption: string;
  json?: unknown;
}

/** Writes samples into DIR/00000.tar, DIR/00001.tar, … with `shardSize` samples each. */
export async function writeShards(inputs: AsyncIterable<ShardInput> | Iterable<ShardInput>, outDir: string, shardSize: number, skipped = new SkipCounter()): Promise<ShardSummary> {
  if (!Number.isInteger(shardSize) || shardSize < 1) throw new Error(`make-shards: shard size must be an integer ≥ 1, got ${shardSize}`);
  mkdirSync(outDir, { recursive: true });
  // Partial shards of an earlier run that was killed are ours to remove.
  for (const f of readdirSync(outDir)) if (/^\d{5,}\.tar\.partial$/.test(f)) rmSync(join(outDir, f), { force: true });
  let writer: TarWriter | undefined;
  let shards = 0;
  let samples = 0;
  try {
    for await (const s of inputs) {
      if (samples % shardSize === 0) {
        writer?.close();
        writer = new TarWriter(join(outDir, `${String(shards).padStart(5, '0')}.tar`));
        shards++;
      }
      writer!.add(`${s.key}.${s.ext}`, s.image);
      writer!.add(`${s.key}.txt`, s.caption);
      if (s.json !== undefined) writer!.add(`${s.key}.json`, JSON.stringify(s.json));
      samples++;
    }
    writer?.close();
  } catch (err) {
    writer?.abort();
    throw err;
  }
  const last = String(Math.max(0, shards - 1)).padStart(5, '0');
  return { shards, samples, skipped: skipped.toJSON(), pattern: join(outDir, shards > 1 ? `{00000..${last}}.tar` : `${last}.tar`) };
}

const EXT: Record<string, string> = { '.jpg': 'jpg', '.jpeg': 'jpg', '.png': 'png', '.webp': 'webp' };

/** Samples of files (CSV rows or folder images) as shard members, the image bytes as they are. */
function* fromFiles(source: Iterable<RawSample>, skipped: SkipCounter, json: (s: RawSample) => unknown): Generator<ShardInput> {
  let n = 0;
  for (const s of source) {
    const ext = EXT[extname(s.path!).toLowerCase()];
    if (!ext) {
      skipped.add('missing_image', `${s.path}: not a jpg, png or webp file`);
      continue;
    }
    let image: Buffer;
    try {
      image = readRegularFileSync(s.path!, { what: 'image', maxBytes: MAX_IMAGE_FILE_BYTES });
    } catch (err) {
      skipped.add('unreadable_file', `${s.path}: ${(err as Error).message}`);
      continue;
    }
    yield { key: String(n++).padStart(9, '0'), ext, image, caption: s.caption ?? '', json: json(s) };
  }
}

export function csvInputs(file: string, options: CsvOptions, skipped: SkipCounter): Iterable<ShardInput> {
  return fromFiles(new CsvSource(file, { ...options, skipped }), skipped, (s) => ({ source: s.path }));
}

export function folderInputs(root: string, skipped: SkipCounter): Iterable<ShardInput> {
  const folder = new ImageFolderSource(root);
  return fromFiles(folder, skipped, (s) => ({ label: s.label, classname: folder.classnames[s.label!], source: s.path }));
}

/** The synthetic world's samples [0, count) as PNG (lossless) or JPEG images. */
export async function* syntheticInputs(options: SyntheticWorldOptions, count: number, format: 'png' | 'jpg' = 'png'): AsyncGenerator<ShardInput> {
  const world = new SyntheticWorld(options);
  const size = world.imageSize;
  for (let i = 0; i < count; i++) {
    const s = world.materialise(i);
    const img = sharp(Buffer.from(s.bytes.buffer, s.bytes.byteOffset, s.bytes.byteLength), { raw: { width: size, height: size, channels: 3 } });
    const image = await (format === 'png' ? img.png() : img.jpeg({ quality: 95 })).toBuffer();
    yield { key: String(i).padStart(9, '0'), ext: format, image, caption: s.caption, json: { index: s.index, seed: world.seed, captions: world.captions, attributes: s.attributes } };
  }
}

/**
 * Reads every sample of the shards and counts what a loader would skip; with `decode`,
 * also fully decodes each image (catching corrupt and truncated ones).
 */
export async function inspectShards(
  pattern: string | string[],
  decode = true,
  options: { budget?: PixelBudget } = {},
): Promise<{ shards: number; samples: number; skipped: Record<string, number> }> {
  const dataset = new WebDataset({ urls: pattern });
  let samples = 0;
  const budget = options.budget ?? new PixelBudget(Math.max(1, os.availableParallelism()), DEFAULT_PIXEL_BUDGET);
  for await (const s of dataset) {
    if (!decode) {
      samples++;
      continue;
    }
    // The size from the header (no decode); sharp's header parse when ours does not know the format.
    let size = imageHeaderSize(s.image);
    if (!size) {
      try {
        const meta = await sharp(s.image).metadata();
        size = { width: meta.width ?? 0, height: meta.height ?? 0 };
      } catch (err) {
        dataset.skipped.add('corrupt_image', `${s.shard}:${s.key}: ${(err as Error).message}`);
        continue;
      }
    }
    await budget.run(size.width * size.height, () =>
      sharp(s.image)
        .raw()
        .toBuffer()
        .then(
          () => void samples++,
          (err: Error) => dataset.skipped.add('corrupt_image', `${s.shard}:${s.key}: ${err.message}`),
        ),
    );
  }
  await budget.drain();
  return { shards: dataset.shards.length, samples, skipped: dataset.skipped.toJSON() };
}
