// The data loader: samples from any source → batches of normalised pixels [B, 3, H, W] and
// token ids [B, context], decoded by a pool of worker threads and prefetched, so a training
// step finds its next batch ready when the loader keeps up.
//
//   const loader = new DataLoader({ source: dataset.epoch(0), batchSize: 256, imageSize: 224, tokenizer });
//   for await (const batch of loader) { … batch.pixels, batch.tokens, batch.dataTimeMs … }
//   loader.position   // samples consumed, for resuming with { startPosition }
//
// Order is deterministic: batch k holds the valid samples that follow batch k−1 in the
// source's order, whatever worker decoded them, and each sample's random crop is seeded by
// (seed, its position in the source).
import os from 'node:os';
import { Worker } from 'node:worker_threads';

import { native } from '../native.js';
import type { DecodeJob, DecodeResult, WorkerMessage } from './decode_worker.js';
import type { Normalization } from './normalize.js';
import { hashInts } from './rng.js';
import type { RawSample } from './sample.js';
import { SkipCounter } from './skip_counter.js';
import type { TransformSpec } from './transforms.js';
import type { SyntheticWorld } from './synthetic.js';
import { DEFAULT_CONTEXT_LENGTH, type Tokenizer } from './tokenizer.js';

export interface LoaderOptions {
  source: AsyncIterable<RawSample> | Iterable<RawSample>;
  batchSize: number;
  /** Output side in pixels. */
  imageSize: number;
  /** Random resized crop (true, default) or resize + centre crop (false). */
  train?: boolean;
  /** Decode workers (default: the number of cores, at most 8). 0 decodes on the main thread. */
  workers?: number;
  tokenizer?: Tokenizer;
  contextLength?: number;
  /** Batches decoded ahead (default 2). */
  prefetch?: number;
  seed?: number;
  /** Drop a last batch smaller than batchSize (default true). */
  dropLast?: boolean;
  /** Source samples to pass over first (a resumed run's `position`); they are not decoded. */
  startPosition?: number;
  /** Where skipped samples are counted (default: a new counter). */
  skipped?: SkipCounter;
  /** RandomResizedCrop scale range (default [0.9, 1.0]). */
  scale?: readonly [number, number];
  /**
   * Stop with an error after this many source samples in a row could not be used (default: no
   * limit). An endless source (resampled shards, epoch after epoch) of undecodable images would
   * otherwise be read forever without a batch.
   */
  maxConsecutiveSkips?: number;
  /** Mean/std of the pixel normalisation (default OpenAI's, as OpenCLIP's image_mean/image_std). */
  normalization?: Normalization;
  /** The model's other preprocessing (OpenCLIP's resize_mode, interpolation, fill_color). */
  preprocess?: Pick<TransformSpec, 'resizeMode' | 'interpolation' | 'fill' | 'draft'>;
}

/** Decode threads: each holds a libvips instance and buffers; more only costs memory. */
export const MAX_DECODE_WORKERS = 256;

/** The loader gave up: too many samples in a row were unusable. */
export class UnusableDataError extends Error {}

export interface Batch {
  /** [size, 3, imageSize, imageSize] normalised floats. */
  pixels: Float32Array;
  /** [size, contextLength] token ids, when the loader has a tokenizer and samples have captions. */
  tokens?: Int32Array;
  /** Class labels, when the samples have them. */
  labels?: Int32Array;
  captions: string[];
  keys: string[];
  size: number;
  /** Milliseconds the consumer waited for this batch (0 when it was ready). */
  dataTimeMs: number;
  /** Source samples consumed up to and including this batch (resume from here). */
  position: number;
}

interface Pending {
  seq: number;
  sample: RawSample;
  result: Promise<Float32Array | { reason: string; error: string }>;
}

/** A pool of decode workers; each decodes one image at a time. */
class DecodePool {
  private readonly workers: Worker[] = [];
  private readonly outstanding: number[] = [];
  /** Jobs waiting for an answer, per worker: a worker that dies answers its own jobs with an error. */
  private readonly waiting: Map<number, (r: DecodeResult) => void>[] = [];
  /** Workers that exited or failed: no job is sent to them again. */
  private readonly dead = new Set<number>();
  /** Which worker made each output array, to send it back for reuse. */
  private readonly madeBy = new WeakMap<Float32Array, number>();
  private nextId = 0;
  private closing = false;

