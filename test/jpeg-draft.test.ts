// Shrink-on-load JPEG decoding (lib/data/jpeg_draft.ts, native/cpu/jpeg_decode.cpp) against
// Pillow's Image.draft + OpenCLIP's transforms. Fixtures by benchmarks/reference/jpeg_draft_fixtures.py
// (Pillow 12.3 with libjpeg-turbo 3.1.4, torchvision 0.28): 4:2:0, 4:2:2, 4:4:4, greyscale,
// progressive and CMYK JPEGs, scales 1, 2, 4, 8.
//
// Tolerance: none. The decoded image must equal Pillow's byte for byte (SHA-256 of the samples)
// and the transformed output too. Both sides run libjpeg-turbo's default decode (JDCT_ISLOW
// integer IDCT, its scaled IDCTs for 1/2..1/8, fancy upsampling: Pillow sets neither
// dct_method nor do_fancy_upsampling unless draft's second argument asks, and it does not), whose
// output is the same in libjpeg-turbo 2.1 (ours, Debian's static library) and 3.1 (Pillow's
// wheel); the SIMD and C paths of those IDCTs are bit-exact with each other.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import test from 'ava';
import sharp from 'sharp';

import { UsageError } from '../lib/cli/command.js';
import { runTrain } from '../lib/cli/commands/train.js';
import { DataLoader } from '../lib/data/loader.js';
import { defaultSyntheticTokenizer } from '../lib/data/synthetic.js';
import { TarWriter } from '../lib/data/tar_write.js';
import { draftScaleFor, pilDraftScale, trainDraftScale, type DraftScale } from '../lib/data/jpeg_draft.js';
import { decodeJpegPil, decodePil, decodePilWithSharp, toRgbPil } from '../lib/data/pil_image.js';
import { resizedCropPil, transformToBytes, type ResizeMode } from '../lib/data/transforms.js';
import { native } from '../lib/native.js';
import { WebDatasetData } from '../lib/train/webdataset_source.js';
import { writeMicroConfig } from './_helpers/train_cli.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '_fixtures', 'jpeg_draft');
const meta = JSON.parse(readFileSync(join(fixtures, 'cases.json'), 'utf8')) as {
  eval_cases: { image: string; pil_mode: string; resize_mode: ResizeMode; size: number; request: [number, number]; stored: [number, number]; decoded: [number, number]; decoded_sha256: string; expected_png: string }[];
  train_cases: { image: string; size: number; scale: DraftScale; decoded: [number, number]; decoded_sha256: string; left: number; top: number; width: number; height: number; expected_png: string }[];
  scale_table: { stored: [number, number]; request: [number, number]; decoded: [number, number] }[];
};
const read = (name: string) => new Uint8Array(readFileSync(join(fixtures, name)));
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function expectedRgb(png: string): Promise<Buffer> {
  return sharp(readFileSync(join(fixtures, png))).removeAlpha().raw().toBuffer();
}

function differing(a: Uint8Array, b: Uint8Array): { count: number; max: number } {
  let count = 0;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (d) count++;
    max = Math.max(max, d);
  }
  return { count, max };
}

test('the addon is built with libjpeg-turbo (install libjpeg62-turbo-dev and rebuild otherwise)', (t) => {
  t.true(native.jpegSupported());
});

test("draft scale: Pillow's rule for a requested size, on stored sizes from 9×9 to 4000×3000", (t) => {
  for (const c of meta.scale_table) {
    const [w, h] = c.stored;
    const s = pilDraftScale(w, h, c.request[0], c.request[1]);
    t.deepEqual([Math.ceil(w / s), Math.ceil(h / s)], c.decoded, `${w}×${h} asking ${c.request.join('×')}: scale ${s}`);
  }
});

