import { join } from 'node:path';

import { fitMethods, type FitMethod } from '../../scaling/fit.js';
import { writeReport } from '../../scaling/report.js';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { intOption, parse } from '../args.js';

export const command: Command = {
  name: 'report',
  summary: 'write the scaling report (report.md, SVG plots, index.html) of a sweep directory',
  usage: [
    'usage: clipscale report DIR [--out DIR] [--method pareto-bins|all] [--bootstrap 1000] [--seed 0] [--json]',
    '',
    'Reads DIR/results.jsonl (one record per trained point, see lib/scaling/record.ts) and writes',
    'report.md (tables, fitted laws E = β·C^α with both caption distributions side by side per task),',
    'error-vs-compute and error-vs-samples-seen plots as SVG, and index.html showing them, into DIR',
    '(or --out). Without --method, each law uses the paper\'s pareto-bins fit, or all points when the',
    'points fall in a single bin. --json prints the fitted laws as JSON.',
  ].join('\n'),
  async run(argv) {
    const { values, positionals } = parse('report', argv, {
      out: { type: 'string' },
      method: { type: 'string' },
      bootstrap: { type: 'string' },
      seed: { type: 'string' },
      json: { type: 'boolean' },
    }, true);
    if (positionals.length !== 1) throw new UsageError('clipscale report: give one directory holding results.jsonl');
    if (values.method !== undefined && !fitMethods.includes(values.method as FitMethod)) {
      throw new UsageError(`clipscale report: --method must be ${fitMethods.join(' or ')}, got '${values.method}'`);
    }
    const report = writeReport(positionals[0], {
      outDir: values.out,
      method: values.method as FitMethod | undefined,
      bootstrapSamples: intOption('report', 'bootstrap', values.bootstrap, 1000, { max: 1_000_000 }),
      seed: intOption('report', 'seed', values.seed, 0, { max: Number.MAX_SAFE_INTEGER }),
    });
    const outDir = values.out ?? positionals[0];
    if (report.tornLines.length) console.error(`clipscale report: skipped unfinished line(s) ${report.tornLines.join(', ')} of results.jsonl`);
    if (values.json) {
      console.log(JSON.stringify({ report: join(outDir, 'report.md'), index: join(outDir, 'index.html'), laws: report.laws, files: report.files }));
    } else {
      console.log(`report: ${join(outDir, 'report.md')}\nplots:  ${join(outDir, 'index.html')} (${report.plots.length} SVG files)`);
    }
    return 0;
  },
};
