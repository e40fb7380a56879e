
import { BASE_TOKENS, trainBpe, writeMergesFile } from '../../data/bpe_train.js';
import { syntheticCorpus } from '../../data/synthetic_corpus.js';
import { UsageError, type Command } from '../command.js';
import { intOption, parse, requireOption } from '../args.js';
import { readRegularTextSync } from '../../util/regular_file.js';

const usage = `usage: clipscale tokenizer train --captions FILE|synthetic --vocab-size N --out FILE [options]

Learns byte-level BPE merges from captions (one a line) and writes them in OpenAI's
vocabulary format (gzip text: a '#version' header line, then one merge 'a b' a line), which
'clipscale tokenize --vocab' and the library's Tokenizer.fromFile read.

  --captions FILE      captions, one a line; 'synthetic' uses the synthetic world's captions
                       (both styles) and its zero-shot prompts
  --vocab-size N       target size: 512 byte tokens + merges + 2 special tokens (≥ 514)
  --out FILE           where to write the .txt.gz
  --min-frequency N    a pair must occur this often to be merged (default 2)
  --samples N          with --captions synthetic: captions drawn per style (default 20000)

Prints JSON {vocab_size, merges, words, word_types, out}. The vocabulary is smaller than asked
when the corpus runs out of pairs that occur often enough.`;

export const command: Command = {
  name: 'tokenizer',
  summary: 'train a BPE vocabulary from captions (tokenizer train)',
  usage,
  async run(argv) {
    const [verb, ...rest] = argv;
    if (verb !== 'train') throw new UsageError(`clipscale tokenizer: expected the verb 'train', got '${verb ?? ''}'\n\n${usage}`);
    const { values } = parse('tokenizer train', rest, {
      captions: { type: 'string' },
      'vocab-size': { type: 'string' },
      out: { type: 'string' },
      'min-frequency': { type: 'string' },
      samples: { type: 'string' },
    });
    const source = requireOption('tokenizer train', 'captions', values.captions);
    const vocabSize = intOption('tokenizer train', 'vocab-size', values['vocab-size'], undefined, { min: BASE_TOKENS, max: 1 << 24 });
    const out = requireOption('tokenizer train', 'out', values.out);
    const minFrequency = intOption('tokenizer train', 'min-frequency', values['min-frequency'], 2, { min: 1 });
    let captions: Iterable<string>;
    let note: string;
    if (source === 'synthetic') {
      const samples = intOption('tokenizer train', 'samples', values.samples, 20000, { min: 1, max: 10_000_000 });
      captions = syntheticCorpus(samples);
      note = `trained on the synthetic world (${samples} captions per style + prompts)`;
    } else {
      let text: string;
      try {
        text = readRegularTextSync(source, { what: '--captions' });
      } catch (err) {
        throw new UsageError(`clipscale tokenizer train: cannot read --captions '${source}': ${(err as Error).message}`);
      }
      captions = text.split('\n').filter((l) => l.trim() !== '');
      note = '';
    }
    const result = trainBpe(captions, { vocabSize, minFrequency });
    writeMergesFile(out, result.merges, note);
    console.log(JSON.stringify({ vocab_size: result.vocabSize, merges: result.merges.length, words: result.words, word_types: result.wordTypes, out }));
    return 0;
  },
};
