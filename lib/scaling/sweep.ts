// The sweep runner: trains and evaluates every point of a grid (models × data sizes × samples seen ×
// caption distributions) on the synthetic world and appends one ScalingRecord per finished point to
// DIR/results.jsonl.
//
// Layout of a sweep directory:
//   DIR/grid.json            the grid being run (a resumed sweep must keep its shared settings)
//   DIR/results.jsonl        one record per finished point (record.ts); the source of truth for "done"
//   DIR/runs/<point>/        the point's checkpoints, log.jsonl and wall.json (time spent so far)
//
// Resume: points whose recordKey is in results.jsonl are skipped; a point cut off mid-training
// continues from its latest checkpoint (the Trainer's exact resume), so a kill at any moment loses at
// most checkpoint_every steps of one point and never a finished one.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { defaultSyntheticTokenizer } from '../data/synthetic.js';
import { evaluateSynthetic } from '../eval/synthetic_suite.js';
import { native } from '../native.js';
import { loadModelConfig } from '../nn/config.js';
import { clipEncoder } from '../nn/encoder.js';
import { findLatestCheckpoint } from '../train/checkpoint.js';
import { formatDuration, type TextSink, type TrainLogRecord } from '../train/logging.js';
import { SyntheticData } from '../train/sources.js';
import { Trainer } from '../train/trainer.js';
import { writeBytesAtomic, writeBytesAtomicSync } from '../util/atomic_file.js';
import { computeCost } from './flops.js';
import { gridPoints, modelLabel, parseSweepGrid, sharedSettings, type SweepGrid, type SweepPoint } from './grid.js';
import { isPlateauLoss, isPlateauRecord, PLATEAU_SHARE } from './plateau.js';
import { appendResult, readResults, type ScalingRecord } from './record.js';

export interface SweepOptions {
  grid: SweepGrid;
  /** The sweep directory (created). */
  out: string;
  /** Where people read progress (process.stderr); null or absent for none. */
  progress?: TextSink | null;
  /** Points trained at once, each in its own process (default 1: in this process). */
  workers?: number;
  /** Native threads per process (default: the pool's own choice; cores / workers with several workers). */
  threads?: number;
  /** Run only these points (recordKey or run directory name); the rest are left for later. */
  only?: string[];
  /** Hold DIR/sweep.lock while running so two sweeps cannot train the same points at once (default true; workers share their parent's). */
  lock?: boolean;
  /** Called with each training log record of a point (tests throw from here to simulate a kill). */
  onTrainLog?: (point: SweepPoint, record: TrainLogRecord) => void;
}

export interface SweepSummary {
  dir: string;
  resultsPath: string;
  /** Points of the grid (after `only`). */
  total: number;
  /** Points found finished in results.jsonl before this call. */
  skipped: number;
  /** Points finished by this call. */
  trained: number;
  /** Records this call appended. */
  records: ScalingRecord[];
  wall_s: number;
  /** Finished points of DIR/results.jsonl that never left the plateau at ln(batch size). */
  plateau: number;
}

export function resultsPathOf(dir: string): string {
  return join(dir, 'results.jsonl');
}

/** Keys of the points already finished in DIR/results.jsonl (a torn last line is not a finished point). */
export function finishedKeys(dir: string): Set<string> {
  const path = resultsPathOf(dir);
  if (!existsSync(path)) return new Set();
  const { records } = readResults(path);
  return new Set(records.map((r) => recordKeyOf(r)));
}

function recordKeyOf(r: ScalingRecord): string {
  return `${r.model}|data=${r.data_size}|samples=${r.samples_seen}|dist=${r.distribution}|seed=${r.seed ?? 0}`;
}

/**
 * Writes DIR/grid.json, or checks that the one there was run with the same shared settings
 * (batch size, lr, schedule, seeds, evaluation): finished points trained otherwise would not compare.
 * Axes may grow or shrink between calls.
 */
