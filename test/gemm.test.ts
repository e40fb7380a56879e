// The CPU GEMM (ops.matmul) against a float64 reference: every transpose, edge sizes,
// alpha/beta, batches, bf16 emulation, each micro-kernel this CPU runs, and the errors.
import { readFileSync } from 'node:fs';

import test from 'ava';

import { native } from '../lib/native.js';
import { matmul } from '../lib/ops.js';
import { Tensor } from '../lib/tensor.js';
import { bf16Round, randn, relErr, gemmTransposes as transposes, type GemmCase } from './_helpers/numeric.js';

interface Case extends GemmCase {
  batch?: number;
  /** b is one 2-D matrix shared by the batch */
  sharedB?: boolean;
}

/** float64 alpha·op(a)·op(b) + beta·c for each batch entry; beta = 0 ignores c. */
function reference(cs: Case, a: Float32Array, b: Float32Array, c: Float32Array): Float64Array {
  const { m, n, k, transA, transB, alpha, beta } = cs;
  const batch = cs.batch ?? 1;
  const out = new Float64Array(batch * m * n);
  for (let p = 0; p < batch; p++) {
    const ao = p * m * k;
    const bo = cs.sharedB ? 0 : p * k * n;
    const co = p * m * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let q = 0; q < k; q++) {
          const av = transA ? a[ao + q * m + i] : a[ao + i * k + q];
          const bv = transB ? b[bo + j * k + q] : b[bo + q * n + j];
          s += av * bv;
        }
        out[co + i * n + j] = alpha * s + (beta === 0 ? 0 : beta * c[co + i * n + j]);
      }
    }
  }
  return out;
}

function shapes(cs: Case): { a: number[]; b: number[]; c: number[] } {
  const { m, n, k, transA, transB, batch } = cs;
  const a2 = transA ? [k, m] : [m, k];
  const b2 = transB ? [n, k] : [k, n];
  if (batch === undefined) return { a: a2, b: b2, c: [m, n] };
  return { a: [batch, ...a2], b: cs.sharedB ? b2 : [batch, ...b2], c: [batch, m, n] };
}

let seed = 1;
/** Runs one case; returns ours and the reference (and the inputs used). */
function run(cs: Case, opts: { nanC?: boolean; roundInputs?: boolean } = {}) {
  const s = shapes(cs);
  const size = (d: number[]) => d.reduce((x, y) => x * y, 1);
  const av = randn(size(s.a), seed++);
  const bv = randn(size(s.b), seed++);
  const cv = opts.nanC ? new Float32Array(size(s.c)).fill(NaN) : randn(size(s.c), seed++);
  using a = Tensor.from(av, s.a);
  using b = Tensor.from(bv, s.b);
  using c = Tensor.from(cv, s.c);
  matmul(a, b, c, { transA: cs.transA, transB: cs.transB, alpha: cs.alpha, beta: cs.beta });
  const got = Float32Array.from(c.view() as Float32Array);
  const [ar, br] = opts.roundInputs ? [roundBf16(av), roundBf16(bv)] : [av, bv];
  const ref = reference(cs, ar, br, cv);
  // Σ|a·b| per output (alpha 1, beta 0 cases): what bounds the fp32 sums' error.
  const absSum = () => reference({ ...cs, alpha: 1, beta: 0 }, ar.map(Math.abs), br.map(Math.abs), cv);
  return { got, ref, absSum };
}

/** Each value rounded to the nearest bf16 (ties to even), as the native code does. */
const roundBf16 = (x: ArrayLike<number>): Float32Array => Float32Array.from(x, bf16Round);


// Sizes around the tiles (MR 14/6/4, NR 32/16), across k-blocks (KC 384), and large enough
// to be split between threads (rows, and columns when there are few rows).
const sizes: [number, number, number][] = [
  [1, 1, 1],
  [7, 33, 129],
  [129, 7, 33],
  [33, 129, 7],
  [1, 129, 64],
  [129, 1, 65],
  [15, 17, 400],
  [29, 65, 31],
  [200, 150, 90],
  [5, 700, 300],
];

function checkAll(t: import('ava').ExecutionContext, label: string) {
  let worst = 0;
  for (const [m, n, k] of sizes) {
    for (const [transA, transB] of transposes) {
      for (const [alpha, beta] of [
        [1, 0],
        [-0.75, 1.5],
      ]) {
        const { got, ref } = run({ m, n, k, transA, transB, alpha, beta });
        const e = relErr(got, ref);
        worst = Math.max(worst, e);
        if (!(e <= 1e-5)) t.fail(`${label}: ${m}×${n}×${k} transA=${transA} transB=${transB} alpha=${alpha} beta=${beta}: relErr ${e}`);
      }
    }
  }
  t.log(`${label}: worst relErr ${worst.toExponential(2)} over ${sizes.length * 8} cases`);
  t.pass();
}

