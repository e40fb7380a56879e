import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { formatMerges, trainBpe, writeMergesFile } from '../lib/data/bpe_train.js';
import { htmlUnescape } from '../lib/data/html_unescape.js';
import { SyntheticWorld, ZERO_SHOT_TASKS, defaultSyntheticTokenizer } from '../lib/data/synthetic.js';
import { clipCleanText, fixTextLite, whitespaceClean } from '../lib/data/text_clean.js';
import { Rng } from '../lib/data/rng.js';
import { Tokenizer, splitWords } from '../lib/data/tokenizer.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const golden = JSON.parse(readFileSync(join(repoRoot, 'test', '_fixtures', 'tokenizer', 'clip_tokenizer_golden.json'), 'utf8')) as {
  vocab: string; context_length: number; sot: number; eot: number; vocab_size: number;
  cases: { text: string; ids: number[]; encode: number[] }[];
};
const openai = Tokenizer.fromFile(join(repoRoot, 'lib', 'data', 'vocab', golden.vocab));

test('OpenAI vocabulary: size and special ids match the golden file', (t) => {
  t.is(openai.vocabSize, golden.vocab_size);
  t.is(openai.sot, golden.sot);
  t.is(openai.eot, golden.eot);
});

test('golden: every caption gives exactly the reference ids (encode and padded rows)', (t) => {
  t.true(golden.cases.length > 0);
  const batch = openai.tokenize(golden.cases.map((c) => c.text), golden.context_length);
  golden.cases.forEach((c, i) => {
    t.deepEqual(openai.encode(c.text), c.encode, `encode(${JSON.stringify(c.text)})`);
    t.deepEqual(Array.from(batch.subarray(i * golden.context_length, (i + 1) * golden.context_length)), c.ids, `tokenize(${JSON.stringify(c.text)})`);
  });
});

test('truncation keeps sot first and eot last; short context lengths work', (t) => {
  const long = Array.from({ length: 120 }, (_, i) => `word${i}`).join(' ');
  const row = openai.tokenize([long]);
  t.is(row.length, 77);
  t.is(row[0], openai.sot);
  t.is(row[76], openai.eot);
  t.false(row.subarray(1, 76).includes(0));
  t.deepEqual(Array.from(row.subarray(1, 76)), openai.encode(long).slice(0, 75));
  const short = openai.tokenize(['a photo of a cat'], 4);
  t.deepEqual(Array.from(short), [openai.sot, 320, 1125, openai.eot]);
  t.throws(() => openai.tokenize(['x'], 1), { message: /context length/ });
});

test('html unescape follows Python html.unescape', (t) => {
  // Expected strings printed by Python 3's html.unescape.
  t.is(htmlUnescape('tom &amp; jerry'), 'tom & jerry');
  t.is(htmlUnescape('&amp;lt;'), '&lt;');
  t.is(htmlUnescape(htmlUnescape('&amp;lt;')), '<');
  t.is(htmlUnescape('&#39;&#x27;&#128;&#0;&#xD800;&#1;'), "''€\ufffd\ufffd");
  t.is(htmlUnescape('&ampx &notit; &notin; &lt &copy2 &hellip; &foo; &#65 &#x41x'), '&x ¬it; ∉ < ©2 … &foo; A Ax');
  t.is(clipCleanText('  Caf\u0065\u0301 &quot;Bar&quot;\u00a0\u2003 ﬁne ＡＢ '), 'café "bar" fine ab');
});

test('cleaning follows ftfy + OpenCLIP on the corner cases of issue 16', (t) => {
  // Expected strings printed by Python: whitespace_clean(basic_clean(x)).lower() of open_clip 3.3.0, ftfy 6.3.1.
  const cases: [string, string][] = [
    ['it&rsquo;s a dog', "it's a dog"], // entity first, then the quote is uncurled
    ['&frac13; cup &NotEqualTilde; x', '\u2153 cup \u2242\u0338 x'], // HTML5 names
    ['a &amp;amp;amp; b', 'a & b'], // ftfy unescapes to a fixed point
    ['flag \u{1F3F4}\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F}!', 'flag \u{1F3F4}\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F}!'], // tag characters kept
    ['caf\u00c3\u00a9 cr\u00c3\u00a8me', 'caf\u00e9 cr\u00e8me'], // mojibake repaired
    ['\u00c3\u00a2\u00e2\u201a\u00ac\u00c5\u201cquoted\u00c3\u00a2\u00e2\u201a\u00ac\u00c2\u009d', '"quoted"'], // twice-encoded
    ['\u00d0\u00bf\u00d1\u20ac\u00d0\u00b8\u00d0\u00b2\u00d0\u00b5\u00d1\u201a', '\u043f\u0440\u0438\u0432\u0435\u0442'],
    ['<b>&amp;amp;</b> &rsquo;', '<b>&</b> \u2019'], // '<': ftfy leaves entities to html.unescape
    ['\uff2c\uff2f\uff35\uff24\u3000\uff76\uff80\uff76\uff85', 'loud \u30ab\u30bf\u30ab\u30ca'], // widths
    ['&EACUTE;t&Eacute;', '\u00e9t\u00e9'], // ftfy's upper-case entity names
    ['voil\u00c3  le travail', 'voil\u00e0 le travail'], // restore_byte_a0
  ];
  for (const [input, expected] of cases) t.is(clipCleanText(input), expected, JSON.stringify(input));
});