  constructor(count: number) {
    const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
    const url = new URL(`./decode_worker${ext}`, import.meta.url);
    for (let i = 0; i < count; i++) {
      // From TypeScript sources (development, tests) the worker registers tsx first: Node 20
      // does not pass the parent's --import loader hooks on to worker threads.
      const w = ext === '.ts'
        ? new Worker(`import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((m) => { m.register(); return import(${JSON.stringify(url.href)}); });`, { eval: true })
        : new Worker(url);
      const waiting = new Map<number, (r: DecodeResult) => void>();
      w.on('message', (r: DecodeResult) => {
        // Idle workers do not keep the process alive; busy ones do (their answer is awaited).
        // Not while closing: terminate() refs the worker so that its exit is awaited, and an
        // answer arriving during the termination must not undo that.
        if (--this.outstanding[i] === 0 && !this.closing) w.unref();
        if ('pixels' in r) this.madeBy.set(r.pixels, i);
        const done = waiting.get(r.id);
        waiting.delete(r.id);
        done?.(r);
      });
      // A worker that fails or exits answers nothing more: its jobs get an error now (they used to
      // wait forever, and the loader with them, using no CPU).
      const fail = (why: string) => {
        this.dead.add(i);
        for (const [id, done] of waiting) done({ id, error: `decode worker ${i} ${why}`, reason: 'corrupt_image' });
        waiting.clear();
        this.outstanding[i] = 0;
      };
      w.on('error', (err) => fail(`failed: ${err.message}`));
      w.on('exit', (code) => {
        if (!this.closing) fail(`exited (code ${code})`);
      });
      w.unref();
      this.workers.push(w);
      this.outstanding.push(0);
      this.waiting.push(waiting);
    }
  }

  decode(job: Omit<DecodeJob, 'id'>): Promise<DecodeResult> {
    let best = -1;
    for (let i = 0; i < this.workers.length; i++) {
      if (this.dead.has(i)) continue;
      if (best < 0 || this.outstanding[i] < this.outstanding[best]) best = i;
    }
    if (best < 0) return Promise.reject(new Error(`data loader: all ${this.workers.length} decode workers have exited`));
    const id = this.nextId++;
    if (this.outstanding[best]++ === 0) this.workers[best].ref();
    return new Promise((resolve) => {
      this.waiting[best].set(id, resolve);
      // A fresh copy that owns its memory, so it can be moved to the worker (Buffers may share a pool).
      const image = job.image ? new Uint8Array(job.image) : undefined;
      this.workers[best].postMessage({ ...job, id, image } satisfies WorkerMessage, image ? [image.buffer] : []);
    });
  }

  /** Output arrays whose pixels were copied, per worker, until the next flush. */
  private readonly returned: Float32Array[][] = [];

  /** Marks an output array as copied; `flushRecycled` hands it back to the worker that made it. */
  recycle(pixels: Float32Array): void {
    const i = this.madeBy.get(pixels);
    if (i === undefined) return;
    this.madeBy.delete(pixels);
    (this.returned[i] ??= []).push(pixels);
  }

