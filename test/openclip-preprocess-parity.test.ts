// Preprocessing against OpenCLIP 3.3.0's image_transform (Pillow 12.3, torchvision 0.28):
// generated images of awkward sizes and colour modes (1×1, 7×300, upscaled, CMYK JPEG, RGBA
// with transparent edges, L, LA, P, 16-bit grey and colour PNG), in the three resize modes,
// with OpenAI's and another mean/std. The fixture is made by
// benchmarks/reference/openclip_text_image_fixtures.py.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';

import { native } from '../lib/native.js';
import { decodePil, toRgbPil } from '../lib/data/pil_image.js';
import { longestSideSize, pyRound, resizedCropPil, shortestSideSize, transformImage, transformToBytes, type ResizeMode } from '../lib/data/transforms.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const fixtures = join(repoRoot, 'test', '_fixtures', 'openclip');
const meta = JSON.parse(readFileSync(join(fixtures, 'images.json'), 'utf8')) as {
  cases: { image: string; mode: string; resize_mode: ResizeMode; size: number; mean: number[]; std: number[]; expected_png: string; tensor_mean: number; tensor_sumsq: number }[];
  train_cases: { image: string; top: number; left: number; height: number; width: number; size: number; expected_png: string }[];
};

for (const [i, c] of meta.train_cases.entries()) {
  test(`training crop #${i} ${c.image} box (${c.left}, ${c.top}, ${c.width}x${c.height}) → ${c.size}: torchvision's resized_crop, byte for byte`, async (t) => {
    const im = await decodePil(readFileSync(join(fixtures, 'images', c.image)));
    const got = toRgbPil(resizedCropPil(im, { left: c.left, top: c.top, width: c.width, height: c.height }, c.size));
    const expected = await sharp(readFileSync(join(fixtures, 'images', c.expected_png))).removeAlpha().raw().toBuffer();
    let differing = 0;
    for (let k = 0; k < got.length; k++) if (got[k] !== expected[k]) differing++;
    t.is(got.length, expected.length);
    t.is(differing, 0, `${differing} of ${got.length} samples differ`);
  });
}

for (const [i, c] of meta.cases.entries()) {
  test(`#${i} ${c.image} (${c.mode}) ${c.resize_mode} ${c.size}: within 1 grey level of OpenCLIP, same normalised tensor`, async (t) => {
    const input = readFileSync(join(fixtures, 'images', c.image));
    const expected = await sharp(readFileSync(join(fixtures, 'images', c.expected_png))).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    t.is(expected.info.width, c.size);
    const spec = { size: c.size, train: false, resizeMode: c.resize_mode, normalization: { mean: c.mean, std: c.std } };
    const { data, channels } = await transformToBytes(input, spec);
    t.is(channels, 3);
    let sum = 0;
    let max = 0;
    for (let k = 0; k < data.length; k++) {
      const d = Math.abs(data[k] - expected.data[k]);
      sum += d;
      max = Math.max(max, d);
    }
    const mad = sum / data.length;
    t.true(mad <= 1, `mean absolute difference ${mad.toFixed(3)} grey levels (max ${max})`);
    t.log(`MAD ${mad.toFixed(4)}, max ${max}`);
    const x = await transformImage(input, spec);
    let s = 0;
    let s2 = 0;
    for (const v of x) {
      s += v;
      s2 += v * v;
    }
    t.true(Math.abs(s / x.length - c.tensor_mean) <= 1e-5 * Math.max(1, Math.abs(c.tensor_mean)), `tensor mean ${s / x.length} vs ${c.tensor_mean}`);
    t.true(Math.abs(s2 - c.tensor_sumsq) <= 1e-5 * c.tensor_sumsq, `tensor sum of squares ${s2} vs ${c.tensor_sumsq}`);
  });
}

test('size arithmetic: torchvision truncates the long side, timm rounds half to even', (t) => {
  t.deepEqual(shortestSideSize(640, 480, 224), { width: 298, height: 224 }); // 298.67 truncated
  t.deepEqual(shortestSideSize(7, 300, 224), { width: 224, height: 9600 });
  t.deepEqual(longestSideSize(160, 120, 72), { width: 72, height: 54 });
  t.is(pyRound(0.5), 0);
  t.is(pyRound(1.5), 2);
  t.is(pyRound(2.5), 2);
  t.is(pyRound(-0.5), -0);
});

