// Limited-memory BFGS (Nocedal & Wright, Numerical Optimization, 2nd ed.): the two-loop recursion
// (Alg. 7.4) for the search direction, and a line search that returns a step satisfying the strong
// Wolfe conditions (Alg. 3.5 with the zoom of Alg. 3.6, cubic interpolation), which keeps every
// curvature pair s·y positive so the inverse-Hessian estimate stays positive definite.

/** Writes ∇f(x) into `grad` and returns f(x). */
export type Objective = (x: Float64Array, grad: Float64Array) => number;

export interface LbfgsOptions {
  /** Curvature pairs kept (default 10). */
  memory?: number;
  /** Stop when max |∇f| ≤ gradTol (default 1e-6). */
  gradTol?: number;
  /** Stop when (f_prev − f) ≤ funcTol · max(|f_prev|, |f|, 1) (default 1e-10). */
  funcTol?: number;
  /** Iteration cap (default 1000). */
  maxIterations?: number;
  /** Armijo constant c1 (default 1e-4). */
  c1?: number;
  /** Curvature constant c2 (default 0.9). */
  c2?: number;
}

export interface LbfgsResult {
  x: Float64Array;
  f: number;
  gradInfNorm: number;
  iterations: number;
  evaluations: number;
  converged: boolean;
  reason: 'gradient' | 'function' | 'max-iterations' | 'line-search';
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

function infNorm(a: Float64Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const v = Math.abs(a[i]);
    if (v > m) m = v;
  }
  return m;
}

/** Minimiser of the cubic through (a, fa, ga) and (b, fb, gb), clamped into the bracket. */
function cubicMin(a: number, fa: number, ga: number, b: number, fb: number, gb: number): number {
  const d1 = ga + gb - (3 * (fa - fb)) / (a - b);
  const disc = d1 * d1 - ga * gb;
  const lo = Math.min(a, b);
  const hi = Math.max(a, b);
  if (disc >= 0) {
    const d2 = Math.sign(b - a) * Math.sqrt(disc);
    const t = b - (b - a) * ((gb + d2 - d1) / (gb - ga + 2 * d2));
    // Stay well inside the bracket so it shrinks every step.
    const margin = 0.1 * (hi - lo);
    if (Number.isFinite(t) && t > lo + margin && t < hi - margin) return t;
  }
  return (a + b) / 2;
}

interface LineSearchResult {
  ok: boolean;
  alpha: number;
  f: number;
  evaluations: number;
}

/**
 * Finds α with f(x+αd) ≤ f(x) + c1·α·g·d and |∇f(x+αd)·d| ≤ c2·|g·d|. On return `xNew` and `gNew`
 * hold the point and gradient at the accepted α.
 */
function strongWolfe(
  fun: Objective,
  x: Float64Array,
  f0: number,
  g0d: number,
  d: Float64Array,
  alpha0: number,
  c1: number,
  c2: number,
  xNew: Float64Array,
  gNew: Float64Array,
): LineSearchResult {
  let evaluations = 0;
  const evalAt = (alpha: number): { f: number; gd: number } => {
    for (let i = 0; i < x.length; i++) xNew[i] = x[i] + alpha * d[i];
    const f = fun(xNew, gNew);
    evaluations++;
    return { f, gd: dot(gNew, d) };
  };
  const zoom = (lo: number, flo: number, glo: number, hi: number, fhi: number, ghi: number): LineSearchResult => {
    for (let iter = 0; iter < 40; iter++) {
      const a = cubicMin(lo, flo, glo, hi, fhi, ghi);
      const { f, gd } = evalAt(a);
      if (f > f0 + c1 * a * g0d || f >= flo) {
        hi = a;
        fhi = f;
        ghi = gd;
      } else {
        if (Math.abs(gd) <= -c2 * g0d) return { ok: true, alpha: a, f, evaluations };
        if (gd * (hi - lo) >= 0) {
          hi = lo;
          fhi = flo;
          ghi = glo;
        }
        lo = a;
        flo = f;
        glo = gd;
      }
      if (Math.abs(hi - lo) < 1e-16 * Math.max(1, Math.abs(lo))) break;
    }
    // The bracket collapsed: accept the best point if it still decreases f (Armijo holds for lo).
    if (lo > 0 && flo < f0) {
      const { f } = evalAt(lo);
      return { ok: true, alpha: lo, f, evaluations };
    }
    return { ok: false, alpha: 0, f: f0, evaluations };
  };

  let prev = 0;
  let fPrev = f0;
  let gPrev = g0d;
  let alpha = alpha0;
  for (let iter = 0; iter < 30; iter++) {
    const { f, gd } = evalAt(alpha);
    if (!Number.isFinite(f)) {
      // Overshot into overflow: back off.
      alpha = (prev + alpha) / 2;
      continue;
    }
    if (f > f0 + c1 * alpha * g0d || (iter > 0 && f >= fPrev)) return zoom(prev, fPrev, gPrev, alpha, f, gd);
    if (Math.abs(gd) <= -c2 * g0d) return { ok: true, alpha, f, evaluations };
    if (gd >= 0) return zoom(alpha, f, gd, prev, fPrev, gPrev);
    prev = alpha;
    fPrev = f;
    gPrev = gd;
    alpha *= 2;
  }
  return { ok: false, alpha: 0, f: f0, evaluations };
}

