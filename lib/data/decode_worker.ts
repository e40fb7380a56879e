// A decode worker: receives encoded images (or file paths), decodes, transforms and
// normalises them one at a time (so a pool of N workers decodes N images at once), and
// sends back CHW floats, or the reason it could not.
import { parentPort } from 'node:worker_threads';
import sharp from 'sharp';

import { transformImage, type TransformSpec } from './transforms.js';

export interface DecodeJob {
  id: number;
  image?: Uint8Array;
  path?: string;
  spec: TransformSpec;
}

export type DecodeResult = { id: number; pixels: Float32Array } | { id: number; error: string; reason: 'corrupt_image' | 'unreadable_file' };

if (!parentPort) throw new Error('decode_worker must run in a worker thread');
const port = parentPort;
// One libvips thread: parallelism comes from the number of workers.
sharp.concurrency(1);
sharp.cache(false);

// Output buffers the loader has copied from and sent back: reused, so a worker in steady
// state allocates no new 600 KB arrays (fresh memory costs page faults and GC).
const free: Float32Array[] = [];

let chain = Promise.resolve();
port.on('message', (message: DecodeJob | { recycle: Float32Array }) => {
  if ('recycle' in message) {
    if (free.length < 16) free.push(message.recycle);
    return;
  }
  const job = message;
  chain = chain.then(async () => {
    let result: DecodeResult;
    try {
      let input: Uint8Array | string;
      if (job.image) input = job.image;
      else {
        const { readFile } = await import('node:fs/promises');
        try {
          input = await readFile(job.path!);
        } catch (err) {
          port.postMessage({ id: job.id, error: (err as Error).message, reason: 'unreadable_file' } satisfies DecodeResult);
          return;
        }
      }
      const length = 3 * job.spec.size * job.spec.size;
      let out = free.pop();
      while (out && out.length !== length) out = free.pop();
      const pixels = await transformImage(input, job.spec, out);
      result = { id: job.id, pixels };
      port.postMessage(result, [pixels.buffer as ArrayBuffer]);
    } catch (err) {
      port.postMessage({ id: job.id, error: (err as Error).message, reason: 'corrupt_image' } satisfies DecodeResult);
    }
  });
});
