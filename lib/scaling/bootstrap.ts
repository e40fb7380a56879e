// Bootstrap confidence intervals for power-law fits: resample the points with replacement
// (seeded, so intervals reproduce), refit with the same method, and take percentiles.
import { seededRandom as rng } from '../util/seeded_random.js';
import { fitPowerLaw, predictError, type FitOptions, type PowerLawFit } from './fit.js';

export interface BootstrapOptions extends FitOptions {
  /** Number of resamples (default 1000). */
  samples?: number;
  /** Seed of the resampling (default 0). */
  seed?: number;
  /** Two-sided confidence level (default 0.95). */
  level?: number;
}

export interface ConfidenceIntervals {
  level: number;
  /** Resamples that gave a fit. */
  samples: number;
  /** Resamples with no fit (e.g. every drawn point in one bin, or one compute value), left out. */
  skipped: number;
  seed: number;
  alpha: [number, number];
  beta: [number, number];
}

export interface BootstrapResult {
  fit: PowerLawFit;
  ci: ConfidenceIntervals;
  /** (α, β) of every resample that gave a fit, for prediction intervals. */
  draws: { alpha: number; beta: number }[];
}

/** Linear-interpolated quantile (numpy's default) of sorted values. */
export function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

function interval(values: number[], level: number): [number, number] {
  const sorted = [...values].sort((a, b) => a - b);
  return [quantile(sorted, (1 - level) / 2), quantile(sorted, 1 - (1 - level) / 2)];
}

/** Fits the law and its percentile-bootstrap confidence intervals on α and β. */
export function bootstrapFit(compute: ArrayLike<number>, error: ArrayLike<number>, options: BootstrapOptions = {}, labels?: string[]): BootstrapResult {
  const samples = options.samples ?? 1000;
  const seed = options.seed ?? 0;
  const level = options.level ?? 0.95;
  if (!(Number.isInteger(samples) && samples >= 10)) throw new Error(`bootstrap: samples must be an integer ≥ 10, got ${samples}`);
  if (!(level > 0 && level < 1)) throw new Error(`bootstrap: level must be between 0 and 1, got ${level}`);
  const fit = fitPowerLaw(compute, error, options, labels);
  const n = compute.length;
  const random = rng(seed);
  const draws: { alpha: number; beta: number }[] = [];
  const c = new Array<number>(n);
  const e = new Array<number>(n);
  for (let s = 0; s < samples; s++) {
    for (let i = 0; i < n; i++) {
      const j = Math.floor(random() * n);
      c[i] = compute[j];
      e[i] = error[j];
    }
    try {
      const f = fitPowerLaw(c, e, options);
      draws.push({ alpha: f.alpha, beta: f.beta });
    } catch {
      // a degenerate resample (one distinct compute value, or one bin) has no line; it is counted in `skipped`
    }
  }
  if (draws.length < samples / 2) {
    throw new Error(`bootstrap: only ${draws.length} of ${samples} resamples of the ${n} points could be fitted; too few distinct points for an interval`);
  }
  return {
    fit,
    draws,
    ci: {
      level,
      samples: draws.length,
      skipped: samples - draws.length,
      seed,
      alpha: interval(
        draws.map((d) => d.alpha),
        level,
      ),
      beta: interval(
        draws.map((d) => d.beta),
        level,
      ),
    },
  };
}

export interface Prediction {
  compute: number;
  /** E = β·C^α of the fit itself. */
  error: number;
  /** Percentile interval of the bootstrap fits' predictions at this compute. */
  interval: [number, number];
  level: number;
}

/** The fitted error at `compute`, with the bootstrap interval of the fitted line there. */
export function predictWithInterval(result: BootstrapResult, compute: number): Prediction {
  if (!(Number.isFinite(compute) && compute > 0)) throw new Error(`predict: compute must be a positive number, got ${compute}`);
  return {
    compute,
    error: predictError(result.fit, compute),
    interval: interval(
      result.draws.map((d) => predictError(d, compute)),
      result.ci.level,
    ),
    level: result.ci.level,
  };
}
