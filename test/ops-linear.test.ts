import test, { type ExecutionContext } from 'ava';

import { native } from '../lib/native.js';
import * as ops from '../lib/ops.js';
import { Tensor } from '../lib/tensor.js';
import { dot, finiteDiff, lossWeights, randTensor, relErr } from './_helpers/numeric.js';

const f32 = (t: Tensor): Float32Array => t.view() as Float32Array;
const nans = (shape: number[]): Tensor => Tensor.from(new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(NaN), shape);

// Float64 references: x [M, K], w [N, K], b [N].
function refForward(x: Float32Array, w: Float32Array, b: Float32Array | null, M: number, K: number, N: number): Float64Array {
  const y = new Float64Array(M * N);
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      let s = b ? b[n] : 0;
      for (let k = 0; k < K; k++) s += x[m * K + k] * w[n * K + k];
      y[m * N + n] = s;
    }
  return y;
}

function refBackward(x: Float32Array, w: Float32Array, dy: Float32Array, M: number, K: number, N: number) {
  const dx = new Float64Array(M * K);
  const dw = new Float64Array(N * K);
  const db = new Float64Array(N);
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      const g = dy[m * N + n];
      db[n] += g;
      for (let k = 0; k < K; k++) {
        dx[m * K + k] += g * w[n * K + k];
        dw[n * K + k] += g * x[m * K + k];
      }
    }
  return { dx, dw, db };
}

function isBf16(a: Float32Array): boolean {
  const bits = new Uint32Array(a.buffer, a.byteOffset, a.length);
  return bits.every((u) => (u & 0xffff) === 0);
}

// Central differences of L = Σ lw·y (in float64) against the analytic gradient of `param`.
function checkFiniteDiff(t: ExecutionContext, what: string, param: Tensor, analytic: Float32Array, forward: () => Float32Array, lw: Float32Array): void {
  const { idx, grad } = finiteDiff(() => dot(forward(), lw), param, 24, 1e-2);
  const err = relErr(idx.map((i) => analytic[i]), grad);
  t.log(`${what}: finite-difference relErr ${err.toExponential(2)}`);
  t.true(err < 1e-2, `${what}: finite-difference relErr ${err}`);
}

const cases: { name: string; lead: number[]; K: number; N: number; bias: boolean }[] = [
  { name: '2-D with bias', lead: [13], K: 32, N: 24, bias: true },
  { name: '2-D without bias', lead: [9], K: 17, N: 5, bias: false },
  { name: '3-D with bias', lead: [2, 7], K: 40, N: 33, bias: true },
  { name: '3-D without bias', lead: [3, 5], K: 8, N: 64, bias: false },
  { name: '1-D (one vector) with bias', lead: [], K: 12, N: 7, bias: true },
  // Model-sized: the bias in the GEMM's epilogue over full and edge tiles (70 = 2·32 + 6), the
  // bias gradient's rows split between threads, dW's transposed operand read in place.
  { name: 'many rows, bias in the GEMM epilogue, threaded bias gradient', lead: [1000], K: 64, N: 70, bias: true },
  // dW with its rows split between threads (each a whole partial dW, summed), in both layouts:
  // the case above is the transposed one (K < N), this one K ≥ N.
  { name: 'many rows, K ≥ N: weight gradient split over rows', lead: [1200], K: 80, N: 48, bias: true },
];

