// Small things a new user meets first: one prefix on error messages, "not found" said once, help
// that names every eval task.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import test from 'ava';

import { notFound } from '../lib/cli/commands/info.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'clipscale-papercuts-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

function clipscale(args: string[]) {
  return spawnSync(process.execPath, ['--import=tsx', join(root, 'lib/cli/main.ts'), ...args], { encoding: 'utf8', timeout: 120_000, cwd: root });
}

test("'not found' is said once", (t) => {
  t.is(notFound('not found (tried libcuda.so.1 and others): libcuda.so: cannot open'), 'not found (tried libcuda.so.1 and others): libcuda.so: cannot open');
  t.is(notFound('libnccl.so.2: cannot open shared object file'), 'not found: libnccl.so.2: cannot open shared object file');
  t.is(notFound(undefined), 'not found');
});

test('an error that names its command is printed with one prefix; help eval names finetune', (t) => {
  // A vocabulary too small for the synthetic world's tokenizer: an error from the train command.
  const cfg = join(dir, 'small-vocab.json');
  writeFileSync(cfg, JSON.stringify({ embed_dim: 16, vision_cfg: { image_size: 16, layers: 1, width: 16, head_width: 8, patch_size: 8 }, text_cfg: { context_length: 16, vocab_size: 100, width: 16, heads: 2, layers: 1 } }));
  const r = clipscale(['train', '--model', cfg, '--data', 'synthetic', '--batch-size', '8', '--samples', '16']);
  t.is(r.status, 1, r.stderr);
  t.regex(r.stderr, /^clipscale train: the synthetic world's tokenizer has \d+ tokens/);
  t.notRegex(r.stderr, /clipscale: clipscale/);
  const other = clipscale(['tokenize', '--vocab', join(dir, 'missing.txt.gz')]);
  t.is(other.status, 1);
  t.regex(other.stderr, /^clipscale: Tokenizer: cannot read vocabulary file/);
  const help = clipscale(['help']);
  t.regex(help.stdout, /eval +zero-shot, retrieval, linear-probe .* and fine-tuning/);
  const helpEval = clipscale(['help', 'eval']);
  t.regex(helpEval.stdout, /^usage: clipscale eval zeroshot\|retrieval\|linear-probe\|finetune/);
  t.regex(helpEval.stdout, /\n {2}finetune {6}/);
});