export function prepareSweepDir(dir: string, grid: SweepGrid): string {
  mkdirSync(join(dir, 'runs'), { recursive: true });
  const path = join(dir, 'grid.json');
  if (existsSync(path)) {
    let before: SweepGrid;
    try {
      before = parseSweepGrid(JSON.parse(readFileSync(path, 'utf8')), path);
    } catch (err) {
      throw new Error(`sweep: ${path} is not a readable grid (${(err as Error).message}); move it away or use another output directory`);
    }
    const a = sharedSettings(before);
    const b = sharedSettings(grid);
    const differing = Object.keys({ ...a, ...b }).filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]));
    if (differing.length) {
      throw new Error(
        `sweep: ${dir} holds a sweep run with other settings (${differing.map((k) => `${k}: ${JSON.stringify(a[k])} there, ${JSON.stringify(b[k])} now`).join('; ')}); ` +
          'its finished points would not compare with new ones. Use another output directory.',
      );
    }
  }
  // Workers of a sweep run this too, while their siblings read the file: write only what changed,
  // and atomically (a truncating write let a starting worker read an empty grid).
  const text = JSON.stringify(grid, null, 2) + '\n';
  if (!existsSync(path) || readFileSync(path, 'utf8') !== text) writeBytesAtomicSync(path, text);
  return path;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes DIR/sweep.lock for this process; a lock left by a process that is gone (a killed sweep) is
 * taken over. Returns the function that releases it.
 */
export function lockSweepDir(dir: string): () => void {
  const path = join(dir, 'sweep.lock');
  if (existsSync(path)) {
    let holder: { pid?: unknown; host?: unknown; started?: unknown } = {};
    try {
      holder = JSON.parse(readFileSync(path, 'utf8'));
    } catch {
      // unreadable: a torn write of a killed sweep
    }
    if (typeof holder.pid === 'number' && holder.pid !== process.pid && holder.host === hostname() && processAlive(holder.pid)) {
      throw new Error(`sweep: another sweep (pid ${holder.pid}, started ${String(holder.started)}) is running in ${dir}; wait for it or stop it (its points resume later)`);
    }
  }
  writeFileSync(path, JSON.stringify({ pid: process.pid, host: hostname(), started: new Date().toISOString() }) + '\n');
  return () => rmSync(path, { force: true });
}

/** Seconds already spent on a point by earlier, interrupted calls. */
function previousWall(runDir: string): number {
  const path = join(runDir, 'wall.json');
  if (!existsSync(path)) return 0;
  try {
    const v = JSON.parse(readFileSync(path, 'utf8')) as { seconds?: unknown };
    return typeof v.seconds === 'number' && Number.isFinite(v.seconds) && v.seconds >= 0 ? v.seconds : 0;
  } catch {
    return 0; // a torn write: the time is lost, not the point
  }
}

export interface PointOptions {
  /** A terminal gets the Trainer's progress bar for the point. */
  console?: TextSink | null;
  onTrainLog?: (point: SweepPoint, record: TrainLogRecord) => void;
  /** Device label written to the record. */
  device?: string;
}

/**
 * Trains one point (resuming from its checkpoint), evaluates it on the synthetic suite and appends
 * its record to DIR/results.jsonl. Returns the record.
 */
