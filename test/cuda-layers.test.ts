// GEMM, linear, patch embedding and fused attention on the GPU against the CPU ops with
// bf16 emulation on (the GPU's numerics): fresh random inputs, GPU outputs poisoned with
// NaN first, ‖gpu − cpu‖/‖cpu‖ ≤ 1e-2, NaN never passes. GEMM ops run on both GPU GEMM
// engines (cuBLASLt where it loads, and our own kernel). Without a GPU they run on the
// emulated device (test/_helpers/cuda.ts), at smaller sizes that still cross every tile
// edge (M, N, K not multiples of the tiles; S 50, 77, 197, 257; head dims 64, 80, 88, 128).
import test, { type ExecutionContext } from 'ava';

import { native } from '../lib/native.js';
import * as ops from '../lib/ops.js';
import { Tensor } from '../lib/tensor.js';
import { countCudaTests, emulated, noGpuReason } from './_helpers/cuda.js';
import { randn, relErr } from './_helpers/numeric.js';

const TOL = 1e-2;

// A tiny CUDA allocation is the real test of "a device can be used" (library, driver, device).
const gpuMissing: string | null = noGpuReason ?? (() => {
  try {
    Tensor.empty([1], 'f32', 'cuda').dispose();
    return null;
  } catch (e) {
    return (e as Error).message;
  }
})();
const counted = countCudaTests(test, 'cuda-layers');
const gpuTest = (title: string, fn: (t: ExecutionContext) => void) =>
  gpuMissing === null
    ? test.serial(title, (t) => {
        counted();
        fn(t);
      })
    : test.skip(`${title} (skipped: ${gpuMissing})`, fn);

// The GEMM-engine switch of the CUDA library (not in NativeBinding's typed interface yet).
const gemmControls = native as unknown as {
  setCudaGemmBackend(name: string): string;
  cudaGemmBackendInfo(): string;
};

let seed = 1000;
const fresh = (shape: number[], scale = 1): Tensor => Tensor.from(randn(shape.reduce((a, b) => a * b, 1), seed++, scale), shape);
// NaN everywhere (Tensor.full refuses NaN as a fill value, so it is copied in).
const poisoned = (shape: number[]): Tensor =>
  Tensor.from(new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(NaN), shape).to('cuda');
const values = (t: Tensor): Float32Array => Float32Array.from(t.device === 'cpu' ? t.toArray() : t.to('cpu').toArray());

function close(t: ExecutionContext, gpu: Tensor, cpu: Tensor, what: string): void {
  const g = values(gpu);
  const err = relErr(g, values(cpu));
  t.false(g.some((v) => Number.isNaN(v)), `${what}: NaN in the GPU output`);
  t.true(err <= TOL, `${what}: relErr ${err.toExponential(2)} > ${TOL}`);
}

// Runs fn with bf16 emulation on (the CPU reference's mode), restoring the setting.
function emulating<T>(fn: () => T): T {
  const was = native.bf16Emulation();
  native.setBf16Emulation(true);
  try {
    return fn();
  } finally {
    native.setBf16Emulation(was);
  }
}

// Runs body once per GEMM engine that can be used here; logs the ones that cannot.
function eachEngine(t: ExecutionContext, body: (engine: string) => void): void {
  for (const engine of ['own', 'cublaslt']) {
    try {
      gemmControls.setCudaGemmBackend(engine);
    } catch (e) {
      t.log(`${engine} GEMM engine skipped: ${(e as Error).message}`);
      continue;
    }
    try {
      body(engine);
    } finally {
      gemmControls.setCudaGemmBackend('auto');
    }
  }
}

gpuTest('cuda: the GEMM engine describes itself', (t) => {
  const info = gemmControls.cudaGemmBackendInfo();
  t.log(info);
  t.regex(info, /^(cublaslt|own)/);
  t.throws(() => gemmControls.setCudaGemmBackend('fastest'), { message: /own, cublaslt or auto/ });
});

gpuTest('cuda: matmul equals the CPU (2-D, transposes, batched, shared b, beta)', (t) => {
  const cases = [
    { a: [1, 1], b: [1, 1], c: [1, 1] },
    { a: [77, 64], b: [96, 64], c: [77, 96], transB: true },
    { a: [37, 130], b: [37, 200], c: [130, 200], transA: true, alpha: 0.7 },
    { a: [3, 64, 72], b: [3, 96, 72], c: [3, 64, 96], transB: true, beta: 0.5 },
    { a: [5, 33, 129], b: [129, 65], c: [5, 33, 65] },
    emulated ? { a: [130, 72], b: [200, 72], c: [130, 200], transB: true } : { a: [512, 768], b: [2304, 768], c: [512, 2304], transB: true },
  ];
  eachEngine(t, (engine) => {
    for (const cs of cases) {
      const a = fresh(cs.a), b = fresh(cs.b), c0 = fresh(cs.c);
      const opts = { transA: cs.transA, transB: cs.transB, alpha: cs.alpha, beta: cs.beta };
      const cpu = c0.to('cpu');
      emulating(() => ops.matmul(a, b, cpu, opts));
      const gpu = cs.beta ? c0.to('cuda') : poisoned(cs.c);
      ops.matmul(a.to('cuda'), b.to('cuda'), gpu, opts);
      close(t, gpu, cpu, `[${engine}] matmul ${JSON.stringify(cs)}`);
    }
  });
});