  /** One message per worker (per batch) instead of one per image. */
  flushRecycled(): void {
    this.returned.forEach((arrays, i) => {
      if (arrays.length === 0 || this.dead.has(i)) return;
      this.workers[i].postMessage({ recycle: arrays } satisfies WorkerMessage, arrays.map((a) => a.buffer as ArrayBuffer));
      this.returned[i] = [];
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

export class DataLoader implements AsyncIterable<Batch> {
  readonly skipped: SkipCounter;
  readonly batchSize: number;
  readonly imageSize: number;
  private readonly options: LoaderOptions;
  private consumed: number;
  private pool?: DecodePool;

  constructor(options: LoaderOptions) {
    if (!Number.isInteger(options.batchSize) || options.batchSize < 1) throw new Error(`DataLoader: batchSize must be an integer ≥ 1, got ${options.batchSize}`);
    if (!Number.isInteger(options.imageSize) || options.imageSize < 1) throw new Error(`DataLoader: imageSize must be an integer ≥ 1, got ${options.imageSize}`);
    if (options.workers !== undefined && !(Number.isInteger(options.workers) && options.workers >= 0 && options.workers <= MAX_DECODE_WORKERS)) {
      throw new Error(`DataLoader: workers must be an integer in 0..${MAX_DECODE_WORKERS}, got ${options.workers}`);
    }
    if (options.preprocess?.draft && !native.jpegSupported()) {
      throw new Error('DataLoader: preprocess.draft (shrink-on-load JPEG decoding) needs libjpeg-turbo in the addon, which was built without it (install libjpeg62-turbo-dev or libjpeg-turbo8-dev and rebuild)');
    }
    this.options = options;
    this.batchSize = options.batchSize;
    this.imageSize = options.imageSize;
    this.skipped = options.skipped ?? new SkipCounter();
    this.consumed = options.startPosition ?? 0;
  }

  /** Source samples consumed by the batches handed out so far (including any skipped among them). */
  get position(): number {
    return this.consumed;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Batch> {
    const o = this.options;
    const workers = o.workers ?? Math.min(8, os.availableParallelism());
    const train = o.train ?? true;
    const seed = o.seed ?? 0;
    const ctx = o.contextLength ?? DEFAULT_CONTEXT_LENGTH;
    const plane = 3 * this.imageSize * this.imageSize;
    const maxInFlight = Math.max(1, (o.prefetch ?? 2)) * this.batchSize;
    if (workers > 0) this.pool = new DecodePool(workers);
    const { transformImage } = await import('./transforms.js');

    const iterator = (Symbol.asyncIterator in o.source ? o.source[Symbol.asyncIterator]() : (o.source as Iterable<RawSample>)[Symbol.iterator]()) as
      AsyncIterator<RawSample> | Iterator<RawSample>;
    let seq = 0;
    const start = o.startPosition ?? 0;
    let sourceDone = false;
    let stopped = false;
    const queue: Pending[] = [];
    let wakeConsumer: (() => void) | undefined;
    let wakePump: (() => void) | undefined;
    let pumpError: unknown;
    let consecutiveSkips = 0;
    const maxSkips = o.maxConsecutiveSkips ?? Infinity;

    const decode = (sample: RawSample, position: number): Pending['result'] => {
      if (sample.pixels) {
        if (sample.pixels.length !== plane) return Promise.resolve({ reason: 'wrong_size', error: `pixels hold ${sample.pixels.length} floats, expected ${plane}` });
        return Promise.resolve(sample.pixels);
      }
      const spec: TransformSpec = { ...o.preprocess, size: this.imageSize, train, seed: hashInts(seed, position), ...(o.scale ? { scale: o.scale } : {}), ...(o.normalization ? { normalization: o.normalization } : {}) };
      if (!sample.image && !sample.path) return Promise.resolve({ reason: 'missing_image', error: 'sample has no image' });
      if (this.pool) {
        return this.pool.decode({ image: sample.image, path: sample.path, spec }).then((r) => ('pixels' in r ? r.pixels : { reason: r.reason, error: r.error }));
      }
      return transformImage(sample.image ?? sample.path!, spec).catch((err: Error) => ({ reason: 'corrupt_image', error: err.message }));
    };

    // The pump reads the source and starts decodes, keeping up to maxInFlight samples ahead.
    const pump = (async () => {
      try {
        for (;;) {
          while (queue.length >= maxInFlight && !stopped) await new Promise<void>((r) => (wakePump = r));
          if (stopped) break;
          const next = await iterator.next();
          if (next.done) break;
          const position = seq++;
          if (position < start) continue;
          queue.push({ seq: position, sample: next.value, result: decode(next.value, position) });
          wakeConsumer?.();
        }
      } catch (err) {
        pumpError = err;
      } finally {
        sourceDone = true;
        wakeConsumer?.();
      }
    })();

    try {
      for (;;) {
        const t0 = performance.now();
        const pixels = new Float32Array(this.batchSize * plane);
        const captions: string[] = [];
        const keys: string[] = [];
        const labels: number[] = [];
        let lastSeq = this.consumed - 1;
        while (keys.length < this.batchSize) {
          if (consecutiveSkips >= maxSkips) {
            const counts = this.skipped.toJSON();
            const examples = Object.keys(counts).flatMap((r) => this.skipped.exampleOf(r).slice(0, 1).map((e) => `${r}: ${e}`));
            throw new UnusableDataError(
              `data loader: ${consecutiveSkips} samples in a row could not be used, so no batch can be made ` +
                `(skipped so far: ${JSON.stringify(counts)}${examples.length ? `; for example ${examples.join('; ')}` : ''})`,
            );
          }
          if (queue.length === 0) {
            if (sourceDone) break;
            await new Promise<void>((r) => (wakeConsumer = r));
            wakeConsumer = undefined;
            continue;
          }
          const item = queue.shift()!;
          wakePump?.();
          wakePump = undefined;
          const result = await item.result;
          lastSeq = item.seq;
          if (!(result instanceof Float32Array)) {
            this.skipped.add(result.reason, `${item.sample.key}: ${result.error}`);
            consecutiveSkips++;
            continue;
          }
          consecutiveSkips = 0;
          pixels.set(result, keys.length * plane);
          this.pool?.recycle(result);
          keys.push(item.sample.key);
          captions.push(item.sample.caption ?? '');
          if (item.sample.label !== undefined) labels.push(item.sample.label);
        }
        this.pool?.flushRecycled();
        if (pumpError) throw pumpError;
        const n = keys.length;
        if (n === 0 || (n < this.batchSize && (o.dropLast ?? true))) {
          this.consumed = lastSeq + 1;
          return;
        }
        const tokens = o.tokenizer ? o.tokenizer.tokenize(captions, ctx) : undefined;
        const dataTimeMs = performance.now() - t0;
        this.consumed = lastSeq + 1;
        yield {
          pixels: n === this.batchSize ? pixels : pixels.slice(0, n * plane),
          ...(tokens ? { tokens } : {}),
          ...(labels.length === n ? { labels: Int32Array.from(labels) } : {}),
          captions,
          keys,
          size: n,
          dataTimeMs,
          position: this.consumed,
        };
      }
    } finally {
      stopped = true;
      wakePump?.();
      await pump;
      await Promise.allSettled(queue.map((q) => q.result));
      queue.length = 0;
      await this.pool?.close();
      this.pool = undefined;
    }
  }
}

/** The synthetic world as a loader source: samples `start`, `start+1`, … (`count` of them, or without end). */
export function* syntheticSource(world: SyntheticWorld, start = 0, count = Infinity): Generator<RawSample> {
  for (let i = start; i < start + count; i++) {
    const s = world.sample(i);
    yield { key: `synthetic:${i}`, pixels: s.pixels, caption: s.caption };
  }
}