test('the ASCII fast path of cleaning equals the full path', (t) => {
  const rng = new Rng(11);
  const alphabet = ' ab Z9.,\'!?-';
  for (let i = 0; i < 2000; i++) {
    const s = Array.from({ length: rng.int(20) }, () => alphabet[rng.int(alphabet.length)]).join('');
    t.is(clipCleanText(s), whitespaceClean(htmlUnescape(htmlUnescape(fixTextLite(s)))).toLowerCase(), JSON.stringify(s));
  }
});

test('split pattern: contractions, letters, single digits, punctuation runs', (t) => {
  t.deepEqual(splitWords("It's 42 O'Neil's!!! naïve"), ["it", "'s", '4', '2', 'o', "'", 'neil', "'s", '!!!', 'naïve']);
  // U+FEFF is no whitespace to Python (ftfy removes it before splitting).
  t.deepEqual(splitWords('a\ufeffb'), ['ab']);
});

test('decode turns ids back into the cleaned text', (t) => {
  t.is(openai.decode(openai.tokenize(['A photo of a DOG.'])), 'a photo of a dog .');
});

test('a missing or malformed vocabulary file is a clear error', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'clipscale-tok-'));
  try {
    t.throws(() => Tokenizer.fromFile(join(dir, 'nope.txt.gz')), { message: /cannot read vocabulary file .*nope\.txt\.gz/ });
    writeFileSync(join(dir, 'bad.txt'), 'hello\nworld\n');
    t.throws(() => Tokenizer.fromFile(join(dir, 'bad.txt')), { message: /not a BPE vocabulary/ });
    writeFileSync(join(dir, 'bad2.txt'), '#version: 0.2\na b c\n');
    t.throws(() => Tokenizer.fromFile(join(dir, 'bad2.txt')), { message: /line 2: expected a merge/ });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('BPE training: frequent words become single tokens and the file round-trips', (t) => {
  const corpus = ['the red circle', 'the red square', 'a red circle', 'the blue circle', 'red red red'];
  const result = trainBpe(corpus, { vocabSize: 600 });
  t.is(result.vocabSize, 514 + result.merges.length);
  t.true(result.merges.length > 5);
  t.deepEqual(result, trainBpe(corpus, { vocabSize: 600 }), 'deterministic');
  const first = result.merges[0];
  t.true(formatMerges(result.merges).startsWith('#version: 0.2'));
  const dir = mkdtempSync(join(tmpdir(), 'clipscale-bpe-'));
  try {
    const path = join(dir, 'v.txt.gz');
    writeMergesFile(path, result.merges);
    const tok = Tokenizer.fromFile(path);
    t.is(tok.vocabSize, result.vocabSize);
    t.is(tok.vocab[512], first[0] + first[1]);
    for (const w of ['red', 'circle', 'the']) t.is(tok.encode(w).length, 1, `'${w}' is one token`);
    t.is(tok.decode(tok.tokenize(['The red circle!'])), 'the red circle !');
    // The vocabulary limit stops training early.
    t.is(trainBpe(corpus, { vocabSize: 517 }).merges.length, 3);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the shipped synthetic vocabulary: small, and every word of the world is one token', (t) => {
  const tok = defaultSyntheticTokenizer();
  t.true(tok.vocabSize < 1024, `vocab ${tok.vocabSize}`);
  const seen = new Set<string>();
  for (const captions of ['precise', 'noisy'] as const) {
    const world = new SyntheticWorld({ captions, size: 500 });
    for (let i = 0; i < 500; i++) {
      const c = world.caption(i);
      for (const w of splitWords(c)) if (!/^\p{N}$/u.test(w) && !w.startsWith('img')) seen.add(w);
      const row = tok.tokenize([c], 32);
      t.not(row[31], tok.eot, `'${c}' fits in 32 tokens`);
    }
  }
  const world = new SyntheticWorld();
  for (const name of ZERO_SHOT_TASKS) {
    const task = world.zeroShotTask(name, 1);
    for (const tpl of task.templates) for (const c of task.classnames) for (const w of splitWords(tpl.replace('{c}', c))) seen.add(w);
  }
  const multi = [...seen].filter((w) => tok.encode(w).length !== 1);
  t.deepEqual(multi, []);
});

test('clipscale tokenize reads captions on stdin and writes JSON lines', (t) => {
  const r = spawnSync(process.execPath, ['--import=tsx', join(repoRoot, 'lib/cli/main.ts'), 'tokenize', '--vocab', join(repoRoot, 'lib', 'data', 'vocab', golden.vocab)], {
    input: golden.cases.slice(0, 3).map((c) => c.text).join('\n') + '\n',
    encoding: 'utf8',
    cwd: repoRoot,
  });
  t.is(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as number[]);
  t.deepEqual(lines, golden.cases.slice(0, 3).map((c) => c.ids));
});
