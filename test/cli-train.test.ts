// `clipscale train`: synthetic and webdataset data, logs, checkpoints that `embed` and
// loadCheckpoint read, exact resume through the command, and its exit codes.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import test from 'ava';

import { UsageError } from '../lib/cli/command.js';
import { parseDataSpec, runTrain } from '../lib/cli/commands/train.js';
import { runEmbed } from '../lib/cli/commands/embed.js';
import { syntheticInputs } from '../lib/data/make_shards.js';
import { defaultSyntheticTokenizer } from '../lib/data/synthetic.js';
import { TarWriter } from '../lib/data/tar_write.js';
import { readNpy } from '../lib/eval/npy.js';
import { loadCheckpoint } from '../lib/train/load.js';
import { WebDatasetData } from '../lib/train/webdataset_source.js';
import { capture, weightsOf, writeMicroConfig } from './_helpers/train_cli.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const dir = mkdtempSync(join(tmpdir(), 'clipscale-cli-train-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));
const f = (name: string) => join(dir, name);

const tokenizer = defaultSyntheticTokenizer();
const microPath = writeMicroConfig(f('micro.json'), tokenizer.vocabSize);

// Shards of the synthetic world (24-pixel PNGs, resized by the loader's crop to 16) with one
// undecodable image, so the loader's source position runs ahead of the samples trained on.
const shardDir = f('shards');
const shardPattern = join(shardDir, '{00000..00001}.tar');
test.before(async () => {
  mkdirSync(shardDir, { recursive: true });
  const inputs = [];
  for await (const s of syntheticInputs({ seed: 4, imageSize: 24 }, 40)) inputs.push(s);
  for (let shard = 0; shard < 2; shard++) {
    const w = new TarWriter(join(shardDir, `0000${shard}.tar`));
    for (const [i, s] of inputs.slice(shard * 20, shard * 20 + 20).entries()) {
      // The third sample of the first shard is corrupt: skipped and counted, never fatal.
      w.add(`${s.key}.${s.ext}`, shard === 0 && i === 2 ? new TextEncoder().encode('not a png') : s.image);
      w.add(`${s.key}.txt`, s.caption);
    }
    w.close();
  }
});

test('data specs: synthetic settings and shard patterns', (t) => {
  t.deepEqual(parseDataSpec('synthetic'), { kind: 'synthetic', size: 100_000, captions: 'precise', seed: 0 });
  t.deepEqual(parseDataSpec('synthetic:size=500, captions=noisy,seed=3'), { kind: 'synthetic', size: 500, captions: 'noisy', seed: 3 });
  t.deepEqual(parseDataSpec('a/{0..1}.tar::b/c.tar'), { kind: 'webdataset', urls: ['a/{0..1}.tar', 'b/c.tar'] });
  t.throws(() => parseDataSpec('synthetic:size=0'), { instanceOf: UsageError, message: /size must be an integer ≥ 1/ });
  t.throws(() => parseDataSpec('synthetic:captions=loud'), { instanceOf: UsageError, message: /captions must be one of precise, noisy, labels, web, got 'loud'/ });
  t.throws(() => parseDataSpec('synthetic:colour=red'), { instanceOf: UsageError, message: /unknown setting 'colour'/ });
});

