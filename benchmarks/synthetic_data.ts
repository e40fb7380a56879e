// The synthetic world's training batches (what the study's steps wait on): milliseconds a batch in
// the first epoch (every image rendered) and the second (kept images read back), with the image
// cache on (default) and off. One JSON line per (cache, epoch).
//
//   node --import=tsx benchmarks/synthetic_data.ts [--size 20000] [--batch-size 32] [--image-size 32]
import { parseArgs } from 'node:util';

import { defaultSyntheticTokenizer } from '../lib/data/synthetic.js';
import { SyntheticData } from '../lib/train/sources.js';

const { values } = parseArgs({ options: { size: { type: 'string' }, 'batch-size': { type: 'string' }, 'image-size': { type: 'string' } } });
function whole(name: 'size' | 'batch-size' | 'image-size', fallback: number): number {
  const v = values[name] === undefined ? fallback : Number(values[name]);
  if (!Number.isInteger(v) || v < 1) throw new Error(`synthetic_data: --${name} must be a whole number ≥ 1, got ${JSON.stringify(values[name])}`);
  return v;
}
const size = whole('size', 20_000), batchSize = whole('batch-size', 32), imageSize = whole('image-size', 32);
const batches = Math.floor(size / batchSize);
for (const cache of ['on', 'off'] as const) {
  const data = new SyntheticData({ size, imageSize, contextLength: 32, captions: 'labels', tokenizer: defaultSyntheticTokenizer(), ...(cache === 'off' ? { imageCacheBytes: 0 } : {}) });
  let position = 0;
  for (const epoch of [1, 2]) {
    const t0 = performance.now();
    for (let b = 0; b < batches; b++, position += batchSize) await data.batch(position, batchSize);
    const ms = (performance.now() - t0) / batches;
    console.log(JSON.stringify({ bench: 'synthetic-data', size, batch_size: batchSize, image_size: imageSize, cache, epoch, ms_per_batch: Number(ms.toFixed(3)), us_per_image: Number(((ms * 1000) / batchSize).toFixed(1)) }));
  }
}