/** Minimises `fun` from `x0` (not modified). */
export function lbfgs(fun: Objective, x0: Float64Array, options: LbfgsOptions = {}): LbfgsResult {
  const m = options.memory ?? 10;
  const gradTol = options.gradTol ?? 1e-6;
  const funcTol = options.funcTol ?? 1e-10;
  const maxIterations = options.maxIterations ?? 1000;
  const c1 = options.c1 ?? 1e-4;
  const c2 = options.c2 ?? 0.9;
  if (!(c1 > 0 && c1 < c2 && c2 < 1)) throw new Error(`lbfgs: need 0 < c1 < c2 < 1, got c1=${c1}, c2=${c2}`);
  const n = x0.length;
  let x = Float64Array.from(x0);
  let g = new Float64Array(n);
  let f = fun(x, g);
  let evaluations = 1;
  if (!Number.isFinite(f)) throw new Error(`lbfgs: the objective is ${f} at the starting point`);

  const S: Float64Array[] = [];
  const Y: Float64Array[] = [];
  const rho: number[] = [];
  const alphaBuf = new Float64Array(m);
  const d = new Float64Array(n);
  let xNew = new Float64Array(n);
  let gNew = new Float64Array(n);

  let iterations = 0;
  let reason: LbfgsResult['reason'] = 'max-iterations';
  if (infNorm(g) <= gradTol) reason = 'gradient';
  while (reason === 'max-iterations' && iterations < maxIterations) {
    // Two-loop recursion: d = −H·g.
    for (let i = 0; i < n; i++) d[i] = -g[i];
    const k = S.length;
    for (let j = k - 1; j >= 0; j--) {
      const a = rho[j] * dot(S[j], d);
      alphaBuf[j] = a;
      const y = Y[j];
      for (let i = 0; i < n; i++) d[i] -= a * y[i];
    }
    if (k > 0) {
      // Initial Hessian scaling γ = s·y / y·y (N&W eq. 7.20).
      const gamma = dot(S[k - 1], Y[k - 1]) / dot(Y[k - 1], Y[k - 1]);
      for (let i = 0; i < n; i++) d[i] *= gamma;
    }
    for (let j = 0; j < k; j++) {
      const b = rho[j] * dot(Y[j], d);
      const s = S[j];
      const coef = alphaBuf[j] - b;
      for (let i = 0; i < n; i++) d[i] += coef * s[i];
    }
    let gd = dot(g, d);
    if (!(gd < 0)) {
      // Not a descent direction (numerical trouble): restart from steepest descent.
      S.length = 0;
      Y.length = 0;
      rho.length = 0;
      for (let i = 0; i < n; i++) d[i] = -g[i];
      gd = dot(g, d);
    }
    const alpha0 = S.length === 0 ? Math.min(1, 1 / Math.sqrt(-gd)) : 1;
    const ls = strongWolfe(fun, x, f, gd, d, alpha0, c1, c2, xNew, gNew);
    evaluations += ls.evaluations;
    if (!ls.ok) {
      reason = 'line-search';
      break;
    }
    iterations++;
    const s = new Float64Array(n);
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      s[i] = xNew[i] - x[i];
      y[i] = gNew[i] - g[i];
    }
    const sy = dot(s, y);
    if (sy > 1e-12 * Math.sqrt(dot(s, s) * dot(y, y))) {
      if (S.length === m) {
        S.shift();
        Y.shift();
        rho.shift();
      }
      S.push(s);
      Y.push(y);
      rho.push(1 / sy);
    }
    const fPrev = f;
    [x, xNew] = [xNew, x];
    [g, gNew] = [gNew, g];
    f = ls.f;
    if (infNorm(g) <= gradTol) reason = 'gradient';
    else if (fPrev - f <= funcTol * Math.max(Math.abs(fPrev), Math.abs(f), 1)) reason = 'function';
  }
  return { x, f, gradInfNorm: infNorm(g), iterations, evaluations, converged: reason === 'gradient' || reason === 'function', reason };
}
