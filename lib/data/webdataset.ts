// Webdataset shards: tar files whose members are grouped into samples by key
// (`000123.jpg` + `000123.txt` → sample "000123"). Shard lists use brace patterns; shards
// are split between ranks and workers, optionally shuffled per epoch, samples go through a
// seeded shuffle buffer, and the resampled mode draws shards with replacement forever.
// Bad samples are skipped and counted (see SkipCounter), never fatal.
import { existsSync, statSync } from 'node:fs';

import { expandBraces } from './braces.js';
import { Rng } from './rng.js';
import type { RawSample } from './sample.js';
import { SkipCounter } from './skip_counter.js';
import { readTar, type TarMember } from './tar.js';

export const IMAGE_EXTENSIONS = ['jpg', 'jpeg', 'png', 'webp'] as const;

export interface WebDatasetOptions {
  /** Shard paths or brace patterns (`shards/{00000..00099}.tar`, several joined by '::'). */
  urls: string | readonly string[];
  /** Shuffle the shard order each epoch (default false). */
  shuffleShards?: boolean;
  /** Samples held in the shuffle buffer; 0 or 1 keeps the order (default 0). */
  shuffleBuffer?: number;
  seed?: number;
  /** Draw shards with replacement, without end (OpenCLIP's --dataset-resampled). */
  resampled?: boolean;
  rank?: number;
  worldSize?: number;
  workerId?: number;
  numWorkers?: number;
  /** Where skips are counted (default: a new counter, see `.skipped`). */
  skipped?: SkipCounter;
}

export interface ShardSample extends RawSample {
  image: Uint8Array;
  imageExt: string;
  caption: string;
  shard: string;
  /** The parsed json member, when there was one. */
  json?: unknown;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function splitName(name: string): { key: string; ext: string } | undefined {
  const slash = name.lastIndexOf('/');
  const dot = name.indexOf('.', slash + 1);
  if (dot < 0) return undefined;
  return { key: name.slice(0, dot), ext: name.slice(dot + 1).toLowerCase() };
}

export class WebDataset implements AsyncIterable<ShardSample> {
  readonly shards: readonly string[];
  readonly skipped: SkipCounter;
  private readonly options: Required<Omit<WebDatasetOptions, 'urls' | 'skipped'>>;

  constructor(options: WebDatasetOptions) {
    const patterns = typeof options.urls === 'string' ? [options.urls] : options.urls;
    if (patterns.length === 0) throw new Error('WebDataset: no shards given');
    const shards = patterns.flatMap((p) => expandBraces(p));
    for (const s of shards) {
      if (!existsSync(s)) throw new Error(`WebDataset: shard '${s}' does not exist${patterns.length === 1 && shards.length > 1 ? ` (from pattern '${patterns[0]}')` : ''}`);
      if (!statSync(s).isFile()) throw new Error(`WebDataset: shard '${s}' is not a file`);
    }
    this.shards = shards;
    this.skipped = options.skipped ?? new SkipCounter();
    this.options = {
      shuffleShards: options.shuffleShards ?? false,
      shuffleBuffer: options.shuffleBuffer ?? 0,
      seed: options.seed ?? 0,
      resampled: options.resampled ?? false,
      rank: options.rank ?? 0,
      worldSize: options.worldSize ?? 1,
      workerId: options.workerId ?? 0,
      numWorkers: options.numWorkers ?? 1,
    };
    const o = this.options;
    if (!(o.rank >= 0 && o.rank < o.worldSize)) throw new Error(`WebDataset: rank ${o.rank} is outside world size ${o.worldSize}`);
    if (!(o.workerId >= 0 && o.workerId < o.numWorkers)) throw new Error(`WebDataset: worker ${o.workerId} is outside ${o.numWorkers} workers`);
  }

  [Symbol.asyncIterator](): AsyncIterator<ShardSample> {
    return this.epoch(0)[Symbol.asyncIterator]();
  }

  /** One pass over this rank's and worker's part (endless when resampled). */
  async *epoch(epoch: number): AsyncGenerator<ShardSample> {
    const samples = this.shuffled(this.splitSamples(epoch), epoch);
    yield* samples;
  }

  /** This slot's shard order for an epoch. Shards are split when there are enough of them. */
  shardsFor(epoch: number): { shards: string[]; sampleStride: number; sampleOffset: number } {
    const o = this.options;
    const slots = o.worldSize * o.numWorkers;
    const slot = o.rank * o.numWorkers + o.workerId;
    const order = o.shuffleShards ? Rng.of(o.seed, epoch, 0x5a4d).shuffle([...this.shards]) : [...this.shards];
    if (order.length >= slots) return { shards: order.filter((_, i) => i % slots === slot), sampleStride: 1, sampleOffset: 0 };
    // Fewer shards than readers: everyone reads every shard and keeps every slots-th sample.
    return { shards: order, sampleStride: slots, sampleOffset: slot };
  }

