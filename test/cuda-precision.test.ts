// The CUDA backend's precision switch (native.cudaSetPrecision): fp32, bf16 and fp16 ops
// against the CPU on fresh random inputs, GPU outputs poisoned with NaN first.
// - fp32: the CPU ops in fp32 (no emulation); fp32 operands and arithmetic on the GPU, so the
//   only difference is the order of fp32 sums (bound 1e-5, relative to the output's norm).
// - fp16: the CPU ops in fp32 on inputs rounded to fp16 on the host, outputs rounded to fp16
//   where the GPU stores fp16 (the CPU has no fp16 emulation; this builds it from outside).
//   Differences: summation order, and a value on a rounding boundary going the other way.
// - bf16 (the default): cuda-layers / cuda-ops check it against the CPU's bf16 emulation;
//   here only that the switch moves between the modes (bf16 ≠ fp32 ≠ fp16 results).
// GEMM ops run on each engine that loads (cuBLASLt only on a GPU).
import test, { type ExecutionContext } from 'ava';

import { native } from '../lib/native.js';
import { geluTanhBackward, geluTanhForward } from '../lib/nn/gelu_tanh.js';
import * as ops from '../lib/ops.js';
import { Tensor } from '../lib/tensor.js';
import { bf16BitsFromF32, f32FromBf16Bits } from '../lib/train/safetensors.js';
import { countCudaTests, noGpuReason } from './_helpers/cuda.js';
import { randn, relErr } from './_helpers/numeric.js';

type Precision = 'fp32' | 'bf16' | 'fp16';

const counted = countCudaTests(test, 'cuda-precision');
const gpuTest = (title: string, fn: (t: ExecutionContext) => void) =>
  noGpuReason === null
    ? test.serial(title, (t) => {
        counted();
        fn(t);
      })
    : test.skip(`${title} (skipped: ${noGpuReason})`, fn);

// Measured on the emulated device (own kernels): fp32 ≤ 4.1e-7; fp16 0 (the own kernel sums the
// exact fp16 products in fp32 as the CPU does; a one-ulp fp16 flip would be 4.9e-4 of the
// element); the same matmuls in bf16 vs fp32 ≥ 2.8e-3.
const FP32_TOL = 1e-5;
const FP16_TOL = 1e-3;

let seed = 7000;
const fresh = (shape: number[], scale = 1): Tensor => Tensor.from(randn(shape.reduce((a, b) => a * b, 1), seed++, scale), shape);
const poisoned = (shape: number[]): Tensor =>
  Tensor.from(new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(NaN), shape).to('cuda');
const values = (t: Tensor): Float32Array => Float32Array.from(t.device === 'cpu' ? t.toArray() : t.to('cpu').toArray());

/** IEEE binary16 rounding (nearest even, overflow to ±inf, subnormals), as a double. */
export function f16round(x: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const a = Math.abs(x);
  if (a >= 65520) return Math.sign(x) * Infinity;
  let e = Math.max(Math.floor(Math.log2(a)), -14);
  if (2 ** e > a && e > -14) e--;
  if (2 ** (e + 1) <= a) e++;
  const q = 2 ** (e - 10);
  const v = a / q;
  let r = Math.round(v);
  if (v - Math.floor(v) === 0.5) r = 2 * Math.round(v / 2);
  return Math.sign(x) * r * q;
}
const toF16 = (t: Tensor): Tensor => Tensor.from(Float32Array.from(values(t), f16round), t.shape);

function inPrecision<T>(p: Precision, fn: () => T): T {
  const previous = native.cudaSetPrecision(p);
  try {
    return fn();
  } finally {
    native.cudaSetPrecision(previous);
  }
}

function eachEngine(t: ExecutionContext, body: (engine: string) => void): void {
  for (const engine of ['own', 'cublaslt']) {
    try {
      native.setCudaGemmBackend(engine as 'own' | 'cublaslt');
    } catch (e) {
      t.log(`${engine} GEMM engine skipped: ${(e as Error).message}`);
      continue;
    }
    try {
      body(engine);
    } finally {
      native.setCudaGemmBackend('auto');
    }
  }
}

/** Checks and returns the error; `f16` rounds the reference to fp16 first (a stored fp16 output). */
function close(t: ExecutionContext, gpu: Tensor, ref: Tensor, tol: number, what: string, f16 = false): number {
  const g = values(gpu);
  const r = f16 ? Float32Array.from(values(ref), f16round) : values(ref);
  const err = relErr(g, r);
  t.true(err <= tol, `${what}: relErr ${err.toExponential(2)} > ${tol}`);
  return err;
}

gpuTest('cuda precision switch: bf16 by default, set/get by name, a bad name is refused saying what is accepted', (t) => {
  t.is(native.cudaPrecision(), 'bf16');
  t.is(native.cudaSetPrecision('fp32'), 'bf16');
  t.is(native.cudaPrecision(), 'fp32');
  t.is(native.cudaSetPrecision('fp16'), 'fp32');
  t.is(native.cudaSetPrecision('bf16'), 'fp16');
  t.throws(() => native.cudaSetPrecision('fp8' as Precision), { message: /cudaSetPrecision: precision must be 'fp32', 'bf16' or 'fp16', got 'fp8'/ });
  t.is(native.cudaPrecision(), 'bf16');
});

