import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, hostname, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import test from 'ava';

import { main } from '../lib/cli/main.js';
import { gridPoints, loadSweepGrid, parseSeedList, parseSweepGrid, sharedSettings, withSeeds, type SweepGrid } from '../lib/scaling/grid.js';
import { isPlateauLoss, isPlateauRecord } from '../lib/scaling/plateau.js';
import { readResults, recordKey } from '../lib/scaling/record.js';
import { writeReport } from '../lib/scaling/report.js';
import { prepareSweepDir, runSweep } from '../lib/scaling/sweep.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

/** A grid small enough to train in seconds: 2 tiny models × 1 data size × 2 budgets. */
const microGrid = {
  name: 'test-micro',
  models: ['micro', 'tiny'],
  data_sizes: [64],
  samples_seen: [32, 64],
  distributions: ['precise'],
  batch_size: 16,
  lr: 0.002,
  warmup_fraction: 0.25,
  checkpoint_every: 2,
  eval: { tasks: ['colour'], zero_shot_images: 16, retrieval_images: 8 },
};

function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `clipscale-${prefix}-`));
}

function lines(path: string): string[] {
  return readFileSync(path, 'utf8').split('\n').filter((l) => l.trim() !== '');
}

test.serial('a micro grid runs to the end, writes results.jsonl with one record per point, and reports', async (t) => {
  const dir = tempDir('sweep');
  const grid = parseSweepGrid(microGrid);
  const progress: string[] = [];
  const summary = await runSweep({ grid, out: dir, progress: { write: (s: string) => progress.push(s) } });
  t.is(summary.total, 4);
  t.is(summary.trained, 4);
  const { records } = readResults(join(dir, 'results.jsonl'));
  t.deepEqual(records.map((r) => recordKey(r)).sort(), gridPoints(grid).map((p) => p.key).sort());
  for (const r of records) {
    t.true(r.gmacs > 0 && r.params > 0 && r.wall_s > 0);
    t.is(r.batch_size, 16);
    t.is(r.distribution, 'precise');
    t.is(typeof r.metrics.zeroshot_colour_acc1, 'number');
    t.is(r.plateau, isPlateauLoss(r.final_loss as number, 16), 'the plateau flag is written');
    t.is(typeof r.metrics['retrieval_text_retrieval_recall@1'], 'number');
    // ranks are not scores in [0, 1]: they are kept apart from the fitted metrics
    t.false('retrieval_text_retrieval_mean_rank' in r.metrics);
    // the schedule spans each point's own samples: its log ends at that point's last step
    const log = lines(join(dir, 'runs', gridPoints(grid).find((p) => p.key === recordKey(r))!.dirName, 'log.jsonl')).map((l) => JSON.parse(l));
    t.is(log[log.length - 1].samples, r.samples_seen);
  }
  // bigger model, more compute per sample; the text tower uses the tokenizer's vocabulary
  const micro = records.find((r) => r.model === 'micro')!;
  const tiny = records.find((r) => r.model === 'tiny')!;
  t.true(tiny.gmacs > micro.gmacs);
  const text = progress.join('');
  t.regex(text, /\[4\/4\]/);
  t.regex(text, /eta /);

  const report = writeReport(dir, { bootstrapSamples: 50 });
  t.true(existsSync(join(dir, 'report.md')));
  t.true(existsSync(join(dir, 'index.html')));
  t.regex(report.markdown, /4 runs: 2 models/);

  // a second call finds every point finished and trains nothing
  const again = await runSweep({ grid, out: dir });
  t.is(again.trained, 0);
  t.is(again.skipped, 4);
  t.is(lines(join(dir, 'results.jsonl')).length, 4);
  rmSync(dir, { recursive: true, force: true });
});