test('draft scale of the transforms: eval asks for its resize target, training for crops that stay ≥ size', (t) => {
  for (const c of meta.eval_cases) {
    const s = draftScaleFor({ size: c.size, train: false, resizeMode: c.resize_mode }, c.stored[0], c.stored[1]);
    t.deepEqual([Math.ceil(c.stored[0] / s), Math.ceil(c.stored[1] / s)], c.decoded, `${c.image} ${c.resize_mode} ${c.size}`);
  }
  // Training: 640×480 → 224 at 1/2 (320×240: a 0.9-area crop at ratio 3/4 is ≥ 227 px a side);
  // 1/4 would give 160×120, smaller than the crop. 448×448 → 224: 1/2 would leave crops of 212 px.
  t.is(trainDraftScale(640, 480, 224), 2);
  t.is(trainDraftScale(448, 448, 224), 1);
  t.is(trainDraftScale(4000, 3000, 224), 8);
  t.is(trainDraftScale(4000, 3000, 224, [0.08, 1]), 2); // torchvision's default scale range: small crops, little shrink
  t.is(trainDraftScale(100, 80, 224), 1);
  // The bound holds: for every scale chosen, the smallest crop RandomResizedCrop can draw is ≥ size.
  for (const [w, h, size] of [[640, 480, 224], [1000, 700, 96], [3000, 500, 64], [720, 540, 112]] as const) {
    const s = trainDraftScale(w, h, size);
    const dw = Math.ceil(w / s);
    const dh = Math.ceil(h / s);
    t.true(Math.round(Math.sqrt(dw * dh * 0.9 * 0.75)) >= size && Math.round(Math.sqrt((dw * dh * 0.9) / (4 / 3))) >= size && Math.min(dw, dh) >= size, `${w}×${h} → ${size} at 1/${s}`);
  }
  for (const c of meta.train_cases) t.is(trainDraftScale(c.decoded[0] * c.scale, c.decoded[1] * c.scale, c.size) >= 1, true);
});

for (const [i, c] of meta.eval_cases.entries()) {
  test(`eval #${i} ${c.image} ${c.resize_mode} ${c.size}: draft decode to ${c.decoded.join('×')} and the transform equal Pillow + OpenCLIP's`, async (t) => {
    const bytes = read(c.image);
    const s = draftScaleFor({ size: c.size, train: false, resizeMode: c.resize_mode }, c.stored[0], c.stored[1]);
    const im = decodeJpegPil(bytes, s);
    t.is(im.mode, c.pil_mode);
    t.deepEqual([im.width, im.height], c.decoded);
    t.is(sha256(im.data as Uint8Array), c.decoded_sha256, 'decoded samples differ from Pillow draft');
    const { data } = await transformToBytes(bytes, { size: c.size, train: false, resizeMode: c.resize_mode, draft: true });
    const expected = await expectedRgb(c.expected_png);
    t.is(data.length, expected.length);
    const d = differing(data, expected);
    t.is(d.count, 0, `${d.count} of ${data.length} samples differ (max ${d.max})`);
  });
}

for (const [i, c] of meta.train_cases.entries()) {
  test(`train #${i} ${c.image} → ${c.size}: decode at 1/${c.scale} + resized_crop equal Pillow draft + torchvision`, async (t) => {
    const bytes = read(c.image);
    const im = decodeJpegPil(bytes, c.scale);
    t.deepEqual([im.width, im.height], c.decoded);
    t.is(sha256(im.data as Uint8Array), c.decoded_sha256);
    const out = toRgbPil(resizedCropPil(im, { left: c.left, top: c.top, width: c.width, height: c.height }, c.size));
    const d = differing(out, await expectedRgb(c.expected_png));
    t.is(d.count, 0, `${d.count} samples differ (max ${d.max})`);
  });
}

test("at scale 1 the libjpeg-turbo decode (the default for JPEGs) equals sharp's decode of every fixture", async (t) => {
  for (const name of new Set(meta.eval_cases.map((c) => c.image))) {
    const bytes = read(name);
    const ours = await decodePil(bytes);
    t.deepEqual(ours, decodeJpegPil(bytes, 1));
    const viaSharp = await decodePilWithSharp(bytes);
    t.is(ours.mode, viaSharp.mode, name);
    t.deepEqual([ours.width, ours.height, ours.channels], [viaSharp.width, viaSharp.height, viaSharp.channels], name);
    t.is(differing(ours.data as Uint8Array, viaSharp.data as Uint8Array).count, 0, name);
  }
});

test('draft leaves non-JPEG images and the default path alone', async (t) => {
  const png = await sharp(read('rgb420_640x480.jpg')).png().toBuffer();
  const a = await transformToBytes(png, { size: 96, train: false, draft: true });
  const b = await transformToBytes(png, { size: 96, train: false });
  t.deepEqual(a.data, b.data);
  // Without draft a JPEG is decoded whole: a different (OpenCLIP-exact) result from the draft one.
  const jpg = read('rgb420_640x480.jpg');
  const full = await transformToBytes(jpg, { size: 96, train: false });
  const drafted = await transformToBytes(jpg, { size: 96, train: false, draft: true });
  t.true(differing(full.data, drafted.data).count > 0);
});

// ── hostile input: every failure is a JS error that names the problem, never a crash ──

