// Webdataset shards as training data: the data engineer's WebDataset (shard split, shard shuffle,
// shuffle buffer, resampling) feeding the DataLoader (decode workers, RandomResizedCrop seeded by
// sample position, tokenizer), wrapped in the position-addressed TrainingData interface.
//
// The loader is a stream, so positions are served in order: the next batch is the one the stream
// yields. Epochs follow one another without end (each reshuffled by its number), so a run may see
// more samples than the shards hold. A sample that fails to decode is skipped and counted, which
// makes the stream's own position (source samples consumed) run ahead of the trainer's (samples
// trained on); `describe()` records both, and `resumeFrom` takes them back, so a resumed run
// starts at the exact source sample where the checkpointed one stopped.
import type { Normalization } from '../data/normalize.js';
import { DataLoader, type Batch } from '../data/loader.js';
import type { SkipCounter } from '../data/skip_counter.js';
import type { Tokenizer } from '../data/tokenizer.js';
import { WebDataset, type ShardSample } from '../data/webdataset.js';
import type { JsonValue } from './checkpoint.js';
import type { HostBatch, TrainingData } from './sources.js';

export interface WebDatasetDataOptions {
  /** Shard paths or brace patterns (`shards/{00000..00099}.tar`; several joined by '::'). */
  urls: string | readonly string[];
  imageSize: number;
  contextLength: number;
  tokenizer: Tokenizer;
  seed?: number;
  /** Samples in the shuffle buffer (default 1000; 0 keeps the shards' order). */
  shuffleBuffer?: number;
  /** Shuffle the shard order each epoch (default true). */
  shuffleShards?: boolean;
  /** Draw shards with replacement (OpenCLIP's --dataset-resampled). */
  resampled?: boolean;
  /** Decode worker threads (default: the loader's, one per core up to 8; 0 decodes on the main thread). */
  workers?: number;
  /** Shrink-on-load JPEG decoding (Pillow's draft; TransformSpec.draft): faster, not OpenCLIP's exact preprocessing. */
  jpegDraft?: boolean;
  /** Pixel mean/std (OpenCLIP's --image-mean/--image-std; default OpenAI's). */
  normalization?: Normalization;
  /** A checkpoint's `describe()`: where the stream stood at trainer position `position`. */
  resumeFrom?: WebDatasetPosition;
}

/** The pair a checkpoint keeps: samples trained on, and source samples consumed to get them. */
export interface WebDatasetPosition {
  position: number;
  sourcePosition: number;
}

/** Pulls a resumable position out of a checkpoint's saved `dataPosition.data`, if it has one. */
export function webDatasetPositionOf(described: unknown): WebDatasetPosition | undefined {
  const d = described as { kind?: unknown; position?: unknown; sourcePosition?: unknown } | null;
  if (d && d.kind === 'webdataset' && Number.isSafeInteger(d.position) && Number.isSafeInteger(d.sourcePosition)) {
    return { position: d.position as number, sourcePosition: d.sourcePosition as number };
  }
  return undefined;
}

export class WebDatasetData implements TrainingData, AsyncDisposable {
  readonly imageSize: number;
  readonly contextLength: number;
  readonly vocabSize: number;
  readonly dataset: WebDataset;
  private readonly options: WebDatasetDataOptions;
  private loader: DataLoader | null = null;
  private stream: AsyncIterator<Batch> | null = null;
  private samples: AsyncGenerator<ShardSample> | null = null;
  private batchSize = 0;
  /** Trainer position and source position of the next batch the stream will yield. */
  private next: WebDatasetPosition = { position: 0, sourcePosition: 0 };
  /** True when a restart had to assume no sample was skipped before it (see `batch`). */
  approximateResume = false;

  constructor(options: WebDatasetDataOptions) {
    this.options = options;
    this.imageSize = options.imageSize;
    this.contextLength = options.contextLength;
    this.vocabSize = options.tokenizer.vocabSize;
    this.dataset = new WebDataset({
      urls: options.urls,
      seed: options.seed ?? 0,
      shuffleBuffer: options.shuffleBuffer ?? 1000,
      shuffleShards: options.shuffleShards ?? true,
      resampled: options.resampled ?? false,
    });
  }

  /** Samples skipped so far (bad shards members, undecodable images), by reason. */
  get skipped(): SkipCounter {
    return this.dataset.skipped;
  }

  /** Every epoch after the other, without end. */
  private async *epochs(): AsyncGenerator<ShardSample> {
    for (let epoch = 0; ; epoch++) {
      let n = 0;
      for await (const s of this.dataset.epoch(epoch)) {
        n++;
        yield s;
      }
      if (n === 0) {
        throw new Error(`webdataset: epoch ${epoch} of ${this.dataset.shards.length} shard(s) gave no usable sample (skipped: ${JSON.stringify(this.skipped.toJSON())})`);
      }
    }
  }

  private async restart(position: number, size: number): Promise<void> {
    await this.close();
    let sourcePosition: number;
    const resume = this.options.resumeFrom;
    if (position === 0) sourcePosition = 0;
    else if (resume && resume.position === position) sourcePosition = resume.sourcePosition;
    else {
      // No record of this position: assume no sample before it was skipped.
      sourcePosition = position;
      this.approximateResume = true;
    }
    this.batchSize = size;
    this.next = { position, sourcePosition };
    this.samples = this.epochs();
    this.loader = new DataLoader({
      source: this.samples,
      batchSize: size,
      imageSize: this.imageSize,
      train: true,
      tokenizer: this.options.tokenizer,
      contextLength: this.contextLength,
      seed: this.options.seed ?? 0,
      startPosition: sourcePosition,
      skipped: this.dataset.skipped,
      // Training must not spin on data that never decodes: give up after this many in a row.
      maxConsecutiveSkips: Math.max(1000, 10 * size),
      ...(this.options.workers !== undefined ? { workers: this.options.workers } : {}),
      ...(this.options.normalization ? { normalization: this.options.normalization } : {}),
      ...(this.options.jpegDraft ? { preprocess: { draft: true } } : {}),
    });
    this.stream = this.loader[Symbol.asyncIterator]();
  }

  async batch(position: number, size: number): Promise<HostBatch> {
    if (!this.stream || position !== this.next.position || size !== this.batchSize) await this.restart(position, size);
    const r = await this.stream!.next();
    if (r.done) throw new Error('webdataset: the sample stream ended (it should not: epochs follow one another)');
    const b = r.value;
    if (!b.tokens) throw new Error('webdataset: the loader gave no token ids (no tokenizer?)');
    this.next = { position: position + b.size, sourcePosition: b.position };
    return { images: b.pixels, tokens: b.tokens, n: b.size };
  }

  describe(): JsonValue {
    const o = this.options;
    return {
      kind: 'webdataset',
      urls: typeof o.urls === 'string' ? o.urls : [...o.urls],
      shards: this.dataset.shards.length,
      seed: o.seed ?? 0,
      shuffleBuffer: o.shuffleBuffer ?? 1000,
      resampled: o.resampled ?? false,
      imageSize: this.imageSize,
      position: this.next.position,
      sourcePosition: this.next.sourcePosition,
      skipped: this.skipped.toJSON() as JsonValue,
    };
  }

  /** Stops the stream and its decode workers. */
  async close(): Promise<void> {
    const s = this.stream;
    const samples = this.samples;
    this.stream = null;
    this.samples = null;
    this.loader = null;
    await s?.return?.(undefined);
    // The loader stops reading its source without closing it: close it here, so the shard being
    // read releases its file handle now rather than at garbage collection.
    await samples?.return(undefined);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
