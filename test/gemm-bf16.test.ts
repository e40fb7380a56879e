// The CPU's bf16 GEMM (ops.matmulBf16): bf16 operands, fp32 accumulation, as a GPU's tensor cores
// and clipscale's bf16 mode compute. The portable kernel (scalar, any CPU) against float64 over the
// bf16-rounded operands; the AVX-512 BF16 kernel against the portable one bit for bit, where the
// CPU has the instruction; the bf16 mode's layers on the kernel against the emulation (operands
// rounded around the fp32 GEMM); and the errors.
import test from 'ava';

import { native } from '../lib/native.js';
import { linearBackward, linearForward, matmulBf16, type MatmulBf16Options } from '../lib/ops.js';
import { Tensor } from '../lib/tensor.js';
import { bf16Round as bf16, randn, gemmTransposes as transposes, type GemmCase } from './_helpers/numeric.js';

interface Case extends GemmCase {
  bias: boolean;
  roundC: boolean;
}

let seed = 11;
function inputs(cs: Case) {
  const { m, n, k } = cs;
  return { a: randn(m * k, seed++), b: randn(k * n, seed++), c: randn(m * n, seed++), bias: randn(n, seed++) };
}

function runBf16(cs: Case, x: ReturnType<typeof inputs>, kernel: MatmulBf16Options['kernel']): Float32Array {
  const { m, n, k, transA, transB } = cs;
  using a = Tensor.from(x.a, transA ? [k, m] : [m, k]);
  using b = Tensor.from(x.b, transB ? [n, k] : [k, n]);
  using c = Tensor.from(x.c.slice(), [m, n]);
  using bias = cs.bias ? Tensor.from(x.bias, [n]) : null;
  matmulBf16(a, b, c, { transA, transB, alpha: cs.alpha, beta: cs.beta, bias, roundC: cs.roundC, kernel });
  return Float32Array.from(c.view() as Float32Array);
}

/** The worst error of `got` over the fp32 bound: each value's float64 reference over the rounded operands. */
function errorOverBound(cs: Case, x: ReturnType<typeof inputs>, got: Float32Array): number {
  const { m, n, k, transA, transB, alpha, beta } = cs;
  const ar = x.a.map(bf16), br = x.b.map(bf16);
  let worst = 0;
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0, mag = 0;
      for (let q = 0; q < k; q++) {
        const p = (transA ? ar[q * m + i] : ar[i * k + q]) * (transB ? br[j * k + q] : br[q * n + j]);
        s += p;
        mag += Math.abs(p);
      }
      const extra = (beta === 0 ? 0 : beta * x.c[i * n + j]) + (cs.bias ? x.bias[j] : 0);
      const ref = alpha * s + extra;
      const scale = Math.abs(alpha) * mag + Math.abs(extra);
      // fp32 accumulation over k terms, then the epilogue's few roundings; a bf16 store adds half an ulp of bf16.
      const bound = (k + 4) * 2 ** -24 * scale + (cs.roundC ? 2 ** -8 * Math.abs(ref) : 0) + 1e-30;
      worst = Math.max(worst, Math.abs(got[i * n + j] - ref) / bound);
    }
  return worst;
}

// Around the 14×32 tile, odd K (a last pair with a zero high half), K across k-blocks (256 pairs),
// sizes the threads share.
const sizes: [number, number, number][] = [
  [1, 1, 1],
  [14, 32, 2],
  [15, 33, 3],
  [13, 31, 129],
  [29, 65, 515],
  [100, 70, 1100],
  [200, 150, 90],
];
const epilogues = [
  { alpha: 1, beta: 0, bias: false, roundC: false },
  { alpha: -0.75, beta: 1.5, bias: true, roundC: false },
  { alpha: 1, beta: 0, bias: true, roundC: true },
  { alpha: 2, beta: 0.5, bias: false, roundC: true },
];
const cases: Case[] = [];
for (const [m, n, k] of sizes)
  for (const [transA, transB] of transposes)
    for (const e of epilogues) cases.push({ m, n, k, transA, transB, ...e });