for (const [ci, c] of cases.entries()) {
  test(`linear ${c.name}: forward and backward match float64 and finite differences`, (t) => {
    const M = c.lead.reduce((a, b) => a * b, 1);
    const x = randTensor([...c.lead, c.K], 100 + ci);
    const w = randTensor([c.N, c.K], 200 + ci, 0.2);
    const b = c.bias ? randTensor([c.N], 300 + ci) : null;
    const y = Tensor.empty([...c.lead, c.N]);
    ops.linearForward(x, w, b, y);
    const eY = relErr(f32(y), refForward(f32(x), f32(w), b && f32(b), M, c.K, c.N));
    t.log(`y relErr vs float64 ${eY.toExponential(2)}`);
    t.true(eY <= 1e-5, `y relErr ${eY}`);

    const lw = lossWeights(M * c.N, 400 + ci);
    const dy = Tensor.from(lw, [...c.lead, c.N]);
    // Outputs start as NaN: overwrite must not read them.
    const dx = nans([...c.lead, c.K]);
    const dw = nans([c.N, c.K]);
    const db = c.bias ? nans([c.N]) : null;
    ops.linearBackward(x, w, dy, { dx, dw, db });
    const ref = refBackward(f32(x), f32(w), lw, M, c.K, c.N);
    t.log(`relErr vs float64: dx ${relErr(f32(dx), ref.dx).toExponential(2)}, dw ${relErr(f32(dw), ref.dw).toExponential(2)}`);
    t.true(relErr(f32(dx), ref.dx) <= 1e-5, `dx ${relErr(f32(dx), ref.dx)}`);
    t.true(relErr(f32(dw), ref.dw) <= 1e-5, `dw ${relErr(f32(dw), ref.dw)}`);
    if (db) t.true(relErr(f32(db), ref.db) <= 1e-5, `db ${relErr(f32(db), ref.db)}`);

    const forward = (): Float32Array => {
      ops.linearForward(x, w, b, y);
      return f32(y);
    };
    checkFiniteDiff(t, 'dx', x, f32(dx), forward, lw);
    checkFiniteDiff(t, 'dw', w, f32(dw), forward, lw);
    if (b && db) checkFiniteDiff(t, 'db', b, f32(db), forward, lw);
  });
}

test('linearBackward with accumulate adds into dw and db and still overwrites dx', (t) => {
  const x = randTensor([6, 10], 1);
  const w = randTensor([4, 10], 2);
  const dy = randTensor([6, 4], 3);
  const dx = Tensor.zeros([6, 10]);
  const dw = Tensor.zeros([4, 10]);
  const db = Tensor.zeros([4]);
  ops.linearBackward(x, w, dy, { dx, dw, db });
  const [dx1, dw1, db1] = [dx, dw, db].map((g) => new Float32Array(f32(g)));
  ops.linearBackward(x, w, dy, { dx, dw, db, accumulate: true });
  t.true(relErr(f32(dw), dw1.map((v) => 2 * v)) <= 1e-6);
  t.true(relErr(f32(db), db1.map((v) => 2 * v)) <= 1e-6);
  t.deepEqual(f32(dx), dx1);
  // Only the gradients asked for are computed.
  const dwOnly = Tensor.zeros([4, 10]);
  ops.linearBackward(x, w, dy, { dw: dwOnly });
  t.deepEqual(f32(dwOnly), dw1);
});

test('linearBackward with accumulate over many rows: dW split over threads and db summed with it add onto the gradients', (t) => {
  // 1200 rows: the weight gradient's rows are split between threads, and the bias gradient is
  // summed in the same parallel region; both must add onto what the gradients held.
  for (const [K, N] of [[80, 48], [64, 70]]) {
    const M = 1200;
    const x = randTensor([M, K], 301), w = randTensor([N, K], 302, 0.2), dy = randTensor([M, N], 303);
    const dw = Tensor.full([N, K], 0.5), db = Tensor.full([N], -2);
    ops.linearBackward(x, w, dy, { dw, db, accumulate: true });
    const ref = refBackward(f32(x), f32(w), f32(dy), M, K, N);
    t.true(relErr(f32(dw), ref.dw.map((v) => v + 0.5)) <= 1e-5, `dw ${K}x${N}`);
    t.true(relErr(f32(db), ref.db.map((v) => v - 2)) <= 1e-5, `db ${K}x${N}`);
    // The same db as the bias gradient alone (no dW asked for), bit for bit.
    const dbAlone = Tensor.full([N], -2);
    ops.linearBackward(x, w, dy, { db: dbAlone, accumulate: true });
    t.deepEqual(Array.from(f32(db)), Array.from(f32(dbAlone)));
  }
});

