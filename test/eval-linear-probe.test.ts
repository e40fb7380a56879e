import test from 'ava';

import { featureMatrix, l2Normalize, type FeatureMatrix } from '../lib/eval/features.js';
import { lbfgs } from '../lib/eval/lbfgs.js';
import { fewShotLinearProbe, linearProbe, sampleShots, stratifiedSplit } from '../lib/eval/linear_probe.js';
import { fitLogistic, logisticLogits, logisticObjective } from '../lib/eval/logistic.js';
import { seededNormal, seededRandom } from '../lib/util/seeded_random.js';
import { classificationMetrics } from '../lib/eval/zeroshot.js';

/** Gaussian blobs: class c centred at a random direction times `separation`, unit-variance noise per row. */
function blobs(n: number, d: number, classes: number, separation: number, seed: number, centresSeed = 1): { x: FeatureMatrix; y: Int32Array } {
  const centres = seededNormal(classes * d, centresSeed, separation / Math.sqrt(d));
  const noise = seededNormal(n * d, seed, 1 / Math.sqrt(d));
  const r = seededRandom(seed + 1000);
  const y = new Int32Array(n);
  const x = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    y[i] = i < classes ? i : Math.floor(r() * classes);
    for (let k = 0; k < d; k++) x[i * d + k] = centres[y[i] * d + k] + noise[i * d + k];
  }
  return { x: featureMatrix(x, n, d), y };
}

test('L-BFGS minimises the Rosenbrock function and a badly scaled quadratic', (t) => {
  const rosen = (x: Float64Array, g: Float64Array) => {
    let f = 0;
    g.fill(0);
    for (let i = 0; i + 1 < x.length; i++) {
      const a = x[i + 1] - x[i] * x[i];
      const b = 1 - x[i];
      f += 100 * a * a + b * b;
      g[i] += -400 * x[i] * a - 2 * b;
      g[i + 1] += 200 * a;
    }
    return f;
  };
  const r2 = lbfgs(rosen, Float64Array.from([-1.2, 1]), { gradTol: 1e-9 });
  t.true(r2.converged, r2.reason);
  t.true(Math.abs(r2.x[0] - 1) < 1e-6 && Math.abs(r2.x[1] - 1) < 1e-6, `got ${Array.from(r2.x)}`);
  t.true(r2.iterations < 100, `${r2.iterations} iterations`);
  const r10 = lbfgs(rosen, new Float64Array(10), { gradTol: 1e-9 });
  t.true(Array.from(r10.x).every((v) => Math.abs(v - 1) < 1e-5), `got ${Array.from(r10.x)}`);
  // f = Σ 10^(i/2)·(x_i − i)²: condition number 10^4.5.
  const quad = (x: Float64Array, g: Float64Array) => {
    let f = 0;
    for (let i = 0; i < x.length; i++) {
      const s = 10 ** (i / 2);
      f += s * (x[i] - i) ** 2;
      g[i] = 2 * s * (x[i] - i);
    }
    return f;
  };
  const rq = lbfgs(quad, new Float64Array(10), { gradTol: 1e-10, funcTol: 0 });
  t.is(rq.reason, 'gradient');
  t.true(Array.from(rq.x).every((v, i) => Math.abs(v - i) < 1e-8), `got ${Array.from(rq.x)}`);
});

test('the logistic objective has the gradient that finite differences give', (t) => {
  const { x, y } = blobs(30, 5, 3, 2, 3);
  const f = logisticObjective(x, y, 3, 0.05);
  const p = seededNormal(3 * 5 + 3, 9, 0.5);
  const g = new Float64Array(p.length);
  const f0 = f(p, g);
  const scratch = new Float64Array(p.length);
  // Uniform class probabilities at zero weights: loss = log 3.
  t.true(Math.abs(f(new Float64Array(p.length), scratch) - Math.log(3)) < 1e-12);
  for (let i = 0; i < p.length; i++) {
    const h = 1e-6;
    const up = Float64Array.from(p);
    up[i] += h;
    const down = Float64Array.from(p);
    down[i] -= h;
    const fd = (f(up, scratch) - f(down, scratch)) / (2 * h);
    t.true(Math.abs(fd - g[i]) < 1e-7 * Math.max(1, Math.abs(fd)), `coordinate ${i}: analytic ${g[i]}, numeric ${fd}`);
  }
  t.true(Number.isFinite(f0));
});

test('separable features: the probe reaches 100% test accuracy', (t) => {
  const train = blobs(300, 16, 4, 6, 21);
  const testSet = blobs(200, 16, 4, 6, 22);
  const r = linearProbe(train.x, train.y, testSet.x, testSet.y);
  t.is(r.acc1, 1);
  t.is(r.mean_per_class_recall, 1);
  t.is(r.num_train, 300);
  t.true(r.num_val >= 55 && r.num_val <= 65, `validation split of ${r.num_val} (20% of 300, stratified)`);
});

/**
 * An independent reference fit: plain gradient descent in float64, with its own loss and gradient,
 * step 1/L (L bounds the Hessian: ½·max‖[x,1]‖² + λ), run until the gradient vanishes.
 */