test('matmulBf16 (portable kernel) is the float64 product of the bf16-rounded operands, to fp32 accumulation', (t) => {
  let worst = 0;
  for (const cs of cases) {
    const x = inputs(cs);
    const e = errorOverBound(cs, x, runBf16(cs, x, 'portable'));
    worst = Math.max(worst, e);
    if (!(e <= 1)) t.fail(`${JSON.stringify(cs)}: error ${e.toFixed(2)}× the bound`);
  }
  t.log(`worst error ${worst.toFixed(3)}× the fp32 bound over ${cases.length} cases`);
  t.pass();
});

test('matmulBf16: the AVX-512 BF16 kernel equals the portable one bit for bit (where the CPU has it)', (t) => {
  if (!native.cpuBf16Support().avx512bf16) {
    // Nothing to compare here: the kernel cannot run, and asking for it says so.
    t.throws(() => runBf16(cases[0], inputs(cases[0]), 'avx512bf16'), { message: /matmulBf16: this CPU .* has no AVX-512 BF16/ });
    t.log('this CPU has no AVX-512 BF16: its kernel was not run (the portable kernel and the emulation are tested)');
    return;
  }
  let differing = 0;
  for (const cs of cases) {
    const x = inputs(cs);
    const want = runBf16(cs, x, 'portable');
    const got = runBf16(cs, x, 'avx512bf16');
    for (let i = 0; i < got.length; i++) if (!Object.is(got[i], want[i])) differing++;
    if (differing) {
      t.fail(`${JSON.stringify(cs)}: ${differing} values differ from the portable kernel`);
      return;
    }
  }
  t.pass();
});

test('matmulBf16: rounding to nearest even, NaN carried through, an inf operand', (t) => {
  // 1 + 2^-8 is a tie between bf16 1 and 1 + 2^-7: even is 1. 1 + 3·2^-8 ties up to 1 + 2^-6.
  const cs: Case = { m: 1, n: 3, k: 2, transA: false, transB: false, alpha: 1, beta: 0, bias: false, roundC: false };
  const x = {
    a: new Float32Array([1 + 2 ** -8, 1 + 3 * 2 ** -8]),
    b: new Float32Array([1, 0, NaN, 0, 1, Infinity]),
    c: new Float32Array(3),
    bias: new Float32Array(3),
  };
  const got = runBf16(cs, x, 'best');
  t.is(got[0], 1);
  t.is(got[1], 1 + 2 ** -6);
  t.true(Number.isNaN(got[2]) || got[2] === Infinity, `NaN·a + inf·a is NaN or inf, got ${got[2]}`);
  t.true(Number.isNaN(runBf16(cs, { ...x, b: new Float32Array([NaN, 0, 0, 0, 0, 0]) }, 'best')[0]));
});

test('matmulBf16 refuses what it cannot multiply, naming the argument', (t) => {
  using a = Tensor.from(new Float32Array(6), [2, 3]);
  using b = Tensor.from(new Float32Array(12), [3, 4]);
  using c = Tensor.from(new Float32Array(8), [2, 4]);
  using batched = Tensor.from(new Float32Array(12), [2, 2, 3]);
  using bias = Tensor.from(new Float32Array(3), [3]);
  t.throws(() => matmulBf16(batched, b, c), { message: /matmulBf16: a, b and c must be 2-D/ });
  t.throws(() => matmulBf16(a, b, c, { bias }), { message: /matmulBf16: bias must be f32 \[4\] on the CPU, got f32\[3\]/ });
  t.throws(() => matmulBf16(a, a, c), { message: /matmulBf16: b must have shape \[3, \*\], got f32\[2, 3\]/ });
  t.throws(() => matmulBf16(a, b, c, { kernel: 'amx' as 'best' }), { message: /kernel must be best, avx512bf16 or portable, got 'amx'/ });
  using row = Tensor.from(new Float32Array(4), [1, 4]);
  using ones = Tensor.from(new Float32Array(2), [1, 2]);
  using twoByFour = Tensor.from(new Float32Array(8), [2, 4]);
  using rowAsBias = row.reshape([4]);
  t.throws(() => matmulBf16(ones, twoByFour, row, { bias: rowAsBias }), { message: /matmulBf16: output c overlaps input bias/ });
});

