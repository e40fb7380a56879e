import { createInterface } from 'node:readline';

import { syntheticVocabPath } from '../../data/synthetic.js';
import { DEFAULT_CONTEXT_LENGTH, Tokenizer } from '../../data/tokenizer.js';
import { openaiVocabPath } from '../../inference/tokenizer.js';
import type { Command } from '../command.js';
import { intOption, parse } from '../args.js';

const usage = `usage: clipscale tokenize [--vocab openai|synthetic|FILE] [--context-length N] [--no-pad]

Reads captions, one a line, on standard input and writes one JSON array of token ids a line:
<start_of_text>, the caption's ids, <end_of_text>, zeros up to the context length (a caption
that is too long is cut, keeping <end_of_text> last).

  --vocab V             'openai' (OpenAI's CLIP vocabulary, shipped), 'synthetic' (the synthetic
                        world's, shipped; the default) or a BPE file in OpenAI's format
  --context-length N    tokens a row (default ${DEFAULT_CONTEXT_LENGTH})
  --no-pad              write only up to <end_of_text>, without the zeros`;

export const command: Command = {
  name: 'tokenize',
  summary: 'captions on stdin → token ids (JSON lines)',
  usage,
  async run(argv) {
    const { values } = parse('tokenize', argv, {
      vocab: { type: 'string' },
      'context-length': { type: 'string' },
      'no-pad': { type: 'boolean' },
    });
    const contextLength = intOption('tokenize', 'context-length', values['context-length'], DEFAULT_CONTEXT_LENGTH, { min: 2, max: 1_000_000 });
    const vocab = values.vocab ?? 'synthetic';
    const tokenizer = Tokenizer.fromFile(vocab === 'synthetic' ? syntheticVocabPath() : vocab === 'openai' ? openaiVocabPath() : vocab);
    const row = new Int32Array(contextLength);
    const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
    const out: string[] = [];
    for await (const line of lines) {
      tokenizer.tokenizeRow(line, row, 0, contextLength);
      let end = contextLength;
      if (values['no-pad']) end = row.indexOf(tokenizer.eot) + 1;
      out.push(JSON.stringify(Array.from(row.subarray(0, end))));
      if (out.length >= 1024) {
        process.stdout.write(out.join('\n') + '\n');
        out.length = 0;
      }
    }
    if (out.length) process.stdout.write(out.join('\n') + '\n');
    return 0;
  },
};