test('linearBackward db: each column adds its rows one after another, each thread its share, bit for bit at every width', (t) => {
  // The column sums keep up to 128 columns in registers across the rows (native/cpu/column_sums.cpp):
  // widths below, at and past a vector (16), past a pass of eight vectors (128), and a tail. The
  // order is fixed: rows split into the threads' shares as parallel_for splits them (or the weight
  // gradient's region the same way), each share summed from zero in row order, the shares then added
  // in thread order onto db.
  const nt = native.numThreads();
  for (const N of [1, 15, 16, 17, 48, 130, 200, 300]) {
    const M = 700;
    const dy = randTensor([M, N], 400 + N);
    const d = f32(dy);
    const threads = Math.min(nt, Math.max(1, Math.floor((M * N) / (1 << 15))));
    const want = new Float32Array(N).fill(0.25);
    for (let part = 0; part < threads; part++) {
      const m0 = Math.floor((M * part) / threads), m1 = Math.floor((M * (part + 1)) / threads);
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let m = m0; m < m1; m++) s = Math.fround(s + d[m * N + n]);
        want[n] = Math.fround(want[n] + s);
      }
    }
    const db = Tensor.full([N], 0.25);
    ops.linearBackward(randTensor([M, 8], 1), randTensor([N, 8], 2), dy, { db, accumulate: true });
    t.deepEqual(Array.from(f32(db)), Array.from(want), `N = ${N}`);
  }
});

test('linearBackward over a short batch (one parallel region for dW, db and dX): the same bits as the products apart', (t) => {
  // Under 512 rows with dW and dX both asked for, the threads share each product's output
  // (dW's longer side, dX's rows, db's columns) in one region (native/cpu/linear.cpp,
  // short_batch_products): every value must be the same sum, in the same order, as a GEMM over the
  // whole product gives it, and db as the rows added one after another, column by column.
  for (const [M, N, K] of [[128, 64, 256], [128, 256, 64], [128, 192, 64], [300, 96, 50], [500, 33, 700], [130, 70, 90]]) {
    for (const accumulate of [false, true]) {
      const x = randTensor([M, K], 501), w = randTensor([N, K], 502, 0.2), dy = randTensor([M, N], 503);
      const dx = nans([M, K]), dw = randTensor([N, K], 504), db = randTensor([N], 505);
      const dw0 = f32(dw).slice(), db0 = f32(db).slice();
      ops.linearBackward(x, w, dy, { dx, dw, db, accumulate });
      const wantDw = accumulate ? Tensor.from(dw0, [N, K]) : Tensor.zeros([N, K]);
      ops.matmul(dy, x, wantDw, { transA: true, beta: accumulate ? 1 : 0 });
      const wantDx = Tensor.empty([M, K]);
      ops.matmul(dy, w, wantDx);
      const d = f32(dy), wantDb = new Float32Array(N);
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let m = 0; m < M; m++) s = Math.fround(s + d[m * N + n]);
        wantDb[n] = accumulate ? Math.fround(db0[n] + s) : s;
      }
      const what = `${M}×${N}×${K}${accumulate ? ' accumulate' : ''}`;
      t.deepEqual(bits(dw), bits(wantDw), `dw ${what}`);
      t.deepEqual(bits(dx), bits(wantDx), `dx ${what}`);
      t.deepEqual(Array.from(f32(db)), Array.from(wantDb), `db ${what}`);
    }
  }
});

// A text tower's gradient is zero at every position after a caption's end, and a last block's
// everywhere but the pooled row: linearBackward multiplies only dY's other rows.
function dyWithZeroRows(M: number, N: number, seed: number, keep: (row: number) => boolean): Tensor {
  const dy = randTensor([M, N], seed);
  const d = f32(dy);
  for (let m = 0; m < M; m++) if (!keep(m)) for (let n = 0; n < N; n++) d[m * N + n] = (m + n) % 2 ? 0 : -0;
  return dy;
}

test('linearBackward over a dY whose rows are mostly zero: the float64 gradients, zero rows of dx, accumulate kept', (t) => {
  // Rows kept: the first (r % 32) ≤ 9 of every 32 (a caption of 10 tokens), and a last-block pattern (one row in 17).
  for (const [M, K, N, keep] of [
    [4096, 64, 96, (r: number) => r % 32 <= 9],  // 1,280 rows kept: their dW split between threads
    [2176, 48, 40, (r: number) => r % 17 === 0],
    [600, 80, 48, (r: number) => r % 3 !== 1],  // a third zero: still compacted
  ] as const) {
    const x = randTensor([M, K], 401), w = randTensor([N, K], 402, 0.2), dy = dyWithZeroRows(M, N, 403, keep);
    const ref = refBackward(f32(x), f32(w), f32(dy), M, K, N);
    for (const accumulate of [false, true]) {
      const dx = Tensor.full([M, K], 7), dw = Tensor.full([N, K], 0.5), db = Tensor.full([N], -2);
      ops.linearBackward(x, w, dy, { dx, dw, db, accumulate });
      const base = accumulate ? 1 : 0;
      t.true(relErr(f32(dw), ref.dw.map((v) => v + 0.5 * base)) <= 1e-5, `dw ${M}x${K}x${N} accumulate=${accumulate}`);
      t.true(relErr(f32(db), ref.db.map((v) => v - 2 * base)) <= 1e-5, `db ${M}x${K}x${N}`);
      t.true(relErr(f32(dx), ref.dx) <= 1e-5, `dx ${M}x${K}x${N}`);
      const dxv = f32(dx);
      let zeroRowsExact = true;
      for (let m = 0; m < M; m++) if (!keep(m)) for (let k = 0; k < K; k++) zeroRowsExact &&= dxv[m * K + k] === 0;
      t.true(zeroRowsExact, 'dx is exactly zero at the zero rows of dy (it held 7 before)');
    }
  }
});