test.serial('a sweep killed mid-point and restarted loses no finished point and resumes the interrupted one', async (t) => {
  const dir = tempDir('sweep-kill');
  // point 1 is short; point 2 is long enough (128 steps, a checkpoint every 4) to be killed in the middle
  const gridFile = join(dir, 'grid.test.json');
  writeFileSync(gridFile, JSON.stringify({ ...microGrid, name: 'test-kill', models: ['micro'], data_sizes: [256], samples_seen: [32, 2048], checkpoint_every: 4 }));
  const grid = loadSweepGrid(gridFile);
  const [first, second] = gridPoints(grid);
  const out = join(dir, 'sweep');
  const results = join(out, 'results.jsonl');
  const secondLatest = join(out, 'runs', second.dirName, 'latest.json');

  const child = spawn(process.execPath, ['--import=tsx', join(repoRoot, 'lib', 'cli', 'main.ts'), 'sweep', '--grid', gridFile, '--out', out, '--quiet'], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolveExit) => child.on('exit', (code) => resolveExit(code)));
  let exitedEarly = false;
  void exited.then(() => (exitedEarly = true));
  // kill it once the first point's record is written and the second point has a checkpoint
  const deadline = Date.now() + 60_000;
  while (!(existsSync(results) && lines(results).length >= 1 && existsSync(secondLatest))) {
    if (exitedEarly) return t.fail(`the sweep exited before it could be killed: ${stderr}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      return t.fail('the sweep did not reach the second point within 60 s');
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  child.kill('SIGKILL');
  await exited;
  const before = lines(results);
  t.is(before.length, 1, 'killed while the second point was training');
  t.is(recordKey(JSON.parse(before[0])), first.key);
  const checkpointStep = (JSON.parse(readFileSync(secondLatest, 'utf8')) as { step: number }).step;
  t.true(checkpointStep > 0 && checkpointStep < second.steps, `the second point stopped mid-run (checkpoint at step ${checkpointStep} of ${second.steps})`);

  const summary = await runSweep({ grid, out });
  t.is(summary.skipped, 1, 'the finished point is not trained again');
  t.is(summary.trained, 1);
  const after = lines(results);
  t.is(after.length, 2);
  t.is(after[0], before[0], 'the finished record is kept as it was');
  const resumed = JSON.parse(after[1]);
  t.is(recordKey(resumed), second.key);
  t.true(resumed.resumed_from_step >= checkpointStep, `resumed from step ${resumed.resumed_from_step}, checkpoint was at ${checkpointStep}`);
  t.is(resumed.samples_seen, 2048);
  rmSync(dir, { recursive: true, force: true });
});

test('grid errors name the field and what was wrong', (t) => {
  const bad = (patch: Record<string, unknown>, message: RegExp) =>
    t.throws(() => parseSweepGrid({ ...microGrid, ...patch }, 'g.json'), { message }, JSON.stringify(patch));
  bad({ models: ['micro', 'huge'] }, /g\.json: 'models\[1\]': model config: unknown model 'huge'\. Known models: .*micro/);
  bad({ models: [] }, /axis 'models' is empty/);
  bad({ data_sizes: [] }, /axis 'data_sizes' is empty/);
  bad({ samples_seen: undefined }, /axis 'samples_seen' is missing/);
  bad({ distributions: ['precise', 'clean'] }, /'distributions\[1\]' must be one of precise, noisy, labels, web, got "clean"/);
  bad({ exclude: [{ model: 'small' }] }, /'exclude\[0\]\.model' \("small"\) is none of the grid's models/);
  bad({ exclude: [{ size: 64 }] }, /unknown field 'exclude\[0\]\.size'/);
  bad({ exclude: [{}] }, /'exclude\[0\]' must be an object with some of model, data_size, samples_seen, distribution/);
  bad({ device: 'tpu' }, /'device' must be 'cpu' or 'cuda'/);
  bad({ data_sizes: [64, 1.5] }, /'data_sizes\[1\]' must be a positive integer, got 1\.5/);
  bad({ samples_seen: [32, -64] }, /'samples_seen\[1\]' must be a positive integer, got -64/);
  bad({ samples_seen: [40] }, /'samples_seen\[0\]' \(40\) must be a multiple of batch_size \(16\)/);
  bad({ samples_seen: [32, 32] }, /'samples_seen\[1\]' repeats the value 32/);
  bad({ data_sizes: [8] }, /'data_sizes\[0\]' \(8\) is smaller than batch_size \(16\)/);
  bad({ lr: 0 }, /'lr' must be a positive number, got 0/);
  bad({ lr: '1e-3' }, /'lr' must be a positive number, got "1e-3"/);
  bad({ batch_size: 1 }, /'batch_size' must be an integer ≥ 2, got 1/);
  bad({ warmup_fraction: 1 }, /'warmup_fraction' must be a number in \[0, 1\)/);
  bad({ schedule: 'linear' }, /'schedule' must be one of cosine, const, const-cooldown/);
  bad({ learning_rate: 0.1 }, /unknown field 'learning_rate'/);
  bad({ eval: { zero_shot_images: 0 } }, /'eval\.zero_shot_images' must be an integer ≥ 1, got 0/);
  bad({ eval: { tasks: ['size'] } }, /'eval\.tasks\[0\]' must be one of shape, colour, shape_colour/);
  t.throws(() => loadSweepGrid('no-such-grid'), { message: /unknown grid 'no-such-grid'\. Shipped grids: .*study-cpu/ });
});

test("exclusions leave points out of the product; the shipped presets parse, and the cpu preset's points are the full preset's", (t) => {
  const grid = parseSweepGrid({ ...microGrid, data_sizes: [64, 128], exclude: [{ model: 'tiny', data_size: 64 }] });
  const points = gridPoints(grid);
  t.is(points.length, 6);
  t.false(points.some((p) => p.model === 'tiny' && p.data_size === 64));
  const full = gridPoints(loadSweepGrid('study-full'));
  const cpu = gridPoints(loadSweepGrid('study-cpu'));
  t.is(full.length, 116, '58 points × 2 seeds');
  t.is(cpu.length, 20);
  for (const p of cpu) t.truthy(full.find((q) => q.key === p.key && q.initSeed === p.initSeed && q.steps === p.steps && q.warmupSteps === p.warmupSteps), p.key);
  t.deepEqual(sharedSettings(loadSweepGrid('study-cpu')), sharedSettings(loadSweepGrid('study-full')), 'trained the same way');
  t.is(loadSweepGrid('study-gpu').device, 'cuda');
});

test('a run still at ln(batch size) at the end is flagged as never having left the plateau', (t) => {
  t.true(isPlateauLoss(Math.log(32) - 0.01, 32));
  t.false(isPlateauLoss(2.5, 32));
  t.false(isPlateauLoss(null, 32));
  t.true(isPlateauRecord({ model: 'm', gmacs: 1, image_gmacs: 0, text_gmacs: 0, params: 1, samples_seen: 32, data_size: 32, distribution: 'web', metrics: {}, wall_s: 1, batch_size: 16, final_loss: 2.77 }));
  t.false(isPlateauRecord({ model: 'm', gmacs: 1, image_gmacs: 0, text_gmacs: 0, params: 1, samples_seen: 32, data_size: 32, distribution: 'web', metrics: {}, wall_s: 1, batch_size: 16, final_loss: 2.77, plateau: false }));
});

test('points have deterministic init seeds that do not depend on the grid order', (t) => {
  const a = gridPoints(parseSweepGrid(microGrid));
  const b = gridPoints(parseSweepGrid({ ...microGrid, models: ['tiny', 'micro'], samples_seen: [64, 32] }));
  for (const p of a) t.is(b.find((q) => q.key === p.key)!.initSeed, p.initSeed);
  t.is(new Set(a.map((p) => p.initSeed)).size, a.length, 'each point its own seed');
  const other = gridPoints(parseSweepGrid({ ...microGrid, seed: 1 }));
  t.not(other[0].initSeed, a[0].initSeed, 'the grid seed changes them');
});

test('a sweep directory refuses a grid with other shared settings, and the CLI says what is missing', async (t) => {
  const dir = tempDir('sweep-settings');
  const grid: SweepGrid = parseSweepGrid({ ...microGrid, samples_seen: [32], models: ['micro'] });
  await runSweep({ grid, out: dir });
  await t.throwsAsync(runSweep({ grid: { ...grid, lr: 0.01 }, out: dir }), { message: /other settings \(lr: 0\.002 there, 0\.01 now\)/ });
  // a live sweep's lock keeps a second one out; a dead one's is taken over
  writeFileSync(join(dir, 'sweep.lock'), JSON.stringify({ pid: process.ppid, host: hostname(), started: 'earlier' }));
  await t.throwsAsync(runSweep({ grid, out: dir }), { message: new RegExp(`another sweep \\(pid ${process.ppid}, started earlier\\) is running`) });
  writeFileSync(join(dir, 'sweep.lock'), JSON.stringify({ pid: 99_999_999, host: hostname(), started: 'earlier' }));
  t.is((await runSweep({ grid, out: dir })).skipped, 1);
  t.false(existsSync(join(dir, 'sweep.lock')), 'released at the end');
  await t.throwsAsync(main(['sweep', '--out', dir]), { message: /--grid is required/ });
  await t.throwsAsync(main(['sweep', '--grid', 'smoke', '--out', dir, '--workers', '0']), { message: /--workers must be ≥ 1/ });
  await t.throwsAsync(main(['study', '--quick', '--grid', 'smoke']), { message: /--quick or --grid, not both/ });
  await t.throwsAsync(main(['study', '--preset', 'huge']), { message: /unknown --preset 'huge' \(presets: cpu, quick, full, gpu\)/ });
  rmSync(dir, { recursive: true, force: true });
});

test('the report copes with perfect scores from real sweeps (E = 0 is left out of fits and plots, and counted)', (t) => {
  const dir = tempDir('sweep-perfect');
  const base = { model: 'micro', gmacs: 0.001, image_gmacs: 0.0004, text_gmacs: 0.0006, params: 1000, data_size: 100, distribution: 'precise', wall_s: 1 };
  const rows = [1000, 2000, 4000, 8000, 16000].map((samples_seen, i) => ({
    ...base,
    samples_seen,
    // recall@10 on a tiny retrieval set reaches 1 at the two largest budgets; acc5 is perfect everywhere
    metrics: { acc1: 0.2 + 0.1 * i, 'recall@10': Math.min(1, 0.7 + 0.1 * i), acc5: 1 },
  }));
  writeFileSync(join(dir, 'results.jsonl'), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const report = writeReport(dir, { bootstrapSamples: 50 });
  const recall = report.laws.find((l) => l.task === 'recall@10')!;
  t.is(recall.perfect, 2);
  t.is(recall.n, 3);
  t.truthy(recall.fit);
  const acc5 = report.laws.find((l) => l.task === 'acc5')!;
  t.is(acc5.fit, null);
  t.is(acc5.perfect, 5);
  t.false(report.plots.some((p) => p.file.includes('acc5')), 'no plot of a task whose every score is perfect');
  t.regex(report.markdown, /recall@10 \/ precise: .*3 points \(2 with a perfect score left out\)/);
  rmSync(dir, { recursive: true, force: true });
});

test.serial('with --workers 2 points train in parallel child processes and land in the same results.jsonl', async (t) => {
  const dir = tempDir('sweep-workers');
  const gridFile = join(dir, 'grid.test.json');
  writeFileSync(gridFile, JSON.stringify({ ...microGrid, name: 'test-workers', models: ['micro'] }));
  const out = join(dir, 'sweep');
  const progress: string[] = [];
  const summary = await runSweep({ grid: loadSweepGrid(gridFile), out, workers: 2, progress: { write: (s: string) => progress.push(s) } });
  t.is(summary.trained, 2);
  const { records } = readResults(join(out, 'results.jsonl'));
  t.is(records.length, 2);
  t.deepEqual(records.map((r) => r.samples_seen).sort((a, b) => a - b), [32, 64]);
  for (const r of records) t.is(r.threads, Math.max(1, Math.floor(cpus().length / 2)), 'the cores are shared between the 2 workers');
  t.regex(progress.join(''), /on 2 workers/);
  rmSync(dir, { recursive: true, force: true });
});

test('repetition seeds: each point once per seed; seed 0 of a multi-seed grid is the one-seed run; old grids still read', async (t) => {
  const one = gridPoints(parseSweepGrid(microGrid));
  const oldStyle = parseSweepGrid({ ...microGrid, seed: 0 });
  t.deepEqual(oldStyle.seeds, [0], 'a grid with a scalar seed has that one seed');
  const two = parseSweepGrid({ ...microGrid, seeds: [0, 1] });
  t.is(two.seed, 0);
  const points = gridPoints(two);
  t.is(points.length, 2 * one.length);
  const seed0 = points.filter((p) => p.seed === 0);
  t.deepEqual(seed0.map((p) => [p.key, p.initSeed, p.dirName]), one.map((p) => [p.key, p.initSeed, p.dirName]), 'seed 0 is the same run');
  const seed1 = gridPoints(parseSweepGrid({ ...microGrid, seed: 1 }));
  t.deepEqual(points.filter((p) => p.seed === 1).map((p) => [p.key, p.initSeed]), seed1.map((p) => [p.key, p.initSeed]), 'seed 1 is what a grid with seed 1 runs');
  t.deepEqual(points.slice(0, one.length).map((p) => p.seed), one.map(() => 0), 'seeds outermost: a stopped sweep holds whole seeds');
  // a grid written with both fields (DIR/grid.json) reads back
  t.deepEqual(parseSweepGrid(JSON.parse(JSON.stringify(two))).seeds, [0, 1]);
  t.deepEqual(sharedSettings(two), sharedSettings(parseSweepGrid(microGrid)), 'adding seeds keeps the shared settings');
  t.deepEqual(withSeeds(parseSweepGrid(microGrid), [2, 0]).seeds, [2, 0]);
  t.deepEqual(parseSeedList('0, 1,3', '--seeds'), [0, 1, 3]);
  t.throws(() => parseSweepGrid({ ...microGrid, seeds: [0, 0] }), { message: /'seeds\[1\]' repeats the seed 0/ });
  t.throws(() => parseSweepGrid({ ...microGrid, seeds: [] }), { message: /'seeds' must be a non-empty list/ });
  t.throws(() => parseSweepGrid({ ...microGrid, seeds: [0, -1] }), { message: /'seeds\[1\]' must be an integer ≥ 0, got -1/ });
  t.throws(() => parseSweepGrid({ ...microGrid, seed: 1, seeds: [0, 1] }), { message: /'seed' \(1\) must be the first of 'seeds'/ });
  t.throws(() => parseSeedList('0,x', '--seeds'), { message: /'x' is not one/ });
  await t.throwsAsync(main(['study', '--quick', '--seeds', '1,,2']), { message: /--seeds: expected a comma-separated list/ });

  // a one-seed sweep's finished point is kept when the sweep grows to two seeds; only seed 1 trains
  const dir = tempDir('sweep-seeds');
  const small = { ...microGrid, samples_seen: [32], models: ['micro'] };
  t.is((await runSweep({ grid: parseSweepGrid(small), out: dir })).trained, 1);
  const grown = await runSweep({ grid: withSeeds(parseSweepGrid(small), [0, 1]), out: dir });
  t.is(grown.skipped, 1);
  t.is(grown.trained, 1);
  const { records } = readResults(join(dir, 'results.jsonl'));
  t.deepEqual(records.map((r) => r.seed).sort(), [0, 1]);
  rmSync(dir, { recursive: true, force: true });
});

test('grid.json: written atomically and only when it changes, so a worker starting beside another never reads it half-written', (t) => {
  // Each sweep worker calls prepareSweepDir while its siblings read grid.json; a truncating rewrite
  // of the same content let one read an empty file ("Unexpected end of JSON input", seen in CI).
  const dir = mkdtempSync(join(tmpdir(), 'clipscale-grid-json-'));
  try {
    const grid = loadSweepGrid('study-quick');
    const path = prepareSweepDir(dir, grid);
    const first = statSync(path);
    prepareSweepDir(dir, grid);
    const again = statSync(path);
    t.is(again.ino, first.ino, 'the same content is not rewritten');
    t.is(again.mtimeMs, first.mtimeMs);
    const grown = { ...grid, samples_seen: [...grid.samples_seen, grid.samples_seen[grid.samples_seen.length - 1] * 2] };
    prepareSweepDir(dir, grown);
    t.not(statSync(path).ino, first.ino, 'a changed grid replaces the file by rename');
    t.deepEqual(JSON.parse(readFileSync(path, 'utf8')).samples_seen, grown.samples_seen);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
