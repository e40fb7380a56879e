import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';

import { DataLoader, syntheticSource, type Batch } from '../lib/data/loader.js';
import { syntheticInputs, writeShards } from '../lib/data/make_shards.js';
import { OPENAI_MEAN, OPENAI_STD } from '../lib/data/normalize.js';
import { Rng } from '../lib/data/rng.js';
import { SyntheticWorld, defaultSyntheticTokenizer } from '../lib/data/synthetic.js';
import { randomResizedCropBox, transformImage } from '../lib/data/transforms.js';
import { WebDataset } from '../lib/data/webdataset.js';

const dir = mkdtempSync(join(tmpdir(), 'clipscale-loader-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

async function collect(loader: DataLoader, limit = Infinity): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of loader) {
    out.push(b);
    if (out.length >= limit) break;
  }
  return out;
}

test('synthetic source: batches equal the world\'s own, with tokens, position and resume', async (t) => {
  const world = new SyntheticWorld({ imageSize: 16, size: 40 });
  const tokenizer = defaultSyntheticTokenizer();
  const make = (startPosition = 0) => new DataLoader({ source: syntheticSource(world, startPosition, 40 - startPosition), batchSize: 8, imageSize: 16, tokenizer, contextLength: 24, startPosition: 0 });
  const loader = make();
  const batches = await collect(loader);
  t.is(batches.length, 5);
  t.is(loader.position, 40);
  const ref = world.batch([8, 9, 10, 11, 12, 13, 14, 15], { tokenizer, contextLength: 24 });
  t.deepEqual(batches[1].pixels, ref.pixels);
  t.deepEqual(batches[1].tokens, ref.tokens);
  t.is(batches[1].position, 16);
  // Resuming at a position gives the batches that followed it.
  const resumed = new DataLoader({ source: syntheticSource(world), batchSize: 8, imageSize: 16, startPosition: 24 });
  const next = await collect(resumed, 1);
  t.deepEqual(next[0].pixels, batches[3].pixels);
  t.is(resumed.position, 32);
  t.throws(() => new DataLoader({ source: [], batchSize: 0, imageSize: 16 }), { message: /batchSize/ });
});

test('shards: workers decode in parallel yet the batches equal a single-threaded run', async (t) => {
  const out = join(dir, 'shards');
  await writeShards(syntheticInputs({ imageSize: 40, size: 48 }, 48, 'jpg'), out, 16);
  const run = async (workers: number, train: boolean) => {
    const ds = new WebDataset({ urls: join(out, '{00000..00002}.tar'), shuffleBuffer: 10, seed: 5 });
    return collect(new DataLoader({ source: ds.epoch(0), batchSize: 12, imageSize: 32, workers, train, seed: 7 }));
  };
  const single = await run(0, true);
  const pooled = await run(2, true);
  t.is(single.length, 4);
  t.deepEqual(pooled.map((b) => b.keys), single.map((b) => b.keys));
  t.deepEqual(pooled.map((b) => b.pixels), single.map((b) => b.pixels));
  const evalRun = await run(2, false);
  t.notDeepEqual(evalRun[0].pixels, single[0].pixels, 'train crops differ from the eval centre crop');
  t.true(pooled.every((b) => b.dataTimeMs >= 0));
  // Leaving early closes the workers (the test would hang otherwise).
  const ds = new WebDataset({ urls: join(out, '{00000..00002}.tar') });
  t.is((await collect(new DataLoader({ source: ds.epoch(0), batchSize: 4, imageSize: 32, workers: 2 }), 1)).length, 1);
});

test('RandomResizedCrop boxes stay inside and keep 90–100% of the area', (t) => {
  const rng = new Rng(1);
  for (let i = 0; i < 500; i++) {
    const W = 100 + rng.int(300);
    const H = 100 + rng.int(300);
    const b = randomResizedCropBox(W, H, rng);
    t.true(b.left >= 0 && b.top >= 0 && b.left + b.width <= W && b.top + b.height <= H);
    const frac = (b.width * b.height) / (W * H);
    const ratio = b.width / b.height;
    // Either a sampled crop (area in scale, ratio in range, up to rounding) or the centre fallback.
    t.true((frac > 0.88 && frac < 1.02 && ratio > 0.73 && ratio < 1.37) || b.width === W || b.height === H, JSON.stringify({ W, H, b }));
  }
});

test('eval transform: resize the shorter side, centre crop, normalise', async (t) => {
  // 60×30: left third blue, middle third red, right third blue → the centre 30×30 crop is mostly red.
  const raw = Buffer.alloc(60 * 30 * 3);
  for (let y = 0; y < 30; y++) for (let x = 0; x < 60; x++) raw.set(x >= 20 && x < 40 ? [255, 0, 0] : [0, 0, 255], (y * 60 + x) * 3);
  const png = await sharp(raw, { raw: { width: 60, height: 30, channels: 3 } }).png().toBuffer();
  const px = await transformImage(png, { size: 15, train: false });
  t.is(px.length, 3 * 15 * 15);
  const at = (c: number, y: number, x: number) => px[c * 225 + y * 15 + x] * OPENAI_STD[c] + OPENAI_MEAN[c];
  t.true(Math.abs(at(0, 7, 7) - 1) < 0.01 && Math.abs(at(2, 7, 7)) < 0.01, 'centre is red');
  t.true(at(2, 7, 0) > 0.5, 'edges of the crop reach into the blue');
  await t.throwsAsync(() => transformImage(Buffer.from('not an image'), { size: 8, train: false }));
});