test('linearBackward over an all-zero dY: dx zero, dw and db zero or kept as they were', (t) => {
  const M = 512, K = 64, N = 32;
  const x = randTensor([M, K], 411), w = randTensor([N, K], 412), dy = Tensor.zeros([M, N]);
  const dx = Tensor.full([M, K], 3), dw = Tensor.full([N, K], 0.25), db = Tensor.full([N], 1.5);
  ops.linearBackward(x, w, dy, { dx, dw, db, accumulate: true });
  t.true(f32(dx).every((v) => v === 0));
  t.true(f32(dw).every((v) => v === 0.25));
  t.true(f32(db).every((v) => v === 1.5));
  ops.linearBackward(x, w, dy, { dx, dw, db });
  t.true(f32(dw).every((v) => v === 0) && f32(db).every((v) => v === 0));
});

test('linearBackward over rows of dY that are zero: NaN in dY still reaches every gradient; NaN in X at a zero row does not', (t) => {
  const M = 640, K = 32, N = 24, keep = (r: number) => r % 4 === 0;
  const x = randTensor([M, K], 421), w = randTensor([N, K], 422), dy = dyWithZeroRows(M, N, 423, keep);
  // NaN in a kept row's place: the row is not zero, so it is multiplied.
  const dyNan = Tensor.from(f32(dy).slice(), [M, N]);
  f32(dyNan)[5 * N + 3] = NaN;  // row 5 was zero; now it holds a NaN
  const dx = Tensor.empty([M, K]), dw = Tensor.empty([N, K]), db = Tensor.empty([N]);
  ops.linearBackward(x, w, dyNan, { dx, dw, db });
  t.true(f32(dw).some((v) => Number.isNaN(v)) && Number.isNaN(f32(db)[3]) && f32(dx).slice(5 * K, 6 * K).every((v) => Number.isNaN(v)));
  // NaN in X at a row where dY is zero: that row adds nothing (0·x for it is not formed), so dW stays
  // finite, where a dense product (PyTorch's) would put 0·NaN = NaN into it.
  const xNan = Tensor.from(f32(x).slice(), [M, K]);
  f32(xNan)[1 * K + 7] = NaN;
  ops.linearBackward(xNan, w, dy, { dx, dw, db });
  if (process.env.CLIPSCALE_SKIP_ZERO_ROWS === '0') return t.true(f32(dw).some((v) => Number.isNaN(v)), 'every row multiplied: NaN reaches dW');
  const ref = refBackward(f32(x), f32(w), f32(dy), M, K, N);
  t.true(relErr(f32(dw), ref.dw) <= 1e-5);
});

