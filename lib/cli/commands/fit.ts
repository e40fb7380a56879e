import { bootstrapFit, predictWithInterval } from '../../scaling/bootstrap.js';
import { fitMethods, formatLaw, type FitMethod } from '../../scaling/fit.js';
import { columnValues, parseCondition, readTable, selectRows } from '../../scaling/table.js';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { intOption, numberOption, parse, requireOption } from '../args.js';

export const command: Command = {
  name: 'fit',
  summary: 'fit a scaling law E = β·C^α to a results table',
  usage: [
    'usage: clipscale fit --results FILE.csv|FILE.jsonl --compute EXPR (--metric COLUMN | --error COLUMN)',
    '                     [--where COL=VALUE | COL!=VALUE …] [--method pareto-bins|all] [--bins 5]',
    '                     [--bootstrap 1000] [--seed 0] [--level 0.95] [--predict C …]',
    '',
    'Fits E = β·C^α by least squares in log10–log10 space and prints JSON',
    '{alpha, beta, n, r2, ci, method, law, fitted_points, predictions}.',
    '',
    '  --compute EXPR   a column, or a product of columns: gmacs_total, or gmacs*samples_seen',
    '  --metric COLUMN  a score where higher is better (accuracy, recall); E = 1 − value',
    '  --error COLUMN   a column that already is the error E',
    '  --where          keep rows where COL equals (=) or differs from (!=) VALUE; repeatable, all must hold.',
    '                   JSON-lines records are flattened: {"metrics": {"zs": 0.5}} has the column metrics.zs',
    "  --method         pareto-bins (default): the paper's binned_line_fit, lowest error in each of --bins",
    '                   equal bins of log10 C over [min, max+0.1], fitted at the bin centres;',
    '                   all: every point',
    '  --bootstrap N    resamples for the confidence intervals (ci) on alpha and beta, seeded by --seed',
    '  --predict C      also print the fitted error at compute C with its bootstrap interval',
    '',
    'Example (the paper\'s OpenCLIP ImageNet law):',
    '  clipscale fit --results zeroshot_results.csv --compute gmacs_total --metric acc1 \\',
    '    --where downstream_dataset=imagenet1k --where upstream_dataset!=CLIP-WIT',
  ].join('\n'),
  async run(argv) {
    const { values } = parse('fit', argv, {
      results: { type: 'string' },
      compute: { type: 'string' },
      metric: { type: 'string' },
      error: { type: 'string' },
      where: { type: 'string', multiple: true },
      method: { type: 'string' },
      bins: { type: 'string' },
      bootstrap: { type: 'string' },
      seed: { type: 'string' },
      level: { type: 'string' },
      predict: { type: 'string', multiple: true },
    });
    const results = requireOption('fit', 'results', values.results);
    const compute = requireOption('fit', 'compute', values.compute);
    if ((values.metric === undefined) === (values.error === undefined)) throw new UsageError('clipscale fit: give exactly one of --metric COLUMN (E = 1 − value) or --error COLUMN');
    const method = (values.method ?? 'pareto-bins') as FitMethod;
    if (!fitMethods.includes(method)) throw new UsageError(`clipscale fit: --method must be ${fitMethods.join(' or ')}, got '${values.method}'`);
    const conditions = (values.where ?? []).map((w) => {
      try {
        return parseCondition(w);
      } catch (err) {
        throw new UsageError(`clipscale fit: ${(err as Error).message}`);
      }
    });
    const table = selectRows(readTable(results), conditions);
    if (table.rows.length === 0) throw new Error(`fit: no rows of ${results} match ${conditions.length ? (values.where ?? []).join(' and ') : 'the file (it has no data rows)'}`);
    const c = columnValues(table, compute);
    const raw = columnValues(table, (values.metric ?? values.error) as string);
    const e = values.metric !== undefined ? raw.map((v) => 1 - v) : raw;
    const labels = table.lines.map((l) => `${results} line ${l}`);
    const boot = bootstrapFit(c, e, {
      method,
      bins: intOption('fit', 'bins', values.bins, 5, { min: 1, max: 10_000 }),
      samples: intOption('fit', 'bootstrap', values.bootstrap, 1000, { max: 1_000_000 }),
      seed: intOption('fit', 'seed', values.seed, 0, { max: Number.MAX_SAFE_INTEGER }),
      level: numberOption('fit', 'level', values.level, 0.95, { above: 0, below: 1 }),
    }, labels);
    const f = boot.fit;
    const predictions = (values.predict ?? []).map((p) => predictWithInterval(boot, numberOption('fit', 'predict', p, undefined, { above: 0 })));
    console.log(JSON.stringify({
      alpha: f.alpha,
      beta: f.beta,
      n: f.n,
      r2: f.r2,
      ci: boot.ci,
      method: f.method,
      law: formatLaw(f),
      fitted_points: f.fitted.map((p) => ({ log10_compute: p.x, log10_error: p.y })),
      ...(predictions.length ? { predictions } : {}),
    }));
    return 0;
  },
};
