// Preprocessing cost per image: clipscale's OpenCLIP-exact transform (JPEGs decoded by
// libjpeg-turbo in the addon, Pillow's resampling in the native core) against sharp's own decode-and-resize
// (shrink-on-load, Catmull-Rom; what clipscale used before, not equal to OpenCLIP) in the
// same run, one thread, per image size and for eval (resize shortest side + centre crop) and
// train (RandomResizedCrop). Prints JSON lines; --out FILE also appends them there.
//   node --import=tsx benchmarks/preprocess.ts [--images 40] [--out FILE]
import { appendFileSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import sharp from 'sharp';

import { SyntheticWorld } from '../lib/data/synthetic.js';
import { randomResizedCropBox, transformToBytes } from '../lib/data/transforms.js';
import { Rng } from '../lib/data/rng.js';

const { values } = parseArgs({ options: { images: { type: 'string' }, out: { type: 'string' } } });
const count = Number(values.images ?? 40);
const cpu = os.cpus()[0]?.model ?? 'unknown';
sharp.concurrency(1);
sharp.cache(false);

function report(line: Record<string, unknown>): void {
  const text = JSON.stringify({ bench: 'preprocess', cpu, load_avg_1m: +os.loadavg()[0].toFixed(2), node: process.version, sharp: sharp.versions.sharp, ...line });
  console.log(text);
  if (values.out) appendFileSync(values.out, text + '\n');
}

/** Images per CPU-second of `f` over the inputs, best of 3 passes. */
async function rate(inputs: Buffer[], f: (input: Buffer, i: number) => Promise<unknown>): Promise<number> {
  let best = 0;
  for (let pass = 0; pass < 3; pass++) {
    const c0 = process.cpuUsage();
    for (let i = 0; i < inputs.length; i++) await f(inputs[i], i);
    const c = process.cpuUsage(c0);
    best = Math.max(best, inputs.length / ((c.user + c.system) / 1e6));
  }
  return best;
}

const world = new SyntheticWorld({ imageSize: 256, size: count });
for (const [w, h] of [[256, 320], [640, 480], [1024, 768]] as const) {
  const inputs: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    inputs.push(await sharp(Buffer.from(world.imageBytes(i)), { raw: { width: 256, height: 256, channels: 3 } }).resize(w, h, { fit: 'fill' }).jpeg({ quality: 90 }).toBuffer());
  }
  for (const train of [false, true]) {
    const ours = await rate(inputs, (input, i) => transformToBytes(input, { size: 224, train, seed: i }));
    const peer = await rate(inputs, (input, i) => {
      if (!train) return sharp(input).resize(224, 224, { kernel: 'cubic', fit: 'cover' }).raw().toBuffer();
      const box = randomResizedCropBox(w, h, new Rng(i));
      return sharp(input).extract(box).resize(224, 224, { kernel: 'cubic', fit: 'fill' }).raw().toBuffer();
    });
    report({ image: `${w}x${h} jpeg`, transform: train ? 'RandomResizedCrop 224' : 'shortest + centre crop 224', openclip_exact_images_per_cpu_s: +ours.toFixed(1), sharp_resize_images_per_cpu_s: +peer.toFixed(1), ratio: +(ours / peer).toFixed(2) });
  }
}