test.serial('train on synthetic data: log lines, log.jsonl, evaluation, a checkpoint embed and loadCheckpoint read', async (t) => {
  const out = f('run-synthetic');
  const human = capture();
  const r = await runTrain(
    ['--model', microPath, '--data', 'synthetic:size=300,seed=2', '--batch-size', '16', '--samples', '96', '--lr', '1e-3', '--warmup', '2',
      '--log-every', '2', '--eval-tasks', 'colour,shape', '--out', out],
    { console: human },
  );
  t.is(r.steps, 6);
  t.is(r.samples, 96);
  t.is(r.checkpoint, join(out, 'checkpoint-6.safetensors'));
  t.true(r.loss !== null && r.loss < Math.log(16) + 0.5, `loss ${r.loss}`);
  t.true(r.eval !== undefined && r.eval.zeroshot_colour_acc1 >= 0 && 'zeroshot_shape_acc1' in r.eval && 'retrieval_text_retrieval_recall@1' in r.eval);
  const all = human.text.trim().split('\n');
  t.regex(all[0], /^clipscale .* · model micro, .* · 6 steps × 16 samples · fp32 · out /, 'the run header');
  t.is(all[3], 'evaluating… (step 6, 96 samples)');
  const lines = all.filter((l) => l.startsWith('step '));
  t.is(lines.length, 3, human.text);
  t.is(all.length, 5, human.text);
  t.regex(lines[0], /^step 2 {2}samples 32\/96 \(33\.3%\) {2}loss \d/);
  const records = readFileSync(join(out, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
  t.deepEqual(records.map((x) => x.step), [2, 4, 6]);
  for (const k of ['loss', 'lr', 'logit_scale', 'samples_per_s', 'data_time_s', 'step_time_s']) t.is(typeof records[0][k], 'number', k);
  t.is(typeof records[2].zeroshot_colour_acc1, 'number', 'the evaluation joins the last record');

  // The checkpoint is a plain OpenCLIP-named state dict: loadCheckpoint takes the file or the directory.
  const fromFile = await loadCheckpoint(microPath, r.checkpoint!);
  const fromDir = await loadCheckpoint(microPath, out);
  const saved = await weightsOf(r.checkpoint!);
  for (const p of fromFile.parameters()) t.deepEqual(p.values(), saved.get(p.name), p.name);
  t.deepEqual(fromDir.parameters().map((p) => p.values()), fromFile.parameters().map((p) => p.values()));
  fromFile.dispose();
  fromDir.dispose();

  writeFileSync(f('caps.txt'), 'a red circle\na green square\n');
  const e = await runEmbed(['--model', microPath, '--weights', r.checkpoint!, '--texts', f('caps.txt'), '--vocab', 'synthetic', '--out', join(out, 'emb')]);
  const feats = readNpy(e.text_features!.path);
  t.deepEqual(feats.shape, [2, 16]);
  t.true([...(feats.data as Float32Array)].every(Number.isFinite));
});

test.serial('resume through the command is exact: 4 steps, stop, resume 4 equals 8 straight (bitwise)', async (t) => {
  const common = ['--model', microPath, '--data', 'synthetic:size=40,seed=3', '--batch-size', '8', '--samples', '64', '--seed', '5',
    '--lr', '1e-3', '--warmup', '2', '--accum-freq', '2', '--grad-clip-norm', '1', '--schedule', 'const-cooldown', '--cooldown-steps', '3', '--log-every', '1'];
  const straight = await runTrain([...common, '--out', f('straight')]);
  const first = await runTrain([...common, '--out', f('halves'), '--stop-after-steps', '4']);
  t.is(first.steps, 4);
  t.false(first.finished);
  t.true(existsSync(f('halves/checkpoint-4.safetensors')));
  await t.throwsAsync(runTrain([...common, '--out', f('halves')]), { instanceOf: UsageError, message: /already holds a checkpoint \(step 4\); pass --resume/ });
  const second = await runTrain([...common, '--out', f('halves'), '--resume']);
  t.is(second.steps, 8);
  t.is(straight.steps, 8);
  const a = await weightsOf(straight.checkpoint!);
  const b = await weightsOf(second.checkpoint!);
  t.deepEqual([...b.keys()].sort(), [...a.keys()].sort());
  for (const [k, v] of a) t.deepEqual(b.get(k), v, k);
  const log = readFileSync(f('halves/log.jsonl'), 'utf8').trim().split('\n');
  t.is(log.length, 8, 'the resumed run appends to log.jsonl');
});

test.serial('an abort (Ctrl-C) stops after the current step and leaves a checkpoint to resume from', async (t) => {
  const controller = new AbortController();
  // Abort at the first log record (step 1), not after a fixed time: on a loaded machine 400 ms
  // could pass before the first step, or even before runTrain listened for the signal.
  const firstRecord = { write: () => controller.abort() };
  const r = await runTrain(['--model', microPath, '--data', 'synthetic:size=100', '--batch-size', '8', '--samples', '8000000', '--log-every', '1', '--out', f('aborted')], { signal: controller.signal, jsonl: [firstRecord] });
  t.true(r.interrupted);
  t.false(r.finished);
  t.true(r.steps > 0 && r.steps < 1_000_000, `stopped at step ${r.steps}`);
  t.is(r.checkpoint, join(f('aborted'), `checkpoint-${r.steps}.safetensors`));
  t.true(existsSync(r.checkpoint!));
});

test.serial('a signal aborted before the run starts stops it before its first step', async (t) => {
  const controller = new AbortController();
  controller.abort();
  const r = await runTrain(['--model', microPath, '--data', 'synthetic:size=100', '--batch-size', '8', '--samples', '8000000', '--out', f('aborted-early')], { signal: controller.signal });
  t.true(r.interrupted);
  t.false(r.finished);
  t.is(r.steps, 0);
});

test.serial('the webdataset source resumes at the exact source sample, past a corrupt image', async (t) => {
  const mk = (extra = {}) => new WebDatasetData({ urls: shardPattern, imageSize: 16, contextLength: 16, tokenizer, seed: 1, shuffleBuffer: 8, workers: 0, ...extra });
  const a = mk();
  const batches = [await a.batch(0, 8), await a.batch(8, 8), await a.batch(16, 8)];
  const saved = a.describe() as { position: number; sourcePosition: number; skipped: Record<string, number> };
  await a.close();
  t.is(saved.position, 24);
  t.is(saved.sourcePosition, 25, 'one corrupt image was passed over');
  t.is(saved.skipped.corrupt_image, 1);

  // Resumed at sample 16 with the position the first run recorded after two batches.
  const b = mk({ resumeFrom: { position: 16, sourcePosition: 17 } });
  const resumed = await b.batch(16, 8);
  await b.close();
  t.deepEqual(resumed.images, batches[2].images);
  t.deepEqual(resumed.tokens, batches[2].tokens);
  t.false(b.approximateResume);

  // Without the record, the source position is a guess (no skips assumed), and here it is wrong.
  const c = mk();
  const guessed = await c.batch(16, 8);
  await c.close();
  t.true(c.approximateResume);
  t.notDeepEqual(guessed.tokens, batches[2].tokens);
});

test.serial('train on webdataset shards, stop and resume: the same weights as one run', async (t) => {
  const common = ['--model', microPath, '--data', shardPattern, '--vocab', 'synthetic', '--batch-size', '8', '--samples', '64', '--seed', '1',
    '--shuffle-buffer', '8', '--workers', '1', '--lr', '1e-3'];
  const straight = await runTrain([...common, '--out', f('wds-straight')]);
  t.is(straight.steps, 8, '64 samples from 39 good ones: a second epoch follows the first');
  t.is(straight.skipped_samples?.corrupt_image, 2, 'the corrupt image is met once an epoch');
  await runTrain([...common, '--out', f('wds-halves'), '--stop-after-steps', '3']);
  const state = JSON.parse(readFileSync(f('wds-halves/state-3.json'), 'utf8')) as { state: { dataPosition: { data: { position: number; sourcePosition: number } } } };
  t.deepEqual([state.state.dataPosition.data.position, state.state.dataPosition.data.sourcePosition], [24, 25]);
  const resumed = await runTrain([...common, '--out', f('wds-halves'), '--resume']);
  const a = await weightsOf(straight.checkpoint!);
  const b = await weightsOf(resumed.checkpoint!);
  for (const [k, v] of a) t.deepEqual(b.get(k), v, k);
});

test('bad options are usage errors that say what is wrong', async (t) => {
  const base = ['--model', microPath, '--data', 'synthetic:size=40', '--batch-size', '8', '--samples', '16'];
  const usage = async (args: string[], message: RegExp) => t.throwsAsync(runTrain(args), { instanceOf: UsageError, message });
  await usage(['--data', 'synthetic', '--batch-size', '8', '--samples', '16'], /--model is required/);
  await usage([...base.slice(0, 4), '--batch-size', '1', '--samples', '16'], /--batch-size must be at least 2/);
  await usage([...base.slice(0, 6), '--samples', '4'], /--samples \(4\) must be at least --batch-size \(8\)/);
  await usage([...base, '--schedule', 'linear'], /--schedule must be one of cosine, const, const-cooldown/);
  await usage([...base, '--precision', 'fp8'], /--precision must be one of fp32, amp_bf16 \(= bf16\), bf16/);
  await usage([...base, '--resume'], /--resume needs --out/);
  await usage([...base, '--eval-tasks', 'texture'], /unknown task 'texture'/);
  await usage(['--model', microPath, '--data', shardPattern, '--vocab', 'openai', '--batch-size', '8', '--samples', '16'], /the vocabulary 'openai' has 49408 tokens but the model's text_cfg.vocab_size is \d+/);
  await usage(['--model', microPath, '--data', shardPattern, '--vocab', 'synthetic', '--batch-size', '8', '--samples', '16', '--eval-tasks', 'colour'], /need --data synthetic/);
  await usage([...base.slice(2), '--model', 'no-such-model'], /unknown model 'no-such-model'. Known models: .*tiny/);
  await usage([...base, '--lr', 'fast'], /--lr must be a number, got 'fast'/);
  await usage([...base, '--learning-rate', '1'], /Unknown option '--learning-rate'/);

  const smallVocab = f('small-vocab.json');
  writeFileSync(smallVocab, JSON.stringify({ ...JSON.parse(readFileSync(microPath, 'utf8')), text_cfg: { context_length: 16, vocab_size: 100, width: 16, heads: 2, layers: 1 } }));
  await t.throwsAsync(runTrain(['--model', smallVocab, ...base.slice(2)]), { message: new RegExp(`tokenizer has ${tokenizer.vocabSize} tokens but model 'small-vocab' has text_cfg.vocab_size 100`) });
  // Refused before anything runs: the CPU has no fp16 (OpenCLIP's amp); CUDA has.
  await usage([...base, '--precision', 'amp'], /--precision amp \(fp16\) is not offered on the CPU: .*--device cuda/);
  await t.throwsAsync(runTrain([...base, '--device', 'tpu']), { message: /device must be 'cpu', 'cuda' or 'cuda:N', got 'tpu'/ });
  await usage([...base, '--loss-scaling', 'static'], /--loss-scaling takes 'dynamic' or 'none', got 'static'/);
});

/** Runs the real command line in a child process (not a TTY: plain lines). */
function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import=tsx', join(repoRoot, 'lib', 'cli', 'main.ts'), ...args], { cwd: repoRoot, env: { ...process.env, CLIPSCALE_NUM_THREADS: '1' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test('exit codes: 0 done (JSON lines with --json), 1 error, 2 usage', async (t) => {
  const [ok, err, use] = await Promise.all([
    cli(['train', '--model', microPath, '--data', 'synthetic:size=40', '--batch-size', '8', '--samples', '16', '--log-every', '1', '--json']),
    cli(['train', '--model', microPath, '--data', 'synthetic:size=40', '--batch-size', '8', '--samples', '16', '--device', 'cuda:99']),
    cli(['train', '--model', microPath, '--data', 'synthetic:size=x', '--batch-size', '8', '--samples', '16']),
  ]);
  t.is(ok.code, 0, ok.stderr);
  const lines = ok.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  t.deepEqual(lines.map((l) => l.step ?? 'summary'), [1, 2, 'summary']);
  t.like(lines[2], { summary: true, finished: true, interrupted: false, steps: 2, samples: 16 });
  t.regex(ok.stderr, /step 1 {2}samples 8\/16/, 'human lines go to stderr with --json');
  t.is(err.code, 1);
  t.regex(err.stderr, /CUDA backend/);
  t.is(use.code, 2);
  t.regex(use.stderr, /size must be an integer ≥ 1, got 'x'/);
});
