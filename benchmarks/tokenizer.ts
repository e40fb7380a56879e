// Tokenizer throughput on one core: captions per second with OpenAI's vocabulary (from
// shipped in lib/data/vocab, or --vocab PATH) and with the shipped synthetic vocabulary.
// Prints one JSON line per case; --out FILE also appends them there.
//   node --import=tsx benchmarks/tokenizer.ts [--vocab PATH] [--captions N] [--out FILE]
import { appendFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { Rng } from '../lib/data/rng.js';
import { SyntheticWorld, syntheticVocabPath } from '../lib/data/synthetic.js';
import { Tokenizer } from '../lib/data/tokenizer.js';

const { values } = parseArgs({ options: { vocab: { type: 'string' }, captions: { type: 'string' }, out: { type: 'string' } } });
const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const openaiPath = values.vocab ?? join(repoRoot, 'lib', 'data', 'vocab', 'bpe_simple_vocab_16e6.txt.gz');
const n = Number(values.captions ?? 100_000);
const cpu = os.cpus()[0]?.model ?? 'unknown';

function report(line: Record<string, unknown>): void {
  const text = JSON.stringify({ bench: 'tokenizer', cpu, cores: os.availableParallelism(), load_avg_1m: +os.loadavg()[0].toFixed(2), node: process.version, ...line });
  console.log(text);
  if (values.out) appendFileSync(values.out, text + '\n');
}

/** Short web-like captions over a vocabulary of `words` distinct words (a long-tailed draw). */
function webCaptions(tok: Tokenizer, count: number, words: number, seed: number): string[] {
  const lexicon = tok.vocab.filter((t) => /^[a-z]{3,}<\/w>$/.test(t)).slice(0, words).map((t) => t.slice(0, -4));
  const rng = new Rng(seed);
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const len = 4 + rng.int(9);
    const ws: string[] = [];
    for (let k = 0; k < len; k++) ws.push(lexicon[Math.floor(lexicon.length * rng.next() ** 2)]);
    if (rng.chance(0.3)) ws[0] = ws[0][0].toUpperCase() + ws[0].slice(1);
    out.push(ws.join(' ') + (rng.chance(0.5) ? '.' : ''));
  }
  return out;
}

function run(name: string, tok: Tokenizer, captions: string[], cold: boolean): void {
  // Warm the JIT on other text; warm cache: pass over the captions once untimed. Then time one pass.
  tok.tokenize(webCaptions(tok, 2000, 500, 99));
  if (!cold) for (let i = 0; i < captions.length; i += 256) tok.tokenize(captions.slice(i, i + 256));
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  let rows = 0;
  for (let i = 0; i < captions.length; i += 256) rows += tok.tokenize(captions.slice(i, i + 256)).length / 77;
  const s = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  // CPU seconds of this process: on a shared machine, wall time also counts others' work.
  const cpuS = (c.user + c.system) / 1e6;
  const meanWords = captions.reduce((a, c) => a + c.split(' ').length, 0) / captions.length;
  report({ case: name, cache: cold ? 'cold' : 'warm', captions: rows, mean_words: +meanWords.toFixed(1), seconds: +s.toFixed(3), captions_per_s: Math.round(rows / s), cpu_seconds: +cpuS.toFixed(3), captions_per_cpu_s: Math.round(rows / cpuS) });
}

if (existsSync(openaiPath)) {
  const t0 = performance.now();
  const openai = Tokenizer.fromFile(openaiPath);
  report({ case: 'load_openai_vocab', seconds: +((performance.now() - t0) / 1000).toFixed(3), vocab_size: openai.vocabSize });
  const web = webCaptions(openai, n, 20000, 1);
  run('openai_vocab_web_captions', Tokenizer.fromFile(openaiPath), web, true);
  run('openai_vocab_web_captions', openai, web, false);
  const synth = new SyntheticWorld({ captions: 'noisy', size: n });
  run('openai_vocab_synthetic_noisy', openai, Array.from({ length: n }, (_, i) => synth.caption(i)), false);
} else {
  report({ case: 'openai_vocab', skipped: `no vocabulary at ${openaiPath}` });
}
const synthTok = Tokenizer.fromFile(syntheticVocabPath());
const precise = new SyntheticWorld({ captions: 'precise', size: n });
run('synthetic_vocab_precise', synthTok, Array.from({ length: n }, (_, i) => precise.caption(i)), false);