const matmulCases = [
  { a: [1, 1], b: [1, 1], c: [1, 1] },
  { a: [77, 64], b: [96, 64], c: [77, 96], transB: true },
  { a: [37, 130], b: [37, 200], c: [130, 200], transA: true, alpha: 0.7 },
  { a: [3, 64, 72], b: [3, 96, 72], c: [3, 64, 96], transA: false, transB: true, beta: 0.5 },
  { a: [3, 72, 64], b: [3, 72, 96], c: [3, 64, 96], transA: true, beta: 0.5 },
  { a: [5, 33, 129], b: [129, 65], c: [5, 33, 65] },
];

gpuTest('cuda fp32: matmul, linear and patch embedding equal the CPU in fp32 (fp32 operands, nothing rounded)', (t) => {
  let worst = 0;
  let bf16Gap = Infinity;
  eachEngine(t, (engine) => {
    for (const cs of matmulCases) {
      const a = fresh(cs.a), b = fresh(cs.b), c0 = fresh(cs.c);
      const opts = { transA: cs.transA, transB: cs.transB, alpha: cs.alpha, beta: cs.beta };
      const cpu = c0.to('cpu');
      ops.matmul(a, b, cpu, opts);
      const gpu = cs.beta ? c0.to('cuda') : poisoned(cs.c);
      inPrecision('fp32', () => ops.matmul(a.to('cuda'), b.to('cuda'), gpu, opts));
      worst = Math.max(worst, close(t, gpu, cpu, FP32_TOL, `[${engine}] fp32 matmul ${JSON.stringify(cs)}`));
      if (cs.a[0] > 1) {
        // The same product in bf16 is visibly further from fp32: the switch really switched.
        const g16 = cs.beta ? c0.to('cuda') : poisoned(cs.c);
        inPrecision('bf16', () => ops.matmul(a.to('cuda'), b.to('cuda'), g16, opts));
        bf16Gap = Math.min(bf16Gap, relErr(values(g16), values(cpu)));
      }
    }
    for (const [M, K, N] of [[1, 1, 1], [100, 64, 192], [257, 80, 37]]) {
      const x = fresh([M, K]), w = fresh([N, K], 0.1), b = fresh([N]), dy = fresh([M, N]);
      const what = `[${engine}] fp32 linear ${M}×${K}→${N}`;
      const y = Tensor.empty([M, N]);
      ops.linearForward(x, w, b, y);
      const dx = Tensor.empty([M, K]), dw = Tensor.empty([N, K]), db = Tensor.empty([N]);
      ops.linearBackward(x, w, dy, { dx, dw, db });
      const [xg, wg, bg, dyg] = [x, w, b, dy].map((v) => v.to('cuda'));
      const yg = poisoned([M, N]), dxg = poisoned([M, K]), dwg = poisoned([N, K]), dbg = poisoned([N]);
      inPrecision('fp32', () => {
        ops.linearForward(xg, wg, bg, yg);
        ops.linearBackward(xg, wg, dyg, { dx: dxg, dw: dwg, db: dbg });
      });
      for (const [g, c, n] of [[yg, y, 'y'], [dxg, dx, 'dx'], [dwg, dw, 'dw'], [dbg, db, 'db']] as const)
        worst = Math.max(worst, close(t, g, c, FP32_TOL, `${what} ${n}`));
    }
    const [B, C, H, W, P, width] = [2, 3, 32, 48, 8, 40];
    const gridN = (H / P) * (W / P);
    const images = fresh([B, C, H, W]), weight = fresh([width, C, P, P], 0.05), dout = fresh([B, gridN, width]);
    const out = Tensor.empty([B, gridN, width]), dweight = Tensor.empty([width, C, P, P]), dimages = Tensor.empty([B, C, H, W]);
    ops.patchEmbedForward(images, weight, out);
    ops.patchEmbedBackward(images, weight, dout, { dweight, dimages });
    const [ig, wg, dg] = [images, weight, dout].map((v) => v.to('cuda'));
    const outg = poisoned([B, gridN, width]), dwg = poisoned([width, C, P, P]), dig = poisoned([B, C, H, W]);
    inPrecision('fp32', () => {
      ops.patchEmbedForward(ig, wg, outg);
      ops.patchEmbedBackward(ig, wg, dg, { dweight: dwg, dimages: dig });
    });
    for (const [g, c, n] of [[outg, out, 'out'], [dwg, dweight, 'dweight'], [dig, dimages, 'dimages']] as const)
      worst = Math.max(worst, close(t, g, c, FP32_TOL, `[${engine}] fp32 patch embed ${n}`));
  });
  t.log(`fp32 GEMM ops: worst relErr vs the CPU in fp32 ${worst.toExponential(2)}; the same matmuls in bf16: ≥ ${bf16Gap.toExponential(2)}`);
  t.true(bf16Gap > 100 * FP32_TOL);
});

