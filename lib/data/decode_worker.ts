// A decode worker: receives encoded images (or file paths), decodes, transforms and
// normalises them in order, and sends back CHW floats, or the reason it could not.
//
// JPEGs are decoded by libjpeg-turbo in the addon, synchronously on this thread (a pool of N
// workers decodes N at once). Other formats go through libvips, one image at a time on libuv's
// thread pool; there the next image's decode starts before this one is normalised and posted
// (on this thread), so that JavaScript work overlaps the decode instead of adding to it.
import { parentPort } from 'node:worker_threads';
import sharp from 'sharp';

import { normalizeHwcToChw } from './normalize.js';
import { transformToBytes, type TransformSpec } from './transforms.js';
import { MAX_IMAGE_FILE_BYTES, readRegularFile } from '../util/regular_file.js';

export interface DecodeJob {
  id: number;
  image?: Uint8Array;
  path?: string;
  spec: TransformSpec;
}

export type DecodeResult = { id: number; pixels: Float32Array } | { id: number; error: string; reason: 'corrupt_image' | 'unreadable_file' };

/** Messages to a worker: jobs, and output arrays handed back for reuse. */
export type WorkerMessage = DecodeJob | { recycle: Float32Array[] };

if (!parentPort) throw new Error('decode_worker must run in a worker thread');
const port = parentPort;
// One libvips thread: parallelism comes from the number of workers.
sharp.concurrency(1);
sharp.cache(false);

// Output buffers the loader has copied from and sent back: reused, so a worker in steady
// state allocates no new 600 KB arrays (fresh memory costs page faults and GC).
const free: Float32Array[] = [];

type Decoded = { job: DecodeJob; data: Uint8Array; channels: number } | { job: DecodeJob; error: string; reason: 'corrupt_image' | 'unreadable_file' };

/** Reads (for a path) and decodes + transforms to HWC bytes; never rejects. */
async function decode(job: DecodeJob): Promise<Decoded> {
  let input: Uint8Array;
  if (job.image) input = job.image;
  else {
    try {
      input = await readRegularFile(job.path!, { what: 'image', maxBytes: MAX_IMAGE_FILE_BYTES });
    } catch (err) {
      return { job, error: (err as Error).message, reason: 'unreadable_file' };
    }
  }
  try {
    return { job, ...(await transformToBytes(input, job.spec)) };
  } catch (err) {
    return { job, error: (err as Error).message, reason: 'corrupt_image' };
  }
}

function finish(d: Decoded): void {
  if ('error' in d) {
    port.postMessage({ id: d.job.id, error: d.error, reason: d.reason } satisfies DecodeResult);
    return;
  }
  const { size } = d.job.spec;
  const length = 3 * size * size;
  let out = free.pop();
  while (out && out.length !== length) out = free.pop();
  out ??= new Float32Array(length);
  normalizeHwcToChw(d.data, size, size, d.channels, out, 0, d.job.spec.normalization);
  port.postMessage({ id: d.job.id, pixels: out } satisfies DecodeResult, [out.buffer as ArrayBuffer]);
}

const queue: DecodeJob[] = [];
let running = false;

async function drain(): Promise<void> {
  running = true;
  let current: Promise<Decoded> | undefined = decode(queue.shift()!);
  while (current) {
    const done: Decoded = await current;
    // Start the next decode first: it runs in libvips while this thread normalises.
    current = queue.length > 0 ? decode(queue.shift()!) : undefined;
    finish(done);
  }
  running = false;
}

port.on('message', (message: WorkerMessage) => {
  if ('recycle' in message) {
    for (const a of message.recycle) if (free.length < 32) free.push(a);
    return;
  }
  queue.push(message);
  if (!running) void drain();
});