  private async *splitSamples(epoch: number): AsyncGenerator<ShardSample> {
    const o = this.options;
    if (o.resampled) {
      const rng = Rng.of(o.seed, epoch, o.rank * o.numWorkers + o.workerId, 0x7e5a);
      // Drawn without end: shards that give nothing (empty, damaged, keys without pairs) would be
      // drawn forever. Stop after enough empty draws in a row that every shard was likely tried.
      const maxEmpty = Math.max(100, 10 * this.shards.length);
      let empty = 0;
      for (;;) {
        let got = 0;
        for await (const s of this.readShard(this.shards[rng.int(this.shards.length)])) {
          got++;
          yield s;
        }
        empty = got === 0 ? empty + 1 : 0;
        if (empty >= maxEmpty) {
          throw new Error(
            `WebDataset: ${empty} shards drawn in a row (of ${this.shards.length}) gave no usable sample ` +
              `(skipped: ${JSON.stringify(this.skipped.toJSON())}${this.firstSkipExample()})`,
          );
        }
      }
    }
    const { shards, sampleStride, sampleOffset } = this.shardsFor(epoch);
    let n = 0;
    for (const shard of shards) {
      for await (const s of this.readShard(shard)) {
        if (n++ % sampleStride === sampleOffset) yield s;
      }
    }
  }

  private firstSkipExample(): string {
    for (const reason of Object.keys(this.skipped.toJSON())) {
      const e = this.skipped.exampleOf(reason)[0];
      if (e) return `; for example ${reason}: ${e}`;
    }
    return '';
  }

  private async *shuffled(source: AsyncGenerator<ShardSample>, epoch: number): AsyncGenerator<ShardSample> {
    const size = this.options.shuffleBuffer;
    if (size <= 1) {
      yield* source;
      return;
    }
    const o = this.options;
    const rng = Rng.of(o.seed, epoch, o.rank * o.numWorkers + o.workerId, 0xb0f);
    const buffer: ShardSample[] = [];
    for await (const s of source) {
      if (buffer.length < size) {
        buffer.push(s);
        continue;
      }
      const j = rng.int(size);
      const out = buffer[j];
      buffer[j] = s;
      yield out;
    }
    rng.shuffle(buffer);
    yield* buffer;
  }

  /** The valid samples of one shard, in order; bad ones are counted in `skipped`. */
  async *readShard(shard: string): AsyncGenerator<ShardSample> {
    let group: { key: string; members: Map<string, Buffer> } | undefined;
    const damage = (kind: string, detail: string) => this.skipped.add(kind, detail);
    for await (const member of readTar(shard, damage)) {
      const parts = splitName(member.name);
      if (!parts) continue;
      if (group && group.key !== parts.key) {
        const s = this.toSample(shard, group.key, group.members);
        if (s) yield s;
        group = undefined;
      }
      group ??= { key: parts.key, members: new Map() };
      group.members.set(parts.ext, (member as TarMember).data);
    }
    if (group) {
      const s = this.toSample(shard, group.key, group.members);
      if (s) yield s;
    }
  }

  private toSample(shard: string, key: string, members: Map<string, Buffer>): ShardSample | undefined {
    const where = `${shard}:${key}`;
    const imageExt = IMAGE_EXTENSIONS.find((e) => members.has(e));
    if (!imageExt) {
      this.skipped.add('missing_image', where);
      return undefined;
    }
    const image = members.get(imageExt)!;
    if (image.length === 0) {
      this.skipped.add('empty_member', `${where}.${imageExt}`);
      return undefined;
    }
    let caption: string | undefined;
    let json: unknown;
    const txt = members.get('txt');
    const jsonBytes = members.get('json');
    if (jsonBytes && jsonBytes.length > 0) {
      try {
        json = JSON.parse(utf8.decode(jsonBytes));
      } catch {
        json = undefined;
        if (!txt) {
          this.skipped.add('bad_json', `${where}.json`);
          return undefined;
        }
      }
    }
    if (txt) {
      if (txt.length === 0) {
        this.skipped.add('empty_member', `${where}.txt`);
        return undefined;
      }
      try {
        caption = utf8.decode(txt);
      } catch {
        this.skipped.add('caption_not_utf8', `${where}.txt`);
        return undefined;
      }
    } else if (json && typeof (json as { caption?: unknown }).caption === 'string') {
      caption = (json as { caption: string }).caption;
    } else if (jsonBytes && jsonBytes.length === 0) {
      this.skipped.add('empty_member', `${where}.json`);
      return undefined;
    }
    if (caption === undefined) {
      this.skipped.add('missing_caption', where);
      return undefined;
    }
    return { key, image, imageExt, caption, shard, ...(json !== undefined ? { json } : {}) };
  }
}