export async function runPoint(grid: SweepGrid, point: SweepPoint, dir: string, options: PointOptions = {}): Promise<ScalingRecord> {
  const runDir = join(dir, 'runs', point.dirName);
  mkdirSync(runDir, { recursive: true });
  const tokenizer = defaultSyntheticTokenizer();
  // The model's vocabulary is the tokenizer's, so params count what is trained.
  const overrides = { text_cfg: { vocab_size: tokenizer.vocabSize } };
  const config = loadModelConfig(point.model, overrides);
  const cost = computeCost(config);
  const imageSize = config.vision_cfg.image_size;
  const contextLength = config.text_cfg.context_length;
  // Rendered images are kept only where the point draws samples again (a first touch of the kept
  // memory costs ~8 µs an image here, a render ~60 µs).
  const keepImages = point.samples_seen > point.data_size;
  const data = new SyntheticData({ size: point.data_size, imageSize, contextLength, captions: point.distribution, seed: grid.world_seed, tokenizer, ...(keepImages ? {} : { imageCacheBytes: 0 }) });
  const resumedFrom = (await findLatestCheckpoint(runDir))?.step ?? 0;
  const wallBefore = previousWall(runDir);
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const saveWall = () => writeBytesAtomic(join(runDir, 'wall.json'), JSON.stringify({ seconds: wallBefore + (performance.now() - t0) / 1000 }) + '\n');

  const trainer = new Trainer({
    model: point.model,
    modelOverrides: overrides,
    data,
    batchSize: grid.batch_size,
    samples: point.samples_seen,
    lr: grid.lr,
    warmup: point.warmupSteps,
    schedule: grid.schedule,
    ...(grid.weight_decay !== null ? { wd: grid.weight_decay } : {}),
    ...(grid.grad_clip_norm !== null ? { gradClipNorm: grid.grad_clip_norm } : {}),
    seed: point.initSeed,
    device: grid.device,
    out: runDir,
    resume: true,
    checkpointEvery: grid.checkpoint_every || undefined,
    keepCheckpoints: 1,
    logEvery: grid.checkpoint_every || 10,
    console: options.console ?? null,
  });
  try {
    let lastLoss = NaN;
    for await (const rec of trainer.run()) {
      lastLoss = rec.loss;
      await saveWall();
      options.onTrainLog?.(point, rec);
    }
    if (trainer.step < trainer.totalSteps) throw new Error(`sweep: point ${point.key} stopped at step ${trainer.step} of ${trainer.totalSteps}`);
    const trainSeconds = (performance.now() - t0) / 1000;
    const e0 = performance.now();
    const metrics = await evaluateSynthetic(clipEncoder(trainer.model), {
      seed: grid.world_seed,
      imageSize,
      contextLength,
      tokenizer,
      tasks: grid.eval.tasks,
      zeroShotImages: grid.eval.zero_shot_images,
      retrievalImages: grid.eval.retrieval_images,
      evalSeed: grid.eval.seed,
    });
    const evalSeconds = (performance.now() - e0) / 1000;
    const { scores, details } = splitMetrics(metrics);
    const record: ScalingRecord = {
      model: modelLabel(point.model),
      gmacs: cost.gmacs,
      image_gmacs: cost.image_gmacs,
      text_gmacs: cost.text_gmacs,
      params: cost.params,
      samples_seen: trainer.samplesSeen,
      data_size: point.data_size,
      distribution: point.distribution,
      metrics: scores,
      eval_details: details,
      wall_s: wallBefore + (performance.now() - t0) / 1000,
      seed: point.seed,
      init_seed: point.initSeed,
      batch_size: grid.batch_size,
      lr: grid.lr,
      warmup_steps: point.warmupSteps,
      schedule: grid.schedule,
      epochs: trainer.samplesSeen / point.data_size,
      final_loss: Number.isFinite(lastLoss) ? lastLoss : null,
      // never left ln(B): its scores are chance, not a point of a law (the report leaves it out of fits)
      plateau: isPlateauLoss(Number.isFinite(lastLoss) ? lastLoss : null, grid.batch_size),
      train_s: trainSeconds,
      // CPU seconds of this process for the point (all threads): a load-independent cost, unlike wall_s
      cpu_s: cpuSeconds(process.cpuUsage(cpu0)),
      eval_s: evalSeconds,
      resumed_from_step: resumedFrom,
      device: options.device ?? grid.device,
      threads: native.numThreads(),
      grid: grid.name,
      finished_at: new Date().toISOString(),
    };
    appendResult(resultsPathOf(dir), record);
    return record;
  } finally {
    trainer.dispose();
  }
}

