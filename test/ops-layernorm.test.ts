import test from 'ava';

import { native } from '../lib/native.js';
import { Tensor } from '../lib/tensor.js';
import * as ops from '../lib/ops.js';
import { dot, finiteDiff, lossWeights, randTensor, relErr } from './_helpers/numeric.js';

const f32 = (t: Tensor) => t.view() as Float32Array;

/** float64 LayerNorm of rows × w values. */
function layernormRef(x: ArrayLike<number>, g: ArrayLike<number>, b: ArrayLike<number>, rows: number, w: number, eps = 1e-5) {
  const out = new Float64Array(rows * w);
  const mean = new Float64Array(rows);
  const rstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let j = 0; j < w; j++) s += x[r * w + j];
    const mu = s / w;
    let v = 0;
    for (let j = 0; j < w; j++) v += (x[r * w + j] - mu) ** 2;
    const rs = 1 / Math.sqrt(v / w + eps);
    mean[r] = mu;
    rstd[r] = rs;
    for (let j = 0; j < w; j++) out[r * w + j] = (x[r * w + j] - mu) * rs * g[j] + b[j];
  }
  return { out, mean, rstd };
}

test('layernormForward matches a float64 reference, leading dims as rows', (t) => {
  const [B, S, W] = [3, 5, 48];
  const x = randTensor([B, S, W], 1, 2);
  // An offset mean checks that the variance is not computed as E[x²] − E[x]².
  for (let i = 0; i < x.numel; i++) f32(x)[i] += 30;
  const g = randTensor([W], 2);
  const b = randTensor([W], 3);
  const out = Tensor.empty([B, S, W]);
  const mean = Tensor.empty([B, S]);
  const rstd = Tensor.empty([B, S]);
  ops.layernormForward(x, g, b, out, mean, rstd);
  const ref = layernormRef(f32(x), f32(g), f32(b), B * S, W);
  t.true(relErr(f32(out), ref.out) < 1e-5, `out relErr ${relErr(f32(out), ref.out)}`);
  t.true(relErr(f32(mean), ref.mean) < 1e-6);
  t.true(relErr(f32(rstd), ref.rstd) < 1e-5);
});

test('layernormBackward matches finite differences for x, gamma and beta', (t) => {
  const [R, W] = [6, 20];
  const x = randTensor([R, W], 11);
  const g = randTensor([W], 12);
  const b = randTensor([W], 13);
  const w = lossWeights(R * W, 14);
  // L = Σ w·layernorm(x), evaluated in float64 so finite differences are clean.
  const loss = () => dot(w, layernormRef(f32(x), f32(g), f32(b), R, W).out);
  const out = Tensor.empty([R, W]);
  const mean = Tensor.empty([R]);
  const rstd = Tensor.empty([R]);
  ops.layernormForward(x, g, b, out, mean, rstd);
  const dout = Tensor.from(w, [R, W]);
  const dx = Tensor.empty([R, W]);
  const dg = Tensor.full([W], 123);
  const db = Tensor.full([W], 123);
  ops.layernormBackward(dout, x, g, mean, rstd, dx, dg, db);
  for (const [name, p, grad] of [['x', x, dx], ['gamma', g, dg], ['beta', b, db]] as const) {
    const fd = finiteDiff(loss, p, 40, 1e-3);
    const got = fd.idx.map((i) => f32(grad)[i]);
    t.log(name, relErr(got, fd.grad));
    t.true(relErr(got, fd.grad) < 1e-3, `${name}: relErr ${relErr(got, fd.grad)}`);
  }
});