gpuTest('cuda fp16: matmul, linear and patch embedding equal fp32 math on fp16-rounded operands, outputs rounded to fp16', (t) => {
  let worst = 0;
  let worstUnrounded = 0;
  eachEngine(t, (engine) => {
    for (const cs of matmulCases) {
      const a = fresh(cs.a), b = fresh(cs.b), c0 = fresh(cs.c);
      const opts = { transA: cs.transA, transB: cs.transB, alpha: cs.alpha, beta: cs.beta };
      const ref = c0.to('cpu');
      ops.matmul(toF16(a), toF16(b), ref, opts);
      const gpu = cs.beta ? c0.to('cuda') : poisoned(cs.c);
      inPrecision('fp16', () => ops.matmul(a.to('cuda'), b.to('cuda'), gpu, opts));
      worst = Math.max(worst, close(t, gpu, ref, FP16_TOL, `[${engine}] fp16 matmul ${JSON.stringify(cs)}`, true));
      t.true(values(gpu).every((v) => f16round(v) === v), 'fp16 matmul outputs are fp16 values');
    }
    for (const [M, K, N] of [[1, 1, 1], [100, 64, 192], [257, 80, 37]]) {
      const x = fresh([M, K]), w = fresh([N, K], 0.1), b = fresh([N]), dy = fresh([M, N]);
      const what = `[${engine}] fp16 linear ${M}×${K}→${N}`;
      const [x16, w16, b16, dy16] = [x, w, b, dy].map(toF16);
      const y = Tensor.empty([M, N]), dx = Tensor.empty([M, K]), dw = Tensor.empty([N, K]), db = Tensor.empty([N]);
      ops.linearForward(x16, w16, b16, y);
      ops.linearBackward(x16, w16, dy16, { dx, dw, db });
      const [xg, wg, bg, dyg] = [x, w, b, dy].map((v) => v.to('cuda'));
      const yg = poisoned([M, N]), dxg = poisoned([M, K]), dwg = poisoned([N, K]), dbg = poisoned([N]);
      inPrecision('fp16', () => {
        ops.linearForward(xg, wg, bg, yg);
        ops.linearBackward(xg, wg, dyg, { dx: dxg, dw: dwg, db: dbg });
      });
      worst = Math.max(worst, close(t, yg, y, FP16_TOL, `${what} y`, true), close(t, dxg, dx, FP16_TOL, `${what} dx`, true));
      // Parameter gradients are fp32 sums of fp16 products (not rounded).
      worstUnrounded = Math.max(worstUnrounded, close(t, dwg, dw, FP32_TOL * 10, `${what} dw`), close(t, dbg, db, FP32_TOL * 10, `${what} db`));
    }
    const [B, C, H, W, P, width] = [2, 3, 32, 48, 8, 40];
    const gridN = (H / P) * (W / P);
    const images = fresh([B, C, H, W]), weight = fresh([width, C, P, P], 0.05), dout = fresh([B, gridN, width]);
    const out = Tensor.empty([B, gridN, width]), dweight = Tensor.empty([width, C, P, P]), dimages = Tensor.empty([B, C, H, W]);
    ops.patchEmbedForward(toF16(images), toF16(weight), out);
    ops.patchEmbedBackward(toF16(images), toF16(weight), toF16(dout), { dweight, dimages });
    const [ig, wg, dg] = [images, weight, dout].map((v) => v.to('cuda'));
    const outg = poisoned([B, gridN, width]), dwg = poisoned([width, C, P, P]), dig = poisoned([B, C, H, W]);
    inPrecision('fp16', () => {
      ops.patchEmbedForward(ig, wg, outg);
      ops.patchEmbedBackward(ig, wg, dg, { dweight: dwg, dimages: dig });
    });
    worst = Math.max(worst, close(t, outg, out, FP16_TOL, `[${engine}] fp16 patch embed out`, true), close(t, dig, dimages, FP16_TOL, `[${engine}] fp16 patch embed dimages`, true));
    worstUnrounded = Math.max(worstUnrounded, close(t, dwg, dweight, FP32_TOL * 10, `[${engine}] fp16 patch embed dweight`));
  });
  t.log(`fp16 GEMM ops: worst relErr vs the fp16 reference ${worst.toExponential(2)} (stored outputs), ${worstUnrounded.toExponential(2)} (fp32 parameter gradients)`);
});

