// Learns byte-level BPE merges from captions, in the form the CLIP tokenizer reads.
//
// Words are found exactly as the tokenizer finds them (clean, lower-case, split pattern),
// turned into byte characters with '</w>' on the last, and counted. Then, repeatedly, the
// most frequent adjacent pair (ties: the pair first seen) becomes a merge. Pair counts are
// updated only for the words that hold the merged pair, and a lazy max-heap picks the next
// pair, so a corpus of many word types trains in seconds.
import { writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

import { bytesToUnicode, splitWords } from './tokenizer.js';

export interface BpeTrainOptions {
  /** Target vocabulary size: 512 byte tokens + merges + 2 special tokens. */
  vocabSize: number;
  /** A pair must occur at least this often to be merged (default 2). */
  minFrequency?: number;
}

export interface BpeTrainResult {
  merges: [string, string][];
  vocabSize: number;
  words: number;
  wordTypes: number;
}

export const BASE_TOKENS = 512 + 2;

export function trainBpe(captions: Iterable<string>, options: BpeTrainOptions): BpeTrainResult {
  const { vocabSize } = options;
  const minFrequency = options.minFrequency ?? 2;
  if (!Number.isInteger(vocabSize) || vocabSize < BASE_TOKENS) throw new Error(`trainBpe: vocabSize must be an integer ≥ ${BASE_TOKENS} (256 bytes ×2 + 2 special tokens), got ${vocabSize}`);

  const wordCounts = new Map<string, number>();
  let words = 0;
  for (const caption of captions) {
    for (const w of splitWords(caption)) {
      wordCounts.set(w, (wordCounts.get(w) ?? 0) + 1);
      words++;
    }
  }

  // Symbols are ids into `symbols`; a pair key is a·2^20 + b.
  const { bytes, chars } = bytesToUnicode();
  const symbols: string[] = [...chars, ...chars.map((c) => c + '</w>')];
  const symbolId = new Map<string, number>(symbols.map((s, i) => [s, i]));
  const byteSymbol = new Int32Array(256);
  bytes.forEach((b, i) => (byteSymbol[b] = i));
  const K = 1 << 20;
  const encoder = new TextEncoder();

  const seqs: number[][] = [];
  const freqs: number[] = [];
  for (const [w, f] of wordCounts) {
    if (w === '<|startoftext|>' || w === '<|endoftext|>') continue;
    const seq = Array.from(encoder.encode(w), (b) => byteSymbol[b]);
    seq[seq.length - 1] += 256;
    seqs.push(seq);
    freqs.push(f);
  }

  const pairCount = new Map<number, number>();
  const pairWords = new Map<number, Set<number>>();
  const pairOrder = new Map<number, number>(); // first-seen order, for deterministic ties
  const addPairs = (wi: number, sign: number) => {
    const s = seqs[wi];
    for (let i = 0; i < s.length - 1; i++) {
      const key = s[i] * K + s[i + 1];
      pairCount.set(key, (pairCount.get(key) ?? 0) + sign * freqs[wi]);
      if (sign > 0) {
        let set = pairWords.get(key);
        if (!set) pairWords.set(key, (set = new Set()));
        set.add(wi);
        if (!pairOrder.has(key)) pairOrder.set(key, pairOrder.size);
      }
    }
  };
  seqs.forEach((_, wi) => addPairs(wi, 1));

  const heap = new PairHeap((a, b) => a.count > b.count || (a.count === b.count && pairOrder.get(a.key)! < pairOrder.get(b.key)!));
  for (const [key, count] of pairCount) heap.push({ key, count });

  const merges: [string, string][] = [];
  while (BASE_TOKENS + merges.length < vocabSize) {
    const top = heap.pop();
    if (!top) break;
    const current = pairCount.get(top.key) ?? 0;
    if (current !== top.count) {
      if (current > 0) heap.push({ key: top.key, count: current }); // stale entry
      continue;
    }
    if (current < minFrequency) break;
    const a = Math.floor(top.key / K);
    const b = top.key - a * K;
    const mergedText = symbols[a] + symbols[b];
    let merged = symbolId.get(mergedText);
    if (merged === undefined) {
      merged = symbols.length;
      symbols.push(mergedText);
      symbolId.set(mergedText, merged);
    }
    merges.push([symbols[a], symbols[b]]);
    const touched = new Set<number>();
    for (const wi of pairWords.get(top.key) ?? []) {
      const s = seqs[wi];
      addPairs(wi, -1);
      const next: number[] = [];
      for (let i = 0; i < s.length; i++) {
        if (i < s.length - 1 && s[i] === a && s[i + 1] === b) {
          next.push(merged);
          i++;
        } else next.push(s[i]);
      }
      seqs[wi] = next;
      addPairs(wi, 1);
      for (let i = 0; i < next.length - 1; i++) touched.add(next[i] * K + next[i + 1]);
    }
    pairCount.delete(top.key);
    pairWords.delete(top.key);
    for (const key of touched) heap.push({ key, count: pairCount.get(key)! });
  }
  return { merges, vocabSize: BASE_TOKENS + merges.length, words, wordTypes: wordCounts.size };
}

/** The vocabulary file text: a '#version' header line, then one merge a line. */
export function formatMerges(merges: readonly (readonly [string, string])[], note = ''): string {
  const header = `#version: 0.2 clipscale-bpe vocab_size=${BASE_TOKENS + merges.length}${note ? ' ' + note : ''}`;
  return [header, ...merges.map(([a, b]) => `${a} ${b}`)].join('\n') + '\n';
}

/** Writes merges as gzip text (OpenAI's .txt.gz form). */
export function writeMergesFile(path: string, merges: readonly (readonly [string, string])[], note = ''): void {
  writeFileSync(path, gzipSync(Buffer.from(formatMerges(merges, note), 'utf8'), { level: 9 }));
}

interface HeapItem {
  key: number;
  count: number;
}

/** A binary max-heap under `before` (true when a should come out before b). */
class PairHeap {
  private items: HeapItem[] = [];
  constructor(private readonly before: (a: HeapItem, b: HeapItem) => boolean) {}

  push(item: HeapItem): void {
    const h = this.items;
    h.push(item);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
  }

  pop(): HeapItem | undefined {
    const h = this.items;
    if (h.length === 0) return undefined;
    const top = h[0];
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.before(h[l], h[m])) m = l;
        if (r < h.length && this.before(h[r], h[m])) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    return top;
  }
}
