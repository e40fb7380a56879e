// Which vocabulary a model reads: OpenAI's CLIP BPE (shipped) for models with its 49,408 tokens,
// the synthetic world's vocabulary otherwise — and OpenCLIP's get_tokenizer on top of that.
import { join } from 'node:path';
import { existsSync } from 'node:fs';

import { defaultSyntheticTokenizer, packageRoot } from '../data/synthetic.js';
import { OPENAI_NORMALIZATION, type Normalization } from '../data/normalize.js';
import { SYNTHETIC_NORMALIZATION } from '../data/synthetic_normalization.js';
import { Tokenizer } from '../data/tokenizer.js';
import { loadModelConfig, parseModelConfig, type ClipConfig } from '../nn/config.js';

/** Tokens in OpenAI's CLIP vocabulary (49,152 BPE tokens + start/end): the ViT configs' text_cfg.vocab_size. */
export const OPENAI_VOCAB_SIZE = 49408;

/** Path of OpenAI's CLIP BPE vocabulary shipped with clipscale (MIT, see lib/data/vocab/README.md). */
export function openaiVocabPath(): string {
  const path = join(packageRoot(), 'lib', 'data', 'vocab', 'bpe_simple_vocab_16e6.txt.gz');
  if (!existsSync(path)) throw new Error(`OpenAI's CLIP vocabulary is missing: expected it at ${path}`);
  return path;
}

let openaiTokenizer: Tokenizer | undefined;
/** OpenAI's CLIP tokenizer (loaded once). */
export function defaultOpenaiTokenizer(): Tokenizer {
  openaiTokenizer ??= Tokenizer.fromFile(openaiVocabPath());
  return openaiTokenizer;
}

/**
 * The image normalisation a model of this text vocab size expects when none is named: OpenAI's
 * mean/std for 49,408-token models (OpenCLIP's ViTs), the synthetic world's for clipscale's CPU sizes
 * (trained on it) — the same rule as the default vocabulary.
 */
export function defaultNormalizationFor(vocabSize: number): Normalization {
  return vocabSize === OPENAI_VOCAB_SIZE ? OPENAI_NORMALIZATION : SYNTHETIC_NORMALIZATION;
}

/** 'openai', 'synthetic' or explicit {mean, std}; undefined: the default for `vocabSize`. */
export function normalizationFor(choice: 'openai' | 'synthetic' | Normalization | undefined, vocabSize: number): Normalization {
  if (choice === undefined) return defaultNormalizationFor(vocabSize);
  if (choice === 'openai') return OPENAI_NORMALIZATION;
  if (choice === 'synthetic') return SYNTHETIC_NORMALIZATION;
  if (choice.mean?.length !== 3 || choice.std?.length !== 3 || ![...choice.mean, ...choice.std].every(Number.isFinite) || !choice.std.every((v) => v > 0)) {
    throw new Error(`image normalisation: expected 'openai', 'synthetic' or {mean: [r, g, b], std: [r, g, b]} with positive std, got ${JSON.stringify(choice)}`);
  }
  return choice;
}

/** The vocabulary a model of this text vocab size reads when none is named: 'openai' or 'synthetic'. */
export function defaultVocabFor(vocabSize: number): 'openai' | 'synthetic' {
  return vocabSize === OPENAI_VOCAB_SIZE ? 'openai' : 'synthetic';
}

/**
 * The tokenizer for `--vocab VALUE`: 'openai', 'synthetic', or a BPE file in OpenAI's format; when
 * VALUE is undefined, the default for `vocabSize`. Throws when the vocabulary is larger than the model's.
 */
export function tokenizerForVocab(vocab: string | undefined, vocabSize: number, where = 'tokenizer'): Tokenizer {
  const choice = vocab ?? defaultVocabFor(vocabSize);
  const tokenizer = choice === 'openai' ? defaultOpenaiTokenizer() : choice === 'synthetic' ? defaultSyntheticTokenizer() : Tokenizer.fromFile(choice);
  if (tokenizer.vocabSize > vocabSize) {
    const named = vocab === undefined ? `the default vocabulary ('${choice}')` : `the vocabulary '${vocab}'`;
    throw new Error(`${where}: ${named} has ${tokenizer.vocabSize} tokens but the model's text_cfg.vocab_size is ${vocabSize}; give --vocab FILE with the vocabulary the model was trained with`);
  }
  return tokenizer;
}

/** OpenCLIP's get_tokenizer: texts → token ids, row-major [texts.length, contextLength]. */
export interface ClipTokenizer {
  (texts: string | readonly string[]): Int32Array;
  readonly tokenizer: Tokenizer;
  readonly contextLength: number;
}

export interface GetTokenizerOptions {
  /** 'openai', 'synthetic' or a BPE file; default by the model's vocab size. */
  vocab?: string;
  /** Default: the model's text_cfg.context_length. */
  contextLength?: number;
}

/**
 * The tokenizer of a model (a config name such as 'ViT-B-32', a config JSON path or object):
 *
 *   const tokenize = getTokenizer('ViT-B-32');
 *   const ids = tokenize(['a photo of a cat', 'a photo of a dog']);   // Int32Array [2 × 77]
 */
export function getTokenizer(model: string | ClipConfig, options: GetTokenizerOptions = {}): ClipTokenizer {
  // A loaded config (a model's) carries its name and source beside the schema's fields.
  const cfg = typeof model === 'string' ? loadModelConfig(model) : parseModelConfig(withoutOrigin(model));
  const tokenizer = tokenizerForVocab(options.vocab, cfg.text_cfg.vocab_size, 'getTokenizer');
  const contextLength = options.contextLength ?? cfg.text_cfg.context_length;
  const fn = (texts: string | readonly string[]) => tokenizer.tokenize(typeof texts === 'string' ? [texts] : [...texts], contextLength);
  return Object.assign(fn, { tokenizer, contextLength });
}

function withoutOrigin(config: ClipConfig): ClipConfig {
  const { name: _name, source: _source, ...rest } = config as ClipConfig & { name?: unknown; source?: unknown };
  return rest;
}