gpuTest('cuda fp32 / fp16: layernorm, GELU, embeddings and pooling store fp32 / fp16-rounded values', (t) => {
  const rows = 37, width = 48, vocab = 50, seq = 5, batch = 3;
  const x = fresh([rows, width]), res = fresh([rows, width]), gamma = fresh([width]), beta = fresh([width]);
  const table = fresh([vocab, width]), pos = fresh([seq, width]), cls = fresh([width]), seqx = fresh([batch, seq, width]);
  const ids = Tensor.from(Int32Array.from({ length: batch * seq }, (_, i) => (i * 7) % vocab), [batch, seq]);
  const index = Tensor.from(Int32Array.from([4, 0, 2]), [batch]);
  type Outs = Record<string, Tensor>;
  const run = (dev: 'cpu' | 'cuda'): Outs => {
    const on = (v: Tensor) => (dev === 'cpu' ? v : v.to('cuda'));
    const mk = (shape: number[]) => (dev === 'cpu' ? Tensor.empty(shape) : poisoned(shape));
    const o: Outs = {
      ln: mk([rows, width]), mean: mk([rows]), rstd: mk([rows]), sum: mk([rows, width]), rln: mk([rows, width]), rmean: mk([rows]), rrstd: mk([rows]),
      gelu: mk([rows, width]), qgelu: mk([rows, width]), emb: mk([batch, seq, width]), posed: mk([batch, seq, width]),
      cat: mk([batch, seq + 1, width]), picked: mk([batch, width]),
    };
    ops.layernormForward(on(x), on(gamma), on(beta), o.ln, o.mean, o.rstd);
    ops.residualLayernormForward(on(x), on(res), o.sum, on(gamma), on(beta), o.rln, o.rmean, o.rrstd);
    ops.geluForward(on(x), o.gelu);
    ops.quickGeluForward(on(x), o.qgelu);
    ops.embeddingForward(on(ids), on(table), o.emb);
    ops.posEmbedForward(on(seqx), on(pos), o.posed);
    ops.classTokenConcat(on(seqx), on(cls), o.cat);
    ops.gatherRows(on(seqx), on(index), o.picked);
    return o;
  };
  const cpu = run('cpu');
  const gpu32 = inPrecision('fp32', () => run('cuda'));
  const gpu16 = inPrecision('fp16', () => run('cuda'));
  const stored = new Set(['ln', 'sum', 'rln', 'gelu', 'qgelu', 'emb', 'posed', 'cat', 'picked']);
  for (const name of Object.keys(cpu)) {
    close(t, gpu32[name], cpu[name], FP32_TOL, `fp32 ${name}`);
    if (stored.has(name)) {
      // Stored values are fp16 values; statistics stay fp32. The residual sum is rounded
      // before it is normalised, so the layernorm after it sees fp16 inputs: one fp16 step.
      t.true(values(gpu16[name]).every((v) => f16round(v) === v), `fp16 ${name} holds fp16 values`);
      close(t, gpu16[name], cpu[name], name === 'rln' ? 2 * FP16_TOL : FP16_TOL, `fp16 ${name}`, true);
    } else {
      close(t, gpu16[name], cpu[name], name === 'rmean' || name === 'rrstd' ? FP16_TOL : FP32_TOL, `fp16 ${name} (fp32 statistic)`);
    }
  }
});

gpuTest('cuda linearGeluForward: the GEMM epilogue\'s erf GELU equals the CPU\'s linear then GELU (bf16, fp32, fp16); tanh form too', (t) => {
  const emulating = <T>(on: boolean, fn: () => T): T => {
    const was = native.bf16Emulation();
    native.setBf16Emulation(on);
    try {
      return fn();
    } finally {
      native.setBf16Emulation(was);
    }
  };
  const tanhGelu = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)));
  const lines: string[] = [];
  eachEngine(t, (engine) => {
    for (const [M, K, N] of [[1, 1, 1], [100, 64, 192], [257, 80, 37]]) {
      const x = fresh([M, K]), w = fresh([N, K], 0.2), b = fresh([N]);
      const [xg, wg, bg] = [x, w, b].map((v) => v.to('cuda'));
      for (const p of ['bf16', 'fp32', 'fp16'] as const) {
        const what = `[${engine}] ${p} linear+GELU ${M}×${K}→${N}`;
        // The CPU reference: linear, then GELU, in fp32 (bf16: emulated; fp16: on fp16-rounded operands, outputs rounded).
        const [xr, wr, br] = p === 'fp16' ? [x, w, b].map(toF16) : [x, w, b];
        const pre = Tensor.empty([M, N]), y = Tensor.empty([M, N]);
        emulating(p === 'bf16', () => {
          ops.linearForward(xr, wr, br, pre);
          if (p === 'fp16') pre.copyFrom(toF16(pre));
          ops.geluForward(pre, y);
        });
        const preg = poisoned([M, N]), yg = poisoned([M, N]);
        inPrecision(p, () => ops.linearGeluForward(xg, wg, bg, preg, yg, 'erf'));
        const tol = p === 'fp32' ? FP32_TOL : p === 'fp16' ? FP16_TOL : 1e-2;
        const e1 = close(t, preg, pre, tol, `${what} pre`);
        const e2 = close(t, yg, y, tol, `${what} y`, p === 'fp16');
        // The tanh form (cuBLASLt's own GELU epilogue): the same pre, then tanh-GELU.
        const yt = poisoned([M, N]), pret = poisoned([M, N]);
        inPrecision(p, () => ops.linearGeluForward(xg, wg, bg, pret, yt, 'tanh'));
        const pv = values(pret);
        const round = p === 'fp16' ? f16round : p === 'bf16' ? (v: number) => f32FromBf16Bits(bf16BitsFromF32(v)) : (v: number) => v;
        const e3 = close(t, yt, Tensor.from(Float32Array.from(pv, (v) => round(Math.fround(tanhGelu(v)))), [M, N]), tol, `${what} tanh y`);
        if (M > 1) lines.push(`${what}: pre ${e1.toExponential(1)}, y ${e2.toExponential(1)}, tanh y ${e3.toExponential(1)}`);
      }
    }
  });
  t.log(lines.join('; '));
  const x = fresh([4, 8]).to('cuda'), w = fresh([6, 8]).to('cuda'), out = poisoned([4, 6]);
  t.throws(() => ops.linearGeluForward(x, w, null, out, out, 'erf'), { message: /linearGeluForward: pre and y must be different tensors/ });
  t.throws(() => ops.linearGeluForward(x, w, null, poisoned([4, 6]), out, 'sigmoid' as 'erf'), { message: /form must be 'erf' or 'tanh', got 'sigmoid'/ });
  t.throws(() => ops.linearGeluForward(x, w, null, poisoned([4, 5]), out, 'erf'), { message: /linearGeluForward|linearForward/ });
});

