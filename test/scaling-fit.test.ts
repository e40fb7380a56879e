import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';

import { bootstrapFit, predictWithInterval } from '../lib/scaling/bootstrap.js';
import { fitPowerLaw, paretoBinPoints } from '../lib/scaling/fit.js';
import { columnValues, parseCondition, parseCsv, readTable, selectRows } from '../lib/scaling/table.js';
import { main } from '../lib/cli/main.js';
import { UsageError } from '../lib/cli/command.js';

const results = join(import.meta.dirname, '..', 'lib', 'scaling', 'paper', 'zeroshot_results.csv');
const tmp = mkdtempSync(join(tmpdir(), 'clipscale-fit-'));

async function runFit(args: string[]): Promise<Record<string, any>> {
  const lines: string[] = [];
  const log = console.log;
  console.log = (s: string) => lines.push(s);
  try {
    const code = await main(['fit', ...args]);
    if (code !== 0) throw new Error(`exit code ${code}`);
  } finally {
    console.log = log;
  }
  return JSON.parse(lines.join('\n'));
}

const near = (a: number, b: number, rel: number) => Math.abs(a / b - 1) <= rel;

test.serial("the paper's OpenCLIP ImageNet law: E = 5.86·C^-0.11 (LAION runs, pareto-bins)", async (t) => {
  const out = await runFit(['--results', results, '--compute', 'gmacs_total', '--metric', 'acc1', '--where', 'downstream_dataset=imagenet1k', '--where', 'upstream_dataset!=CLIP-WIT', '--bootstrap', '200', '--predict', '1e13']);
  t.is(out.n, 29);
  const [p] = out.predictions;
  t.true(near(p.error, 5.85806 * 1e13 ** -0.111388, 1e-3), `prediction ${p.error}`);
  t.true(p.interval[0] < p.error && p.error < p.interval[1]);
  t.is(out.method, 'pareto-bins');
  t.is(out.fitted_points.length, 5);
  // the paper prints two decimals; numpy's fit of the same points gives α = -0.111388, β = 5.85806
  t.true(near(out.alpha, -0.111388, 0.01), `alpha ${out.alpha}`);
  t.true(near(out.beta, 5.85806, 0.01), `beta ${out.beta}`);
  t.is(Number(out.beta.toFixed(2)), 5.86);
  t.is(Number(out.alpha.toFixed(2)), -0.11);
  t.true(out.ci.alpha[0] < out.alpha && out.alpha < out.ci.alpha[1], 'the interval holds the estimate');
  t.true(out.ci.beta[0] < out.beta && out.beta < out.ci.beta[1]);
});

test.serial("the paper's OpenAI CLIP ImageNet law: E = 23.18·C^-0.16 (3 CLIP-WIT models, all points)", async (t) => {
  const out = await runFit(['--results', results, '--compute', 'gmacs*samples_seen', '--metric', 'acc1', '--where', 'downstream_dataset=imagenet1k', '--where', 'upstream_dataset=CLIP-WIT', '--method', 'all', '--bootstrap', '200']);
  t.is(out.n, 3);
  t.true(near(out.alpha, -0.163775, 0.01), `alpha ${out.alpha}`);
  t.true(near(out.beta, 23.18, 0.01), `beta ${out.beta}`);
  t.is(Number(out.alpha.toFixed(2)), -0.16);
  t.is(Number(out.beta.toFixed(2)), 23.18);
});

test('compute as a product of columns equals the table\'s own gmacs_total', (t) => {
  const table = selectRows(readTable(results), [parseCondition('downstream_dataset=imagenet1k')]);
  const product = columnValues(table, 'gmacs*samples_seen');
  const total = columnValues(table, 'gmacs_total');
  product.forEach((p, i) => t.true(near(p, total[i], 1e-9)));
});

test('pareto bins: centres of 5 equal bins over [min, max+0.1] with the lowest error in each', (t) => {
  // log10 C = 0 … 4.9 → edges 0, 1, 2, 3, 4, 5; bin 2 is empty
  const x = [0, 0.5, 1.2, 1.9, 3.1, 4.9];
  const y = [-0.1, -0.3, -0.2, -0.4, -0.5, -0.6];
  t.deepEqual(
    paretoBinPoints(x, y).map((p) => [Number(p.x.toFixed(9)), p.y]),
    [[0.5, -0.3], [1.5, -0.4], [3.5, -0.5], [4.5, -0.6]],
  );
});

test('an exact power law is recovered by both methods, and r² is 1', (t) => {
  const c = [1e3, 3e3, 1e4, 3e4, 1e5, 3e5, 1e6];
  const e = c.map((x) => 2 * x ** -0.25);
  const all = fitPowerLaw(c, e, { method: 'all' });
  t.true(Math.abs(all.alpha + 0.25) < 1e-12 && Math.abs(all.beta - 2) < 1e-9);
  t.true(Math.abs(all.r2 - 1) < 1e-12);
  const bins = fitPowerLaw(c, e, { method: 'pareto-bins' });
  t.true(bins.alpha < 0, 'bin centres keep the direction');
});