function referenceFit(x: FeatureMatrix, y: Int32Array, C: number, lambda: number) {
  const { rows: n, cols: d } = x;
  const X = Float64Array.from(x.data);
  const W = new Float64Array(C * d);
  const b = new Float64Array(C);
  let maxSq = 0;
  for (let i = 0; i < n; i++) {
    let s = 1;
    for (let k = 0; k < d; k++) s += X[i * d + k] ** 2;
    maxSq = Math.max(maxSq, s);
  }
  const step = 1 / (0.5 * maxSq + lambda);
  let loss = 0;
  let gnorm = Infinity;
  for (let it = 0; it < 40000 && gnorm > 1e-10; it++) {
    const gW = new Float64Array(C * d);
    const gb = new Float64Array(C);
    loss = 0;
    for (let i = 0; i < n; i++) {
      const z = Array.from({ length: C }, (_, c) => {
        let s = b[c];
        for (let k = 0; k < d; k++) s += W[c * d + k] * X[i * d + k];
        return s;
      });
      const m = Math.max(...z);
      const lse = m + Math.log(z.reduce((s, v) => s + Math.exp(v - m), 0));
      loss += (lse - z[y[i]]) / n;
      for (let c = 0; c < C; c++) {
        const r = (Math.exp(z[c] - lse) - (c === y[i] ? 1 : 0)) / n;
        gb[c] += r;
        for (let k = 0; k < d; k++) gW[c * d + k] += r * X[i * d + k];
      }
    }
    let pen = 0;
    gnorm = 0;
    for (let k = 0; k < C * d; k++) {
      pen += W[k] ** 2;
      gW[k] += lambda * W[k];
      gnorm = Math.max(gnorm, Math.abs(gW[k]));
    }
    for (let c = 0; c < C; c++) gnorm = Math.max(gnorm, Math.abs(gb[c]));
    loss += 0.5 * lambda * pen;
    for (let k = 0; k < C * d; k++) W[k] -= step * gW[k];
    for (let c = 0; c < C; c++) b[c] -= step * gb[c];
  }
  return { model: { numClasses: C, dim: d, weights: W, bias: b }, loss, gnorm };
}

test('overlapping features: L-BFGS matches a gradient-descent reference fit (loss and accuracy)', (t) => {
  const C = 3;
  const train = blobs(240, 8, C, 0.6, 31);
  const testSet = blobs(400, 8, C, 0.6, 32);
  const xTrain = l2Normalize(train.x);
  const xTest = l2Normalize(testSet.x);
  const acc = (m: Parameters<typeof logisticLogits>[0]) => classificationMetrics(logisticLogits(m, xTest), testSet.y, xTest.rows, C).acc1;
  for (const lambda of [1e-2, 1e-3]) {
    const ref = referenceFit(xTrain, train.y, C, lambda);
    t.true(ref.gnorm < 1e-8, `reference converged (gradient ${ref.gnorm})`);
    const fit = fitLogistic(xTrain, train.y, C, lambda, { gradTol: 1e-9 });
    t.true(fit.optimizer.converged, fit.optimizer.reason);
    t.true(Math.abs(fit.loss - ref.loss) <= 1e-8 * ref.loss, `λ=${lambda}: loss ${fit.loss} vs reference ${ref.loss}`);
    const a = acc(fit.model);
    const aRef = acc(ref.model);
    t.true(Math.abs(a - aRef) <= 0.01, `λ=${lambda}: accuracy ${a} vs reference ${aRef}`);
    t.true(a > 0.45 && a < 0.9, `a genuinely overlapping case (accuracy ${a})`);
    t.log(`λ=${lambda}: L-BFGS loss ${fit.loss} (${fit.optimizer.iterations} iterations), reference ${ref.loss}; test accuracy ${a} vs ${aRef}`);
  }
  // The whole probe: its test accuracy matches the reference fit at the λ it chose, on the same data.
  const probe = linearProbe(train.x, train.y, testSet.x, testSet.y, { gradTol: 1e-8 });
  const ref = referenceFit(xTrain, train.y, C, probe.lambda);
  t.log(`probe: λ=${probe.lambda}, accuracy ${probe.acc1}, reference ${acc(ref.model)}`);
  t.true(Math.abs(probe.acc1 - acc(ref.model)) <= 0.01, `probe ${probe.acc1} vs reference ${acc(ref.model)} at λ=${probe.lambda}`);
  t.true(Math.abs(probe.train_loss - ref.loss) <= 1e-6 * ref.loss, `probe loss ${probe.train_loss} vs reference ${ref.loss}`);
});