test('resizePil: a convolution with normalised bicubic weights (checked in double precision)', (t) => {
  // Downscale 13 → 5 of one row: Pillow's support is 2·(13/5); each output is the weighted
  // mean of the taps, rounded; the fixed-point path may differ from the double sum by < 1.
  const src = Uint8Array.from({ length: 13 }, (_, i) => (i * 37 + 11) % 256);
  const out = native.resizePil(src, 13, 1, 1, 5, 1, 'bicubic', null, false);
  const scale = 13 / 5;
  const cubic = (x: number) => {
    x = Math.abs(x);
    return x < 1 ? 1.5 * x ** 3 - 2.5 * x ** 2 + 1 : x < 2 ? -0.5 * x ** 3 + 2.5 * x ** 2 - 4 * x + 2 : 0;
  };
  for (let o = 0; o < 5; o++) {
    const center = (o + 0.5) * scale;
    let acc = 0;
    let w = 0;
    for (let i = Math.max(0, Math.trunc(center - 2 * scale + 0.5)); i < Math.min(13, Math.trunc(center + 2 * scale + 0.5)); i++) {
      const k = cubic((i - center + 0.5) / scale);
      acc += k * src[i];
      w += k;
    }
    const ref = Math.min(255, Math.max(0, acc / w));
    t.true(Math.abs(out[o] - ref) <= 0.5 + 1e-9, `output ${o}: ${out[o]} vs ${ref.toFixed(3)}`);
  }
  // Identity size copies; 16-bit one channel keeps 16 bits.
  t.deepEqual(Array.from(native.resizePil(src, 13, 1, 1, 13, 1, 'bicubic', null, false)), Array.from(src));
  const wide = native.resizePil(Uint16Array.of(1000, 60000), 2, 1, 1, 4, 1, 'bilinear', null, false);
  t.true(wide instanceof Uint16Array && wide[0] === 1000 && wide[3] === 60000);
});

test('resizePil: bad arguments are clear errors', (t) => {
  const px = new Uint8Array(12);
  t.throws(() => native.resizePil(px, 2, 2, 3, 0, 2, 'bicubic', null, false), { message: /resizePil: sizes must be positive/ });
  t.throws(() => native.resizePil(px, 2, 2, 4, 1, 1, 'bicubic', null, false), { message: /resizePil: src holds 12 bytes/ });
  t.throws(() => native.resizePil(px, 2, 2, 3, 1, 1, 'lanczos' as 'bicubic', null, false), { message: /filter must be/ });
  t.throws(() => native.resizePil(px, 2, 2, 3, 1, 1, 'bicubic', [0, 0, 3, 2], false), { message: /box .* is not inside/ });
  t.throws(() => native.resizePil(new Uint16Array(12), 2, 2, 3, 1, 1, 'bicubic', null, false), { message: /16-bit images must have one channel/ });
});

test('a corrupt image is an error that says so', async (t) => {
  await t.throwsAsync(() => transformToBytes(Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 1, 2, 3), { size: 8, train: false }));
  await t.throwsAsync(() => transformToBytes(new Uint8Array(10), { size: 8, train: false, resizeMode: 'fit' as ResizeMode }));
});

test('the loader (decode workers) gives the same pixels as transformImage, with a model\'s preprocessing', async (t) => {
  const { DataLoader } = await import('../lib/data/loader.js');
  const cases = meta.cases.filter((c) => c.size === 64);
  const preprocess = { resizeMode: 'longest' as const };
  const normalization = { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] };
  const source = cases.map((c, i) => ({ key: `${i}`, image: readFileSync(join(fixtures, 'images', c.image)), caption: 'x' }));
  const loader = new DataLoader({ source, batchSize: source.length, imageSize: 64, train: false, workers: 1, preprocess, normalization });
  const batches = [];
  for await (const b of loader) batches.push(b);
  t.is(batches.length, 1);
  const plane = 3 * 64 * 64;
  for (const [i, s] of source.entries()) {
    const want = await transformImage(s.image, { size: 64, train: false, ...preprocess, normalization });
    t.deepEqual(batches[0].pixels.subarray(i * plane, (i + 1) * plane), want, `sample ${i}`);
  }
});
