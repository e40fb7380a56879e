// CLIP's byte-level BPE tokenizer, id for id with OpenCLIP 3.x (and OpenAI's original).
//
// The vocabulary is built the way simple_tokenizer.py builds it: the 256 byte characters,
// the same with '</w>' (end of word), one token per merge, then the two special tokens.
// Symbols are kept as integer ids throughout: a merge of the pair (a, b) is looked up in a
// Map keyed by a·2^20 + b, and the result of merging whole words is cached by the word's
// text, so the common path of a caption is a regex split and one Map lookup per word.
//
// Special tokens: the ids are the last two of the vocabulary either way; what differs is the
// text that a caption can spell them with. OpenCLIP 3.x names them <start_of_text> and
// <end_of_text>; OpenAI's CLIP <|startoftext|> and <|endoftext|>. The default is OpenCLIP's,
// for every vocabulary (the OpenAI BPE file too): models are trained and evaluated with
// OpenCLIP's tokenizer. `specialTokens: 'openai'` gives OpenAI's reference behaviour.
import { gunzipSync } from 'node:zlib';

import { PY_WHITESPACE, clipCleanText } from './text_clean.js';
import { readRegularFileSync } from '../util/regular_file.js';

/** Merges OpenAI's tokenizer uses from its 262k-line file: 49152 − 256 − 2. */
/** The largest vocabulary file, compressed or expanded (OpenAI's is 1.3 MB gzipped, 1.7 MB of text). */
export const MAX_VOCAB_FILE_BYTES = 2 ** 26;

export const OPENAI_MAX_MERGES = 49152 - 256 - 2;
export const DEFAULT_CONTEXT_LENGTH = 77;
const PAIR_KEY = 1 << 20;
const CACHE_LIMIT = 1 << 18;

/** bytes_to_unicode: printable bytes map to themselves, the rest to code points from 256 up. */
export function bytesToUnicode(): { bytes: number[]; chars: string[] } {
  const bytes: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bytes.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bytes.push(b);
  for (let b = 0xae; b <= 0xff; b++) bytes.push(b);
  const codes = bytes.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bytes.includes(b)) {
      bytes.push(b);
      codes.push(256 + n++);
    }
  }
  return { bytes, chars: codes.map((c) => String.fromCharCode(c)) };
}

/** Whose spelling of the special tokens a caption's text is matched against. */
export type SpecialTokenStyle = 'openclip' | 'openai';

/** The text of [start, end] of text per style. */
export const SPECIAL_TOKEN_TEXT: Readonly<Record<SpecialTokenStyle, readonly [string, string]>> = {
  openclip: ['<start_of_text>', '<end_of_text>'],
  openai: ['<|startoftext|>', '<|endoftext|>'],
};

const escapeRegExp = (s: string): string => s.replace(/[|\\{}()[\]^$+*?.]/g, '\\$&');

interface SplitPatterns {
  unicode: RegExp;
  ascii: RegExp;
}

// The word-splitting pattern of simple_tokenizer.py (with re.IGNORECASE), per style. `\s` is
// spelled out as Python's set: JavaScript's `\s` also matches U+FEFF, Python's does not.
// The ASCII form serves text that is all ASCII after cleaning (the common case, about five
// times faster): there \p{L} is [a-z] (the text is lower-cased), \p{N} is [0-9], and the
// only whitespace left by whitespaceClean is ' '.
function splitPatterns(style: SpecialTokenStyle): SplitPatterns {
  const special = SPECIAL_TOKEN_TEXT[style].map(escapeRegExp).join('|');
  return {
    unicode: new RegExp(`${special}|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^${PY_WHITESPACE}\\p{L}\\p{N}]+`, 'giu'),
    ascii: new RegExp(`${special}|'s|'t|'re|'ve|'m|'ll|'d|[a-z]+|[0-9]|[^ a-z0-9]+`, 'g'),
  };
}
const SPLIT: Record<SpecialTokenStyle, SplitPatterns> = { openclip: splitPatterns('openclip'), openai: splitPatterns('openai') };
const ASCII_ONLY = /^[\x00-\x7f]*$/;

function splitClean(clean: string, style: SpecialTokenStyle = 'openclip'): RegExpMatchArray | null {
  return clean.match(ASCII_ONLY.test(clean) ? SPLIT[style].ascii : SPLIT[style].unicode);
}

/** The words the tokenizer sees in a caption (after cleaning and lower-casing). */
export function splitWords(text: string, style: SpecialTokenStyle = 'openclip'): string[] {
  return splitClean(clipCleanText(text), style) ?? [];
}