gpuTest('cuda bf16 linear with the weight\'s bf16 copy (w16): forward, GELU forward and dx read it directly (dx through ldmatrix.trans), bit-identical to converting w (own kernel); both tile sizes', (t) => {
  const cases = [[100, 64, 192], [257, 80, 40], [33, 136, 72], [5, 12, 20]]; // the last: K not a multiple of 8 (w16 unused)
  const toBf16 = (w: Tensor): Tensor => {
    const c = Tensor.empty(w.shape, 'bf16', w.device);
    ops.convert(w, c);
    return c;
  };
  eachEngine(t, (engine) => {
    for (const tile of ['64', '128']) {
      process.env.CLIPSCALE_GEMM_TILE = tile;
      try {
        for (const [M, K, N] of cases) {
          const what = `[${engine}, tile ${tile}] linear ${M}×${K}→${N}`;
          const [x, w, b, dy] = [fresh([M, K]), fresh([N, K], 0.2), fresh([N]), fresh([M, N])].map((v) => v.to('cuda'));
          const w16 = toBf16(w);
          const outs = (withCopy: boolean) => {
            const y = poisoned([M, N]), pre = poisoned([M, N]), a = poisoned([M, N]), dx = poisoned([M, K]), dw = poisoned([N, K]), db = poisoned([N]);
            ops.linearForward(x, w, b, y, withCopy ? w16 : null);
            ops.linearGeluForward(x, w, b, pre, a, 'erf', withCopy ? w16 : null);
            ops.linearBackward(x, w, dy, { dx, dw, db, w16: withCopy ? w16 : null });
            return [y, pre, a, dx, dw, db].map(values);
          };
          const [plain, copy] = [outs(false), outs(true)];
          ['y', 'pre', 'gelu', 'dx', 'dw', 'db'].forEach((n, i) => {
            t.false(copy[i].some(Number.isNaN), `${what} ${n}: NaN`);
            // Our kernel multiplies the same fragments either way: bit for bit. cuBLASLt may pick
            // another algorithm (another summation order) for a transposed operand.
            if (engine === 'own') t.deepEqual(copy[i], plain[i], `${what} ${n}`);
            else t.true(relErr(copy[i], plain[i]) < 1e-5, `${what} ${n}: ${relErr(copy[i], plain[i])}`);
          });
        }
      } finally {
        delete process.env.CLIPSCALE_GEMM_TILE;
      }
    }
  });
  const x = fresh([4, 8]).to('cuda'), w = fresh([6, 8]).to('cuda'), y = poisoned([4, 6]);
  t.throws(() => ops.linearForward(x, w, null, y, toBf16(fresh([8, 6]).to('cuda'))), { message: /linearForward: w16 must be a bf16 or f16 tensor of w's shape \[6, 8\]/ });
  t.throws(() => ops.linearForward(x, w, null, y, fresh([6, 8]).to('cuda')), { message: /w16 must be a bf16 or f16 tensor.*got f32/ });
});

/** The f16 bits of a value, through f16round (exact for every f16 value). */
function f16Bits(v: number): number {
  if (Number.isNaN(v)) return 0x7e00;
  const sign = v < 0 || Object.is(v, -0) ? 0x8000 : 0;
  const a = Math.abs(v);
  if (a === Infinity) return sign | 0x7c00;
  if (a < 2 ** -14) return sign | Math.round(a / 2 ** -24);
  const e = Math.floor(Math.log2(a));
  return sign | ((e + 15) << 10) | Math.round((a / 2 ** e - 1) * 1024);
}

test('f16 tensors: convert (f32 ⇄ f16) and fill round to nearest even as IEEE half, on the CPU and on CUDA; AdamW writes an f16 copy', (t) => {
  const special = [0, -0, 1, -1, 65504, 65519.99, 65520, -70000, 2 ** -14, 2 ** -24, 2 ** -25, 2 ** -25 * 1.0001, 3 * 2 ** -26, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 0.1, -2.5e-6, Infinity, -Infinity, NaN];
  const values = Float32Array.from([...special, ...randn(4000, 91, 3), ...randn(1000, 92, 1e-5), ...randn(1000, 93, 3e4)]);
  const expect = Uint16Array.from(values, (v) => f16Bits(f16round(v)));
  const devices = noGpuReason === null ? ['cpu', 'cuda'] : ['cpu'];
  for (const dev of devices) {
    const src = Tensor.from(values, [values.length]);
    const s = dev === 'cpu' ? src : src.to(dev);
    const h = Tensor.empty([values.length], 'f16', dev);
    ops.convert(s, h);
    const bits = new Uint16Array((dev === 'cpu' ? h : h.to('cpu')).view());
    const bad = [...bits].findIndex((b, i) => b !== expect[i]);
    t.is(bad, -1, `${dev}: f16(${values[bad]}) = 0x${bits[bad]?.toString(16)}, expected 0x${expect[bad]?.toString(16)}`);
    const back = Tensor.empty([values.length], 'f32', dev);
    ops.convert(h, back);
    const wide = Float32Array.from((dev === 'cpu' ? back : back.to('cpu')).view() as Float32Array);
    t.true(wide.every((v, i) => Object.is(v, f16round(values[i])) || (Number.isNaN(v) && Number.isNaN(values[i]))), `${dev}: f16 → f32 is exact`);
    ops.fill(h, 1 / 3);
    t.true(new Uint16Array((dev === 'cpu' ? h : h.to('cpu')).view()).every((b) => b === f16Bits(f16round(1 / 3))), `${dev}: fill`);
  }
  // The CPU's AdamW writes the updated parameter into an f16 copy (CUDA's is checked with training).
  const p = Tensor.from(randn(64, 94), [64]), g = Tensor.from(randn(64, 95), [64]);
  const copy = Tensor.empty([64], 'f16');
  ops.adamwStep(p, g, Tensor.zeros([64]), Tensor.zeros([64]), { lr: 1e-2, step: 1, paramBf16: copy });
  t.deepEqual(new Uint16Array(copy.view()), Uint16Array.from(p.view() as Float32Array, (v) => f16Bits(f16round(v))));
});

gpuTest('cuda GELU tanh form (approximate=\'tanh\'): forward and backward equal the CPU\'s (lib/nn/gelu_tanh.ts) in fp32 and bf16', (t) => {
  const x = fresh([33, 70], 2), dout = fresh([33, 70]);
  for (const p of ['fp32', 'bf16'] as const) {
    const was = native.bf16Emulation();
    native.setBf16Emulation(p === 'bf16');
    const y = Tensor.empty([33, 70]), dx = Tensor.empty([33, 70]);
    try {
      geluTanhForward(x, y);
      geluTanhBackward(x, dout, dx);
    } finally {
      native.setBf16Emulation(was);
    }
    const yg = poisoned([33, 70]), dxg = poisoned([33, 70]);
    inPrecision(p, () => {
      geluTanhForward(x.to('cuda'), yg);
      geluTanhBackward(x.to('cuda'), dout.to('cuda'), dxg);
    });
    // f32 tanhf vs the CPU's double: a few ulp; in bf16 a rare rounding boundary flips.
    const ey = close(t, yg, y, p === 'fp32' ? 1e-6 : 1e-2, `${p} gelu_tanh forward`);
    const ed = close(t, dxg, dx, 1e-6, `${p} gelu_tanh backward`);
    t.log(`${p}: forward ${ey.toExponential(1)}, backward ${ed.toExponential(1)}`);
  }
  t.throws(() => native.geluTanhForward(x.handle, Tensor.empty([33, 70]).handle), { message: /geluTanhForward: the native op runs on CUDA/ });
});

gpuTest('cuda 16-bit activations: linearGeluForward stores the GELU output in bf16/f16, and the next linear reads it in place (forward and dw through an MN-major B): bit-identical to f32 activations', (t) => {
  for (const p of ['bf16', 'fp16'] as const) {
    const dtype = p === 'fp16' ? 'f16' : 'bf16';
    eachEngine(t, (engine) => {
      for (const [M, K, H, N] of [[100, 64, 192, 40], [37, 24, 96, 72]]) {
        const what = `[${engine}] ${p} ${M}×${K}→${H}→${N}`;
        const [x, w1, b1, w2, b2, dy] = [fresh([M, K]), fresh([H, K], 0.2), fresh([H]), fresh([N, H], 0.1), fresh([N]), fresh([M, N])].map((v) => v.to('cuda'));
        const run = (act16: boolean) => {
          const pre = poisoned([M, H]), y = poisoned([M, N]), dx = poisoned([M, H]), dw = poisoned([N, H]), db = poisoned([N]);
          const a = act16 ? Tensor.empty([M, H], dtype, 'cuda') : poisoned([M, H]);
          inPrecision(p, () => {
            ops.linearGeluForward(x, w1, b1, pre, a, 'erf');
            ops.linearForward(a, w2, b2, y);
            ops.linearBackward(a, w2, dy, { dx, dw, db });
          });
          const aWide = Tensor.empty([M, H], 'f32', 'cuda');
          ops.convert(a, aWide);
          return [pre, aWide, y, dx, dw, db].map(values);
        };
        const [f32, half] = [run(false), run(true)];
        ['pre', 'act', 'y', 'dx', 'dw', 'db'].forEach((n, i) => {
          if (engine === 'own') t.deepEqual(half[i], f32[i], `${what} ${n}`);
          else t.true(relErr(half[i], f32[i]) < 1e-5, `${what} ${n}`);
        });
      }
    });
    // The wrong 16-bit type for the precision is refused, saying why.
    const x = Tensor.empty([4, 8], dtype === 'f16' ? 'bf16' : 'f16', 'cuda'), w = fresh([6, 8]).to('cuda');
    t.throws(() => inPrecision(p, () => ops.linearForward(x, w, null, poisoned([4, 6]))), { message: new RegExp(`linearForward: x is ${dtype === 'f16' ? 'bf16' : 'f16'}\\[4, 8\\] on cuda:0 but the CUDA precision ${p} takes ${dtype} activations`) });
  }
});

gpuTest('cuda 16-bit activations: layernormForward / residualLayernormForward store out in bf16/f16 and the next linear reads it in place (forward, dx, dw): bit-identical to f32 outputs rounded', (t) => {
  for (const p of ['bf16', 'fp16'] as const) {
    const dtype = p === 'fp16' ? 'f16' : 'bf16';
    eachEngine(t, (engine) => {
      // width 64: float4 loads; 24: float4 with rows 96 bytes apart; 40 rows: a partial block of rows.
      for (const [M, W, N] of [[40, 64, 96], [19, 24, 72]]) {
        const what = `[${engine}] ${p} ${M}×${W}→${N}`;
        const [x, r, g, be, w, b, dy] = [fresh([M, W], 2), fresh([M, W]), fresh([W]), fresh([W]), fresh([N, W], 0.2), fresh([N]), fresh([M, N])].map((v) => v.to('cuda'));
        const run = (residual: boolean, out16: boolean) => {
          const out = out16 ? Tensor.empty([M, W], dtype, 'cuda') : poisoned([M, W]);
          const sum = poisoned([M, W]), mean = poisoned([M]), rstd = poisoned([M]);
          const y = poisoned([M, N]), dx = poisoned([M, W]), dw = poisoned([N, W]), db = poisoned([N]);
          inPrecision(p, () => {
            if (residual) ops.residualLayernormForward(x, r, sum, g, be, out, mean, rstd);
            else ops.layernormForward(x, g, be, out, mean, rstd);
            ops.linearForward(out, w, b, y);
            ops.linearBackward(out, w, dy, { dx, dw, db });
          });
          const wide = Tensor.empty([M, W], 'f32', 'cuda');
          ops.convert(out, wide);
          return [wide, mean, rstd, y, dx, dw, db, ...(residual ? [sum] : [])].map(values);
        };
        for (const residual of [false, true]) {
          const [f32, half] = [run(residual, false), run(residual, true)];
          ['out', 'mean', 'rstd', 'y', 'dx', 'dw', 'db', 'sum'].slice(0, f32.length).forEach((n, i) => {
            t.false(f32[i].some(Number.isNaN), `${what} ${n} written`);
            if (engine === 'own' || i < 3 || i === 7) t.deepEqual(half[i], f32[i], `${what} residual=${residual} ${n}`);
            else t.true(relErr(half[i], f32[i]) < 1e-5, `${what} residual=${residual} ${n}`);
          });
        }
      }
    });
    // The wrong 16-bit type for the precision, and a 16-bit output in fp32, are refused saying why.
    const other = dtype === 'f16' ? 'bf16' : 'f16';
    const [x, g, be] = [fresh([4, 8]), fresh([8]), fresh([8])].map((v) => v.to('cuda'));
    const stats = () => [poisoned([4]), poisoned([4])] as const;
    t.throws(() => inPrecision(p, () => ops.layernormForward(x, g, be, Tensor.empty([4, 8], other, 'cuda'), ...stats())), { message: new RegExp(`layernormForward: out is ${other}\\[4, 8\\] on cuda:0 but the CUDA precision ${p} stores ${dtype} activations`) });
    t.throws(() => inPrecision('fp32', () => ops.layernormForward(x, g, be, Tensor.empty([4, 8], dtype, 'cuda'), ...stats())), { message: new RegExp(`layernormForward: out is ${dtype}\\[4, 8\\] on cuda:0 but the CUDA precision fp32 stores f32 activations`) });
    t.throws(() => inPrecision(p, () => ops.layernormForward(x, g, be, Tensor.empty([4, 6], dtype, 'cuda'), ...stats())), { message: /layernormForward: .*out/ });
  }
});

gpuTest('cuda 16-bit activations: in_proj (linearForward) stores qkv in bf16/f16 and the attention packs it as it is; attentionForward stores out 16-bit, attentionBackward reads both, out_proj reads out in place: bit-identical to f32 storage rounded', (t) => {
  for (const p of ['bf16', 'fp16'] as const) {
    const dtype = p === 'fp16' ? 'f16' : 'bf16';
    eachEngine(t, (engine) => {
      // head dims 32 and 24 (padded to 32), 5 and 77 tokens (a partial row tile), causal or not.
      for (const [B, S, W, heads, causal] of [[2, 5, 64, 2, false], [1, 77, 48, 2, true]] as const) {
        const [x, wi, bi, w, b, dy] = [fresh([B, S, W]), fresh([3 * W, W], 0.3), fresh([3 * W]), fresh([W, W], 0.2), fresh([W]), fresh([B, S, W])].map((v) => v.to('cuda'));
        const run = (qkv16: boolean, out16: boolean) => {
          const qkv = qkv16 ? Tensor.empty([B, S, 3 * W], dtype, 'cuda') : poisoned([B, S, 3 * W]);
          const out = out16 ? Tensor.empty([B, S, W], dtype, 'cuda') : poisoned([B, S, W]);
          const lse = poisoned([B, heads, S]), y = poisoned([B, S, W]), dout = poisoned([B, S, W]), dw = poisoned([W, W]), db = poisoned([W]);
          const dqkv = poisoned([B, S, 3 * W]);
          inPrecision(p, () => {
            ops.linearForward(x, wi, bi, qkv);
            ops.attentionForward(qkv, out, lse, { heads, causal });
            ops.linearForward(out, w, b, y);
            ops.linearBackward(out, w, dy, { dx: dout, dw, db });
            ops.attentionBackward(qkv, out, dout, lse, dqkv, { heads, causal });
          });
          const wide = (v: Tensor) => {
            const f = Tensor.empty(v.shape, 'f32', 'cuda');
            ops.convert(v, f);
            return f;
          };
          return [wide(qkv), wide(out), lse, y, dout, dw, db, dqkv].map(values);
        };
        const f32 = run(false, false);
        for (const [qkv16, out16] of [[false, true], [true, false], [true, true]]) {
          const what = `[${engine}] ${p} B${B} S${S} W${W} h${heads}${causal ? ' causal' : ''} qkv16 ${qkv16} out16 ${out16}`;
          const half = run(qkv16, out16);
          ['qkv', 'out', 'lse', 'y', 'dout', 'dw', 'db', 'dqkv'].forEach((n, i) => {
            t.false(f32[i].some(Number.isNaN), `${what} ${n} written`);
            if (engine === 'own' || i < 3) t.deepEqual(half[i], f32[i], `${what} ${n}`);
            else t.true(relErr(half[i], f32[i]) < 1e-5, `${what} ${n}`);
          });
        }
      }
    });
    const other = dtype === 'f16' ? 'bf16' : 'f16';
    const qkv = fresh([1, 4, 48]).to('cuda');
    t.throws(() => inPrecision(p, () => ops.attentionForward(qkv, Tensor.empty([1, 4, 16], other, 'cuda'), null, { heads: 1, causal: false })), { message: new RegExp(`attentionForward: out is ${other}\\[1, 4, 16\\] on cuda:0 but the CUDA precision ${p} takes ${dtype} activations`) });
    t.throws(() => inPrecision(p, () => ops.attentionForward(Tensor.empty([1, 4, 48], other, 'cuda'), poisoned([1, 4, 16]), null, { heads: 1, causal: false })), { message: new RegExp(`attentionForward: qkv is ${other}\\[1, 4, 48\\] on cuda:0 but the CUDA precision ${p} takes ${dtype} activations`) });
    t.throws(() => inPrecision('fp32', () => ops.attentionForward(qkv, Tensor.empty([1, 4, 16], dtype, 'cuda'), null, { heads: 1, causal: false })), { message: /attentionForward: out is .* but the CUDA precision fp32 takes f32 activations/ });
    const [xi, wi] = [fresh([4, 16]), fresh([48, 16])].map((v) => v.to('cuda'));
    t.throws(() => inPrecision('fp32', () => ops.linearForward(xi, wi, null, Tensor.empty([4, 48], dtype, 'cuda'))), { message: /linearForward: y is .* but the CUDA precision fp32 takes f32 activations/ });
  }
});