/** float64 LayerNorm backward (the analytic formula), for sizes too big for finite differences. */
function layernormBackwardRef(dout: ArrayLike<number>, x: ArrayLike<number>, g: ArrayLike<number>, rows: number, w: number, eps = 1e-5) {
  const { mean, rstd } = layernormRef(x, g, new Float64Array(w), rows, w, eps);
  const dx = new Float64Array(rows * w);
  const dg = new Float64Array(w);
  const db = new Float64Array(w);
  for (let r = 0; r < rows; r++) {
    let a = 0;
    let b = 0;
    for (let j = 0; j < w; j++) {
      const xh = (x[r * w + j] - mean[r]) * rstd[r];
      a += dout[r * w + j] * g[j];
      b += dout[r * w + j] * g[j] * xh;
      dg[j] += dout[r * w + j] * xh;
      db[j] += dout[r * w + j];
    }
    for (let j = 0; j < w; j++) {
      const xh = (x[r * w + j] - mean[r]) * rstd[r];
      dx[r * w + j] = rstd[r] * (dout[r * w + j] * g[j] - a / w - (xh * b) / w);
    }
  }
  return { dx, dg, db };
}

test('layernorm at a size split across threads matches float64 forward and backward', (t) => {
  // 400 rows × 200: several row chunks and several column blocks for dgamma/dbeta.
  const [R, W] = [400, 200];
  const x = randTensor([R, W], 51, 3);
  const g = randTensor([W], 52);
  const b = randTensor([W], 53);
  const out = Tensor.empty([R, W]);
  const mean = Tensor.empty([R]);
  const rstd = Tensor.empty([R]);
  ops.layernormForward(x, g, b, out, mean, rstd);
  t.true(relErr(f32(out), layernormRef(f32(x), f32(g), f32(b), R, W).out) < 1e-5);
  const dout = randTensor([R, W], 54);
  const dx = Tensor.empty([R, W]);
  const dg = Tensor.empty([W]);
  const db = Tensor.empty([W]);
  ops.layernormBackward(dout, x, g, mean, rstd, dx, dg, db);
  const ref = layernormBackwardRef(f32(dout), f32(x), f32(g), R, W);
  t.true(relErr(f32(dx), ref.dx) < 1e-5, `dx relErr ${relErr(f32(dx), ref.dx)}`);
  t.true(relErr(f32(dg), ref.dg) < 1e-5, `dgamma relErr ${relErr(f32(dg), ref.dg)}`);
  t.true(relErr(f32(db), ref.db) < 1e-6, `dbeta relErr ${relErr(f32(db), ref.db)}`);
});

test('layernormBackward at the model width (64) over many rows: rows split between threads, in place too', (t) => {
  const [R, W] = [1500, 64];
  const x = randTensor([R, W], 61, 3);
  const g = randTensor([W], 62);
  const b = randTensor([W], 63);
  const out = Tensor.empty([R, W]);
  const mean = Tensor.empty([R]);
  const rstd = Tensor.empty([R]);
  ops.layernormForward(x, g, b, out, mean, rstd);
  const dout = randTensor([R, W], 64);
  const dx = Tensor.empty([R, W]);
  const dg = Tensor.full([W], 5);
  const db = Tensor.full([W], 5);
  ops.layernormBackward(dout, x, g, mean, rstd, dx, dg, db);
  const ref = layernormBackwardRef(f32(dout), f32(x), f32(g), R, W);
  t.true(relErr(f32(dx), ref.dx) < 1e-5, `dx relErr ${relErr(f32(dx), ref.dx)}`);
  t.true(relErr(f32(dg), ref.dg) < 1e-5, `dgamma relErr ${relErr(f32(dg), ref.dg)}`);
  t.true(relErr(f32(db), ref.db) < 1e-6, `dbeta relErr ${relErr(f32(db), ref.db)}`);
  const inPlace = dout.clone();
  ops.layernormBackward(inPlace, x, g, mean, rstd, inPlace, null, null);
  t.deepEqual(Array.from(f32(inPlace)), Array.from(f32(dx)));
});

