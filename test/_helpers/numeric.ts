// Shared helpers for numeric tests: seeded random data, float64 references,
// relative errors and finite-difference gradients.
import { seededNormal, seededRandom } from '../../lib/util/seeded_random.js';
import { Tensor } from '../../lib/tensor.js';

/** mulberry32 (lib/util/seeded_random.ts's generator): seeded, so failures reproduce. */
export const rng: (seed: number) => () => number = seededRandom;

/** Standard normal values (Box–Muller) times `scale`, as f32. */
export function randn(n: number, seed: number, scale = 1): Float32Array {
  return Float32Array.from(seededNormal(n, seed, scale));
}

export function randTensor(shape: number[], seed: number, scale = 1): Tensor {
  return Tensor.from(randn(shape.reduce((a, b) => a * b, 1), seed, scale), shape);
}

/** One product's shape and epilogue: c = alpha·op(a)·op(b) + beta·c (the GEMM tests' cases). */
export interface GemmCase {
  m: number;
  n: number;
  k: number;
  transA: boolean;
  transB: boolean;
  alpha: number;
  beta: number;
}

/** Every combination of transposes (transA, transB). */
export const gemmTransposes = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
] as const;

const f32Cell = new Float32Array(1);
const u32Cell = new Uint32Array(f32Cell.buffer);
/** The nearest bf16 to x (ties to even; NaN stays NaN), as the native rounding (round_bf16). */
export function bf16Round(x: number): number {
  f32Cell[0] = x;
  const u = u32Cell[0];
  if ((u & 0x7fffffff) > 0x7f800000) return x;
  u32Cell[0] = ((u + 0x7fff + ((u >>> 16) & 1)) >>> 0) & 0xffff0000;
  return f32Cell[0];
}

/** ‖a − b‖ / ‖b‖ (b is the reference); NaN anywhere gives Infinity so it never passes. */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`relErr: lengths differ (${a.length} vs ${b.length})`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i]) || !Number.isFinite(b[i])) return Infinity;
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-30);
}

/** max |a − b| / max |b|: the worst error relative to the reference tensor's scale. */
export function maxRelErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / Math.max(scale, 1e-30);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

/**
 * Central finite differences of a scalar function f with respect to the f32 tensor x,
 * evaluated at `count` coordinates spread over x (all of them when count >= numel).
 * Returns the indices probed and the numeric derivatives there.
 */
export function finiteDiff(f: () => number, x: Tensor, count = 24, eps = 1e-2, seed = 7): { idx: number[]; grad: number[] } {
  const v = x.view() as Float32Array;
  const r = rng(seed);
  const idx = v.length <= count ? [...Array(v.length).keys()] : Array.from({ length: count }, () => Math.floor(r() * v.length));
  const grad: number[] = [];
  for (const i of idx) {
    const orig = v[i];
    v[i] = orig + eps;
    const up = f();
    v[i] = orig - eps;
    const down = f();
    v[i] = orig;
    grad.push((up - down) / (2 * eps));
  }
  return { idx, grad };
}

/** Random weights for a weighted-sum loss L = Σ w·y, whose gradient w.r.t. y is w. */
export function lossWeights(n: number, seed: number): Float32Array {
  return randn(n, seed);
}

export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** One probed coordinate of a whole-model gradient check. */
export interface GradientProbe {
  name: string;
  index: number;
  analytic: number;
  numeric: number;
  /** |numeric − analytic| / max(|numeric|, |analytic|, 1e-2). */
  err: number;
}

/**
 * Central differences of `lossOf` at the two largest-gradient coordinates of every parameter plus a
 * random one (`rand`), against the gradients already in `p.grad`. fp32 losses carry ~1e-7 noise, so
 * differences below ~1e-4 absolute are not resolved: the error is relative to
 * max(|numeric|, |analytic|, 1e-2). Steps are `epsScale`·max(1, |value|).
 */
export function probeModelGradients(
  params: readonly { name: string; values(): Float32Array; grad: Tensor }[],
  lossOf: () => number,
  rand: () => number,
  epsScale: number,
): GradientProbe[] {
  const out: GradientProbe[] = [];
  for (const p of params) {
    const v = p.values();
    const g = p.grad.view() as Float32Array;
    const order = [...v.keys()].sort((a, c) => Math.abs(g[c]) - Math.abs(g[a]));
    const probe = [...new Set([order[0], order[1] ?? order[0], Math.floor(rand() * v.length)])];
    for (const i of probe) {
      const orig = v[i];
      const eps = epsScale * Math.max(1, Math.abs(orig));
      v[i] = orig + eps;
      const up = lossOf();
      v[i] = orig - eps;
      const down = lossOf();
      v[i] = orig;
      const numeric = (up - down) / (2 * eps);
      const err = Math.abs(numeric - g[i]) / Math.max(Math.abs(numeric), Math.abs(g[i]), 1e-2);
      out.push({ name: p.name, index: i, analytic: g[i], numeric, err });
    }
  }
  return out;
}