// The bf16 mode's layers: on the AVX-512 BF16 kernel (speed mode) the same values as the emulation
// up to the order of fp32 additions: rounded outputs differ by at most one bf16 step, and rarely.
test('bf16 mode: linear forward and backward on the kernel agree with the emulation', (t) => {
  const support = native.cpuBf16Support();
  const wasEmulating = native.bf16Emulation();
  const wasNative = support.speedMode;
  if (!support.avx512bf16) {
    t.false(support.speedMode);
    t.throws(() => native.setCpuBf16Native(true), { message: /setCpuBf16Native: this CPU .* has no AVX-512 BF16; bf16 stays emulated/ });
    t.regex(support.note, /emulated/);
    t.log('this CPU has no AVX-512 BF16: the bf16 mode is the emulation, tested by the layer and training tests');
    return;
  }
  const [m, k, n] = [300, 200, 96];
  const xv = randn(m * k, 1), wv = randn(n * k, 2, 0.1), bv = randn(n, 3), dyv = randn(m * n, 4);
  const run = (onKernel: boolean) => {
    t.is(native.setCpuBf16Native(onKernel), onKernel);
    t.is(native.cpuBf16Support().speedMode, onKernel);
    using x = Tensor.from(xv, [m, k]);
    using w = Tensor.from(wv, [n, k]);
    using b = Tensor.from(bv, [n]);
    using y = Tensor.zeros([m, n]);
    using dy = Tensor.from(dyv, [m, n]);
    using dx = Tensor.zeros([m, k]);
    using dw = Tensor.zeros([n, k]);
    using db = Tensor.zeros([n]);
    linearForward(x, w, b, y);
    linearBackward(x, w, dy, { dx, dw, db });
    return [y, dx, dw, db].map((z) => Float32Array.from(z.view() as Float32Array));
  };
  try {
    native.setBf16Emulation(true);
    const kernel = run(true);
    const emulated = run(false);
    const names = ['y', 'dx', 'dw', 'db'];
    for (let i = 0; i < 4; i++) {
      const stored16 = names[i] === 'y' || names[i] === 'dx';
      let worst = 0, differ = 0, largest = 0;
      for (const e of emulated[i]) largest = Math.max(largest, Math.abs(e));
      for (let j = 0; j < kernel[i].length; j++) {
        const a = kernel[i][j], e = emulated[i][j];
        if (a !== e) differ++;
        // bf16 outputs: relative to the value (one bf16 step is 2^-8 of it at most); fp32 gradients:
        // relative to the largest (the order of fp32 additions over M = 300 rows).
        worst = Math.max(worst, Math.abs(a - e) / (stored16 ? Math.max(Math.abs(e), 1e-30) : largest));
      }
      const limit = stored16 ? 2 ** -7 : 1e-6;
      t.true(worst <= limit, `${names[i]}: worst relative difference ${worst} (limit ${limit})`);
      if (stored16) {
        t.true(differ < kernel[i].length / 20, `${names[i]}: ${differ} of ${kernel[i].length} differ`);
        t.true(kernel[i].every((v) => bf16(v) === v), `${names[i]} is stored as bf16 values`);
      }
      t.log(`${names[i]}: ${differ} of ${kernel[i].length} differ, worst ${worst.toExponential(2)}`);
    }
  } finally {
    native.setCpuBf16Native(wasNative);
    native.setBf16Emulation(wasEmulating);
  }
});

test('cpuBf16Support: speedMode where the CPU has AVX-512 BF16, unless switched off', (t) => {
  const s = native.cpuBf16Support();
  const forcedOff = process.env.CLIPSCALE_CPU_BF16 === 'emulate';
  t.is(s.speedMode, s.avx512bf16 && !forcedOff);
  t.regex(s.note, s.speedMode ? /AVX-512 BF16 kernel/ : /emulated/);
});
