// Token ids against OpenCLIP 3.3.0 itself (open_clip.get_tokenizer('ViT-B-32'), ftfy 6.3.1),
// on 8,000 generated captions in 18 categories (entities, HTML5 names, curly quotes,
// ligatures, full-width, emoji and tag sequences, mojibake, CJK, controls, ...). The fixture
// is made by benchmarks/reference/openclip_text_image_fixtures.py.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';

import { Tokenizer } from '../lib/data/tokenizer.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const fixtures = join(repoRoot, 'test', '_fixtures', 'openclip');
const captions = gunzipSync(readFileSync(join(fixtures, 'captions.jsonl.gz')))
  .toString('utf8').trim().split('\n')
  .map((line) => JSON.parse(line) as { c: string; t: string; ids: number[] });
const vocab = join(repoRoot, 'lib', 'data', 'vocab', 'bpe_simple_vocab_16e6.txt.gz');
const tokenizer = Tokenizer.fromFile(vocab);

// Captions known to differ, by fixture index, each with its reason. Empty: none differ.
// (What could differ is written in lib/data/ftfy_fix.ts: Unicode-version differences between
// Python 3.11's unicodedata and Node's ICU for recently assigned code points.)
const KNOWN_DIFFERENT: Readonly<Record<number, string>> = {};

function mismatches(tok: Tokenizer): { index: number; category: string }[] {
  const rows = tok.tokenize(captions.map((c) => c.t), 77);
  const out: { index: number; category: string }[] = [];
  captions.forEach((c, i) => {
    const row = rows.subarray(i * 77, (i + 1) * 77);
    const same = c.ids.every((id, k) => row[k] === id) && row.subarray(c.ids.length).every((id) => id === 0);
    if (!same) out.push({ index: i, category: c.c });
  });
  return out;
}

test('OpenCLIP token ids: identical on every fixture caption but the documented list', (t) => {
  t.is(captions.length, 8000);
  const bad = mismatches(tokenizer);
  const unexpected = bad.filter((b) => !(b.index in KNOWN_DIFFERENT));
  t.deepEqual(unexpected.map((b) => `${b.category} #${b.index}: ${JSON.stringify(captions[b.index].t)}`), []);
  t.true(bad.length / captions.length < 0.001, `${bad.length} of ${captions.length} differ`);
  const perCategory: Record<string, number> = {};
  for (const c of captions) perCategory[c.c] = (perCategory[c.c] ?? 0) + 1;
  t.log(`categories: ${JSON.stringify(perCategory)}; differing: ${bad.length}`);
});

test('special-token text: OpenCLIP spelling by default, OpenAI spelling on request', (t) => {
  const openai = Tokenizer.fromFile(vocab, { specialTokens: 'openai' });
  t.deepEqual(Array.from(tokenizer.tokenize('a <end_of_text> b', 6)), [49406, 320, 49407, 321, 49407, 0]);
  t.not(tokenizer.encode('a <|endoftext|> b')[1], 49407);
  t.deepEqual(openai.encode('a <|endoftext|> b'), [320, 49407, 321]);
  t.is(tokenizer.vocab[49406], '<start_of_text>');
  t.is(openai.vocab[49407], '<|endoftext|>');
  // Only the special-token captions of the fixture differ under OpenAI's spelling.
  const bad = mismatches(openai);
  t.true(bad.length > 0 && bad.every((b) => captions[b.index].c === 'special_tokens'));
  t.throws(() => Tokenizer.fromFile(vocab, { specialTokens: 'gpt' as 'openai' }), { message: /specialTokens/ });
});