function cpuSeconds(u: NodeJS.CpuUsage): number {
  return (u.user + u.system) / 1e6;
}

/** Scores where higher is better in [0, 1] (accuracies, recalls) are the record's metrics; ranks and counts are details. */
export function splitMetrics(all: Record<string, number>): { scores: Record<string, number>; details: Record<string, number> } {
  const scores: Record<string, number> = {};
  const details: Record<string, number> = {};
  for (const [k, v] of Object.entries(all)) {
    if (/(_acc\d+|_mean_per_class_recall|_recall@\d+)$/.test(k)) scores[k] = v;
    else details[k] = v;
  }
  return { scores, details };
}

/** Per-model costs measured so far, for the sweep's ETA. */
class CostModel {
  private readonly perModel = new Map<string, { seconds: number; samples: number; gmacs: number; evalSeconds: number; points: number }>();

  /** A finished point: `seconds` in all, of which `evalSeconds` evaluating, after training `samplesTrained`. */
  add(r: ScalingRecord, seconds: number, evalSeconds: number, samplesTrained: number): void {
    if (samplesTrained <= 0 || seconds <= 0) return;
    const m = this.perModel.get(r.model) ?? { seconds: 0, samples: 0, gmacs: r.gmacs, evalSeconds: 0, points: 0 };
    m.seconds += Math.max(0, seconds - evalSeconds);
    m.samples += samplesTrained;
    m.evalSeconds += evalSeconds;
    m.points++;
    this.perModel.set(r.model, m);
  }

  /**
   * Seconds for a point: its model's measured rate, or else the nearest measured model's rate scaled
   * by (GMACs ratio)^k. Small models cost far less than their GMACs say (data, per-op overheads), so
   * k is fitted across measured models when there are two, else 0.6 (what micro→tiny→small show on a CPU).
   * NaN before any point has finished.
   */
  estimate(point: SweepPoint, gmacs: number, samplesLeft: number): number {
    const own = this.perModel.get(modelLabel(point.model));
    if (own) return (own.seconds / own.samples) * samplesLeft + own.evalSeconds / own.points;
    const measured = [...this.perModel.values()];
    if (measured.length === 0) return NaN;
    let k = 0.6;
    if (measured.length >= 2) {
      const xs = measured.map((m) => Math.log(m.gmacs));
      const ys = measured.map((m) => Math.log(m.seconds / m.samples));
      const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
      const my = ys.reduce((a, b) => a + b, 0) / ys.length;
      const sxx = xs.reduce((a, x) => a + (x - mx) ** 2, 0);
      if (sxx > 1e-9) k = Math.min(1.2, Math.max(0.2, xs.reduce((a, x, i) => a + (x - mx) * (ys[i] - my), 0) / sxx));
    }
    let best = measured[0];
    for (const m of measured) if (Math.abs(Math.log(m.gmacs / gmacs)) < Math.abs(Math.log(best.gmacs / gmacs))) best = m;
    const scale = (gmacs / best.gmacs) ** k;
    return ((best.seconds / best.samples) * samplesLeft + best.evalSeconds / best.points) * scale;
  }
}

function describePoint(p: SweepPoint): string {
  return `${modelLabel(p.model)} · data ${p.data_size} · samples ${p.samples_seen} · ${p.distribution}`;
}

function headline(r: ScalingRecord): string {
  const pick = Object.entries(r.metrics).filter(([k]) => k.endsWith('_acc1') || k === 'retrieval_text_retrieval_recall@1');
  return pick.map(([k, v]) => `${k.replace(/^zeroshot_/, '').replace(/^retrieval_text_retrieval_/, 'text_')} ${v.toFixed(3)}`).join(', ');
}

/** Runs (or resumes) a whole sweep. */
export async function runSweep(options: SweepOptions): Promise<SweepSummary> {
  const { grid, out } = options;
  const started = performance.now();
  mkdirSync(out, { recursive: true });
  const unlock = options.lock === false ? () => undefined : lockSweepDir(out);
  try {
    const gridPath = prepareSweepDir(out, grid);
    return await sweepPoints(options, gridPath, started);
  } finally {
    unlock();
  }
}