gpuTest('cuda: linear forward and backward equal the CPU (overwrite and accumulate)', (t) => {
  eachEngine(t, (engine) => {
    for (const [M, K, N] of [[1, 1, 1], [2 * 50, 64, 192], [257, 80, 37], emulated ? [4 * 77, 136, 200] : [4 * 77, 512, 1536]]) {
      const x = fresh([M, K]), w = fresh([N, K], 0.1), b = fresh([N]), dy = fresh([M, N]);
      const what = `[${engine}] linear ${M}×${K}→${N}`;
      const y = Tensor.empty([M, N]);
      emulating(() => ops.linearForward(x, w, b, y));
      const yg = poisoned([M, N]);
      const [xg, wg, bg, dyg] = [x, w, b, dy].map((v) => v.to('cuda'));
      ops.linearForward(xg, wg, bg, yg);
      close(t, yg, y, `${what} forward`);

      const dx = Tensor.empty([M, K]), dw = Tensor.empty([N, K]), db = Tensor.empty([N]);
      emulating(() => ops.linearBackward(x, w, dy, { dx, dw, db }));
      const dxg = poisoned([M, K]), dwg = poisoned([N, K]), dbg = poisoned([N]);
      ops.linearBackward(xg, wg, dyg, { dx: dxg, dw: dwg, db: dbg });
      close(t, dxg, dx, `${what} dx`);
      close(t, dwg, dw, `${what} dw`);
      close(t, dbg, db, `${what} db`);
      emulating(() => ops.linearBackward(x, w, dy, { dw, db, accumulate: true }));
      ops.linearBackward(xg, wg, dyg, { dw: dwg, db: dbg, accumulate: true });
      close(t, dwg, dw, `${what} dw accumulated`);
      close(t, dbg, db, `${what} db accumulated`);
    }
  });
});

gpuTest('cuda: patch embedding forward and backward equal the CPU', (t) => {
  eachEngine(t, (engine) => {
    for (const [B, C, H, W, P, width] of [[2, 3, 32, 48, 8, 40], emulated ? [2, 3, 64, 96, 16, 72] : [4, 3, 224, 224, 32, 768]]) {
      const gridN = (H / P) * (W / P);
      const images = fresh([B, C, H, W]), weight = fresh([width, C, P, P], 0.05), dout = fresh([B, gridN, width]);
      const what = `[${engine}] patch embed ${B}×${C}×${H}×${W} P${P} → ${width}`;
      const out = Tensor.empty([B, gridN, width]);
      emulating(() => ops.patchEmbedForward(images, weight, out));
      const [ig, wg, dg] = [images, weight, dout].map((v) => v.to('cuda'));
      const outg = poisoned([B, gridN, width]);
      ops.patchEmbedForward(ig, wg, outg);
      close(t, outg, out, `${what} forward`);
      const dweight = Tensor.empty([width, C, P, P]), dimages = Tensor.empty([B, C, H, W]);
      emulating(() => ops.patchEmbedBackward(images, weight, dout, { dweight, dimages }));
      const dwg = poisoned([width, C, P, P]), dig = poisoned([B, C, H, W]);
      ops.patchEmbedBackward(ig, wg, dg, { dweight: dwg, dimages: dig });
      close(t, dwg, dweight, `${what} dweight`);
      close(t, dig, dimages, `${what} dimages`);
    }
  });
});

// CLIP's head dims (64, 80, 88, 128) and the small models' (16, 32); S from 1 to 1024
// (to 257 on the emulated device, with one batch entry for the longest).
const attentionCases = (d: number) => {
  const cases: Array<{ B: number; S: number; heads: number; d: number }> = [];
  for (const S of [1, 50, 77, 197, 257]) cases.push({ B: emulated && S > 100 ? 1 : 2, S, heads: 2, d });
  if (!emulated) cases.push(d === 128 ? { B: 1, S: 1024, heads: 1, d } : { B: 1, S: 1024, heads: 2, d });
  return cases;
};

