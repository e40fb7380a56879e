// OpenCLIP's front door: its training flags mapped onto clipscale train's, "did you mean" hints,
// params.txt, TensorBoard event files from a run, resume from a path, --pretrained, and run folders
// that name their model for embed and eval.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';

import { UsageError } from '../lib/cli/command.js';
import { command as evalCommand } from '../lib/cli/commands/eval.js';
import { runEmbed } from '../lib/cli/commands/embed.js';
import { runTrain } from '../lib/cli/commands/train.js';
import { mapPrecision, parseReportTo, runFolder, splitResume } from '../lib/cli/openclip_flags.js';
import { closestOption } from '../lib/cli/suggest.js';
import { defaultSyntheticTokenizer } from '../lib/data/synthetic.js';
import { readNpy } from '../lib/eval/npy.js';
import { listEventFiles, readScalars } from '../lib/train/tensorboard.js';
import { runJsonCommand } from './_helpers/cli.js';
import { capture, weightsOf, writeMicroConfig } from './_helpers/train_cli.js';

const dir = mkdtempSync(join(tmpdir(), 'clipscale-cli-openclip-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));
const f = (name: string) => join(dir, name);

const tokenizer = defaultSyntheticTokenizer();
const microPath = writeMicroConfig(f('micro.json'), tokenizer.vocabSize);

test('--resume takes an optional value as OpenCLIP does', (t) => {
  t.deepEqual(splitResume(['--resume', '--out', 'x']), ['--resume', '--out', 'x']);
  t.deepEqual(splitResume(['--resume', 'latest', '--out', 'x']), ['--resume', '--resume-from', 'latest', '--out', 'x']);
  t.deepEqual(splitResume(['--resume=runs/a/checkpoint-4.safetensors']), ['--resume', '--resume-from', 'runs/a/checkpoint-4.safetensors']);
  t.deepEqual(splitResume(['--lr', '1', '--resume']), ['--lr', '1', '--resume']);
});

test('precision, report-to and run folder names map to what runs here', (t) => {
  t.is(mapPrecision(undefined, 'cpu'), 'fp32');
  t.is(mapPrecision('amp_bf16', 'cpu'), 'bf16');
  t.is(mapPrecision('pure_bf16', 'cpu'), 'bf16');
  t.is(mapPrecision('bf16', 'cpu'), 'bf16');
  t.throws(() => mapPrecision('amp', 'cpu'), { instanceOf: UsageError, message: /--precision amp \(fp16\) is not offered on the CPU: .*--device cuda for fp16, or --precision amp_bf16/ });
  t.is(mapPrecision('fp16', 'cuda'), 'fp16');
  t.is(mapPrecision('amp', 'cuda:1'), 'fp16');
  t.throws(() => mapPrecision('fp8', 'cpu'), { message: /--precision must be one of/ });
  t.deepEqual(parseReportTo('tensorboard'), ['tensorboard']);
  t.deepEqual(parseReportTo('all'), ['tensorboard']);
  t.deepEqual(parseReportTo(undefined), []);
  t.throws(() => parseReportTo('wandb'), { message: /wandb is not supported/ });
  t.is(runFolder(undefined, 'logs', 'exp1'), join('logs', 'exp1'));
  t.is(runFolder('runs/a', undefined, undefined), 'runs/a');
  t.throws(() => runFolder('runs/a', 'logs', 'x'), { message: /not both/ });
});

test('unknown options get a "did you mean" hint', async (t) => {
  const known = ['lr', 'wd', 'batch-size', 'train-data', 'train-num-samples', 'grad-clip-norm', 'epochs'];
  t.is(closestOption('--learning-rate', known), 'lr');
  t.is(closestOption('--train_data', known), 'train-data');
  t.is(closestOption('--batchsize', known), 'batch-size');
  t.is(closestOption('--epoch', known), 'epochs');
  t.is(closestOption('--grad-clip', known), 'grad-clip-norm');
  t.is(closestOption('--xyzzy', known), undefined);
  await t.throwsAsync(runTrain(['--model', microPath, '--train_data', 'synthetic', '--batch-size', '8', '--samples', '16']), {
    instanceOf: UsageError,
    message: /Unknown option '--train_data'.*did you mean --train-data\?/,
  });
  await t.throwsAsync(runTrain(['--model', microPath, '--data', 'synthetic', '--batch-size', '8', '--epochs', '1', '--samples', '16']), { message: /--samples N, or --train-num-samples N with --epochs E/ });
  await t.throwsAsync(runTrain(['--model', microPath, '--data', 'synthetic', '--batch-size', '8', '--samples', '16', '--save-frequency', '1']), { message: /--save-frequency counts epochs/ });
  await t.throwsAsync(runTrain(['--model', microPath, '--data', 'synthetic', '--batch-size', '8', '--samples', '16', '--pretrained', 'laion2b_s34b_b79k']), { message: /clipscale downloads nothing/ });
  await t.throwsAsync(runTrain(['--model', microPath, '--data', 'synthetic', '--batch-size', '8', '--samples', '16', '--report-to', 'tensorboard']), { message: /needs --out DIR/ });
});

test("OpenCLIP's command line: epochs, save frequency, TensorBoard, params.txt, evaluation lines, resume PATH, pretrained", async (t) => {
  const out = f('run');
  const human = capture();
  const r = await runTrain([
    '--model', microPath, '--train-data', 'synthetic:size=64', '--train-num-samples', '32', '--epochs', '3', '--save-frequency', '1',
    '--batch-size', '8', '--precision', 'amp_bf16', '--lr-scheduler', 'const', '--report-to', 'tensorboard', '--log-every-n-steps', '2',
    '--eval-tasks', 'colour', '--out', out,
  ], { console: human });
  t.is(r.steps, 12, '32 samples an epoch × 3 epochs / 8');
  t.is(r.samples, 96);
  t.true(r.finished);
  // A checkpoint each epoch (4 steps); the last two are kept.
  t.true(existsSync(join(out, 'checkpoint-8.safetensors')));
  t.true(existsSync(join(out, 'checkpoint-12.safetensors')));
  // params.txt as OpenCLIP writes it: sorted `name: value` lines, with the effective settings and versions.
  const params = readFileSync(join(out, 'params.txt'), 'utf8').trimEnd().split('\n');
  const keys = params.map((l) => l.slice(0, l.indexOf(':')));
  t.deepEqual(keys, [...keys].sort());
  for (const line of ['epochs: 3', 'train_num_samples: 32', 'precision: bf16', 'lr_scheduler: const', 'total_steps: 12', 'batch_size: 8', 'report_to: tensorboard', 'clipscale_version: 0.1.0']) {
    t.true(params.includes(line), line);
  }
  t.true(params.some((l) => l.startsWith('model_config: {"name":"micro"')));
  t.regex(human.text, /^clipscale 0\.1\.0 \(Node v\d+.*\) · model micro, .* params · 12 steps × 8 samples · bf16 · out /);
  t.regex(human.text, /\nevaluating… \(step 12, 96 samples\)\nstep 12 .* zeroshot_colour_acc1 /);
  // TensorBoard: one event a log step (steps 2, 4, …, 12), OpenCLIP's tags, eval metrics at the end.
  const events = listEventFiles(join(out, 'tensorboard'));
  t.is(events.length, 1);
  t.regex(events[0], /events\.out\.tfevents\.\d{10}\./);
  const scalars = readScalars(join(out, 'tensorboard'));
  t.deepEqual(scalars.get('train/loss')!.map((p) => p.step), [2, 4, 6, 8, 10, 12]);
  const log = readFileSync(join(out, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
  t.deepEqual(scalars.get('train/loss')!.map((p) => p.value), log.map((l) => Math.fround(l.loss)));
  t.deepEqual(scalars.get('train/lr')!.map((p) => p.value), log.map((l) => Math.fround(l.lr)));
  t.deepEqual(scalars.get('train/scale')!.map((p) => p.value), log.map((l) => Math.fround(l.logit_scale)));
  t.is(scalars.get('train/samples_per_second')!.length, 6);
  t.deepEqual(scalars.get('val/zeroshot_colour_acc1')!.map((p) => p.step), [12]);

  // --resume PATH: from the checkpoint of step 8 into a new folder; the same weights as the run's step 12.
  const out2 = f('resumed');
  const human2 = capture();
  const r2 = await runTrain([
    '--model', microPath, '--train-data', 'synthetic:size=64', '--train-num-samples', '32', '--epochs', '3', '--batch-size', '8',
    '--precision', 'amp_bf16', '--lr-scheduler', 'const', '--resume', join(out, 'checkpoint-8.safetensors'), '--out', out2,
  ], { console: human2 });
  t.is(r2.steps, 12);
  t.true(human2.text.includes(`resumed from step 8 (checkpoint ${join(out, 'checkpoint-8.safetensors')})`));
  const a = await weightsOf(join(out, 'checkpoint-12.safetensors'));
  const b = await weightsOf(join(out2, 'checkpoint-12.safetensors'));
  for (const [k, v] of a) t.deepEqual(b.get(k), v, k);

  // --pretrained: a run's weights as the start; with lr 0 and no steps' change they come out unchanged.
  const out3 = f('pretrained');
  const human3 = capture();
  await runTrain(['--model', microPath, '--data', 'synthetic:size=64', '--samples', '8', '--batch-size', '8', '--lr', '0', '--pretrained', join(out, 'checkpoint-12.safetensors'), '--out', out3], { console: human3 });
  t.true(human3.text.includes('starting from pretrained weights'));
  const c = await weightsOf(join(out3, 'checkpoint-1.safetensors'));
  for (const [k, v] of a) t.deepEqual(c.get(k), v, k);

  // Run folders name their model: embed and eval zeroshot without --model.
  const texts = f('captions.txt');
  writeFileSync(texts, 'a red circle\na blue square\n');
  const emb = await runEmbed(['--weights', out, '--texts', texts, '--out', f('feats')]);
  t.deepEqual(emb.text_features!.shape, [2, 16]);
  t.is(readNpy(emb.text_features!.path).shape[1], 16);
  const zs = await runJsonCommand(evalCommand, ['zeroshot', '--weights', out, '--data', 'synthetic:colour', '--n', '16']);
  t.is(zs.task, 'zeroshot');
  t.is(typeof zs.acc1, 'number');
  await t.throwsAsync(runEmbed(['--weights', f('nothing-here'), '--texts', texts, '--out', f('feats2')]), { instanceOf: UsageError, message: /--weights '.*nothing-here' does not exist/ });
  await t.throwsAsync(runEmbed(['--weights', join(out, 'checkpoint-12.safetensors'), '--texts', texts, '--out', f('feats2')]), { instanceOf: UsageError, message: /--model is required when --weights is a file/ });
  await t.throwsAsync(runEmbed(['--weights', dir, '--texts', texts, '--out', f('feats2')]), { instanceOf: UsageError, message: /holds no whole training checkpoint/ });
});

test('on a terminal reporting 0 columns: the bar is drawn, evaluation metrics get their own line', async (t) => {
  const tty = { text: '', isTTY: true, columns: 0, write(chunk: string) { tty.text += chunk; return true; } };
  await runTrain(['--model', microPath, '--data', 'synthetic:size=64', '--samples', '32', '--batch-size', '8', '--eval-tasks', 'colour'], { console: tty });
  t.regex(tty.text, /\r\[#+\] 100\.0%/, 'a full 80-column bar at the end');
  t.regex(tty.text, /evaluating… \(step 4, 32 samples\)\n/);
  t.regex(tty.text, /evaluation at step 4: zeroshot_colour_acc1 0\.\d+, /);
});

test('under launch, only rank 0 prints the run header and the summary with the weights', async (t) => {
  const { spawnSync } = await import('node:child_process');
  const root = new URL('..', import.meta.url).pathname;
  const out = f('launched');
  const r = spawnSync(process.execPath, ['--import=tsx', join(root, 'lib/cli/main.ts'), 'launch', '--nproc', '2', 'train', '--model', microPath, '--data', 'synthetic:size=64', '--batch-size', '4', '--samples', '16', '--out', out], {
    encoding: 'utf8', timeout: 240_000, cwd: root, env: { ...process.env, CLIPSCALE_NUM_THREADS: '1' },
  });
  t.is(r.status, 0, r.stderr);
  const lines = `${r.stdout}${r.stderr}`.split('\n');
  const weights = lines.filter((l) => l.includes('weights '));
  t.deepEqual(weights.map((l) => l.slice(0, 9)), ['[rank 0] '], r.stdout);
  t.true(weights[0].includes(join(out, 'checkpoint-2.safetensors')));
  t.is(lines.filter((l) => / · model /.test(l)).length, 1, 'one header');
});