test('CSV rows and image folders go through the loader (files read in the workers)', async (t) => {
  const { mkdirSync, writeFileSync } = await import('node:fs');
  const { CsvSource } = await import('../lib/data/csv.js');
  const { ImageFolderSource } = await import('../lib/data/image_folder.js');
  const d = join(dir, 'files');
  for (const c of ['cat', 'dog']) mkdirSync(join(d, c), { recursive: true });
  const img = (r: number) => sharp({ create: { width: 20, height: 30, channels: 3, background: { r, g: 0, b: 0 } } }).jpeg().toBuffer();
  writeFileSync(join(d, 'cat', 'a.jpg'), await img(200));
  writeFileSync(join(d, 'dog', 'b.jpg'), await img(20));
  writeFileSync(join(d, 'dog', 'c.jpg'), Buffer.from('broken'));
  writeFileSync(join(d, 'list.csv'), 'filepath,title\ncat/a.jpg,a cat\ndog/b.jpg,"a dog, brown"\nmissing.jpg,gone\n');
  const csv = new CsvSource(join(d, 'list.csv'));
  const [batch] = await collect(new DataLoader({ source: csv, batchSize: 2, imageSize: 8, workers: 1, train: false, skipped: csv.skipped }));
  t.deepEqual(batch.captions, ['a cat', 'a dog, brown']);
  t.is(csv.skipped.get('missing_file'), 1);
  const folder = new ImageFolderSource(d);
  const loader = new DataLoader({ source: folder, batchSize: 8, imageSize: 8, workers: 1, train: false, dropLast: false });
  const [fb] = await collect(loader);
  t.deepEqual(Array.from(fb.labels!), [0, 1]);
  t.is(loader.skipped.get('corrupt_image'), 1);
});

test('image sizes read from JPEG, PNG and WebP headers match sharp', async (t) => {
  const { imageHeaderSize } = await import('../lib/data/image_header.js');
  for (const [w, h] of [[37, 21], [300, 17], [1, 1]]) {
    const base = sharp({ create: { width: w, height: h, channels: 3, background: '#123456' } });
    for (const [fmt, o] of [['jpeg', {}], ['jpeg', { progressive: true }], ['png', {}], ['webp', {}], ['webp', { lossless: true }]] as const) {
      const buf = await base.clone().toFormat(fmt, o).toBuffer();
      t.deepEqual(imageHeaderSize(buf), { width: w, height: h }, `${fmt} ${JSON.stringify(o)} ${w}×${h}`);
    }
  }
  t.is(imageHeaderSize(Buffer.from('not an image')), undefined);
});

test('normalisation: the word loop and the byte loop give the same floats as the formula, at any offset and size', async (t) => {
  const { normalizeHwcToChw } = await import('../lib/data/normalize.js');
  const rng = new Rng(3);
  for (const [h, w, channels, shift] of [[5, 7, 3, 0], [5, 7, 3, 1], [8, 8, 3, 0], [8, 8, 3, 2], [3, 5, 4, 0], [4, 6, 1, 0], [1, 1, 3, 0]] as const) {
    const plane = h * w;
    // `shift` bytes in front: a view that does not start on a 4-byte boundary takes the byte loop.
    const backing = new Uint8Array(shift + plane * channels);
    for (let i = 0; i < backing.length; i++) backing[i] = rng.int(256);
    const hwc = backing.subarray(shift);
    const out = new Float32Array(2 + 3 * plane).fill(99);
    normalizeHwcToChw(hwc, h, w, channels, out, 2);
    t.is(out[0], 99);
    t.is(out[1], 99);
    for (let c = 0; c < 3; c++) {
      for (let p = 0; p < plane; p++) {
        const byte = hwc[p * channels + (channels === 1 ? 0 : c)];
        // As torch computes it in float32 (ToTensor's byte/255, then Normalize's (x − mean)/std).
        const want = Math.fround(Math.fround(Math.fround(byte / 255) - Math.fround(OPENAI_MEAN[c])) / Math.fround(OPENAI_STD[c]));
        if (out[2 + c * plane + p] !== want) return t.fail(`${h}×${w}×${channels} shift ${shift}: channel ${c} pixel ${p} is ${out[2 + c * plane + p]}, want ${want}`);
      }
    }
  }
  t.throws(() => normalizeHwcToChw(new Uint8Array(10), 2, 2, 3, new Float32Array(12)), { message: /expected 12 bytes/ });
});
