// What a scaling study found, as numbers with intervals: the law of each task and caption
// distribution (fitted on the runs that left the plateau, with whether the task was learned at all),
// whether two distributions' slopes separate, and the data bottleneck.
import { seededRandom } from '../util/seeded_random.js';
import { bootstrapFit, quantile, type ConfidenceIntervals } from './bootstrap.js';
import { chanceScore, learnedThreshold } from './chance.js';
import type { FitMethod } from './fit.js';
import { lineBand } from './paper.js';
import { pointKey, recordCompute, type ScalingRecord } from './record.js';

export interface LawFit {
  alpha: number;
  beta: number;
  r2: number;
  method: FitMethod;
  ci: ConfidenceIntervals;
  /** Keys (pointKey: seeds averaged) of the points the line was fitted to: the frontier points of 'pareto-bins'. */
  used: string[];
  /** Decades of compute between the first and last point used. */
  decades: number;
  /** 95% band of the fitted line over the points' compute range. */
  band: { x: number; lo: number; hi: number }[];
}

export interface LawRow {
  task: string;
  distribution: string;
  /** Points with this task's metric that left the plateau (the fit's input, perfect scores aside); a point's seeds count once. */
  n: number;
  /** Runs behind those points (n × seeds where every point has every seed). */
  runs: number;
  /** Fewest and most seeds a fitted point averages (its error is the mean over them). */
  seeds: [number, number];
  /** Of those, points left out of the fit because their score is perfect (E = 0 has no logarithm). */
  perfect?: number;
  /** Points that never left the plateau at ln(batch size): not fitted. */
  plateau?: number;
  /** The fitted law, or null with `reason`. */
  fit: LawFit | null;
  reason?: string;
  /** Score of random embeddings, when known; the best score reached by a point (its seeds' mean); whether that is clearly above chance. */
  chance: number | null;
  best: number;
  learned: boolean;
}

export interface BottleneckRow {
  task: string;
  distribution: string;
  model: string;
  samples_seen: number;
  /** Error with each data size at this model and budget, smallest data size first. */
  errors: { data_size: number; error: number }[];
  /** Relative error increase of the smallest data size over the largest, E_small / E_large − 1: > 0 where less data hurts. */
  gap: number;
}

export interface GapAtBudget {
  samples_seen: number;
  /** Passes over the smallest data set at this budget. */
  passes: number;
  comparisons: number;
  /**
   * Typical relative gap, exp(mean ln(E_small / E_large)) − 1 (a geometric mean: one run near a
   * perfect score on the large set cannot dominate it), and its 95% bootstrap interval over the comparisons.
   */
  mean: number;
  ci: [number, number];
}

export interface LawOptions {
  method?: FitMethod;
  bootstrapSamples?: number;
  seed?: number;
}

const unique = <T>(values: T[]): T[] => [...new Set(values)];

/** One grid point of a task: the mean error over its seeds' runs. */
export interface AveragedPoint {
  /** pointKey of its runs. */
  key: string;
  compute: number;
  error: number;
  /** Runs (seeds) averaged. */
  seeds: number;
}

