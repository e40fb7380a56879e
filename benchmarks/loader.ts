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
  const text = JSON.stringify({ bench: 'loader', cpu, cores: os.availableParallelism(), load_avg_1m: +os.loadavg()[0].toFixed(2), node: process.version, sharp: sharp.versions.sharp, ...line });
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
async function bare(parallel: number, kernel: 'lanczos3' | 'cubic'): Promise<{ rate: number; perCpuS: number }> {
  sharp.concurrency(1);
  sharp.cache(false);
  let next = 0;
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next < files.length) {
      const f = files[next++];
      await sharp(f).resize(SIZE, SIZE, { fit: 'fill', kernel }).raw().toBuffer();
    }
  }));
  const c = process.cpuUsage(c0);
  return { rate: files.length / ((performance.now() - t0) / 1000), perCpuS: files.length / ((c.user + c.system) / 1e6) };
}

async function pipeline(workers: number): Promise<{ rate: number; perCpuS: number }> {
  const source: RawSample[] = files.map((image, i) => ({ key: String(i), image, caption: '' }));
  const loader = new DataLoader({ source, batchSize: 16, imageSize: SIZE, workers, train: true, prefetch: 4 });
  let n = 0;
  let t0 = 0;
  let c0 = process.cpuUsage();
  for await (const b of loader) {
    if (n === 0) {
      // After the first batch: worker start-up is not throughput.
      t0 = performance.now();
      c0 = process.cpuUsage();
    }
    n += b.size;
  }
  const c = process.cpuUsage(c0);
  return { rate: (n - 16) / ((performance.now() - t0) / 1000), perCpuS: (n - 16) / ((c.user + c.system) / 1e6) };
}

report({ case: 'setup', images: count, mean_jpeg_kib: +meanKiB.toFixed(1), output: SIZE, transform: 'RandomResizedCrop(0.9-1.0, bicubic) + normalise' });
for (let workers = 1; workers <= maxWorkers; workers++) {
  // Best of `passes`, bare and pipeline alternating, so both see the same machine load.
  // Bare: sharp's default kernel (lanczos3), and bicubic as the pipeline uses.
  const best = { bare: 0, bareCubic: 0, pipe: 0, bareCpu: 0, bareCubicCpu: 0, pipeCpu: 0 };
  for (let p = 0; p < passes; p++) {
    const b = await bare(workers, 'lanczos3');
    const bc = await bare(workers, 'cubic');
    const q = await pipeline(workers);
    best.bare = Math.max(best.bare, b.rate);
    best.bareCubic = Math.max(best.bareCubic, bc.rate);
    best.pipe = Math.max(best.pipe, q.rate);
    best.bareCpu = Math.max(best.bareCpu, b.perCpuS);
    best.bareCubicCpu = Math.max(best.bareCubicCpu, bc.perCpuS);
    best.pipeCpu = Math.max(best.pipeCpu, q.perCpuS);
  }
  report({
    workers,
    bare_sharp_images_per_s: Math.round(best.bare),
    bare_sharp_cubic_images_per_s: Math.round(best.bareCubic),
    pipeline_images_per_s: Math.round(best.pipe),
    pipeline_per_worker: Math.round(best.pipe / workers),
    ratio_pipeline_to_bare: +(best.pipe / best.bare).toFixed(3),
    ratio_pipeline_to_bare_cubic: +(best.pipe / best.bareCubic).toFixed(3),
    bare_images_per_cpu_s: Math.round(best.bareCpu),
    bare_cubic_images_per_cpu_s: Math.round(best.bareCubicCpu),
    pipeline_images_per_cpu_s: Math.round(best.pipeCpu),
    ratio_per_cpu_s: +(best.pipeCpu / best.bareCpu).toFixed(3),
    ratio_per_cpu_s_cubic: +(best.pipeCpu / best.bareCubicCpu).toFixed(3),
    passes,
  });
}