test('linear shape, dtype and alias errors name the op and the argument', (t) => {
  const x = Tensor.zeros([4, 32]);
  t.throws(() => ops.linearForward(x, Tensor.zeros([16, 30]), null, Tensor.zeros([4, 16])), {
    message: 'linearForward: w must have shape [*, 32], got f32[16, 30] on cpu',
  });
  t.throws(() => ops.linearForward(x, Tensor.zeros([16, 32]), Tensor.zeros([15]), Tensor.zeros([4, 16])), {
    message: 'linearForward: b must have shape [16], got f32[15] on cpu',
  });
  t.throws(() => ops.linearForward(x, Tensor.zeros([16, 32]), null, Tensor.zeros([5, 16])), {
    message: 'linearForward: y must have shape [4, 16], got f32[5, 16] on cpu',
  });
  t.throws(() => ops.linearForward(Tensor.zeros([4, 32], 'bf16'), Tensor.zeros([16, 32]), null, Tensor.zeros([4, 16])), {
    message: 'linearForward: x must be f32, got bf16[4, 32] on cpu',
  });
  t.throws(() => ops.linearForward(x, Tensor.zeros([32, 32]), null, x), { message: /linearForward: output y overlaps input x/ });
  t.throws(() => ops.linearBackward(x, Tensor.zeros([16, 32]), Tensor.zeros([4, 15]), { dw: Tensor.zeros([16, 32]) }), {
    message: 'linearBackward: dy must have shape [4, 16], got f32[4, 15] on cpu',
  });
  t.throws(() => ops.linearBackward(x, Tensor.zeros([16, 32]), Tensor.zeros([4, 16]), { dw: Tensor.zeros([32, 16]) }), {
    message: /linearBackward: dw and w must have the same shape/,
  });
  // dW reads x while dX is written (its threads race over the rows): dx over x itself is refused.
  t.throws(() => ops.linearBackward(x, Tensor.zeros([32, 32]), Tensor.zeros([4, 32]), { dx: x, dw: Tensor.zeros([32, 32]) }), {
    message: 'linearBackward: output dx overlaps input x; pass a separate tensor',
  });
  // Gradients over the weight or over each other: each would be written while another is read or written.
  const w = Tensor.zeros([32, 32]), dy = Tensor.zeros([4, 32]);
  t.throws(() => ops.linearBackward(x, w, dy, { dw: w }), { message: 'linearBackward: output dw overlaps input w; pass a separate tensor' });
  const grads = Tensor.zeros([32 * 32 + 32]);
  const dw = grads.slice(0, [32, 32]);
  t.throws(() => ops.linearBackward(x, w, dy, { dw, db: grads.slice(32 * 32 - 1, [32]) }), { message: 'linearBackward: outputs dw and db overlap; pass separate tensors' });
  t.throws(() => ops.linearBackward(x, w, dy, { dx: Tensor.zeros([4, 32]), db: w.slice(0, [32]) }), { message: 'linearBackward: output db overlaps input w; pass a separate tensor' });
  const dxAndDb = Tensor.zeros([4 * 32 + 32]);
  t.throws(() => ops.linearBackward(x, w, dy, { dx: dxAndDb.slice(0, [4, 32]), db: dxAndDb.slice(4 * 32 - 8, [32]) }), { message: 'linearBackward: outputs dx and db overlap; pass separate tensors' });
  ops.linearBackward(x, w, dy, { dx: dxAndDb.slice(0, [4, 32]), dw, db: grads.slice(32 * 32, [32]) });  // side by side in one buffer: fine
});

test.serial('linear with bf16 emulation: bf16-representable outputs close to fp32', (t) => {
  const x = randTensor([2, 9, 48], 11);
  const w = randTensor([20, 48], 12, 0.2);
  const b = randTensor([20], 13);
  const dy = randTensor([2, 9, 20], 14);
  const run = () => {
    const y = Tensor.empty([2, 9, 20]);
    const dx = Tensor.empty([2, 9, 48]);
    const dw = Tensor.empty([20, 48]);
    const db = Tensor.empty([20]);
    ops.linearForward(x, w, b, y);
    ops.linearBackward(x, w, dy, { dx, dw, db });
    return { y: f32(y), dx: f32(dx), dw: f32(dw), db: f32(db) };
  };
  const exact = run();
  native.setBf16Emulation(true);
  let emu;
  try {
    emu = run();
  } finally {
    native.setBf16Emulation(false);
  }
  t.true(isBf16(emu.y), 'y is bf16-representable');
  t.true(isBf16(emu.dx), 'dx is bf16-representable');
  for (const k of ['y', 'dx', 'dw', 'db'] as const) {
    const e = relErr(emu[k], exact[k]);
    t.log(`${k}: bf16 vs fp32 relErr ${e.toExponential(2)}`);
    t.true(e < 1e-2 && e > 0, `${k}: bf16 vs fp32 relErr ${e}`);
  }
});

/** Runs fn with the GEMM kernel switched; undefined if this CPU cannot run it (sync bodies only). */
function withKernel<T>(kernel: 'avx512' | 'avx2' | 'portable', fn: () => T): T | undefined {
  const before = native.gemmKernel();
  try {
    native.setGemmKernel(kernel);
  } catch {
    return undefined;
  }
  try {
    return fn();
  } finally {
    native.setGemmKernel(before as 'best');
  }
}

