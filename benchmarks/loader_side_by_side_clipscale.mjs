// The clipscale side of benchmarks/loader_side_by_side.ts, in a process of its own as the PIL
// side is (plain Node on the compiled dist/, as users run clipscale; with --from-source the
// driver starts it under tsx and it loads lib/). Reads the JPEG files into memory, then runs
// `--passes` passes of DataLoader over them and prints one JSON line per pass, timed from the
// first batch to the last, CPU from process.cpuUsage (main thread and decode workers).
//   node benchmarks/loader_side_by_side_clipscale.mjs --files LIST.json --workers 2 --draft 1 --mode train --passes 3
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    files: { type: 'string' }, workers: { type: 'string' }, batch: { type: 'string' }, size: { type: 'string' },
    draft: { type: 'string' }, mode: { type: 'string' }, passes: { type: 'string' }, 'from-source': { type: 'boolean' },
  },
});
const { DataLoader } = await import(values['from-source'] ? '../lib/data/loader.ts' : '../dist/data/loader.js');
const images = JSON.parse(readFileSync(values.files, 'utf8')).map((p) => new Uint8Array(readFileSync(p)));
const source = images.map((image, i) => ({ key: String(i), image, caption: '' }));
for (let pass = 0; pass < Number(values.passes ?? 3); pass++) {
  const loader = new DataLoader({
    source, batchSize: Number(values.batch ?? 16), imageSize: Number(values.size ?? 224), workers: Number(values.workers ?? 2),
    train: (values.mode ?? 'train') === 'train', prefetch: 4, dropLast: false, preprocess: { draft: values.draft === '1' },
  });
  let n = 0;
  let first = true;
  let t0 = 0;
  let t1 = 0;
  let c0 = process.cpuUsage();
  let c1 = c0;
  for await (const b of loader) {
    if (first) {
      // After the first batch: worker start-up is not throughput (as on the PIL side).
      first = false;
      t0 = t1 = performance.now();
      c0 = c1 = process.cpuUsage();
      continue;
    }
    n += b.size;
    t1 = performance.now();
    c1 = process.cpuUsage();
  }
  const cpu = (c1.user - c0.user + c1.system - c0.system) / 1e6;
  console.log(JSON.stringify({ pass, images: n, seconds: (t1 - t0) / 1000, images_per_s: n / ((t1 - t0) / 1000), images_per_cpu_s: n / cpu }));
}