function jpegWithSize(bytes: Uint8Array, width: number, height: number): Uint8Array {
  const out = new Uint8Array(bytes);
  for (let i = 2; i + 9 < out.length;) {
    const marker = out[i + 1];
    const len = (out[i + 2] << 8) | out[i + 3];
    if (marker >= 0xc0 && marker <= 0xc2) {
      out[i + 5] = height >> 8;
      out[i + 6] = height & 255;
      out[i + 7] = width >> 8;
      out[i + 8] = width & 255;
      return out;
    }
    i += 2 + len;
  }
  throw new Error('no SOF marker');
}

test('hostile JPEGs: truncated, corrupt, empty, not a JPEG, huge declared size, zero size', (t) => {
  const good = read('rgb420_640x480.jpg');
  const progressive = read('progressive420_720x540.jpg');
  const cases: [string, Uint8Array, RegExp][] = [
    ['empty', new Uint8Array(0), /empty \(0 bytes\)/],
    ['not a JPEG', new TextEncoder().encode('hello, world'), /Not a JPEG file/],
    ['header only', good.subarray(0, 300), /Premature end of JPEG file|corrupt JPEG data/],
    ['truncated half way', good.subarray(0, good.length >> 1), /Premature end of JPEG file/],
    ['truncated progressive', progressive.subarray(0, progressive.length >> 1), /Premature end of JPEG file|corrupt JPEG data/],
    ['60000×60000 declared', jpegWithSize(good, 60000, 60000), /60000x60000 \(3600000000 pixels\) is over the limit of 178956970 pixels/],
    ['65535×65535 declared', jpegWithSize(good, 65535, 65535), /Maximum supported image dimension is 65500 pixels/],
    ['zero width', jpegWithSize(good, 0, 480), /Empty JPEG image|Bogus|corrupt|Invalid/i],
  ];
  // Corrupt entropy-coded data: bytes after the header overwritten.
  const corrupt = new Uint8Array(good);
  for (let i = 700; i < corrupt.length - 2; i += 97) corrupt[i] = 0xff;
  cases.push(['corrupt scan data', corrupt, /corrupt JPEG data|Corrupt JPEG data|Unsupported marker|Bogus/]);
  for (const [what, bytes, message] of cases) {
    for (const scale of [1, 4] as const) {
      const err = t.throws(() => native.decodeJpeg(bytes, scale, 2 * 89_478_485), undefined, `${what} at 1/${scale}`);
      t.regex(err?.message ?? '', /^decodeJpeg: /, what);
      t.regex(err?.message ?? '', message, `${what}: ${err?.message}`);
    }
  }
  t.throws(() => native.decodeJpeg(good, 3 as 2, 1e9), { message: /scale must be 1, 2, 4 or 8, got 3/ });
  // Thousands of failed decodes leak nothing that grows the heap much (jpeg_destroy_decompress on the error path).
  const before = process.memoryUsage().rss;
  for (let k = 0; k < 3000; k++) {
    try {
      native.decodeJpeg(good.subarray(0, good.length >> 1), 1, 1e9);
    } catch {
      // expected
    }
  }
  t.true(process.memoryUsage().rss - before < 64 * 2 ** 20, `rss grew by ${((process.memoryUsage().rss - before) / 2 ** 20).toFixed(1)} MiB`);
});

test('the loader with draft skips hostile JPEGs as corrupt_image, as without draft, and keeps going', async (t) => {
  const good = read('rgb420_640x480.jpg');
  const source = [
    { key: 'ok-1', image: good, caption: 'a' },
    { key: 'truncated', image: good.subarray(0, good.length >> 1), caption: 'b' },
    { key: 'huge', image: jpegWithSize(good, 60000, 60000), caption: 'c' },
    { key: 'ok-2', image: read('gray_500x375.jpg'), caption: 'd' },
    { key: 'empty', image: new Uint8Array(0), caption: 'e' },
    { key: 'ok-3', image: read('cmyk_400x300.jpg'), caption: 'f' },
  ];
  for (const draft of [true, false]) {
    const loader = new DataLoader({ source, batchSize: 3, imageSize: 64, workers: 1, train: true, preprocess: { draft } });
    const keys: string[] = [];
    for await (const b of loader) keys.push(...b.keys);
    t.deepEqual(keys, ['ok-1', 'ok-2', 'ok-3'], `draft ${draft}`);
    const skipped = loader.skipped.toJSON();
    t.is(skipped.corrupt_image, 3, `draft ${draft}: ${JSON.stringify(skipped)}`);
    if (draft) t.regex(loader.skipped.exampleOf('corrupt_image').join('\n'), /truncated: decodeJpeg: corrupt JPEG data: Premature end of JPEG file/);
  }
});