for (const causal of [false, true])
  for (const hd of [64, 80, 88, 128, 32, 16])
    gpuTest(`cuda: fused attention forward and backward equal the CPU (${causal ? 'causal' : 'full'}, head dim ${hd})`, (t) => {
    for (const { B, S, heads, d } of attentionCases(hd)) {
      const W = heads * d;
      const what = `attention B${B} S${S} heads ${heads} d${d} ${causal ? 'causal' : 'full'}`;
      const qkv = fresh([B, S, 3 * W]), dout = fresh([B, S, W]);
      const out = Tensor.empty([B, S, W]), lse = Tensor.empty([B, heads, S]), dqkv = Tensor.empty([B, S, 3 * W]);
      emulating(() => {
        ops.attentionForward(qkv, out, lse, { heads, causal });
        ops.attentionBackward(qkv, out, dout, lse, dqkv, { heads, causal });
      });
      const qg = qkv.to('cuda');
      const outg = poisoned([B, S, W]), lseg = poisoned([B, heads, S]);
      ops.attentionForward(qg, outg, lseg, { heads, causal });
      close(t, outg, out, `${what} out`);
      close(t, lseg, lse, `${what} lse`);
      // Backward from the CPU's out and lse, so it is measured on its own.
      const dqkvg = poisoned([B, S, 3 * W]);
      ops.attentionBackward(qg, out.to('cuda'), dout.to('cuda'), lse.to('cuda'), dqkvg, { heads, causal });
      close(t, dqkvg, dqkv, `${what} dqkv`);
    }
  });

// The precision switch (native.cudaSetPrecision, from the precision-modes work): fp32 runs
// the SIMT kernels and must equal the CPU's fp32 op to fp32 rounding; fp16 rounds the
// operands to IEEE half (3 more bits than bf16). Both against the CPU without bf16 emulation.
const precisionSwitch = (native as unknown as { cudaSetPrecision?: (p: string) => string }).cudaSetPrecision;
for (const [precision, tol] of [['fp32', 1e-5], ['fp16', 1.5e-3]] as const) {
  const title = `cuda: fused attention in ${precision} equals the CPU's fp32 op (d 64, 80, 88, 128; S 50, 77 causal, 197, 257 causal)`;
  if (!precisionSwitch) {
    test.skip(`${title} (skipped: this build has no native.cudaSetPrecision)`, () => {});
    continue;
  }
  gpuTest(title, (t) => {
    const previous = precisionSwitch(precision);
    const worst: Record<string, number> = { out: 0, lse: 0, dqkv: 0 };
    try {
      for (const d of [64, 80, 88, 128])
        for (const [S, causal] of [[50, false], [77, true], [197, false], [257, true]] as const) {
          const B = emulated && S > 100 ? 1 : 2, heads = 2, W = heads * d;
          const what = `[${precision}] attention B${B} S${S} d${d} ${causal ? 'causal' : 'full'}`;
          const qkv = fresh([B, S, 3 * W]), dout = fresh([B, S, W]);
          const out = Tensor.empty([B, S, W]), lse = Tensor.empty([B, heads, S]), dqkv = Tensor.empty([B, S, 3 * W]);
          const was = native.bf16Emulation();
          native.setBf16Emulation(false);
          try {
            ops.attentionForward(qkv, out, lse, { heads, causal });
            ops.attentionBackward(qkv, out, dout, lse, dqkv, { heads, causal });
          } finally {
            native.setBf16Emulation(was);
          }
          const qg = qkv.to('cuda');
          const outg = poisoned([B, S, W]), lseg = poisoned([B, heads, S]), dqkvg = poisoned([B, S, 3 * W]);
          ops.attentionForward(qg, outg, lseg, { heads, causal });
          ops.attentionBackward(qg, out.to('cuda'), dout.to('cuda'), lse.to('cuda'), dqkvg, { heads, causal });
          for (const [g, c, name] of [[outg, out, 'out'], [lseg, lse, 'lse'], [dqkvg, dqkv, 'dqkv']] as const) {
            const got = values(g);
            const err = relErr(got, values(c));
            t.false(got.some((v) => Number.isNaN(v)), `${what} ${name}: NaN in the GPU output`);
            t.true(err <= tol, `${what} ${name}: relErr ${err.toExponential(2)} > ${tol}`);
            worst[name] = Math.max(worst[name]!, err);
          }
        }
      t.log(`largest relErr: ${Object.entries(worst).map(([k, v]) => `${k} ${v.toExponential(2)}`).join(', ')} (tolerance ${tol})`);
    } finally {
      precisionSwitch(previous);
    }
  });
}

gpuTest('cuda: attention rejects head dims above 128 with a clear error', (t) => {
  const qkv = Tensor.zeros([1, 4, 3 * 256], 'f32', 'cuda');
  const out = Tensor.zeros([1, 4, 256], 'f32', 'cuda');
  t.throws(() => ops.attentionForward(qkv, out, null, { heads: 1, causal: false }), { message: /head dimension 256/ });
});