test('λ is chosen by validation accuracy over the grid, refined by half-decades', (t) => {
  const train = blobs(200, 8, 3, 1.5, 41);
  const testSet = blobs(100, 8, 3, 1.5, 42);
  const r = linearProbe(train.x, train.y, testSet.x, testSet.y);
  const best = Math.max(...r.validation.map((v) => v.val_acc1));
  const winners = r.validation.filter((v) => v.val_acc1 === best).map((v) => v.lambda);
  t.is(r.lambda, Math.max(...winners), 'the largest λ among the best');
  t.true(r.validation.length >= 3 && r.validation.length <= 9, `${r.validation.length} λ tried`);
  // With patience, the grid stops two values after the last improvement; without, it runs to the end.
  const all = linearProbe(train.x, train.y, testSet.x, testSet.y, { patience: Infinity, refine: false });
  t.deepEqual(all.validation.map((v) => v.lambda), [1, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6]);
  const grid = all.validation;
  let bestAt = 0;
  grid.forEach((v, i) => {
    if (v.val_acc1 > grid[bestAt].val_acc1) bestAt = i;
  });
  const early = linearProbe(train.x, train.y, testSet.x, testSet.y, { refine: false });
  t.true(early.validation.length >= Math.min(7, bestAt + 1), 'never stops before the best grid value');
  t.is(early.lambda, all.lambda, 'the same choice as the full grid here');
  const only = linearProbe(train.x, train.y, testSet.x, testSet.y, { lambdas: [0.5] });
  t.deepEqual(only.validation.map((v) => v.lambda), [0.5]);
  t.is(only.lambda, 0.5);
});

test('k-shot: k per class, several seeds, mean and sample std; reproducible', (t) => {
  const train = blobs(400, 8, 4, 2, 51);
  const testSet = blobs(200, 8, 4, 2, 52);
  const { fit, val } = stratifiedSplit(train.y, 4, 0.2, 3);
  t.is(fit.length + val.length, 400);
  t.is(new Set([...fit, ...val]).size, 400, 'disjoint and complete');
  const shots = sampleShots(train.y, fit, 4, 4, 3);
  t.is(shots.length, 16);
  t.true(shots.every((i) => fit.includes(i)), 'shots come from outside the validation split');
  t.deepEqual([0, 1, 2, 3].map((c) => shots.filter((i) => train.y[i] === c).length), [4, 4, 4, 4]);

  const r = fewShotLinearProbe(train.x, train.y, testSet.x, testSet.y, 4, 3, { lambdas: [1e-1, 1e-2, 1e-3] });
  t.is(r.runs.length, 3);
  t.deepEqual(r.runs.map((x) => x.seed), [0, 1, 2]);
  const accs = r.runs.map((x) => x.acc1);
  const m = accs.reduce((a, b) => a + b) / 3;
  t.true(Math.abs(r.acc1_mean - m) < 1e-12);
  t.true(Math.abs(r.acc1_std - Math.sqrt(accs.reduce((s, a) => s + (a - m) ** 2, 0) / 2)) < 1e-12);
  t.true(r.acc1_mean > 0.5, `4-shot accuracy ${r.acc1_mean}`);
  t.deepEqual(fewShotLinearProbe(train.x, train.y, testSet.x, testSet.y, 4, 3, { lambdas: [1e-1, 1e-2, 1e-3] }), r, 'same seeds, same result');
  const one = fewShotLinearProbe(train.x, train.y, testSet.x, testSet.y, 1, 1, { lambdas: [1e-2] });
  t.is(one.acc1_std, 0);
});

test('bad input gets clear errors', (t) => {
  const { x, y } = blobs(50, 4, 3, 3, 61);
  const tx = blobs(20, 4, 3, 3, 62);
  t.throws(() => linearProbe(x, y.subarray(0, 49), tx.x, tx.y), { message: /49 train labels for 50 train feature rows/ });
  t.throws(() => linearProbe(x, y, tx.x, tx.y.subarray(1)), { message: /19 test labels for 20 test feature rows/ });
  const nan = Float32Array.from(x.data);
  nan[7] = NaN;
  t.throws(() => linearProbe(featureMatrix(nan, 50, 4), y, tx.x, tx.y), { message: /train features: value NaN at row 1, column 3/ });
  const badTest = Int32Array.from(tx.y);
  badTest[5] = 7;
  t.throws(() => linearProbe(x, y, tx.x, badTest), { message: /test labels.*unknown class id 7 at index 5 \(class ids run 0\.\.2\)/ });
  const negative = Int32Array.from(y);
  negative[2] = -1;
  t.throws(() => linearProbe(x, negative, tx.x, tx.y), { message: /train labels: unknown class id -1 at index 2/ });
  t.throws(() => linearProbe(x, new Int32Array(50), tx.x, new Int32Array(20)), { message: /need at least 2 classes, got 1/ });
  t.throws(() => linearProbe(x, y, blobs(5, 3, 3, 3, 1).x, new Int32Array(5)), { message: /dimension 4 but test features have 3/ });
  t.throws(() => fewShotLinearProbe(x, y, tx.x, tx.y, 40, 1), { message: /class \d has \d+ training examples outside the validation split, fewer than the 40 shots asked for/ });
  t.throws(() => fewShotLinearProbe(x, y, tx.x, tx.y, 0, 1), { message: /shots must be a positive integer, got 0/ });
  t.throws(() => fewShotLinearProbe(x, y, tx.x, tx.y, 2, 0), { message: /seeds must be a positive integer, got 0/ });
  t.throws(() => linearProbe(x, y, tx.x, tx.y, { lambdas: [-1] }), { message: /λ values must be finite and ≥ 0, got -1/ });
});