test('bootstrap intervals are seeded and a prediction carries its interval', (t) => {
  const c = [1e9, 2e9, 5e9, 1e10, 2e10, 5e10, 1e11, 2e11];
  const e = c.map((x, i) => 5 * x ** -0.1 * (1 + 0.03 * Math.sin(i * 7)));
  const a = bootstrapFit(c, e, { method: 'all', samples: 300, seed: 7 });
  const b = bootstrapFit(c, e, { method: 'all', samples: 300, seed: 7 });
  t.deepEqual(a.ci, b.ci);
  t.notDeepEqual(bootstrapFit(c, e, { method: 'all', samples: 300, seed: 8 }).ci.alpha, a.ci.alpha);
  const p = predictWithInterval(a, 1e12);
  t.true(p.interval[0] < p.error && p.error < p.interval[1]);
});

test.serial('bad input gets clear errors', async (t) => {
  t.throws(() => fitPowerLaw([1e9, 1e10], [0.5, 0.4], { method: 'pareto-bins' }), { message: /too few points for method 'pareto-bins': got 2, need at least 3/ });
  t.throws(() => fitPowerLaw([1e9], [0.5], { method: 'all' }), { message: /too few points for method 'all': got 1/ });
  t.throws(() => fitPowerLaw([1e9, 1e10, 1e11], [0.5, 0, 0.3], {}, ['a', 'b', 'c']), { message: /E must be positive.*got 0 at b/ });
  t.throws(() => fitPowerLaw([1e9, -1, 1e11], [0.5, 0.4, 0.3]), { message: /compute must be a positive number, got -1 at point 1/ });
  t.throws(() => fitPowerLaw([1e9, 1e9, 1e9], [0.5, 0.4, 0.3], { method: 'all' }), { message: /same compute/ });

  await t.throwsAsync(runFit(['--results', results, '--compute', 'gflops', '--metric', 'acc1']), { message: /no column 'gflops' \(columns: arch, samples_seen/ });
  await t.throwsAsync(runFit(['--results', results, '--compute', 'gmacs_total', '--metric', 'acc1', '--where', 'downstream_dataset=mscoco_captions']), { message: /line \d+: column 'acc1' is empty/ });
  await t.throwsAsync(runFit(['--results', results, '--compute', 'gmacs_total', '--metric', 'acc1', '--where', 'downstream_dataset=nothing']), { message: /no rows of .* match downstream_dataset=nothing/ });
  await t.throwsAsync(runFit(['--results', results, '--compute', 'gmacs_total']), { instanceOf: UsageError, message: /exactly one of --metric/ });
  await t.throwsAsync(runFit(['--results', results, '--compute', 'gmacs_total', '--metric', 'acc1', '--method', 'best']), { message: /--method must be pareto-bins or all/ });
  await t.throwsAsync(runFit(['--results', join(tmp, 'none.csv'), '--compute', 'c', '--metric', 'm']), { message: /file not found/ });

  const perfect = join(tmp, 'perfect.csv');
  writeFileSync(perfect, 'c,acc\n1e9,0.5\n1e10,1.0\n1e11,0.7\n');
  await t.throwsAsync(runFit(['--results', perfect, '--compute', 'c', '--metric', 'acc', '--method', 'all']), { message: /E must be positive.*perfect\.csv line 3 \(a metric of 1 or more/ });
});

test('CSV and JSON-lines reading', (t) => {
  const csv = parseCsv('a,b,c\n1,"x, ""y""",\n2.5e3,plain,7\n');
  t.deepEqual(csv.rows, [{ a: 1, b: 'x, "y"', c: null }, { a: 2500, b: 'plain', c: 7 }]);
  t.deepEqual(csv.lines, [2, 3]);
  t.throws(() => parseCsv('a,b\n1\n', 'f.csv'), { message: /f\.csv: line 2 has 1 fields, the header has 2/ });
  const path = join(tmp, 'r.jsonl');
  writeFileSync(path, '{"model":"tiny","gmacs":0.5,"samples_seen":100,"metrics":{"zs":0.25}}\n\n{"model":"small","gmacs":1,"samples_seen":200,"metrics":{"zs":0.5}}\n');
  const table = readTable(path);
  t.deepEqual(columnValues(table, 'gmacs*samples_seen'), [50, 200]);
  t.deepEqual(columnValues(selectRows(table, [parseCondition('model!=tiny')]), 'metrics.zs'), [0.5]);
  t.deepEqual(table.lines, [1, 3]);
  writeFileSync(path, '{"a":1}\n{"a":\n');
  t.throws(() => readTable(path), { message: /line 2 is not valid JSON/ });
});
