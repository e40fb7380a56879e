import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';

import { loadSweepGrid, parseSeedList, withSeeds } from '../../scaling/grid.js';
import { writeReport, type LawRow } from '../../scaling/report.js';
import { runSweep } from '../../scaling/sweep.js';
import { formatDuration } from '../../train/logging.js';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { intOption, parse } from '../args.js';

/** The study's presets: shipped grids (lib/configs/sweeps/) and their default directories. */
const PRESETS: Record<string, { grid: string; out: string }> = {
  cpu: { grid: 'study-cpu', out: 'study' },
  quick: { grid: 'study-quick', out: 'study/quick' },
  full: { grid: 'study-full', out: 'study/full' },
  gpu: { grid: 'study-gpu', out: 'study/gpu' },
};

function summaryTable(laws: LawRow[], headline: string[]): string[] {
  const distributions = [...new Set(laws.map((l) => l.distribution))].sort();
  const tasks = headline;
  const cell = (l: LawRow | undefined) => {
    if (!l?.learned) return 'not learned'.padEnd(26);
    if (!l?.fit) return 'no fit'.padEnd(26);
    return `α ${l.fit.alpha.toFixed(3).padStart(7)}  β ${l.fit.beta.toPrecision(3).padStart(6)}  r² ${l.fit.r2.toFixed(2)}`.padEnd(26);
  };
  const width = Math.max(...tasks.map((t) => t.length), 4);
  const lines = [`  ${'task'.padEnd(width)}  ${distributions.map((d) => d.padEnd(26)).join('  ')}`];
  for (const task of tasks) {
    lines.push(`  ${task.padEnd(width)}  ${distributions.map((d) => cell(laws.find((l) => l.task === task && l.distribution === d))).join('  ')}`);
  }
  return lines;
}

export const command: Command = {
  name: 'study',
  summary: 'the main job: run the shipped scaling study on the synthetic world and write its report',
  usage: [
    'usage: clipscale study [--preset cpu|full|quick|gpu] [--out DIR] [--grid NAME|FILE] [--workers N] [--seeds 0,1] [--json]',
    '',
    'Trains a scaling study on the synthetic world, then writes its report (report.md, one figure per',
    'headline task, index.html) into DIR and prints the findings: the fitted laws E = β·C^α per task and',
    'caption distribution with 95% intervals, whether the slopes separate, the data bottleneck.',
    'Resumable: run it again after an interruption; finished points are kept and the interrupted one',
    'continues from its checkpoint. Presets (lib/configs/sweeps/study-*.json):',
    "  cpu   (default, npm start) 20 points, ~8 CPU-minutes: about 4 minutes on 2 idle cores; directory study/",
    "  full  42 points × 2 seeds, ~44 CPU-minutes, with the data bottleneck: about 24 minutes on 2 idle cores; study/full/",
    "  quick 8 points, about a minute: a pipeline check; study/quick/",
    "  gpu   a larger grid, trained on CUDA (without a usable GPU each point stops and says why); study/gpu/",
    '',
    '  --preset NAME    one of the presets above',
    '  --out DIR        the study directory (default: the preset\'s, under the current directory)',
    '  --quick          the same as --preset quick',
    '  --grid NAME|FILE another grid (a shipped name or a file) instead of a preset',
    '  --workers N      points trained at once, each in its own process with cores / N threads (default 2',
    '                   where there are 2 or more cores: the small models and the data rendering in JS use',
    '                   two processes better than two threads of one)',
    '  --seeds LIST     repetition seeds, e.g. 0,1: every point trains once per seed and the fits average a',
    '                   point\'s error over its seeds (default: the grid\'s, one seed). Seed 0 is the run of a',
    '                   one-seed study, so its finished points are kept',
    '  --json           print {dir, report, index, points, laws} as JSON on stdout instead of the summary',
  ].join('\n'),
  async run(argv) {
    const { values } = parse('study', argv, {
      out: { type: 'string' },
      quick: { type: 'boolean' },
      preset: { type: 'string' },
      grid: { type: 'string' },
      workers: { type: 'string' },
      seeds: { type: 'string' },
      json: { type: 'boolean' },
    });
    if (values.quick && values.grid) throw new UsageError('clipscale study: give --quick or --grid, not both');
    if (values.preset !== undefined && (values.quick || values.grid)) throw new UsageError('clipscale study: give --preset, --quick or --grid, not several');
    const presetName = values.preset ?? (values.quick ? 'quick' : 'cpu');
    const preset = PRESETS[presetName];
    if (!preset) throw new UsageError(`clipscale study: unknown --preset '${presetName}' (presets: ${Object.keys(PRESETS).join(', ')})`);
    const loaded = loadSweepGrid(values.grid ?? preset.grid);
    const grid = values.seeds === undefined ? loaded : withSeeds(loaded, seedList('study', values.seeds));
    const out = resolve(values.out ?? (values.grid ? 'study' : preset.out));
    const workers = intOption('study', 'workers', values.workers, availableParallelism() >= 2 ? 2 : 1, { min: 0, max: 256 });
    if (workers < 1) throw new UsageError(`clipscale study: --workers must be ≥ 1, got ${workers}`);

    process.stderr.write(`study: grid '${grid.name}' into ${out}\n`);
    const sweep = await runSweep({ grid, out, workers, progress: process.stderr });
    const t0 = performance.now();
    const report = writeReport(out);
    const reportSeconds = (performance.now() - t0) / 1000;
    const reportPath = resolve(out, 'report.md');
    const indexPath = resolve(out, 'index.html');
    if (values.json) {
      console.log(JSON.stringify({ dir: out, results: sweep.resultsPath, report: reportPath, index: indexPath, points: sweep.total, trained: sweep.trained, summary: report.summary, headline: report.headline, not_learned: report.notLearned, plateau: report.plateau, laws: report.laws.map(({ fit, ...rest }) => ({ ...rest, fit: fit && { ...fit, band: undefined } })), gaps: report.gaps }));
      return 0;
    }
    const lines = [
      `study '${grid.name}': ${sweep.total} points in ${out} (${sweep.trained} trained now, ${sweep.skipped} finished before; this run ${formatDuration(sweep.wall_s + reportSeconds)})`,
      `report: ${reportPath}`,
      `plots:  ${indexPath} (${report.plots.length} SVG files)`,
      '',
      'What this study found (report.md has every metric, the figures and the tables):',
      ...report.summary.map((s) => `- ${s.replace(/\*\*/g, '')}`),
      '',
      'headline laws E = β·C^α (E = 1 − score, C = GMACs per sample × samples seen):',
      ...summaryTable(report.laws, report.headline),
      '',
    ];
    console.log(lines.join('\n'));
    return 0;
  },
};

/** --seeds 0,1 → [0, 1]; a bad list is a usage error. */
function seedList(cmd: string, text: string): number[] {
  try {
    return parseSeedList(text, `clipscale ${cmd} --seeds`);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}
