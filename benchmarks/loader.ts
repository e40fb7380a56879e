// Loader throughput: decode + RandomResizedCrop + normalise to 224 px in the worker pool,
// against sharp's bare decode-and-resize of the same ~256-px JPEGs, in the same run, for
// 1..N workers. Prints JSON lines; --out FILE also appends them there.
//   node --import=tsx benchmarks/loader.ts [--images 240] [--max-workers N] [--out FILE]
import { appendFileSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';

import { DataLoader } from '../lib/data/loader.js';
import type { RawSample } from '../lib/data/sample.js';
import { SyntheticWorld } from '../lib/data/synthetic.js';

const { values } = parseArgs({ options: { images: { type: 'string' }, 'max-workers': { type: 'string' }, out: { type: 'string' }, passes: { type: 'string' } } });
const count = Number(values.images ?? 240);
const maxWorkers = Number(values['max-workers'] ?? os.availableParallelism());
const passes = Number(values.passes ?? 3);
const cpu = os.cpus()[0]?.model ?? 'unknown';
const SIZE = 224;

function report(line: Record<string, unknown>): void {
  const text = JSON.stringify({ bench: 'loader', cpu, cores: os.availableParallelism(), node: process.version, sharp: sharp.versions.sharp, ...line });
  console.log(text);
  if (values.out) appendFileSync(values.out, text + '\n');
}

// ~256-px JPEGs of a few shapes (as web images come), written to a temp folder.
const dir = mkdtempSync(join(os.tmpdir(), 'clipscale-loader-bench-'));
const world = new SyntheticWorld({ imageSize: 256, size: count });
const shapes: [number, number][] = [[256, 256], [320, 256], [256, 288], [240, 320]];
for (let i = 0; i < count; i++) {
  const [w, h] = shapes[i % shapes.length];
  await sharp(Buffer.from(world.imageBytes(i)), { raw: { width: 256, height: 256, channels: 3 } }).resize(w, h, { fit: 'fill' }).jpeg({ quality: 90 }).toFile(join(dir, `${String(i).padStart(5, '0')}.jpg`));
}
const files = readdirSync(dir).sort().map((f) => readFileSync(join(dir, f)));
rmSync(dir, { recursive: true, force: true });
const meanKiB = files.reduce((a, f) => a + f.length, 0) / files.length / 1024;

/** sharp alone: decode and resize to 224×224 raw RGB, `parallel` images at a time. */
async function bare(parallel: number): Promise<number> {
  sharp.concurrency(1);
  sharp.cache(false);
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next < files.length) {
      const f = files[next++];
      await sharp(f).resize(SIZE, SIZE, { fit: 'fill' }).raw().toBuffer();
    }
  }));
  return files.length / ((performance.now() - t0) / 1000);
}

async function pipeline(workers: number): Promise<{ rate: number; dataMs: number }> {
  const source: RawSample[] = files.map((image, i) => ({ key: String(i), image, caption: '' }));
  const loader = new DataLoader({ source, batchSize: 16, imageSize: SIZE, workers, train: true, prefetch: 4 });
  let n = 0;
  let t0 = 0;
  let dataMs = 0;
  for await (const b of loader) {
    if (n === 0) t0 = performance.now(); // after the first batch: worker start-up is not throughput
    else dataMs += b.dataTimeMs;
    n += b.size;
  }
  return { rate: (n - 16) / ((performance.now() - t0) / 1000), dataMs };
}

report({ case: 'setup', images: count, mean_jpeg_kib: +meanKiB.toFixed(1), output: SIZE, transform: 'RandomResizedCrop(0.9-1.0, bicubic) + normalise' });
for (let workers = 1; workers <= maxWorkers; workers++) {
  let bestBare = 0;
  let bestPipe = 0;
  for (let p = 0; p < passes; p++) {
    bestBare = Math.max(bestBare, await bare(workers));
    bestPipe = Math.max(bestPipe, (await pipeline(workers)).rate);
  }
  report({
    workers,
    bare_sharp_images_per_s: Math.round(bestBare),
    pipeline_images_per_s: Math.round(bestPipe),
    pipeline_per_worker: Math.round(bestPipe / workers),
    ratio_pipeline_to_bare: +(bestPipe / bestBare).toFixed(3),
    passes,
  });
}
