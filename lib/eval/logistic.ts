// Multinomial logistic regression with a bias, fitted by L-BFGS.
//
// Objective, for features x_n [D], labels y_n in 0..C−1, weights W [C, D] and bias b [C]:
//   L(W, b) = (1/N) Σ_n −log softmax(W·x_n + b)[y_n]  +  (λ/2)·‖W‖²
// The bias is not penalised. Parameters are packed as one vector: W row-major, then b.
import { checkFeatures, type FeatureMatrix } from './features.js';
import { lbfgs, type LbfgsOptions, type LbfgsResult } from './lbfgs.js';
import { checkLabels } from './zeroshot.js';

export interface LogisticModel {
  numClasses: number;
  dim: number;
  /** [C, D] row-major. */
  weights: Float64Array;
  /** [C] */
  bias: Float64Array;
}

export interface LogisticFit {
  model: LogisticModel;
  /** The objective at the solution (mean cross-entropy plus the penalty). */
  loss: number;
  optimizer: Omit<LbfgsResult, 'x'>;
}

/**
 * The objective and its gradient for the given data and λ, over the packed parameter vector
 * [W (C·D), b (C)]. Exposed so tests can check it against finite differences and other solvers.
 */
export function logisticObjective(features: FeatureMatrix, labels: ArrayLike<number>, numClasses: number, lambda: number): (params: Float64Array, grad: Float64Array) => number {
  const { rows: n, cols: d } = features;
  // A float64 copy: the inner loops then never convert.
  const X = Float64Array.from(features.data);
  const C = numClasses;
  const y = Int32Array.from(labels);
  const z = new Float64Array(C);
  const wOff = C * d;
  return (p, grad) => {
    grad.fill(0);
    let loss = 0;
    for (let i = 0; i < n; i++) {
      const xo = i * d;
      // Logits, four classes at a time so each feature value is loaded once per four dot products.
      let c = 0;
      for (; c + 3 < C; c += 4) {
        const w0 = c * d;
        const w1 = w0 + d;
        const w2 = w1 + d;
        const w3 = w2 + d;
        let s0 = 0;
        let s1 = 0;
        let s2 = 0;
        let s3 = 0;
        for (let k = 0; k < d; k++) {
          const xk = X[xo + k];
          s0 += p[w0 + k] * xk;
          s1 += p[w1 + k] * xk;
          s2 += p[w2 + k] * xk;
          s3 += p[w3 + k] * xk;
        }
        z[c] = s0 + p[wOff + c];
        z[c + 1] = s1 + p[wOff + c + 1];
        z[c + 2] = s2 + p[wOff + c + 2];
        z[c + 3] = s3 + p[wOff + c + 3];
      }
      for (; c < C; c++) {
        const wo = c * d;
        let s = 0;
        for (let k = 0; k < d; k++) s += p[wo + k] * X[xo + k];
        z[c] = s + p[wOff + c];
      }
      let zmax = -Infinity;
      for (c = 0; c < C; c++) if (z[c] > zmax) zmax = z[c];
      const yi = y[i];
      const zy = z[yi] - zmax;
      let sum = 0;
      for (c = 0; c < C; c++) {
        z[c] = Math.exp(z[c] - zmax);
        sum += z[c];
      }
      // −log p_y = log Σ exp(z − zmax) − (z_y − zmax), which never takes the log of an underflowed 0.
      loss += Math.log(sum) - zy;
      // Residuals r_c = (p_c − [c = y]) / N, reusing z.
      const inv = 1 / (sum * n);
      for (c = 0; c < C; c++) {
        z[c] = z[c] * inv - (c === yi ? 1 / n : 0);
        grad[wOff + c] += z[c];
      }
      c = 0;
      for (; c + 3 < C; c += 4) {
        const g0 = c * d;
        const g1 = g0 + d;
        const g2 = g1 + d;
        const g3 = g2 + d;
        const r0 = z[c];
        const r1 = z[c + 1];
        const r2 = z[c + 2];
        const r3 = z[c + 3];
        for (let k = 0; k < d; k++) {
          const xk = X[xo + k];
          grad[g0 + k] += r0 * xk;
          grad[g1 + k] += r1 * xk;
          grad[g2 + k] += r2 * xk;
          grad[g3 + k] += r3 * xk;
        }
      }
      for (; c < C; c++) {
        const go = c * d;
        const r = z[c];
        for (let k = 0; k < d; k++) grad[go + k] += r * X[xo + k];
      }
    }
    loss /= n;
    let pen = 0;
    for (let k = 0; k < wOff; k++) {
      pen += p[k] * p[k];
      grad[k] += lambda * p[k];
    }
    return loss + 0.5 * lambda * pen;
  };
}

function checkLambda(lambda: number): void {
  if (!(lambda >= 0) || !Number.isFinite(lambda)) throw new Error(`logistic regression: λ must be a finite number ≥ 0, got ${lambda}`);
}

export interface FitOptions extends LbfgsOptions {
  /** Starting point (e.g. the solution at a neighbouring λ); zeros by default. */
  init?: LogisticModel;
}

/** Fits W and b by L-BFGS. Features are used as given (the probe normalises them first). */
export function fitLogistic(features: FeatureMatrix, labels: ArrayLike<number>, numClasses: number, lambda: number, options: FitOptions = {}): LogisticFit {
  checkFeatures(features, 'logistic regression features');
  checkLabels(labels, features.rows, numClasses, 'logistic regression labels');
  checkLambda(lambda);
  const d = features.cols;
  const x0 = new Float64Array(numClasses * d + numClasses);
  if (options.init) {
    if (options.init.dim !== d || options.init.numClasses !== numClasses) throw new Error('logistic regression: the starting model has a different shape');
    x0.set(options.init.weights, 0);
    x0.set(options.init.bias, numClasses * d);
  }
  const { init: _init, ...lbfgsOptions } = options;
  const res = lbfgs(logisticObjective(features, labels, numClasses, lambda), x0, { gradTol: 1e-5, maxIterations: 500, ...lbfgsOptions });
  const { x, ...optimizer } = res;
  return {
    model: { numClasses, dim: d, weights: x.slice(0, numClasses * d), bias: x.slice(numClasses * d) },
    loss: res.f,
    optimizer,
  };
}

/** Logits [N, C] = X·Wᵀ + b. */
export function logisticLogits(model: LogisticModel, features: FeatureMatrix): Float64Array {
  if (features.cols !== model.dim) throw new Error(`logistic regression: features have dimension ${features.cols} but the model expects ${model.dim}`);
  const { rows: n, cols: d, data: X } = features;
  const C = model.numClasses;
  const W = model.weights;
  const out = new Float64Array(n * C);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < C; c++) {
      let s = model.bias[c];
      for (let k = 0; k < d; k++) s += W[c * d + k] * X[i * d + k];
      out[i * C + c] = s;
    }
  }
  return out;
}