const nanFilled = (shape: number[]) => Tensor.from(new Float32Array(shape[0] * shape[1]).fill(NaN), shape);
const bits = (t: Tensor) => Array.from(new Uint32Array((t.view() as Float32Array).slice().buffer));

test('a prepacked weight gives linearForward and linearActivationForward the same results bit for bit, on every kernel', (t) => {
  // N around the 32-wide panels, K over one and several k-blocks (384), M from 1 row up.
  const shapes = [[1, 64, 32], [7, 100, 33], [50, 800, 96], [130, 384, 130], [16, 1000, 8]];
  let kernels = 0;
  for (const kernel of ['avx512', 'avx2', 'portable'] as const) {
    const ran = withKernel(kernel, () => {
      for (const [i, [M, K, N]] of shapes.entries()) {
        const x = randTensor([M, K], 700 + i);
        const w = randTensor([N, K], 710 + i);
        const b = randTensor([N], 720 + i);
        const packed = ops.packLinearWeight(w);
        const plain = Tensor.zeros([M, N]);
        const fromPacked = nanFilled([M, N]);
        ops.linearForward(x, w, b, plain);
        ops.linearForward(x, w, b, fromPacked, null, packed);
        t.deepEqual(bits(fromPacked), bits(plain), `${kernel} linearForward ${M}×${K}×${N}`);
        const [h1, a1, h2, a2] = [Tensor.zeros([M, N]), Tensor.zeros([M, N]), nanFilled([M, N]), nanFilled([M, N])];
        ops.linearActivationForward(x, w, b, h1, a1, 'gelu');
        ops.linearActivationForward(x, w, b, h2, a2, 'gelu', packed);
        t.deepEqual(bits(h2), bits(h1), `${kernel} linearActivationForward h ${M}×${K}×${N}`);
        t.deepEqual(bits(a2), bits(a1), `${kernel} linearActivationForward a ${M}×${K}×${N}`);
        // And the float64 reference (the prepacked path is not just equal to itself).
        t.true(relErr(fromPacked.view() as Float32Array, refForward(x.view() as Float32Array, w.view() as Float32Array, b.view() as Float32Array, M, K, N)) < 1e-5);
      }
      return true;
    });
    if (ran) kernels++;
  }
  t.log(`kernels checked: ${kernels}`);
});

test('a prepacked weight of another shape or kernel is refused, naming what was wrong', (t) => {
  const x = randTensor([4, 40], 800);
  const w = randTensor([33, 40], 801);
  const y = Tensor.zeros([4, 33]);
  const other = ops.packLinearWeight(randTensor([33, 41], 802));
  t.throws(() => ops.linearForward(x, w, null, y, null, other), { message: /^linearForward: packed f32\[\d+\] on cpu is not w f32\[33, 40\] on cpu packed for the \w+ GEMM kernel/ });
  t.throws(() => ops.linearForward(x, w, null, y, null, randTensor([other.numel], 803)), { message: /linearForward: packed .* is not w/ });
  t.throws(() => ops.packLinearWeight(randTensor([33], 804)), { message: /packLinearWeight: w must have 2 dimensions/ });
  // Packed under one kernel and used under another: refused, not misread.
  const packed = withKernel('portable', () => ops.packLinearWeight(w));
  if (packed && native.gemmKernel() !== 'portable') {
    t.throws(() => ops.linearForward(x, w, null, y, null, packed), { message: new RegExp(`packed for the ${native.gemmKernel()} GEMM kernel`) });
    const h = Tensor.zeros([4, 33]);
    t.throws(() => ops.linearActivationForward(x, w, null, h, Tensor.zeros([4, 33]), 'gelu', packed), { message: /linearActivationForward: packed .* is not w/ });
  }
  // An output over the packed panels it is computed from: refused.
  const own = ops.packLinearWeight(w);
  t.throws(() => ops.linearForward(x, w, null, own.slice(16, [4, 33]), null, own), { message: 'linearForward: output y overlaps input packed; pass a separate tensor' });
  t.throws(() => ops.linearActivationForward(x, w, null, Tensor.zeros([4, 33]), own.slice(16, [4, 33]), 'gelu', own), {
    message: 'linearActivationForward: output a overlaps input packed; pass a separate tensor',
  });
});