/** Groups runs by grid point (pointKey) and averages each point's error 1 − score over its seeds, in first-seen order. */
export function averageSeeds(records: ScalingRecord[], task: string): AveragedPoint[] {
  const groups = new Map<string, ScalingRecord[]>();
  for (const r of records) {
    if (r.metrics[task] === undefined) continue;
    const key = pointKey(r);
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  return [...groups.entries()].map(([key, runs]) => ({
    key,
    compute: recordCompute(runs[0]),
    error: runs.reduce((s, r) => s + (1 - r.metrics[task]), 0) / runs.length,
    seeds: runs.length,
  }));
}

/** Fits one law per task and distribution on the given (non-plateau) records. */
export function fitLaws(records: ScalingRecord[], tasks: string[], plateau: ScalingRecord[] = [], options: LawOptions = {}): LawRow[] {
  const rows: LawRow[] = [];
  const distributions = unique([...records, ...plateau].map((r) => r.distribution)).sort();
  for (const task of tasks) {
    for (const distribution of distributions) {
      const all = records.filter((r) => r.distribution === distribution && r.metrics[task] !== undefined);
      const stuckRuns = plateau.filter((r) => r.distribution === distribution && r.metrics[task] !== undefined);
      const stuck = stuckRuns.length;
      if (all.length === 0 && stuck === 0) continue;
      // Runs of one point with several seeds are one point: its error is their mean, so the frontier
      // picks the better point, not the luckier seed.
      const averaged = averageSeeds(all, task);
      // A perfect score (E = 0, e.g. recall@10 on a small retrieval set) cannot sit on log axes: it is left out and counted.
      const points = averaged.filter((p) => p.error > 0);
      const perfect = averaged.length - points.length;
      const chance = all.length ? chanceScore(task, all[0]) : chanceScore(task);
      // The best point, as the fit sees points (its seeds' mean): one lucky seed does not make a task learned.
      const best = all.length ? averaged.reduce((m, p) => Math.max(m, 1 - p.error), 0) : stuckRuns.reduce((m, r) => Math.max(m, r.metrics[task]), 0);
      const learned = all.length > 0 && (chance === null || best >= learnedThreshold(chance));
      const seedCounts = points.map((p) => p.seeds);
      const seeds: [number, number] = seedCounts.length ? [Math.min(...seedCounts), Math.max(...seedCounts)] : [0, 0];
      const runs = points.reduce((s, p) => s + p.seeds, 0);
      const row: LawRow = { task, distribution, n: points.length, runs, seeds, ...(perfect ? { perfect } : {}), ...(stuck ? { plateau: stuck } : {}), fit: null, chance, best, learned };
      const compute = points.map((p) => p.compute);
      const error = points.map((p) => p.error);
      const methods: FitMethod[] = options.method ? [options.method] : ['pareto-bins', 'all'];
      const reasons: string[] = [];
      if (points.length === 0) reasons.push(all.length ? 'every score is perfect' : 'every run of it never left the plateau');
      for (const method of points.length ? methods : []) {
        try {
          const b = bootstrapFit(compute, error, { method, samples: options.bootstrapSamples ?? 1000, seed: options.seed ?? 0 });
          const usedCompute = b.fit.used.map((i) => compute[i]);
          const lo = Math.min(...compute);
          const hi = Math.max(...compute);
          row.fit = {
            alpha: b.fit.alpha,
            beta: b.fit.beta,
            r2: b.fit.r2,
            method,
            ci: b.ci,
            used: b.fit.used.map((i) => points[i].key),
            decades: Math.log10(Math.max(...usedCompute) / Math.min(...usedCompute)),
            band: lineBand(b.draws, lo, hi, b.ci.level),
          };
          break;
        } catch (err) {
          reasons.push(`${method}: ${(err as Error).message}`);
        }
      }
      if (!row.fit) row.reason = reasons.join('; ');
      rows.push(row);
    }
  }
  return rows;
}

/** Whether two laws' 95% intervals on α are disjoint. */
export function slopesSeparate(a: LawFit, b: LawFit): boolean {
  return a.ci.alpha[1] < b.ci.alpha[0] || b.ci.alpha[1] < a.ci.alpha[0];
}

function modelOrder(records: ScalingRecord[]): string[] {
  const gm = new Map<string, number>();
  for (const r of records) gm.set(r.model, r.gmacs);
  return [...gm.keys()].sort((a, b) => gm.get(a)! - gm.get(b)! || a.localeCompare(b));
}

/** For each task, distribution, model and budget seen with several data sizes: how much less data costs. */
export function findBottlenecks(records: ScalingRecord[], tasks: string[]): BottleneckRow[] {
  const out: BottleneckRow[] = [];
  const groups = new Map<string, ScalingRecord[]>();
  for (const r of records) {
    const key = JSON.stringify([r.distribution, r.model, r.samples_seen]);
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  for (const task of tasks) {
    for (const group of groups.values()) {
      const withTask = group.filter((r) => r.metrics[task] !== undefined);
      const sizes = unique(withTask.map((r) => r.data_size)).sort((a, b) => a - b);
      if (sizes.length < 2) continue;
      // several runs of one data size (seeds) are averaged
      const errors = sizes.map((data_size) => {
        const runs = withTask.filter((r) => r.data_size === data_size);
        return { data_size, error: runs.reduce((s, r) => s + 1 - r.metrics[task], 0) / runs.length };
      });
      const { distribution, model, samples_seen } = group[0];
      // a relative gap over a perfect score (E = 0) is not a number
      if (!(errors[errors.length - 1].error > 0)) continue;
      out.push({ task, distribution, model, samples_seen, errors, gap: errors[0].error / errors[errors.length - 1].error - 1 });
    }
  }
  const order = modelOrder(records);
  return out.sort((a, b) => a.task.localeCompare(b.task) || a.distribution.localeCompare(b.distribution) || order.indexOf(a.model) - order.indexOf(b.model) || a.samples_seen - b.samples_seen);
}

/** The mean gap at each budget with a bootstrap interval over its comparisons (seeded). */
export function gapsByBudget(rows: BottleneckRow[], samples = 2000, seed = 0): GapAtBudget[] {
  const random = seededRandom(seed);
  const out: GapAtBudget[] = [];
  for (const s of unique(rows.map((r) => r.samples_seen)).sort((a, b) => a - b)) {
    const gaps = rows.filter((r) => r.samples_seen === s && r.errors[0].error > 0).map((r) => Math.log(1 + r.gap));
    if (gaps.length === 0) continue;
    const mean = Math.expm1(gaps.reduce((a, b) => a + b, 0) / gaps.length);
    const means: number[] = [];
    for (let k = 0; k < samples; k++) {
      let sum = 0;
      for (let i = 0; i < gaps.length; i++) sum += gaps[Math.floor(random() * gaps.length)];
      means.push(Math.expm1(sum / gaps.length));
    }
    means.sort((a, b) => a - b);
    const smallest = Math.min(...rows.filter((r) => r.samples_seen === s).map((r) => r.errors[0].data_size));
    out.push({ samples_seen: s, passes: s / smallest, comparisons: gaps.length, mean, ci: [quantile(means, 0.025), quantile(means, 0.975)] });
  }
  return out;
}

export interface GapTrend {
  /** Growth of ln(E_small / E_large) per decade of samples seen (least squares over every comparison). */
  slope: number;
  /** 95% bootstrap interval of the slope, resampling comparisons (seeded). */
  ci: [number, number];
  comparisons: number;
}

/** How fast the data-size gap grows with samples seen: a line through ln(E_small/E_large) against log₁₀ samples seen. */
export function gapTrend(rows: BottleneckRow[], samples = 2000, seed = 0): GapTrend | null {
  const pts = rows.filter((r) => r.errors[0].error > 0).map((r) => ({ x: Math.log10(r.samples_seen), y: Math.log(1 + r.gap) }));
  if (new Set(pts.map((p) => p.x)).size < 2) return null;
  const slopeOf = (ps: { x: number; y: number }[]): number => {
    const mx = ps.reduce((a, p) => a + p.x, 0) / ps.length;
    const my = ps.reduce((a, p) => a + p.y, 0) / ps.length;
    let sxx = 0;
    let sxy = 0;
    for (const p of ps) {
      sxx += (p.x - mx) ** 2;
      sxy += (p.x - mx) * (p.y - my);
    }
    return sxx > 0 ? sxy / sxx : NaN;
  };
  const random = seededRandom(seed + 1);
  const slopes: number[] = [];
  for (let k = 0; k < samples; k++) {
    const draw = pts.map(() => pts[Math.floor(random() * pts.length)]);
    const s = slopeOf(draw);
    if (Number.isFinite(s)) slopes.push(s);
  }
  slopes.sort((a, b) => a - b);
  return { slope: slopeOf(pts), ci: [quantile(slopes, 0.025), quantile(slopes, 0.975)], comparisons: pts.length };
}