export interface TokenizerOptions {
  /** How many merges of the file to use; default: all, at most OpenAI's 48,894. */
  maxMerges?: number;
  /** Spelling of the special tokens in caption text: OpenCLIP 3.x's (default) or OpenAI's. */
  specialTokens?: SpecialTokenStyle;
}

export class Tokenizer {
  /** Token strings by id (byte characters, '</w>' marks a word end). */
  readonly vocab: readonly string[];
  readonly vocabSize: number;
  readonly sot: number;
  readonly eot: number;
  readonly mergeCount: number;
  /** Which spelling of the special tokens captions are matched against. */
  readonly specialTokens: SpecialTokenStyle;

  private readonly encoder = new Map<string, number>();
  private readonly pairRank = new Map<number, number>();
  private readonly pairResult = new Map<number, number>();
  /** Byte value → id of its byte character (add 256 for the '</w>' form). */
  private readonly byteId = new Int32Array(256);
  private readonly byteOf: number[] = [];
  private cache = new Map<string, Int32Array>();
  private readonly textEncoder = new TextEncoder();

  constructor(merges: ReadonlyArray<readonly [string, string]>, options: Pick<TokenizerOptions, 'specialTokens'> = {}) {
    const style = options.specialTokens ?? 'openclip';
    if (!Object.hasOwn(SPECIAL_TOKEN_TEXT, style)) throw new Error(`Tokenizer: specialTokens must be 'openclip' or 'openai', got '${style}'`);
    this.specialTokens = style;
    const { bytes, chars } = bytesToUnicode();
    const vocab: string[] = [...chars, ...chars.map((c) => c + '</w>')];
    for (let i = 0; i < 256; i++) this.byteId[bytes[i]] = i;
    for (let i = 0; i < 256; i++) this.byteOf[i] = this.byteOf[i + 256] = bytes[i];
    for (const [a, b] of merges) vocab.push(a + b);
    vocab.push(...SPECIAL_TOKEN_TEXT[style]);
    // dict(zip(vocab, range(len(vocab)))): a repeated string keeps its last id.
    vocab.forEach((tok, id) => this.encoder.set(tok, id));
    merges.forEach(([a, b], rank) => {
      const ia = this.encoder.get(a);
      const ib = this.encoder.get(b);
      const merged = this.encoder.get(a + b);
      // A merge whose halves are not tokens can never fire; Python would keep it unused too.
      if (ia === undefined || ib === undefined || merged === undefined) return;
      const key = ia * PAIR_KEY + ib;
      if (!this.pairRank.has(key)) {
        this.pairRank.set(key, rank);
        this.pairResult.set(key, merged);
      }
    });
    this.vocab = vocab;
    this.vocabSize = vocab.length;
    this.sot = vocab.length - 2;
    this.eot = vocab.length - 1;
    this.mergeCount = merges.length;
    if (this.vocabSize >= PAIR_KEY) throw new Error(`Tokenizer: vocabulary of ${this.vocabSize} tokens is larger than the ${PAIR_KEY} supported`);
  }