// ── `clipscale train --jpeg-draft`: shard JPEGs decoded with draft; synthetic data refuses it ──

test('clipscale train --jpeg-draft: shard JPEGs decode shrunk, the run trains; the synthetic world refuses the flag', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cs-jpeg-draft-'));
  try {
    const tokenizer = defaultSyntheticTokenizer();
    const model = writeMicroConfig(join(dir, 'micro.json'), tokenizer.vocabSize);
    // 640×480 JPEGs for a 16-pixel model: training draft decodes them at 1/8 (80×60).
    const w = new TarWriter(join(dir, '00000.tar'));
    const jpegs = ['rgb420_640x480.jpg', 'progressive420_720x540.jpg', 'gray_500x375.jpg', 'cmyk_400x300.jpg'];
    for (let i = 0; i < 16; i++) {
      w.add(`s${i}.jpg`, read(jpegs[i % jpegs.length]));
      w.add(`s${i}.txt`, `a photo number ${i}`);
    }
    w.close();
    const shards = join(dir, '00000.tar');
    const data = (jpegDraft: boolean) => new WebDatasetData({ urls: shards, imageSize: 16, contextLength: 16, tokenizer, seed: 1, shuffleBuffer: 1, workers: 0, jpegDraft });
    const batches: Float32Array[] = [];
    for (const draft of [true, true, false]) {
      const d = data(draft);
      batches.push(Float32Array.from((await d.batch(0, 8)).images));
      await d.close();
    }
    t.deepEqual(batches[0], batches[1], 'deterministic');
    t.notDeepEqual(batches[0], batches[2], 'draft changes the decode');
    t.is(trainDraftScale(640, 480, 16), 8);
    const r = await runTrain(['--model', model, '--data', shards, '--vocab', 'synthetic', '--batch-size', '8', '--samples', '16', '--workers', '1', '--jpeg-draft', '--out', join(dir, 'run')], { console: null });
    t.is(r.steps, 2);
    t.deepEqual(r.skipped_samples ?? {}, {});
    await t.throwsAsync(runTrain(['--model', model, '--data', 'synthetic:size=40', '--batch-size', '8', '--samples', '16', '--jpeg-draft']), {
      instanceOf: UsageError,
      message: /--jpeg-draft is for JPEGs in webdataset shards/,
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('EXIF orientation is ignored, as Pillow in OpenCLIP and the sharp path ignore it: the stored pixels, not rotated', async (t) => {
  const rotated = new Uint8Array(await sharp(read('rgb420_640x480.jpg')).withMetadata({ orientation: 6 }).jpeg({ quality: 90 }).toBuffer());
  t.is((await sharp(rotated).metadata()).orientation, 6);
  const ours = await decodePil(rotated);
  t.deepEqual([ours.width, ours.height], [640, 480]);
  const viaSharp = await decodePilWithSharp(rotated);
  t.is(differing(ours.data as Uint8Array, viaSharp.data as Uint8Array).count, 0);
  const drafted = decodeJpegPil(rotated, 2);
  t.deepEqual([drafted.width, drafted.height], [320, 240]);
});

test('mutated JPEGs (seeded: header bytes, scan bytes, truncation; every scale) decode or throw a decodeJpeg error, never crash', (t) => {
  const sources = [...new Set(meta.eval_cases.map((c) => c.image))].map(read);
  let seed = 12345;
  const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  let decoded = 0;
  let refused = 0;
  for (let k = 0; k < 800; k++) {
    const b = new Uint8Array(sources[k % sources.length]);
    for (let j = 1 + Math.floor(rnd() * 8); j > 0; j--) b[Math.floor(rnd() < 0.7 ? rnd() * Math.min(700, b.length) : rnd() * b.length)] = Math.floor(rnd() * 256);
    const end = rnd() < 0.2 ? Math.floor(rnd() * b.length) : b.length;
    try {
      const d = native.decodeJpeg(b.subarray(0, end), ([1, 2, 4, 8] as const)[k % 4], 2 * 89_478_485);
      t.is(d.data.length, d.width * d.height * d.channels);
      decoded++;
    } catch (err) {
      t.regex((err as Error).message, /^decodeJpeg: \S/);
      refused++;
    }
  }
  t.log(`${decoded} decoded, ${refused} refused`);
  t.true(decoded > 50 && refused > 300);
});
