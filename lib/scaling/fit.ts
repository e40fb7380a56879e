// Power laws E = β·C^α fitted in log₁₀–log₁₀ space, as in Cherti et al. (CVPR 2023):
//   'pareto-bins' is the paper's `binned_line_fit` (figures.ipynb of LAION-AI/scaling-laws-openclip):
//     split log₁₀ C into `bins` equal bins over [min, max + 0.1], keep the lowest log₁₀ E in each
//     bin, and fit a line through (bin centre, lowest log E) — the x is the bin's centre, not the
//     point's own x, and empty bins are dropped;
//   'all' is ordinary least squares through every point (the paper's fit of the 3 OpenAI models).

export type FitMethod = 'pareto-bins' | 'all';
export const fitMethods: readonly FitMethod[] = ['pareto-bins', 'all'];

export interface FitOptions {
  method?: FitMethod;
  /** Number of bins of 'pareto-bins' (the paper: 5). */
  bins?: number;
  /** Added to the largest log₁₀ C to make the last bin's upper edge (the paper: 0.1). */
  eps?: number;
}

export interface PowerLawFit {
  /** Exponent: E = β·C^α (negative when error falls with compute). */
  alpha: number;
  /** Coefficient: E = β·C^α. */
  beta: number;
  method: FitMethod;
  /** Input points. */
  n: number;
  /** The (log₁₀ C, log₁₀ E) points the line was fitted to: bin centres and bin minima for 'pareto-bins'. */
  fitted: { x: number; y: number }[];
  /** Indices of the input points the line was fitted to (each bin's best point for 'pareto-bins'). */
  used: number[];
  /** Coefficient of determination of the line on `fitted`, in log space. */
  r2: number;
}

/** Checks the inputs of a fit and returns their base-10 logarithms; errors say which point is bad. */
export function logPoints(compute: ArrayLike<number>, error: ArrayLike<number>, labels?: string[]): { x: number[]; y: number[] } {
  if (compute.length !== error.length) throw new Error(`fit: ${compute.length} compute values but ${error.length} error values`);
  const x: number[] = [];
  const y: number[] = [];
  for (let i = 0; i < compute.length; i++) {
    const where = labels?.[i] ?? `point ${i}`;
    const c = compute[i];
    const e = error[i];
    if (!(Number.isFinite(c) && c > 0)) throw new Error(`fit: compute must be a positive number, got ${c} at ${where}`);
    if (!(Number.isFinite(e) && e > 0)) {
      throw new Error(`fit: error E must be positive to take its logarithm, got ${e} at ${where}${e <= 0 ? ' (a metric of 1 or more gives E = 1 − metric ≤ 0)' : ''}`);
    }
    x.push(Math.log10(c));
    y.push(Math.log10(e));
  }
  return { x, y };
}

/** Least-squares line y = slope·x + intercept, with r². Throws when x does not vary. */
export function lineFit(x: number[], y: number[]): { slope: number; intercept: number; r2: number } {
  const n = x.length;
  if (n < 2) throw new Error(`fit: need at least 2 points for a line, got ${n}`);
  const mx = x.reduce((a, b) => a + b, 0) / n;
  const my = y.reduce((a, b) => a + b, 0) / n;
  let sxx = 0;
  let sxy = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxx += (x[i] - mx) ** 2;
    sxy += (x[i] - mx) * (y[i] - my);
    syy += (y[i] - my) ** 2;
  }
  if (sxx <= 1e-24 * Math.max(1, mx * mx)) throw new Error(`fit: all ${n} points have the same compute; a slope cannot be fitted`);
  const slope = sxy / sxx;
  const intercept = my - slope * mx;
  let ssRes = 0;
  for (let i = 0; i < n; i++) ssRes += (y[i] - (slope * x[i] + intercept)) ** 2;
  const r2 = syy > 0 ? 1 - ssRes / syy : 1;
  return { slope, intercept, r2 };
}

/** numpy.linspace(start, stop, count + 1): the bin edges of numpy.histogram. */
function binEdges(start: number, stop: number, bins: number): number[] {
  const step = (stop - start) / bins;
  const edges = Array.from({ length: bins + 1 }, (_, i) => start + i * step);
  edges[bins] = stop;
  return edges;
}

/**
 * The paper's Pareto-frontier bins: for each of `bins` equal bins of log C over [min, max + eps], its
 * centre and the index of the point with the lowest log E in it (bins with no point are left out).
 */
export function paretoBins(x: number[], y: number[], bins = 5, eps = 0.1): { centre: number; index: number }[] {
  if (!(Number.isInteger(bins) && bins >= 2)) throw new Error(`fit: bins must be an integer ≥ 2, got ${bins}`);
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of x) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  const edges = binEdges(lo, hi + eps, bins);
  const best: number[] = new Array(bins).fill(-1);
  x.forEach((xi, i) => {
    // numpy.digitize: bin k holds edges[k] <= x < edges[k+1]
    let k = bins - 1;
    while (k > 0 && xi < edges[k]) k--;
    if (best[k] < 0 || y[i] < y[best[k]]) best[k] = i;
  });
  const out: { centre: number; index: number }[] = [];
  for (let k = 0; k < bins; k++) if (best[k] >= 0) out.push({ centre: (edges[k] + edges[k + 1]) / 2, index: best[k] });
  return out;
}

/** The paper's Pareto-frontier points: per bin of log C, its centre and the lowest log E in it. */
export function paretoBinPoints(x: number[], y: number[], bins = 5, eps = 0.1): { x: number; y: number }[] {
  return paretoBins(x, y, bins, eps).map((b) => ({ x: b.centre, y: y[b.index] }));
}

/** Fits E = β·C^α to compute values C and errors E. `labels` name the points in error messages. */
export function fitPowerLaw(compute: ArrayLike<number>, error: ArrayLike<number>, options: FitOptions = {}, labels?: string[]): PowerLawFit {
  const method = options.method ?? 'pareto-bins';
  if (!fitMethods.includes(method)) throw new Error(`fit: unknown method '${method}' (use ${fitMethods.join(' or ')})`);
  const { x, y } = logPoints(compute, error, labels);
  const minimum = method === 'pareto-bins' ? 3 : 2;
  if (x.length < minimum) throw new Error(`fit: too few points for method '${method}': got ${x.length}, need at least ${minimum}`);
  const bins = method === 'pareto-bins' ? paretoBins(x, y, options.bins ?? 5, options.eps ?? 0.1) : null;
  const fitted = bins ? bins.map((b) => ({ x: b.centre, y: y[b.index] })) : x.map((xi, i) => ({ x: xi, y: y[i] }));
  const used = bins ? bins.map((b) => b.index) : x.map((_, i) => i);
  if (fitted.length < 2) throw new Error(`fit: the ${x.length} points fall in only ${fitted.length} bin; 'pareto-bins' needs points in at least 2 bins`);
  const line = lineFit(
    fitted.map((p) => p.x),
    fitted.map((p) => p.y),
  );
  return { alpha: line.slope, beta: 10 ** line.intercept, method, n: x.length, fitted, used, r2: line.r2 };
}

/** E = β·C^α at the given compute. */
export function predictError(fit: { alpha: number; beta: number }, compute: number): number {
  return fit.beta * compute ** fit.alpha;
}

/** The law as text, e.g. `E = 5.86·C^-0.111`. */
export function formatLaw(fit: { alpha: number; beta: number }, digits = 3): string {
  return `E = ${fit.beta.toPrecision(digits)}·C^${fit.alpha.toPrecision(digits)}`;
}