test('matmul matches float64 for every transpose, edge sizes and alpha/beta (kernel in use)', (t) => {
  t.regex(native.gemmKernel(), /^(avx512|avx2|portable)$/);
  checkAll(t, native.gemmKernel());
});

for (const kernel of ['avx512', 'avx2', 'portable'] as const) {
  test(`matmul with the ${kernel} micro-kernel matches float64`, (t) => {
    const before = native.gemmKernel();
    try {
      native.setGemmKernel(kernel);
    } catch (err) {
      t.log(`skipped: ${(err as Error).message}`);
      t.pass();
      return;
    }
    try {
      t.is(native.gemmKernel(), kernel);
      checkAll(t, kernel);
    } finally {
      native.setGemmKernel(before as 'best');
    }
  });
}

test('cpuBf16Support: run-time detection agrees with /proc/cpuinfo, and says which path bf16 takes', (t) => {
  const s = native.cpuBf16Support();
  t.is(typeof s.avx512bf16, 'boolean');
  t.is(typeof s.amxBf16, 'boolean');
  // The AVX-512 BF16 kernel where the CPU has it (gemm-bf16.test.ts), the emulation elsewhere.
  if (!s.avx512bf16) t.false(s.speedMode, 'no AVX-512 BF16: the fp32 kernels with bf16 rounding are the path');
  t.regex(s.note, s.speedMode ? /AVX-512 BF16 kernel/ : /emulated/);
  let cpuinfo = '';
  try {
    cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    t.log('no /proc/cpuinfo: detection not cross-checked');
    return;
  }
  const flags = new Set((/^flags\s*:(.*)$/m.exec(cpuinfo)?.[1] ?? '').trim().split(/\s+/));
  if (flags.size > 1) {
    t.is(s.avx512bf16, flags.has('avx512_bf16'));
    // The kernel lists amx_bf16 only where the OS enables the tiles, as the detection requires.
    t.is(s.amxBf16, flags.has('amx_bf16') && flags.has('amx_tile'));
  }
  t.log(`avx512_bf16 ${s.avx512bf16}, amx_bf16 ${s.amxBf16}: ${s.note}`);
});

test('setGemmKernel rejects unknown names and leaves the kernel unchanged', (t) => {
  const before = native.gemmKernel();
  t.throws(() => native.setGemmKernel('sse9' as 'best'), { message: /setGemmKernel: unknown kernel 'sse9'/ });
  t.is(native.gemmKernel(), before);
});

// The AVX-512 kernel computes edge tiles in place, one instantiation per row count (1-14) and
// column masks either side of 16: every row count up to two tiles, column counts around the
// vector widths. A masked store that wrote past a row's valid columns would land on the next
// row's first columns (C's rows are contiguous), which are written earlier, so it shows here.
test('edge tiles: every row count up to two tiles, columns around the vector widths, every transpose', (t) => {
  let worst = 0;
  let cases = 0;
  for (let m = 1; m <= 29; m++)
    for (const n of [1, 7, 15, 16, 17, 31, 32, 33, 48])
      for (const [transA, transB] of transposes)
        for (const [alpha, beta] of [[1, 0], [-0.75, 1.5]]) {
          const { got, ref } = run({ m, n, k: 5, transA, transB, alpha, beta });
          const e = relErr(got, ref);
          worst = Math.max(worst, e);
          cases++;
          if (!(e <= 1e-5)) t.fail(`${m}×${n}×5 transA=${transA} transB=${transB} alpha=${alpha} beta=${beta}: relErr ${e}`);
        }
  t.log(`${native.gemmKernel()}: worst relErr ${worst.toExponential(2)} over ${cases} cases`);
  t.pass();
});

test('a product large enough to split over threads matches float64', (t) => {
  // Large enough for both threads and several row blocks (MC) and column panels.
  const { got, ref } = run({ m: 300, n: 260, k: 70, transA: false, transB: true, alpha: 1, beta: 0 });
  t.true(relErr(got, ref) <= 1e-5);
});