  /** Loads OpenAI's format: gzip (or plain) text, one header line, then one merge "a b" a line. */
  static fromFile(path: string, options: TokenizerOptions = {}): Tokenizer {
    let raw: Buffer;
    try {
      raw = readRegularFileSync(path, { what: 'vocabulary', maxBytes: MAX_VOCAB_FILE_BYTES });
    } catch (err) {
      throw new Error(`Tokenizer: cannot read vocabulary file '${path}': ${(err as Error).message}`);
    }
    let text: string;
    try {
      // Bounded: a small gzip can expand without limit.
      text = raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw, { maxOutputLength: MAX_VOCAB_FILE_BYTES }).toString('utf8') : raw.toString('utf8');
    } catch (err) {
      throw new Error(`Tokenizer: vocabulary file '${path}' is not valid gzip (or expands past ${MAX_VOCAB_FILE_BYTES} bytes): ${(err as Error).message}`);
    }
    return new Tokenizer(parseMerges(text, path, options.maxMerges), options);
  }

  /** The ids of a caption without start/end tokens (simple_tokenizer's encode). */
  encode(text: string): number[] {
    const out: number[] = [];
    this.encodeInto(text, (id) => {
      out.push(id);
      return true;
    });
    return out;
  }

  /**
   * Captions → Int32Array [texts.length, contextLength]: sot, ids, eot, zeros. A caption that
   * is too long is cut and its last position set to eot (OpenCLIP's tokenize).
   */
  tokenize(texts: readonly string[] | string, contextLength = DEFAULT_CONTEXT_LENGTH): Int32Array {
    const list = typeof texts === 'string' ? [texts] : texts;
    if (!Number.isInteger(contextLength) || contextLength < 2) throw new Error(`Tokenizer.tokenize: context length must be an integer ≥ 2, got ${contextLength}`);
    const out = new Int32Array(list.length * contextLength);
    for (let row = 0; row < list.length; row++) this.tokenizeRow(list[row], out, row * contextLength, contextLength);
    return out;
  }

  /** Writes one caption's row (sot … eot, zero padded) at `offset` of `out`. */
  tokenizeRow(text: string, out: Int32Array, offset: number, contextLength = DEFAULT_CONTEXT_LENGTH): void {
    out.fill(0, offset, offset + contextLength);
    out[offset] = this.sot;
    let n = 1;
    const last = offset + contextLength - 1;
    this.encodeInto(text, (id) => {
      if (n >= contextLength) return false;
      out[offset + n++] = id;
      return true;
    });
    if (n < contextLength) out[offset + n] = this.eot;
    else out[last] = this.eot;
  }

  /** Ids back to text (word ends become spaces); for inspection, not exact inversion. */
  decode(ids: ArrayLike<number>): string {
    const bytes: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (id === this.eot) break;
      if (id === this.sot) continue;
      const tok = this.vocab[id];
      if (tok === undefined) throw new Error(`Tokenizer.decode: id ${id} is outside the vocabulary of ${this.vocabSize}`);
      const word = tok.endsWith('</w>') ? tok.slice(0, -4) : tok;
      for (const ch of word) bytes.push(this.byteOf[this.encoder.get(ch) ?? 0]);
      if (tok.endsWith('</w>')) bytes.push(32);
    }
    return new TextDecoder().decode(new Uint8Array(bytes)).trim();
  }

  /** Calls `emit` with each id; stops early when it returns false. */
  private encodeInto(text: string, emit: (id: number) => boolean): void {
    const words = splitClean(clipCleanText(text), this.specialTokens);
    if (!words) return;
    for (const word of words) {
      let ids = this.cache.get(word);
      if (ids === undefined) {
        ids = this.bpeWord(word);
        if (this.cache.size >= CACHE_LIMIT) this.cache = new Map();
        this.cache.set(word, ids);
      }
      for (let i = 0; i < ids.length; i++) if (!emit(ids[i])) return;
    }
  }

  /** Byte-level BPE of one word: apply the lowest-ranked adjacent merge until none applies. */
  private bpeWord(word: string): Int32Array {
    const [start, end] = SPECIAL_TOKEN_TEXT[this.specialTokens];
    if (word === start) return Int32Array.of(this.sot);
    if (word === end) return Int32Array.of(this.eot);
    const utf8 = this.textEncoder.encode(word);
    let symbols: number[] = Array.from(utf8, (b) => this.byteId[b]);
    symbols[symbols.length - 1] += 256;
    while (symbols.length > 1) {
      let bestRank = Infinity;
      let bestKey = -1;
      for (let i = 0; i < symbols.length - 1; i++) {
        const key = symbols[i] * PAIR_KEY + symbols[i + 1];
        const rank = this.pairRank.get(key);
        if (rank !== undefined && rank < bestRank) {
          bestRank = rank;
          bestKey = key;
        }
      }
      if (bestKey < 0) break;
      const merged = this.pairResult.get(bestKey)!;
      const first = Math.floor(bestKey / PAIR_KEY);
      const second = bestKey - first * PAIR_KEY;
      const next: number[] = [];
      for (let i = 0; i < symbols.length; i++) {
        if (i < symbols.length - 1 && symbols[i] === first && symbols[i + 1] === second) {
          next.push(merged);
          i++;
        } else next.push(symbols[i]);
      }
      symbols = next;
    }
    return Int32Array.from(symbols);
  }
}

/** Parses the merges of a vocabulary file; `source` names it in errors. */
export function parseMerges(text: string, source: string, maxMerges?: number): [string, string][] {
  const lines = text.split('\n');
  if (lines.length < 1 || !lines[0].includes('#version')) {
    throw new Error(`Tokenizer: '${source}' is not a BPE vocabulary: its first line should be a '#version' header, got '${lines[0]?.slice(0, 60)}'`);
  }
  let end = lines.length;
  while (end > 1 && lines[end - 1].trim() === '') end--;
  const limit = Math.min(end - 1, maxMerges ?? OPENAI_MAX_MERGES);
  const merges: [string, string][] = [];
  for (let i = 1; i <= limit; i++) {
    const parts = lines[i].trim().split(/\s+/);
    if (parts.length !== 2) throw new Error(`Tokenizer: '${source}' line ${i + 1}: expected a merge 'a b', got '${lines[i].slice(0, 60)}'`);
    merges.push([parts[0], parts[1]]);
  }
  return merges;
}
