import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { fitMethods, type FitMethod } from '../../scaling/fit.js';
import { paperLaws, paperPlots, paperSentences } from '../../scaling/paper.js';
import { writeReport } from '../../scaling/report.js';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { intOption, parse } from '../args.js';

export const command: Command = {
  name: 'report',
  summary: 'write the scaling report (report.md, SVG plots, index.html) of a sweep directory',
  usage: [
    'usage: clipscale report DIR [--out DIR] [--method pareto-bins|all] [--bootstrap 1000] [--seed 0] [--no-paper] [--json]',
    '       clipscale report --paper [--out DIR] [--bootstrap 1000] [--seed 0] [--json]',
    '',
    'Reads DIR/results.jsonl (one record per trained point, see lib/scaling/record.ts) and writes',
    'report.md into DIR (or --out): first what was found, in sentences with 95% intervals (the law',
    'E = β·C^α of each headline task and caption distribution, whether their slopes separate, the data',
    "bottleneck, the paper's laws fitted by the same code); then one figure per headline task like the",
    "paper's Figure 1 (SVG); then the tables; and index.html showing it all. Runs that never left the",
    'loss plateau at ln(batch size) are flagged and left out of the fits; tasks near chance are "not',
    "learned\". Without --method, each law uses the paper's pareto-bins fit, or all points when the",
    'points fall in a single bin.',
    '',
    "  --paper     only the paper's Figure 1 laws, fitted from its published results shipped in",
    '              lib/scaling/paper/ (ImageNet zero-shot and MS-COCO retrieval, OpenCLIP vs OpenAI),',
    '              printed, and written as paper.md and SVG figures with --out',
    "  --no-paper  leave the paper's laws out of a study's report",
    '  --json      print the fitted laws as JSON',
  ].join('\n'),
  async run(argv) {
    const { values, positionals } = parse('report', argv, {
      out: { type: 'string' },
      method: { type: 'string' },
      bootstrap: { type: 'string' },
      seed: { type: 'string' },
      paper: { type: 'boolean' },
      'no-paper': { type: 'boolean' },
      json: { type: 'boolean' },
    }, true);
    const bootstrapSamples = intOption('report', 'bootstrap', values.bootstrap, 1000, { max: 1_000_000 });
    const seed = intOption('report', 'seed', values.seed, 0, { max: Number.MAX_SAFE_INTEGER });
    if (values.paper) {
      if (positionals.length) throw new UsageError("clipscale report --paper: takes no directory (the paper's results ship with clipscale); use --out to write its figures");
      const laws = paperLaws({ bootstrapSamples, seed });
      const sentences = paperSentences(laws);
      if (values.out) {
        mkdirSync(values.out, { recursive: true });
        const plots = paperPlots(laws);
        for (const p of plots) writeFileSync(join(values.out, p.file), p.svg);
        const md = ["# The paper's Figure 1 laws, fitted by clipscale", '', ...sentences.map((s) => `- ${s}`), '', ...plots.map((p) => `![${p.title}](${p.file})`), ''];
        writeFileSync(join(values.out, 'paper.md'), md.join('\n'));
      }
      if (values.json) console.log(JSON.stringify({ laws: laws.map(({ band: _b, points: _p, ...rest }) => rest) }));
      else console.log(sentences.join('\n'));
      return 0;
    }
    if (positionals.length !== 1) throw new UsageError('clipscale report: give one directory holding results.jsonl (or --paper)');
    if (values.method !== undefined && !fitMethods.includes(values.method as FitMethod)) {
      throw new UsageError(`clipscale report: --method must be ${fitMethods.join(' or ')}, got '${values.method}'`);
    }
    const report = writeReport(positionals[0], {
      outDir: values.out,
      method: values.method as FitMethod | undefined,
      bootstrapSamples,
      seed,
      paper: !values['no-paper'],
    });
    const outDir = values.out ?? positionals[0];
    if (report.tornLines.length) console.error(`clipscale report: skipped unfinished line(s) ${report.tornLines.join(', ')} of results.jsonl`);
    if (values.json) {
      const laws = report.laws.map(({ fit, ...rest }) => ({ ...rest, fit: fit && { ...fit, band: undefined } }));
      console.log(JSON.stringify({ report: join(outDir, 'report.md'), index: join(outDir, 'index.html'), summary: report.summary, headline: report.headline, demoted: report.demoted, laws, files: report.files }));
    } else {
      console.log([...report.summary.map((s) => `- ${s.replace(/\*\*/g, '')}`), '', `report: ${join(outDir, 'report.md')}`, `plots:  ${join(outDir, 'index.html')} (${report.plots.length} SVG files)`].join('\n'));
    }
    return 0;
  },
};