test('few rows and many columns (an inference batch): the column shares each thread owns match float64 and one thread bit for bit', (t) => {
  // M = 400 gives row blocks of uneven size (10, 10, 9 MR-panels), so the threads share out
  // equal column chunks instead; N = 1024 (32 panels) in 4 chunks, K past one k-block. A chunk
  // computed twice or skipped would show against float64; a different k order against one thread.
  const [m, n, k] = [400, 1024, 500];
  using a = Tensor.from(randn(m * k, 91), [m, k]);
  using b = Tensor.from(randn(n * k, 92), [n, k]);
  using c = Tensor.empty([m, n]);
  const threads = native.numThreads();
  try {
    native.setNumThreads(1);
    matmul(a, b, c, { transB: true });
    const one = Float32Array.from(c.view() as Float32Array);
    native.setNumThreads(Math.max(2, threads));
    c.view().fill(Number.NaN);
    matmul(a, b, c, { transB: true });
    const shared = Float32Array.from(c.view() as Float32Array);
    t.deepEqual(shared, one);
    const ref = reference({ m, n, k, transA: false, transB: true, alpha: 1, beta: 0 }, a.view() as Float32Array, b.view() as Float32Array, new Float32Array(m * n));
    t.true(relErr(shared, ref) <= 1e-5);
  } finally {
    native.setNumThreads(threads);
  }
});

test('the layouts read in place (transposed A, plain B): long K over several k-blocks, full and edge panels', (t) => {
  // The weight gradient dW += dYᵀ·X: transposed A, plain B, K = rows of the batch (past one
  // k-block), M and N narrow; with and without edge panels, with beta = 1 (accumulating).
  for (const [m, n, k] of [
    [64, 64, 1000],
    [70, 40, 900],
    [14, 32, 2000],
    [13, 31, 800],
    [192, 64, 777],
  ] as [number, number, number][]) {
    for (const [transA, transB] of [
      [true, false],
      [false, false],
    ] as [boolean, boolean][]) {
      const { got, ref } = run({ m, n, k, transA, transB, alpha: 1, beta: 1 });
      const e = relErr(got, ref);
      if (!(e <= 1e-5)) t.fail(`${m}×${n}×${k} transA=${transA} transB=${transB}: relErr ${e}`);
    }
  }
  t.pass();
});

test('zero sizes: empty outputs, and K = 0 gives beta·C (or zeros when beta = 0)', (t) => {
  for (const [m, n] of [
    [0, 5],
    [5, 0],
    [0, 0],
  ]) {
    const { got, ref } = run({ m, n, k: 3, transA: false, transB: false, alpha: 1, beta: 0 });
    t.is(got.length, 0);
    t.is(ref.length, 0);
  }
  const scaled = run({ m: 4, n: 5, k: 0, transA: false, transB: true, alpha: 2, beta: 0.5 });
  t.true(relErr(scaled.got, scaled.ref) <= 1e-7);
  const zeroed = run({ m: 4, n: 5, k: 0, transA: true, transB: false, alpha: 2, beta: 0 }, { nanC: true });
  t.deepEqual([...zeroed.got], new Array(20).fill(0));
});

test('beta = 0 never reads C: NaN in C does not reach the result', (t) => {
  for (const [m, n, k] of [
    [3, 5, 7],
    [45, 70, 400],
  ]) {
    for (const [transA, transB] of transposes) {
      const { got, ref } = run({ m, n, k, transA, transB, alpha: 1.25, beta: 0 }, { nanC: true });
      t.true(got.every(Number.isFinite), `${m}×${n}×${k} ${transA} ${transB}`);
      t.true(relErr(got, ref) <= 1e-5);
    }
  }
});

test('alpha = 0 gives beta·C without reading A or B', (t) => {
  const { got, ref } = run({ m: 6, n: 9, k: 4, transA: false, transB: false, alpha: 0, beta: -2 });
  t.true(relErr(got, ref) <= 1e-7);
});

test('batched matmul: per-entry products, all transposes, and a 2-D b shared by the batch', (t) => {
  for (const [transA, transB] of transposes) {
    for (const [batch, m, n, k] of [
      [3, 17, 33, 20], // few small entries: one entry per thread
      [2, 120, 90, 200], // larger entries: each uses every thread
      [12, 50, 50, 64], // attention-sized heads
    ]) {
      for (const sharedB of [false, true]) {
        const { got, ref } = run({ m, n, k, transA, transB, alpha: 0.5, beta: 0.25, batch, sharedB });
        const e = relErr(got, ref);
        t.true(e <= 1e-5, `batch ${batch} ${m}×${n}×${k} transA=${transA} transB=${transB} sharedB=${sharedB}: ${e}`);
      }
    }
  }
});

test('batched matmul: a single entry, and a few large entries that each use every thread', (t) => {
  for (const [batch, m, n, k] of [
    [1, 130, 140, 150],
    [3, 200, 200, 320],
  ]) {
    const { got, ref } = run({ m, n, k, transA: false, transB: true, alpha: 1, beta: 0, batch });
    t.true(relErr(got, ref) <= 1e-5, `batch ${batch} ${m}×${n}×${k}`);
  }
});