async function sweepPoints(options: SweepOptions, gridPath: string, started: number): Promise<SweepSummary> {
  const { grid, out } = options;
  const progress = options.progress ?? null;
  const say = (line: string) => progress?.write(`${line}\n`);

  let points = gridPoints(grid);
  if (options.only?.length) {
    const wanted = new Set(options.only);
    const unknown = options.only.filter((k) => !points.some((p) => p.key === k || p.dirName === k));
    if (unknown.length) throw new Error(`sweep: no point of grid '${grid.name}' is called ${unknown.map((k) => `'${k}'`).join(', ')}`);
    points = points.filter((p) => wanted.has(p.key) || wanted.has(p.dirName));
  }
  const gmacsOf = new Map(grid.models.map((m) => [m, computeCost(loadModelConfig(m)).gmacs]));
  // cheapest first: the first results (and the ETA's rates for every model) come quickly
  points.sort((a, b) => gmacsOf.get(a.model)! * a.samples_seen - gmacsOf.get(b.model)! * b.samples_seen || a.key.localeCompare(b.key));

  const done = finishedKeys(out);
  const todo = points.filter((p) => !done.has(p.key));
  const skipped = points.length - todo.length;
  const workers = Math.max(1, Math.min(options.workers ?? 1, todo.length || 1));
  const threads = options.threads ?? (workers > 1 ? Math.max(1, Math.floor(cpus().length / workers)) : undefined);
  say(
    `sweep '${grid.name}': ${points.length} points (${grid.models.length} models × ${grid.data_sizes.length} data sizes × ${grid.samples_seen.length} budgets × ${grid.distributions.length} distributions${grid.exclude.length ? `, less the excluded` : ""}), ` +
      `${skipped} already finished, ${todo.length} to run${workers > 1 ? ` on ${workers} workers` : ''}; results in ${resultsPathOf(out)}`,
  );

  const costs = new CostModel();
  const records: ScalingRecord[] = [];
  let finished = skipped;
  const running = new Map<string, number>(); // key → start time (ms)
  const remainingSeconds = (): number => {
    let total = 0;
    const now = performance.now();
    for (const p of todo) {
      if (records.some((r) => recordKeyOf(r) === p.key)) continue;
      let est = costs.estimate(p, gmacsOf.get(p.model)!, p.samples_seen);
      const start = running.get(p.key);
      if (start !== undefined) est = Math.max(0, est - (now - start) / 1000);
      total += est;
    }
    return total / workers;
  };
  const onFinished = (p: SweepPoint, r: ScalingRecord, seconds: number) => {
    records.push(r);
    finished++;
    const trained = r.samples_seen - (typeof r.resumed_from_step === 'number' ? r.resumed_from_step * grid.batch_size : 0);
    costs.add(r, seconds, typeof r.eval_s === 'number' ? r.eval_s : 0, trained);
    const elapsed = (performance.now() - started) / 1000;
    say(`[${finished}/${points.length}] ${describePoint(p)}: ${headline(r)} (${seconds.toFixed(1)} s) · elapsed ${formatDuration(elapsed)} · eta ${formatDuration(remainingSeconds())}`);
    if (isPlateauRecord(r)) {
      say(`  ! ${describePoint(p)} never left the plateau: final loss ${Number(r.final_loss).toFixed(3)} ≥ ${PLATEAU_SHARE}·ln(${grid.batch_size}) = ${(PLATEAU_SHARE * Math.log(grid.batch_size)).toFixed(3)}; flagged, left out of the fits`);
    }
  };
  const startLine = (p: SweepPoint, resumeStep: number) =>
    say(`[${finished + 1 + running.size - 1}/${points.length}] ${describePoint(p)}: training${resumeStep ? ` (resuming from step ${resumeStep} of ${p.steps})` : ` (${p.steps} steps)`}`);

  if (workers === 1) {
    if (threads !== undefined) native.setNumThreads(threads);
    const console = progress && (progress as { isTTY?: boolean }).isTTY ? progress : null;
    for (const p of todo) {
      const resumeStep = (await findLatestCheckpoint(join(out, 'runs', p.dirName)))?.step ?? 0;
      running.set(p.key, performance.now());
      startLine(p, resumeStep);
      const t0 = performance.now();
      const r = await runPoint(grid, p, out, { console, onTrainLog: options.onTrainLog });
      running.delete(p.key);
      onFinished(p, r, (performance.now() - t0) / 1000);
    }
  } else {
    if (options.onTrainLog) throw new Error('sweep: onTrainLog hooks run only with one worker (points then train in this process)');
    const queue = [...todo];
    const failures: string[] = [];
    const worker = async () => {
      while (queue.length && failures.length === 0) {
        const p = queue.shift()!;
        const resumeStep = (await findLatestCheckpoint(join(out, 'runs', p.dirName)))?.step ?? 0;
        running.set(p.key, performance.now());
        startLine(p, resumeStep);
        const t0 = performance.now();
        try {
          const r = await runPointInChild(gridPath, out, p, threads ?? 1);
          running.delete(p.key);
          onFinished(p, r, (performance.now() - t0) / 1000);
        } catch (err) {
          running.delete(p.key);
          failures.push(`${p.key}: ${(err as Error).message}`);
        }
      }
    };
    await Promise.all(Array.from({ length: workers }, worker));
    if (failures.length) throw new Error(`sweep: ${failures.length} point(s) failed: ${failures.join('; ')}`);
  }
  const wall = (performance.now() - started) / 1000;
  const stuck = existsSync(resultsPathOf(out)) ? readResults(resultsPathOf(out)).records.filter(isPlateauRecord).length : 0;
  say(
    `sweep '${grid.name}': ${finished}/${points.length} points finished (${records.length} trained now, ${skipped} before) in ${formatDuration(wall)}` +
      (stuck ? `; ${stuck} never left the plateau at ln(batch size) (flagged in results.jsonl, left out of the fits)` : ''),
  );
  return { dir: out, resultsPath: resultsPathOf(out), total: points.length, skipped, trained: records.length, records, wall_s: wall, plateau: stuck };
}

