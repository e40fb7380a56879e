// Faults around training: non-finite last steps, torn and mismatched checkpoints on --resume, damaged
// or stray state files, and SIGTERM. Each of these used to lose work or resume silently wrong.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import test from 'ava';

import { defaultSyntheticTokenizer } from '../lib/data/synthetic.js';
import { parseModelConfig } from '../lib/nn/config.js';
import { findLatestCheckpoint } from '../lib/train/checkpoint.js';
import { ResumeMismatchError } from '../lib/train/resume_check.js';
import { SyntheticData } from '../lib/train/sources.js';
import { Trainer, type TrainerOptions } from '../lib/train/trainer.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const tokenizer = defaultSyntheticTokenizer();
const micro = parseModelConfig({
  embed_dim: 16,
  vision_cfg: { image_size: 16, layers: 1, width: 16, head_width: 8, patch_size: 8 },
  text_cfg: { context_length: 16, vocab_size: tokenizer.vocabSize, width: 16, heads: 2, layers: 1 },
});
const root = mkdtempSync(join(tmpdir(), 'cs-hostile-train-'));
test.after.always(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshDir = () => join(root, `run-${n++}`);
const data = () => new SyntheticData({ size: 64, imageSize: 16, contextLength: 16, seed: 4 });

function sink(): { text: string; write(s: string): boolean } {
  const s = { text: '', write(chunk: string) { s.text += chunk; return true; } };
  return s;
}

async function train(options: Partial<TrainerOptions> & { out?: string }): Promise<Trainer> {
  const t = new Trainer({ model: micro, data: data(), batchSize: 8, samples: 48, lr: 1e-3, ...options });
  await t.train();
  return t;
}

test.serial('non-finite last steps (fewer than the stop threshold): the final save keeps the last good state and names a file that exists', async (t) => {
  const out = freshDir();
  const base = data();
  const poisoned = { ...base, imageSize: 16, contextLength: 16, vocabSize: base.vocabSize, describe: () => base.describe(),
    async batch(position: number, size: number) {
      const b = await base.batch(position, size);
      if (position >= 32) b.images.fill(NaN);
      return b;
    } };
  const trainer = new Trainer({ model: micro, data: poisoned, batchSize: 8, samples: 48, out, maxNonFinite: 5 });
  await trainer.train();
  t.is(trainer.skippedSteps, 2);
  t.truthy(trainer.lastCheckpoint);
  t.true(existsSync(trainer.lastCheckpoint!), `${trainer.lastCheckpoint} exists`);
  t.is((await findLatestCheckpoint(out))?.step, 6);
  t.true(trainer.model.parameters().every((p) => p.values().every(Number.isFinite)));
  trainer.dispose();
});

test.serial('--resume with every checkpoint torn refuses to start over and prunes nothing', async (t) => {
  const out = freshDir();
  (await train({ out, checkpointEvery: 2, samples: 32 })).dispose();
  const before = readdirSync(out).sort();
  for (const f of before) if (f.startsWith('checkpoint-')) truncateSync(join(out, f), 100);
  const resumed = new Trainer({ model: micro, data: data(), batchSize: 8, samples: 64, lr: 1e-3, out, resume: true });
  await t.throwsAsync(() => resumed.train(), { message: /holds checkpoint files .* but no whole checkpoint: step 4: .*checkpoint-4\.safetensors.*Refusing to start over/s });
  resumed.dispose();
  t.deepEqual(readdirSync(out).sort(), before, 'nothing was pruned');
});

test.serial('--resume says which checkpoint it resumed from and which torn one it passed over', async (t) => {
  const out = freshDir();
  (await train({ out, checkpointEvery: 2, samples: 32, stopAfterSteps: 4, keepCheckpoints: 3 })).dispose();
  truncateSync(join(out, 'checkpoint-4.safetensors'), 100);
  const log = sink();
  const resumed = new Trainer({ model: micro, data: data(), batchSize: 8, samples: 32, lr: 1e-3, out, resume: true, checkpointEvery: 2, keepCheckpoints: 3, console: log });
  await resumed.train();
  t.regex(log.text, /passed over a damaged checkpoint: step 4/);
  t.regex(log.text, /continuing from .*checkpoint-2\.safetensors \(step 2\)/);
  t.is(resumed.resumedFrom?.step, 2);
  t.is(resumed.step, 4);
  resumed.dispose();
});

test.serial('--resume compares the arguments with the saved run: changes are refused with the differences listed', async (t) => {
  const out = freshDir();
  (await train({ out, samples: 32, stopAfterSteps: 2, schedule: 'cosine', seed: 1 })).dispose();
  const resume = async (o: Partial<TrainerOptions>) => {
    const tr = new Trainer({ model: micro, data: data(), batchSize: 8, samples: 32, lr: 1e-3, seed: 1, out, resume: true, schedule: 'cosine', ...o });
    try {
      await tr.train();
      return tr.step;
    } finally {
      tr.dispose();
    }
  };
  const err = await t.throwsAsync(() => resume({ batchSize: 16, lr: 2e-3 }), { instanceOf: ResumeMismatchError });
  t.regex(err!.message, /global batch \(batch size × ranks\): saved 8 × 1 rank\(s\), now 16 × 1 rank\(s\)/);
  t.regex(err!.message, /schedule baseLr: saved 0\.001, now 0\.002/);
  await t.throwsAsync(() => resume({ seed: 2 }), { message: /seed: saved 1, now 2/ });
  await t.throwsAsync(() => resume({ precision: 'bf16' }), { message: /precision: saved fp32, now bf16/ });
  await t.throwsAsync(() => resume({ samples: 24 }), { message: /samples: saved 32, now 24/ });
  // A longer cosine run would change the learning rates already used: refused.
  await t.throwsAsync(() => resume({ samples: 64 }), { message: /samples: saved 32, now 64: the cosine schedule's learning rates/ });

  // A const schedule can be extended: the past is unchanged.
  const out2 = freshDir();
  (await train({ out: out2, samples: 32, stopAfterSteps: 2, schedule: 'const' })).dispose();
  const log = sink();
  const ext = new Trainer({ model: micro, data: data(), batchSize: 8, samples: 64, lr: 1e-3, out: out2, resume: true, schedule: 'const', console: log });
  await ext.train();
  t.is(ext.step, 8);
  t.regex(log.text, /samples extended from 32 to 64/);
  ext.dispose();
});

test.serial('a damaged state-N.json is named; a stray state-99999999999999999999.json does not break saves', async (t) => {
  const out = freshDir();
  (await train({ out, samples: 16 })).dispose();
  const state = join(out, 'state-2.json');
  const doc = JSON.parse((await import('node:fs')).readFileSync(state, 'utf8'));
  doc.state.config.seed = 'NaN';
  writeFileSync(state, JSON.stringify(doc));
  const r = new Trainer({ model: micro, data: data(), batchSize: 8, samples: 32, out, resume: true });
  await t.throwsAsync(() => r.train(), { message: /state-2\.json: state\.config\.seed must be a non-negative integer/ });
  r.dispose();

  const out2 = freshDir();
  (await train({ out: out2, samples: 16, schedule: 'const' })).dispose();
  writeFileSync(join(out2, 'state-99999999999999999999.json'), '{}');
  const again = new Trainer({ model: micro, data: data(), batchSize: 8, samples: 32, out: out2, resume: true, lr: 1e-3, schedule: 'const' });
  await again.train();
  t.is((await findLatestCheckpoint(out2))?.step, 4);
  again.dispose();
});

test('SIGTERM is treated like Ctrl-C: the run saves a checkpoint and exits 143', async (t) => {
  const out = freshDir();
  const modelPath = join(root, 'micro.json');
  writeFileSync(modelPath, JSON.stringify({
    embed_dim: 16,
    vision_cfg: { image_size: 16, layers: 1, width: 16, head_width: 8, patch_size: 8 },
    text_cfg: { context_length: 16, vocab_size: tokenizer.vocabSize, width: 16, heads: 2, layers: 1 },
  }));
  const child = spawn(process.execPath, ['--import=tsx', join(repoRoot, 'lib/cli/main.ts'), 'train', '--model', modelPath, '--data', 'synthetic:size=64', '--batch-size', '8', '--samples', '80000000', '--log-every', '1', '--out', out], {
    cwd: repoRoot,
    env: { ...process.env, CLIPSCALE_NUM_THREADS: '1' },
  });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => {
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (/step 2\b/.test(stdout) && !child.killed) child.kill('SIGTERM');
    });
    child.on('close', (c) => resolve(c));
  });
  t.is(code, 143, stderr);
  t.regex(stdout + stderr, /terminated \(SIGTERM\)/);
  const latest = await findLatestCheckpoint(out);
  t.truthy(latest, 'a checkpoint was saved');
  t.true(existsSync(latest!.weights));
});

test.serial('clipscale train --resume with other arguments is a usage error (exit 2) listing the differences', async (t) => {
  const { runTrain } = await import('../lib/cli/commands/train.js');
  const { UsageError } = await import('../lib/cli/command.js');
  const out = freshDir();
  const modelPath = join(root, 'micro-cli.json');
  writeFileSync(modelPath, JSON.stringify({
    embed_dim: 16,
    vision_cfg: { image_size: 16, layers: 1, width: 16, head_width: 8, patch_size: 8 },
    text_cfg: { context_length: 16, vocab_size: tokenizer.vocabSize, width: 16, heads: 2, layers: 1 },
  }));
  const base = ['--model', modelPath, '--data', 'synthetic:size=64', '--samples', '32', '--out', out];
  const first = await runTrain([...base, '--batch-size', '8', '--stop-after-steps', '1']);
  t.is(first.steps, 1);
  t.true(existsSync(first.checkpoint!));
  const err = await t.throwsAsync(() => runTrain([...base, '--batch-size', '4', '--resume']));
  t.true(err instanceof UsageError, String(err));
  t.regex(err!.message, /global batch \(batch size × ranks\): saved 8 × 1 rank\(s\), now 4 × 1 rank\(s\)/);
});
