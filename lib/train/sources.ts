// Where training batches come from. A source is addressed by position (samples
// consumed so far), which makes resume exact: the batch after a restart is the
// batch the uninterrupted run would have drawn.
import { defaultSyntheticTokenizer, SyntheticWorld, type CaptionStyle } from '../data/synthetic.js';
import type { Tokenizer } from '../data/tokenizer.js';
import { Rng } from '../util/rng.js';
import type { JsonValue } from './checkpoint.js';

export interface HostBatch {
  /** [n, 3, imageSize, imageSize] normalised pixels. */
  images: Float32Array;
  /** [n, contextLength] token ids. */
  tokens: Int32Array;
  n: number;
}

export interface TrainingData {
  readonly imageSize: number;
  readonly contextLength: number;
  /** The largest token id + 1 that captions can produce. */
  readonly vocabSize: number;
  /** `size` samples starting at sample `position` of the (endless, shuffled) stream. */
  batch(position: number, size: number): Promise<HostBatch>;
  /** A JSON description for checkpoints and logs. */
  describe(): JsonValue;
}

export interface SyntheticDataOptions {
  seed?: number;
  /** Distinct samples (the data-size axis of a scaling study). */
  size: number;
  imageSize: number;
  contextLength: number;
  captions?: CaptionStyle;
  tokenizer?: Tokenizer;
  /** Bytes of rendered images kept for the next epochs (default 256 MiB, 0 none; see SyntheticWorldOptions). */
  imageCacheBytes?: number;
}

/**
 * The synthetic world as a training stream: epoch e visits every sample once in an order
 * shuffled by (seed, e), so training past `size` samples repeats data as a real dataset would.
 */
export class SyntheticData implements TrainingData {
  readonly world: SyntheticWorld;
  readonly imageSize: number;
  readonly contextLength: number;
  readonly vocabSize: number;
  private readonly tokenizer: Tokenizer;
  private readonly seed: number;
  private epochOrder: { epoch: number; order: Uint32Array } | null = null;

  constructor(options: SyntheticDataOptions) {
    this.seed = options.seed ?? 0;
    this.world = new SyntheticWorld({ seed: this.seed, size: options.size, imageSize: options.imageSize, captions: options.captions ?? 'precise', ...(options.imageCacheBytes !== undefined ? { imageCacheBytes: options.imageCacheBytes } : {}) });
    this.imageSize = options.imageSize;
    this.contextLength = options.contextLength;
    this.tokenizer = options.tokenizer ?? defaultSyntheticTokenizer();
    this.vocabSize = this.tokenizer.vocabSize;
  }

  private order(epoch: number): Uint32Array {
    if (this.epochOrder?.epoch !== epoch) {
      this.epochOrder = { epoch, order: new Rng(this.seed * 1_000_003 + epoch + 1).permutation(this.world.size) };
    }
    return this.epochOrder.order;
  }

  async batch(position: number, size: number): Promise<HostBatch> {
    const indices: number[] = [];
    for (let p = position; p < position + size; p++) {
      const epoch = Math.floor(p / this.world.size);
      indices.push(this.order(epoch)[p % this.world.size]);
    }
    const b = this.world.batch(indices, { tokenizer: this.tokenizer, contextLength: this.contextLength });
    return { images: b.pixels, tokens: b.tokens as Int32Array, n: size };
  }

  describe(): JsonValue {
    return { kind: 'synthetic', seed: this.seed, size: this.world.size, imageSize: this.imageSize, captions: this.world.captions };
  }
}