/** The CLI entry of this package (lib/cli/main.ts under tsx, dist/cli/main.js compiled). */
function cliMainPath(): string {
  const here = fileURLToPath(import.meta.url);
  return join(dirname(here), '..', 'cli', here.endsWith('.ts') ? 'main.ts' : 'main.js');
}

/** Runs one point in a child `clipscale sweep --point KEY --json` and returns the record it appended. */
function runPointInChild(gridPath: string, out: string, point: SweepPoint, threads: number): Promise<ScalingRecord> {
  return new Promise((resolvePromise, reject) => {
    const args = [...process.execArgv, cliMainPath(), 'sweep', '--grid', gridPath, '--out', out, '--point', point.key, '--threads', String(threads), '--json', '--quiet', '--worker'];
    // stdin stays open while this process lives: a worker whose parent is killed sees it close and stops
    const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code !== 0) {
        reject(new Error(`worker for ${point.key} exited with ${signal ?? `code ${code}`}: ${stderr.trim().split('\n').slice(-3).join(' / ') || 'no message'}`));
        return;
      }
      try {
        const summary = JSON.parse(stdout.trim().split('\n').pop() ?? '') as { records: ScalingRecord[] };
        const r = summary.records.find((x) => recordKeyOf(x) === point.key);
        if (!r) throw new Error('its summary names no record for the point');
        resolvePromise(r);
      } catch (err) {
        reject(new Error(`worker for ${point.key}: unreadable output (${(err as Error).message})`));
      }
    });
  });
}