test('bf16 emulation: bf16-rounded operands, fp32 accumulation, bf16-rounded output', (t) => {
  const before = native.bf16Emulation();
  native.setBf16Emulation(true);
  try {
    for (const [transA, transB] of transposes) {
      const cs: Case = { m: 37, n: 45, k: 300, transA, transB, alpha: 1, beta: 0 };
      const { got, ref, absSum } = run(cs, { roundInputs: true });
      // Every output is a bf16 value.
      const bits = new Uint32Array(got.buffer);
      t.true(bits.every((u) => (u & 0xffff) === 0), 'outputs are bf16-representable');
      // Within half a bf16 ulp (at most 2^-8 relative) of the fp32 sum, which is within k·2^-24·Σ|a·b|
      // of the float64 product of the rounded inputs. (A relative 1e-5 for the sums, as this said
      // before, held for the AVX-512 kernel's order of sums but not the AVX2 kernel's: 2^-8 · 1.003.)
      const sums = absSum();
      let worst = 0;
      for (let i = 0; i < got.length; i++) {
        const bound = 2 ** -8 * Math.abs(ref[i]) + (1 + 2 ** -8) * cs.k * 2 ** -24 * sums[i] + 1e-30;
        worst = Math.max(worst, Math.abs(got[i] - ref[i]) / bound);
      }
      t.true(worst <= 1, `transA=${transA} transB=${transB}: worst error ${worst} of its bound`);
      t.true(relErr(got, roundBf16(ref)) <= 1e-3);
    }
    // The unrounded inputs give a measurably different answer: the rounding really happened.
    const { got, ref } = run({ m: 16, n: 16, k: 256, transA: false, transB: false, alpha: 1, beta: 0 });
    t.true(relErr(got, ref) > 1e-4);
  } finally {
    native.setBf16Emulation(before);
  }
});

test('matmul rejects bad shapes, dtypes and overlapping output with messages that say what was wrong', (t) => {
  using a = Tensor.zeros([16, 64]);
  using b = Tensor.zeros([32, 8]);
  using bt = Tensor.zeros([8, 64]);
  using c = Tensor.zeros([16, 8]);
  using c3 = Tensor.zeros([16, 9]);
  t.throws(() => matmul(a, b, c), { message: 'matmul: b must have shape [64, *], got f32[32, 8] on cpu' });
  t.throws(() => matmul(a, b, c, { transB: true }), { message: 'matmul: b must have shape [*, 64], got f32[32, 8] on cpu' });
  t.throws(() => matmul(a, bt, c3, { transB: true }), { message: 'matmul: c must have shape [16, 8], got f32[16, 9] on cpu' });
  t.throws(() => matmul(a, bt, c, { transA: true, transB: true }), { message: 'matmul: b must have shape [*, 16], got f32[8, 64] on cpu' });

  using bf = Tensor.zeros([64, 8], 'bf16');
  t.throws(() => matmul(a, bf, c), { message: 'matmul: b must be f32, got bf16[64, 8] on cpu' });
  using v = Tensor.zeros([64]);
  t.throws(() => matmul(v, bt, c), { message: 'matmul: a must have 2 or 3 dimensions, got f32[64] on cpu' });
  using b3 = Tensor.zeros([2, 64, 8]);
  t.throws(() => matmul(a, b3, c), { message: 'matmul: b must have 2 dimensions, got f32[2, 64, 8] on cpu' });

  using a3 = Tensor.zeros([2, 16, 64]);
  using b3bad = Tensor.zeros([3, 64, 8]);
  using c3d = Tensor.zeros([2, 16, 8]);
  t.throws(() => matmul(a3, b3bad, c3d), { message: 'matmul: b must have shape [2, 64, *], got f32[3, 64, 8] on cpu' });
  using c3bad = Tensor.zeros([2, 16, 7]);
  using b3ok = Tensor.zeros([2, 64, 8]);
  t.throws(() => matmul(a3, b3ok, c3bad), { message: 'matmul: c must have shape [2, 16, 8], got f32[2, 16, 7] on cpu' });

  using sq = Tensor.zeros([8, 8]);
  using sqb = Tensor.zeros([8, 8]);
  t.throws(() => matmul(sq, sqb, sq), { message: /matmul: output c overlaps input a/ });
  t.throws(() => (native.matmul as (...x: unknown[]) => void)(sq.handle, sqb.handle, 3, false, false, 1, 0), {
    message: 'matmul: c must be a Tensor, got number',
  });
});