test('layernormBackward with dadd and accumulate: a residual sum\'s gradient and the parameters\' in one pass, in place too', (t) => {
  // Width 100: 6 full 16-lane steps and a tail; 700 rows: rows split between threads, 32-row blocks.
  const [R, W] = [700, 100];
  const x = randTensor([R, W], 71, 3);
  const g = randTensor([W], 72);
  const b = randTensor([W], 73);
  const out = Tensor.empty([R, W]);
  const mean = Tensor.empty([R]);
  const rstd = Tensor.empty([R]);
  ops.layernormForward(x, g, b, out, mean, rstd);
  const dout = randTensor([R, W], 74);
  const dadd = randTensor([R, W], 75);
  const ref = layernormBackwardRef(f32(dout), f32(x), f32(g), R, W);
  const refDx = ref.dx.map((v, i) => v + f32(dadd)[i]);
  const dx = Tensor.empty([R, W]);
  const dg = Tensor.full([W], 0.5);
  const db = Tensor.full([W], -0.25);
  ops.layernormBackward(dout, x, g, mean, rstd, dx, dg, db, { dadd, accumulate: true });
  t.true(relErr(f32(dx), refDx) < 1e-5, `dx relErr ${relErr(f32(dx), refDx)}`);
  t.true(relErr(f32(dg), ref.dg.map((v) => v + 0.5)) < 1e-5, `dgamma relErr ${relErr(f32(dg), ref.dg.map((v) => v + 0.5))}`);
  t.true(relErr(f32(db), ref.db.map((v) => v - 0.25)) < 1e-6, `dbeta relErr ${relErr(f32(db), ref.db.map((v) => v - 0.25))}`);
  // Against the unfused ops: backward, then the add — equal within one fp32 rounding of the sum.
  const plain = Tensor.empty([R, W]);
  ops.layernormBackward(dout, x, g, mean, rstd, plain, null, null);
  ops.add(plain, dadd, plain);
  const maxDiff = f32(plain).reduce((m, v, i) => Math.max(m, Math.abs(v - f32(dx)[i]) / (Math.abs(v) + 1e-6)), 0);
  t.true(maxDiff < 1e-6, `fused vs unfused: max relative difference ${maxDiff}`);
  // dadd may be dx itself (accumulate the layernorm gradient into a residual gradient) or dout.
  const intoDadd = dadd.clone();
  ops.layernormBackward(dout, x, g, mean, rstd, intoDadd, null, null, { dadd: intoDadd });
  t.deepEqual(Array.from(f32(intoDadd)), Array.from(f32(dx)));
  const same = dout.clone();
  const dxSame = Tensor.empty([R, W]);
  ops.layernormBackward(same, x, g, mean, rstd, dxSame, null, null, { dadd: same });
  const refSame = ref.dx.map((v, i) => v + f32(dout)[i]);
  t.true(relErr(f32(dxSame), refSame) < 1e-5);
  t.throws(() => ops.layernormBackward(dout, x, g, mean, rstd, dx, null, null, { dadd: Tensor.zeros([R, W - 1]) }), {
    message: /layernormBackward: dadd and x must have the same shape/,
  });
});

test('layernormBackward: dx may be dout itself, dgamma/dbeta may be skipped, and they overwrite', (t) => {
  const [R, W] = [4, 16];
  const x = randTensor([R, W], 21);
  const g = randTensor([W], 22);
  const b = randTensor([W], 23);
  const out = Tensor.empty([R, W]);
  const mean = Tensor.empty([R]);
  const rstd = Tensor.empty([R]);
  ops.layernormForward(x, g, b, out, mean, rstd);
  const dout = randTensor([R, W], 24);
  const dx = Tensor.empty([R, W]);
  const dg1 = Tensor.zeros([W]);
  ops.layernormBackward(dout, x, g, mean, rstd, dx, dg1, null);
  const dg2 = Tensor.full([W], 7);
  const inPlace = dout.clone();
  ops.layernormBackward(inPlace, x, g, mean, rstd, inPlace, dg2, null);
  t.deepEqual(Array.from(f32(inPlace)), Array.from(f32(dx)));
  t.deepEqual(Array.from(f32(dg2)), Array.from(f32(dg1)), 'dgamma is overwritten, not accumulated');
});

