import { listSweepGrids, loadSweepGrid, parseSeedList, withSeeds } from '../../scaling/grid.js';
import { runSweep } from '../../scaling/sweep.js';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { intOption, parse, requireOption } from '../args.js';

export const command: Command = {
  name: 'sweep',
  summary: 'train and evaluate every point of a scaling grid (resumable), appending to DIR/results.jsonl',
  usage: [
    'usage: clipscale sweep --grid NAME|FILE.json --out DIR [--workers N] [--threads N] [--seeds 0,1] [--point KEY …] [--json] [--quiet]',
    '',
    'Trains every point of the grid (models × data_sizes × samples_seen × distributions on the synthetic',
    'world) with the schedule spanning that point\'s own samples (cosine to zero by default), evaluates it',
    'on the synthetic suite (zero-shot shape/colour/shape_colour, retrieval) and appends a record',
    '(model, GMACs, samples seen, data size, distribution, every metric, wall time) to DIR/results.jsonl.',
    'Each point trains in DIR/runs/<point>/ with checkpoints. Run it again to resume: finished points',
    'are skipped and an interrupted point continues from its last checkpoint.',
    '',
    '  --grid NAME|FILE   a shipped grid (lib/configs/sweeps/: ' + listSweepGrids().join(', ') + ') or a grid file',
    '  --out DIR          the sweep directory',
    '  --workers N        points trained at once, each in its own process (default 1)',
    '  --threads N        native threads per process (default: all cores; cores / workers with --workers)',
    '  --seeds LIST       repetition seeds, e.g. 0,1: every point trains once per seed (default: the grid\'s seeds, or [seed]);',
    '                     seed 0 is the same run as a one-seed grid, so finished seed-0 points are kept',
    '  --point KEY        run only this point (its recordKey or run directory name); repeatable',
    '  --json             print a JSON summary {dir, results, total, skipped, trained, records, wall_s} on stdout',
    '  --quiet            no progress on stderr',
    '',
    'Grid file fields: name, description, models, data_sizes, samples_seen, distributions (precise|noisy),',
    'batch_size, lr, warmup_fraction, schedule, weight_decay, grad_clip_norm, seed or seeds, world_seed,',
    'checkpoint_every, eval {tasks, zero_shot_images, retrieval_images, seed}. See lib/scaling/grid.ts.',
  ].join('\n'),
  async run(argv) {
    const { values } = parse('sweep', argv, {
      grid: { type: 'string' },
      out: { type: 'string' },
      workers: { type: 'string' },
      seeds: { type: 'string' },
      threads: { type: 'string' },
      point: { type: 'string', multiple: true },
      json: { type: 'boolean' },
      quiet: { type: 'boolean' },
      // internal: run as a worker of another sweep process, and stop when that process is gone
      worker: { type: 'boolean' },
    });
    if (values.worker) {
      // The parent holds our stdin open; it closes when the parent dies (seen at the next checkpoint's I/O).
      process.stdin.on('end', () => {
        process.stderr.write('clipscale sweep: the parent sweep is gone; stopping this worker (the point resumes from its checkpoint)\n');
        process.exit(1);
      });
      process.stdin.resume();
      // ...without keeping this process alive once its point is done
      (process.stdin as { unref?: () => void }).unref?.();
    }
    const loaded = loadSweepGrid(requireOption('sweep', 'grid', values.grid));
    const grid = values.seeds === undefined ? loaded : withSeeds(loaded, seedList('sweep', values.seeds));
    const out = requireOption('sweep', 'out', values.out);
    const workers = intOption('sweep', 'workers', values.workers, 1, { min: 0, max: 256 });
    if (workers < 1) throw new UsageError(`clipscale sweep: --workers must be ≥ 1, got ${workers}`);
    const threads = values.threads === undefined ? undefined : intOption('sweep', 'threads', values.threads, undefined, { min: 0, max: 1024 });
    if (threads !== undefined && threads < 1) throw new UsageError(`clipscale sweep: --threads must be ≥ 1, got ${threads}`);
    const summary = await runSweep({
      grid,
      out,
      workers,
      threads,
      only: values.point,
      lock: !values.worker,
      progress: values.quiet ? null : process.stderr,
    });
    if (values.json) {
      console.log(JSON.stringify({ dir: summary.dir, results: summary.resultsPath, total: summary.total, skipped: summary.skipped, trained: summary.trained, records: summary.records, wall_s: summary.wall_s }));
    }
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