test('residualLayernormForward: sum = x + residual, then layernorm, in place on the residual stream', (t) => {
  const [R, W] = [5, 32];
  const x = randTensor([R, W], 31);
  const res = randTensor([R, W], 32);
  const g = randTensor([W], 33);
  const b = randTensor([W], 34);
  const sum = Array.from(f32(x), (v, i) => v + f32(res)[i]);
  const ref = layernormRef(sum, f32(g), f32(b), R, W);
  const out = Tensor.empty([R, W]);
  const mean = Tensor.empty([R]);
  const rstd = Tensor.empty([R]);
  ops.residualLayernormForward(x, res, res, g, b, out, mean, rstd);
  t.true(relErr(f32(res), sum) < 1e-7, 'residual now holds the sum');
  t.true(relErr(f32(out), ref.out) < 1e-5);
  t.true(relErr(f32(rstd), ref.rstd) < 1e-5);
});

test('layernorm errors name the op and the argument', (t) => {
  const x = Tensor.zeros([2, 8]);
  const mean = Tensor.zeros([2]);
  const rstd = Tensor.zeros([2]);
  const out = Tensor.zeros([2, 8]);
  t.throws(() => ops.layernormForward(x, Tensor.zeros([7]), Tensor.zeros([8]), out, mean, rstd), {
    message: /layernormForward: gamma must have shape \[8\], got f32\[7\]/,
  });
  t.throws(() => ops.layernormForward(x, Tensor.zeros([8]), Tensor.zeros([8]), out, Tensor.zeros([3]), rstd), {
    message: /layernormForward: mean must hold one value per row \(2\)/,
  });
  t.throws(() => ops.layernormForward(Tensor.zeros([2, 8], 'bf16'), Tensor.zeros([8]), Tensor.zeros([8]), out, mean, rstd), {
    message: /layernormForward: x must be f32, got bf16/,
  });
  t.throws(() => ops.layernormBackward(x, x, Tensor.zeros([8]), mean, rstd, Tensor.zeros([2, 7]), null, null), {
    message: /layernormBackward: dx and x must have the same shape/,
  });
  // An output sharing memory with gamma or beta, or mean with rstd: refused before anything is written.
  const buf = Tensor.zeros([3 * 8]);
  const outOverGamma = buf.slice(0, [2, 8]), gamma = buf.slice(12, [8]);
  t.throws(() => ops.layernormForward(x, gamma, Tensor.zeros([8]), outOverGamma, mean, rstd), { message: 'layernormForward: output out overlaps input gamma; pass a separate tensor' });
  t.throws(() => ops.layernormForward(x, Tensor.zeros([8]), buf.slice(8, [8]), outOverGamma, mean, rstd), { message: 'layernormForward: output out overlaps input beta; pass a separate tensor' });
  const stats = Tensor.zeros([3]);
  t.throws(() => ops.layernormForward(x, Tensor.zeros([8]), Tensor.zeros([8]), out, stats.slice(0, [2]), stats.slice(1, [2])), { message: 'layernormForward: outputs mean and rstd overlap; pass separate tensors' });
  t.throws(() => ops.residualLayernormForward(x, Tensor.zeros([2, 8]), outOverGamma, gamma, Tensor.zeros([8]), out, mean, rstd), {
    message: 'residualLayernormForward: output sumOut overlaps input gamma; pass a separate tensor',
  });
  t.true(Array.from(buf.view() as Float32Array).every((v) => v === 0));
});

test('layernorm with bf16 emulation stores bf16-representable outputs and fp32 statistics', (t) => {
  const [R, W] = [4, 24];
  const x = randTensor([R, W], 41);
  const g = randTensor([W], 42);
  const b = randTensor([W], 43);
  const out = Tensor.empty([R, W]);
  const mean = Tensor.empty([R]);
  const rstd = Tensor.empty([R]);
  native.setBf16Emulation(true);
  try {
    ops.layernormForward(x, g, b, out, mean, rstd);
  } finally {
    native.setBf16Emulation(false);
  }
  const o = f32(out);
  t.deepEqual(Array.from(o), Array.from(out.clone('bf16').toFloat32Array()), 'every output is a bf16 value');
  const ref = layernormRef(f32(x), f32(g), f32(b), R, W);
  const e = relErr(o, ref.out);
  t.true(e < 2 ** -8 && e > 1e-6, `bf16 rounding error ${e}`);
  t.true(relErr(f32(rstd), ref.rstd) < 1e-5, 'rstd stays fp32');
});
