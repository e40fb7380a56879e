import test from 'ava';

import { native } from '../lib/native.js';
import * as ops from '../lib/ops.js';
import { Tensor } from '../lib/tensor.js';
import { dot, finiteDiff, lossWeights, randTensor, relErr } from './_helpers/numeric.js';

const f32 = (t: Tensor): Float32Array => t.view() as Float32Array;
const nans = (shape: number[]): Tensor => Tensor.from(new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(NaN), shape);

interface Geo {
  B: number;
  S: number;
  heads: number;
  d: number;
  causal: boolean;
}

// Float64 reference, straight from the definition: per (batch, head), scores = Q·Kᵀ/√d
// with Q, K, V at columns h·d.. of qkv's three W-wide blocks; softmax; P·V.
function refAttention(qkv: Float32Array, dout: Float32Array, g: Geo) {
  const { B, S, heads, d, causal } = g;
  const W = heads * d;
  const ld = 3 * W;
  const scale = 1 / Math.sqrt(d);
  const out = new Float64Array(B * S * W);
  const lse = new Float64Array(B * heads * S);
  const dqkv = new Float64Array(B * S * ld);
  const q = (b: number, i: number, h: number, c: number) => qkv[(b * S + i) * ld + h * d + c];
  const k = (b: number, j: number, h: number, c: number) => qkv[(b * S + j) * ld + W + h * d + c];
  const v = (b: number, j: number, h: number, c: number) => qkv[(b * S + j) * ld + 2 * W + h * d + c];
  for (let b = 0; b < B; b++)
    for (let h = 0; h < heads; h++) {
      const P = new Float64Array(S * S);
      for (let i = 0; i < S; i++) {
        const n = causal ? i + 1 : S;
        let m = -Infinity;
        for (let j = 0; j < n; j++) {
          let s = 0;
          for (let c = 0; c < d; c++) s += q(b, i, h, c) * k(b, j, h, c);
          P[i * S + j] = s * scale;
          m = Math.max(m, s * scale);
        }
        let sum = 0;
        for (let j = 0; j < n; j++) sum += Math.exp(P[i * S + j] - m);
        for (let j = 0; j < n; j++) P[i * S + j] = Math.exp(P[i * S + j] - m) / sum;
        lse[(b * heads + h) * S + i] = m + Math.log(sum);
        for (let c = 0; c < d; c++) {
          let o = 0;
          for (let j = 0; j < n; j++) o += P[i * S + j] * v(b, j, h, c);
          out[(b * S + i) * W + h * d + c] = o;
        }
      }
      // Backward: dV = Pᵀ·dO, dP = dO·Vᵀ, dS = P∘(dP − Σ_j P∘dP), dQ = dS·K/√d, dK = dSᵀ·Q/√d.
      const dO = (i: number, c: number) => dout[(b * S + i) * W + h * d + c];
      for (let i = 0; i < S; i++) {
        const n = causal ? i + 1 : S;
        const dP = new Float64Array(n);
        let rowdot = 0;
        for (let j = 0; j < n; j++) {
          let s = 0;
          for (let c = 0; c < d; c++) s += dO(i, c) * v(b, j, h, c);
          dP[j] = s;
          rowdot += P[i * S + j] * s;
        }
        for (let j = 0; j < n; j++) {
          const p = P[i * S + j];
          const dS = p * (dP[j] - rowdot) * scale;
          for (let c = 0; c < d; c++) {
            dqkv[(b * S + i) * ld + h * d + c] += dS * k(b, j, h, c);
            dqkv[(b * S + j) * ld + W + h * d + c] += dS * q(b, i, h, c);
            dqkv[(b * S + j) * ld + 2 * W + h * d + c] += p * dO(i, c);
          }
        }
      }
    }
  return { out, lse, dqkv };
}

function isBf16(a: Float32Array): boolean {
  return new Uint32Array(a.buffer, a.byteOffset, a.length).every((u) => (u & 0xffff) === 0);
}

function run(qkv: Tensor, dout: Tensor, g: Geo) {
  const W = g.heads * g.d;
  const out = nans([g.B, g.S, W]);
  const lse = nans([g.B, g.heads, g.S]);
  const dqkv = nans([g.B, g.S, 3 * W]);
  const opts = { heads: g.heads, causal: g.causal };
  ops.attentionForward(qkv, out, lse, opts);
  ops.attentionBackward(qkv, out, dout, lse, dqkv, opts);
  return { out, lse, dqkv };
}

// Runs fn with the GEMM kernel switched (the CPU attention's path follows it: column-wise softmax
// in AVX-512 or AVX2 with those kernels, row-wise with the portable one); undefined if this CPU
// cannot run the kernel. Sync bodies only, so no other test sees the switch.
function withKernel<T>(kernel: 'avx512' | 'avx2' | 'portable', fn: () => T): T | undefined {
  const before = native.gemmKernel();
  try {
    native.setGemmKernel(kernel);
  } catch {
    return undefined; // this CPU cannot run it
  }
  try {
    return fn();
  } finally {
    native.setGemmKernel(before as 'best');
  }
}

const headDims: { d: number; heads: number }[] = [
  { d: 64, heads: 2 },
  { d: 32, heads: 2 },
  { d: 80, heads: 2 },
  { d: 6, heads: 3 },
];

let seed = 1000;
for (const { d, heads } of headDims)
  // S ≤ 128 takes the per-head path (cpu/attention_heads.h), longer sequences the general GEMMs
  for (const S of [1, 7, 17, 32, 50, 77, 130])
    for (const causal of [false, true]) {
      const s0 = (seed += 10);
      test(`attention d=${d}, heads=${heads}, S=${S}, ${causal ? 'causal' : 'non-causal'}: matches float64 and finite differences`, (t) => {
        const g: Geo = { B: 2, S, heads, d, causal };
        const W = heads * d;
        const qkv = randTensor([g.B, S, 3 * W], s0);
        const lw = lossWeights(g.B * S * W, s0 + 1);
        const dout = Tensor.from(lw, [g.B, S, W]);
        const got = run(qkv, dout, g);
        const ref = refAttention(f32(qkv), lw, g);
        const e = { out: relErr(f32(got.out), ref.out), lse: relErr(f32(got.lse), ref.lse), dqkv: relErr(f32(got.dqkv), ref.dqkv) };
        t.log(`relErr vs float64: out ${e.out.toExponential(2)}, lse ${e.lse.toExponential(2)}, dqkv ${e.dqkv.toExponential(2)}`);
        t.true(e.out <= 1e-5, `out relErr ${e.out}`);
        t.true(e.lse <= 1e-5, `lse relErr ${e.lse}`);
        t.true(e.dqkv <= 1e-5, `dqkv relErr ${e.dqkv}`);

        // L = Σ lw·out computed in float64 from the op's fp32 output.
        const out = Tensor.empty([g.B, S, W]);
        const loss = () => {
          ops.attentionForward(qkv, out, null, { heads, causal });
          return dot(f32(out), lw);
        };
        const { idx, grad } = finiteDiff(loss, qkv, 24, 1e-2, s0 + 2);
        const analytic = f32(got.dqkv);
        const eFd = relErr(idx.map((i) => analytic[i]), grad);
        t.log(`finite-difference relErr ${eFd.toExponential(2)}`);
        t.true(eFd < 1e-2, `finite-difference relErr ${eFd}`);
      });
    }

test('causal attention: a token never sees later tokens', (t) => {
  const g: Geo = { B: 1, S: 9, heads: 2, d: 5, causal: true };
  const W = g.heads * g.d;
  const qkv = randTensor([1, 9, 3 * W], 5);
  const before = Tensor.empty([1, 9, W]);
  ops.attentionForward(qkv, before, null, g);
  const v = f32(qkv);
  for (let c = 0; c < 3 * W; c++) v[8 * 3 * W + c] += 1; // change only the last token
  const after = Tensor.empty([1, 9, W]);
  ops.attentionForward(qkv, after, null, g);
  t.deepEqual(f32(after).subarray(0, 8 * W), f32(before).subarray(0, 8 * W));
  t.notDeepEqual(f32(after).subarray(8 * W), f32(before).subarray(8 * W));
});

test('attention errors name the op and what was wrong', (t) => {
  const out = Tensor.zeros([1, 4, 6]);
  t.throws(() => ops.attentionForward(Tensor.zeros([1, 4, 18]), out, null, { heads: 4, causal: false }), {
    message: 'attentionForward: width 6 must be a positive multiple of heads (4), got qkv f32[1, 4, 18] on cpu',
  });
  t.throws(() => ops.attentionForward(Tensor.zeros([1, 4, 20]), out, null, { heads: 2, causal: false }), {
    message: 'attentionForward: qkv\'s last dimension must be 3·width (Q, K and V packed), got f32[1, 4, 20] on cpu',
  });
  t.throws(() => ops.attentionForward(Tensor.zeros([1, 4, 18]), out, Tensor.zeros([1, 4, 2]), { heads: 2, causal: false }), {
    message: 'attentionForward: lse must have shape [1, 2, 4], got f32[1, 4, 2] on cpu',
  });
  t.throws(() => ops.attentionForward(Tensor.zeros([1, 4, 18]), Tensor.zeros([1, 4, 18]), null, { heads: 2, causal: false }), {
    message: 'attentionForward: out must have shape [1, 4, 6], got f32[1, 4, 18] on cpu',
  });
  t.throws(() => ops.attentionForward(Tensor.zeros([1, 4, 18]), out, null, { heads: 0, causal: false }), {
    message: 'attentionForward: heads must be at least 1, got 0',
  });
  t.throws(() => ops.attentionForward(Tensor.zeros([4, 18]), out, null, { heads: 2, causal: false }), {
    message: 'attentionForward: qkv must have shape [batch, tokens, 3·width], got f32[4, 18] on cpu',
  });
  const qkv = Tensor.zeros([1, 4, 18]);
  t.throws(() => ops.attentionBackward(qkv, out, Tensor.zeros([1, 4, 6]), Tensor.zeros([1, 2, 4]), Tensor.zeros([1, 4, 6]), { heads: 2, causal: true }), {
    message: /attentionBackward: dqkv and qkv must have the same shape/,
  });
  t.throws(() => ops.attentionBackward(qkv, out, Tensor.zeros([1, 4, 6]), Tensor.zeros([1, 2, 4]), qkv, { heads: 2, causal: true }), {
    message: /attentionBackward: output dqkv overlaps input qkv/,
  });
});

test.serial('attention with bf16 emulation: bf16-representable outputs close to fp32', (t) => {
  for (const causal of [false, true]) {
    const g: Geo = { B: 2, S: 50, heads: 2, d: 64, causal };
    const W = g.heads * g.d;
    const qkv = randTensor([g.B, g.S, 3 * W], 77);
    const dout = randTensor([g.B, g.S, W], 78);
    const exact = run(qkv, dout, g);
    native.setBf16Emulation(true);
    let emu;
    try {
      emu = run(qkv, dout, g);
    } finally {
      native.setBf16Emulation(false);
    }
    t.true(isBf16(f32(emu.out)), 'out is bf16-representable');
    t.true(isBf16(f32(emu.dqkv)), 'dqkv is bf16-representable');
    for (const k of ['out', 'lse', 'dqkv'] as const) {
      const e = relErr(f32(emu[k]), f32(exact[k]));
      t.log(`${causal ? 'causal' : 'non-causal'} ${k}: bf16 vs fp32 relErr ${e.toExponential(2)}`);
      t.true(e < 1e-2 && e > 0, `${causal ? 'causal' : 'non-causal'} ${k}: bf16 vs fp32 relErr ${e}`);
    }
  }
});

test('attention: a NaN in a query propagates to that row of the output, as with libm exp (never a silent probability)', (t) => {
  const g: Geo = { B: 1, S: 5, heads: 1, d: 4, causal: false };
  const qkv = randTensor([1, 5, 12], 4242);
  const data = qkv.view() as Float32Array;
  data[2 * 12 + 1] = NaN; // row 2, a query component
  const out = Tensor.empty([1, 5, 4]);
  ops.attentionForward(qkv, out, null, { heads: 1, causal: false });
  const o = f32(out);
  t.true([0, 1, 2, 3].every((c) => Number.isNaN(o[2 * 4 + c])), 'row 2 is NaN');
  t.true([0, 1, 3, 4].every((r) => [0, 1, 2, 3].every((c) => Number.isFinite(o[r * 4 + c]))), 'other rows finite');
});

test('attention, causal: a NaN query row keeps its masked probabilities exactly 0, so the values after it get finite gradients', (t) => {
  // Row 2's scores are NaN; its masked entries (keys after it) must still weigh 0 in dV = Pᵀ·dO, as
  // they did before masked entries went through the exponential as -inf (-inf − NaN is NaN). (dK
  // takes row 2's NaN query itself, so it is NaN either way.) On the column-wise (AVX-512 or AVX2 GEMM)
  // and the row-wise (portable GEMM) softmax; S = 19 spans two blocks of 16 queries.
  for (const kernel of ['avx512', 'avx2', 'portable'] as const)
    for (const S of [5, 19]) {
      const label = `${kernel}, S=${S}`;
      const ran = withKernel(kernel, () => {
        const d = 4;
        const qkv = randTensor([1, S, 3 * d], 4343 + S);
        (qkv.view() as Float32Array)[2 * 3 * d + 1] = NaN; // row 2, a query component
        const out = Tensor.empty([1, S, d]), lse = Tensor.empty([1, 1, S]), dqkv = Tensor.empty([1, S, 3 * d]);
        ops.attentionForward(qkv, out, lse, { heads: 1, causal: true });
        const o = f32(out);
        t.true([0, 1, 2, 3].every((c) => Number.isNaN(o[2 * d + c])), `${label}: row 2 is NaN`);
        const others = Array.from({ length: S }, (_, r) => r).filter((r) => r !== 2);
        t.true(others.every((r) => [0, 1, 2, 3].every((c) => Number.isFinite(o[r * d + c]))), `${label}: forward: other rows finite`);
        ops.attentionBackward(qkv, out, randTensor([1, S, d], 4344 + S), lse, dqkv, { heads: 1, causal: true });
        const g = f32(dqkv);
        for (let key = 3; key < S; key++) {
          const dv = g.slice(key * 3 * d + 2 * d, key * 3 * d + 3 * d);
          t.true(dv.every(Number.isFinite), `${label}: position ${key} (after the NaN row): dV ${dv} finite`);
        }
        return true;
      });
      if (!ran) t.log(`${label}: kernel not runnable here`);
    }
});

// With the AVX-512 or AVX2 GEMM in use, the CPU softmax runs down the columns of transposed scores
// (cpu/attention_columns.h, in that instruction set); with the portable GEMM it runs along rows:
// every path against float64 and the column paths against the row-wise one (the causal NaN test
// above runs on each too).
test('attention: the row-wise (portable GEMM) and column-wise (AVX-512, AVX2) paths all match float64 and each other', (t) => {
  let compared = 0;
  for (const [S, causal] of [[17, false], [32, true], [50, true], [7, false]] as const) {
    const g: Geo = { B: 2, S, heads: 2, d: 32, causal };
    const W = g.heads * g.d;
    const qkv = randTensor([g.B, S, 3 * W], 5000 + S);
    const lw = lossWeights(g.B * S * W, 5100 + S);
    const dout = Tensor.from(lw, [g.B, S, W]);
    const ref = refAttention(f32(qkv), lw, g);
    const results: Record<string, Float32Array[]> = {};
    for (const kernel of ['avx512', 'avx2', 'portable'] as const) {
      const got = withKernel(kernel, () => {
        const r = run(qkv, dout, g);
        return [f32(r.out), f32(r.lse), f32(r.dqkv)];
      });
      if (!got) continue;
      results[kernel] = got;
      const [eOut, eLse, eD] = [relErr(got[0], ref.out), relErr(got[1], ref.lse), relErr(got[2], ref.dqkv)];
      t.true(eOut <= 1e-5 && eLse <= 1e-5 && eD <= 1e-5, `${kernel} S=${S}: relErr out ${eOut} lse ${eLse} dqkv ${eD}`);
    }
    for (const columns of ['avx512', 'avx2'] as const) {
      if (!results[columns] || !results.portable) continue;
      for (let i = 0; i < 3; i++) t.true(relErr(results[columns][i], results.portable[i]) <= 2e-6, `S=${S}: ${columns} columns vs rows, output ${i}`);
      compared++;
    }
  }
  t.log(`paths compared on ${compared} geometries (kernels here: ${native.gemmKernel()})`);
});

test('packed attention (inference): each sequence gives what attentionForward gives it alone, bit for bit, on both paths', (t) => {
  const heads = 2, d = 16, W = heads * d;
  const lengths = [5, 1, 0, 19, 32, 3];
  const total = lengths.reduce((a, b) => a + b, 0);
  const qkv = randTensor([1, total, 3 * W], 6100);
  const all = f32(qkv);
  for (const causal of [true, false]) {
    for (const kernel of ['avx512', 'avx2', 'portable'] as const) {
      const ran = withKernel(kernel, () => {
        const out = nans([1, total, W]);
        ops.attentionForwardPacked(qkv, out, Tensor.from(Int32Array.from(lengths), [lengths.length], 'i32'), { heads, causal });
        const packed = f32(out);
        let start = 0;
        for (const n of lengths) {
          if (n > 0) {
            const alone = nans([1, n, W]);
            ops.attentionForward(Tensor.from(all.slice(start * 3 * W, (start + n) * 3 * W), [1, n, 3 * W]), alone, null, { heads, causal });
            const want = new Uint32Array(f32(alone).buffer.slice(0));
            const got = new Uint32Array(packed.slice(start * W, (start + n) * W).buffer);
            t.deepEqual(got, want, `${kernel} causal=${causal}: sequence of ${n} at ${start}`);
            // And the float64 reference on that sequence alone.
            const ref = refAttention(all.subarray(start * 3 * W, (start + n) * 3 * W), new Float32Array(n * W), { B: 1, S: n, heads, d, causal });
            t.true(relErr(packed.subarray(start * W, (start + n) * W), ref.out) <= 1e-5, `${kernel} causal=${causal}: sequence at ${start} vs float64`);
          }
          start += n;
        }
        return true;
      });
      if (!ran) t.log(`${kernel}: not on this CPU`);
    }
  }
});

test('packed attention (training): out, lse and dqkv of each sequence are what the padded ops give it alone, bit for bit, and match float64', (t) => {
  const heads = 2, d = 16, W = heads * d;
  const lengths = [5, 1, 0, 19, 32, 3];
  const total = lengths.reduce((a, b) => a + b, 0);
  const qkv = randTensor([1, total, 3 * W], 6200);
  const lw = lossWeights(total * W, 6201);
  const dout = Tensor.from(lw, [1, total, W]);
  const all = f32(qkv);
  const segs = Tensor.from(Int32Array.from(lengths), [lengths.length], 'i32');
  const bits = (a: Float32Array) => new Uint32Array(a.slice().buffer);
  for (const causal of [true, false]) {
    for (const kernel of ['avx512', 'avx2', 'portable'] as const) {
      const ran = withKernel(kernel, () => {
        const opts = { heads, causal };
        const out = nans([1, total, W]), lse = nans([heads * total]), dqkv = nans([1, total, 3 * W]);
        ops.attentionForwardPacked(qkv, out, segs, opts, lse);
        ops.attentionBackwardPacked(qkv, out, dout, lse, dqkv, segs, opts);
        let start = 0;
        for (const n of lengths) {
          if (n > 0) {
            const at = `${kernel} causal=${causal}: sequence of ${n} at ${start}`;
            const q1 = Tensor.from(all.slice(start * 3 * W, (start + n) * 3 * W), [1, n, 3 * W]);
            const o1 = nans([1, n, W]), l1 = nans([1, heads, n]), d1 = nans([1, n, 3 * W]);
            const dout1 = Tensor.from(lw.slice(start * W, (start + n) * W), [1, n, W]);
            ops.attentionForward(q1, o1, l1, opts);
            ops.attentionBackward(q1, o1, dout1, l1, d1, opts);
            t.deepEqual(bits(f32(out).subarray(start * W, (start + n) * W)), bits(f32(o1)), `${at}: out`);
            t.deepEqual(bits(f32(lse).subarray(start * heads, (start + n) * heads)), bits(f32(l1)), `${at}: lse`);
            t.deepEqual(bits(f32(dqkv).subarray(start * 3 * W, (start + n) * 3 * W)), bits(f32(d1)), `${at}: dqkv`);
            const ref = refAttention(all.subarray(start * 3 * W, (start + n) * 3 * W), lw.subarray(start * W, (start + n) * W), { B: 1, S: n, heads, d, causal });
            t.true(relErr(f32(dqkv).subarray(start * 3 * W, (start + n) * 3 * W), ref.dqkv) <= 1e-5, `${at}: dqkv vs float64`);
          }
          start += n;
        }
        return true;
      });
      if (!ran) t.log(`${kernel}: not on this CPU`);
    }
  }
});

test('packed attention errors name the op and what was wrong', (t) => {
  const lengths = (xs: number[]) => Tensor.from(Int32Array.from(xs), [xs.length], 'i32');
  const qkv = Tensor.zeros([1, 6, 12]);
  const out = Tensor.zeros([1, 6, 4]);
  const opts = { heads: 2, causal: true };
  t.throws(() => ops.attentionForwardPacked(qkv, out, lengths([2, 3]), opts), {
    message: 'attentionForwardPacked: lengths sum to 5 tokens but qkv holds 6 (f32[1, 6, 12] on cpu)',
  });
  t.throws(() => ops.attentionForwardPacked(qkv, out, lengths([7, -1]), opts), {
    message: "attentionForwardPacked: lengths[1] is -1; a sequence's length must be ≥ 0",
  });
  t.throws(() => ops.attentionForwardPacked(Tensor.zeros([2, 3, 12]), Tensor.zeros([2, 3, 4]), lengths([3, 3]), opts), {
    message: 'attentionForwardPacked: qkv must hold the packed sequences in one row, [1, tokens, 3·width], got f32[2, 3, 12] on cpu',
  });
  t.throws(() => ops.attentionForwardPacked(qkv, out, Tensor.from([6], [1]), opts), { message: /attentionForwardPacked: lengths must be i32/ });
  t.throws(() => ops.attentionForwardPacked(qkv, Tensor.zeros([1, 6, 12]), lengths([6]), opts), {
    message: 'attentionForwardPacked: out must have shape [1, 6, 4], got f32[1, 6, 12] on cpu',
  });
  t.throws(() => ops.attentionForwardPacked(qkv, out, lengths([6]), opts, Tensor.zeros([2, 6])), {
    message: 'attentionForwardPacked: lse must have shape [12], got f32[2, 6] on cpu',
  });
  const lse = Tensor.zeros([12]);
  t.throws(() => ops.attentionBackwardPacked(qkv, out, out, lse, Tensor.zeros([1, 6, 12]), lengths([2, 3]), opts), {
    message: 'attentionBackwardPacked: lengths sum to 5 tokens but qkv holds 6 (f32[1, 6, 12] on cpu)',
  });
  t.throws(() => ops.attentionBackwardPacked(qkv, out, out, Tensor.zeros([6]), Tensor.zeros([1, 6, 12]), lengths([6]), opts), {
    message: 'attentionBackwardPacked: lse must have shape [12], got f32[6] on cpu',
  });
  t.throws(() => ops.attentionBackwardPacked(qkv, out, out, lse, qkv, lengths([6]), opts), { message: 'attentionBackwardPacked: output dqkv overlaps input qkv; pass a separate tensor' });
});

// A tower's last block gets gradient at its pooled row only: attentionBackward multiplies just the
// query rows whose dO is not all zero (cpu/attention.cpp, listed_queries_backward) when they are at
// most half of a sequence's rows. Sequences below: the first row only (a class token), the last
// only (a caption's end token), three rows, none.
function sparseDout(B: number, S: number, W: number, seed: number): { lw: Float32Array; listed: number[][] } {
  const lw = lossWeights(B * S * W, seed);
  const listed = Array.from({ length: B }, (_, b) => {
    const rows = [[0], [S - 1], S >= 6 ? [1, Math.floor(S / 2), S - 2] : [0], []][b % 4];
    for (let i = 0; i < S; i++) if (!rows.includes(i)) lw.fill(i % 2 ? -0 : 0, (b * S + i) * W, (b * S + i + 1) * W);
    return rows;
  });
  return { lw, listed };
}

for (const { d, heads } of [{ d: 32, heads: 2 }, { d: 6, heads: 3 }])
  for (const S of [1, 7, 17, 50])
    for (const causal of [false, true])
      test(`attention backward, gradient at a few query rows (d=${d}, heads=${heads}, S=${S}, ${causal ? 'causal' : 'non-causal'}): matches float64 and finite differences, dQ exactly 0 elsewhere`, (t) => {
        const g: Geo = { B: 4, S, heads, d, causal };
        const W = heads * d;
        const s0 = 7000 + S * 10 + d + (causal ? 1 : 0);
        const qkv = randTensor([g.B, S, 3 * W], s0);
        const { lw, listed } = sparseDout(g.B, S, W, s0 + 1);
        for (const kernel of ['avx512', 'avx2', 'portable'] as const) {
          withKernel(kernel, () => {
            const got = run(qkv, Tensor.from(lw, [g.B, S, W]), g);
            const ref = refAttention(f32(qkv), lw, g);
            const e = relErr(f32(got.dqkv), ref.dqkv);
            t.true(e <= 1e-5, `${kernel}: dqkv relErr ${e}`);
            const dq = f32(got.dqkv);
            let exact = true;
            for (let b = 0; b < g.B; b++)
              for (let i = 0; i < S; i++)
                if (!listed[b].includes(i)) for (let c = 0; c < W; c++) exact &&= dq[(b * S + i) * 3 * W + c] === 0;
            t.true(exact, `${kernel}: dQ is 0 at the rows without gradient`);
          });
        }
        const out = Tensor.empty([g.B, S, W]);
        const loss = () => {
          ops.attentionForward(qkv, out, null, { heads, causal });
          return dot(f32(out), lw);
        };
        const { idx, grad } = finiteDiff(loss, qkv, 24, 1e-2, s0 + 2);
        const analytic = f32(run(qkv, Tensor.from(lw, [g.B, S, W]), g).dqkv);
        const eFd = relErr(idx.map((i) => analytic[i]), grad);
        t.true(eFd < 1e-2, `finite-difference relErr ${eFd}`);
      });

test('attention backward: a NaN in a query without gradient does not reach the gradients; a NaN in dO does', (t) => {
  const g: Geo = { B: 2, S: 17, heads: 2, d: 32, causal: false };
  const W = g.heads * g.d;
  const qkv = randTensor([g.B, g.S, 3 * W], 7301);
  const { lw } = sparseDout(g.B, g.S, W, 7302);  // sequence 0: row 0 only; sequence 1: row 16 only
  const clean = f32(run(qkv, Tensor.from(lw, [g.B, g.S, W]), g).dqkv).slice();
  const poisoned = Tensor.from(f32(qkv).slice(), qkv.shape);
  f32(poisoned)[5 * 3 * W + 3] = NaN;  // sequence 0, query row 5 (no gradient there), head 0
  const got = f32(run(poisoned, Tensor.from(lw, [g.B, g.S, W]), g).dqkv);
  t.deepEqual(new Uint32Array(got.slice().buffer), new Uint32Array(clean.buffer), 'the same gradients, bit for bit');
  const nanDout = lw.slice();
  nanDout[(g.S + 3) * W + 1] = NaN;  // sequence 1, row 3: its dO row is no longer zero
  const withNan = f32(run(qkv, Tensor.from(nanDout, [g.B, g.S, W]), g).dqkv);
  t.true(Number.isNaN(withNan[(g.S + 3) * 3 * W + 1]), 'dQ of the row whose dO holds the NaN is NaN');
  t.true(Number.isNaN(withNan[(g.S + 0) * 3 * W + 2 * W + 1]), 'and it reaches dV of that sequence');
  t.false(f32(run(qkv, Tensor.from(nanDout, [g.B, g.S, W]), g).dqkv).subarray(0, g.S * 3 * W).some(Number.isNaN), 'the other sequence stays finite');
});

// A tower's last block reads its attention's output at the pooled rows only: attentionForward's
// `rows` computes just those queries, with the bits every row's computation gives them.
test('attention forward on listed query rows: those rows of out and lse bit for bit as when every row is computed, the others untouched', (t) => {
  const bits = (a: Float32Array) => new Uint32Array(a.slice().buffer);
  for (const causal of [false, true])
    for (const { S, d, heads } of [{ S: 17, d: 32, heads: 2 }, { S: 50, d: 6, heads: 3 }, { S: 1, d: 8, heads: 1 }]) {
      const B = 5, W = heads * d;
      const qkv = randTensor([B, S, 3 * W], 7400 + S + d);
      // per sequence: the first row, the last, three rows, none, every row
      const picked = [[0], [S - 1], [...new Set([0, Math.floor(S / 2), S - 1])], [], Array.from({ length: S }, (_, i) => i)];
      const list = picked.flatMap((rows, b) => rows.map((i) => b * S + i));
      const rows = Tensor.from(Int32Array.from(list), [list.length], 'i32');
      for (const kernel of ['avx512', 'avx2', 'portable'] as const)
        withKernel(kernel, () => {
          const at = `${kernel}, S=${S}, d=${d}, ${causal ? 'causal' : 'non-causal'}`;
          const full = { out: nans([B, S, W]), lse: nans([B, heads, S]) };
          ops.attentionForward(qkv, full.out, full.lse, { heads, causal });
          const some = { out: nans([B, S, W]), lse: nans([B, heads, S]) };
          ops.attentionForward(qkv, some.out, some.lse, { heads, causal }, rows);
          const fo = bits(f32(full.out)), so = bits(f32(some.out)), fl = bits(f32(full.lse)), sl = bits(f32(some.lse));
          let same = true, untouched = true;
          for (let b = 0; b < B; b++)
            for (let i = 0; i < S; i++) {
              const listed = picked[b].includes(i);
              for (let c = 0; c < W; c++) {
                const k = (b * S + i) * W + c;
                if (listed) same &&= so[k] === fo[k];
                else untouched &&= Number.isNaN(f32(some.out)[k]);
              }
              for (let h = 0; h < heads; h++) {
                const k = (b * heads + h) * S + i;
                if (listed) same &&= sl[k] === fl[k];
                else untouched &&= Number.isNaN(f32(some.lse)[k]);
              }
            }
          t.true(same, `${at}: listed rows' out and lse bit for bit`);
          t.true(untouched, `${at}: the other rows left as they were`);
        });
    }
});

test('packed attention forward on listed query rows (each caption\'s last token): the same bits as every row', (t) => {
  const heads = 2, d = 16, W = heads * d;
  const lengths = [5, 1, 0, 19, 32, 3];
  const total = lengths.reduce((a, b) => a + b, 0);
  const qkv = randTensor([1, total, 3 * W], 7500);
  const segs = Tensor.from(Int32Array.from(lengths), [lengths.length], 'i32');
  const ends: number[] = [];
  lengths.reduce((start, n) => (n > 0 && ends.push(start + n - 1), start + n), 0);
  const rows = Tensor.from(Int32Array.from(ends), [ends.length], 'i32');
  for (const causal of [true, false]) {
    const full = { out: nans([1, total, W]), lse: nans([heads * total]) };
    ops.attentionForwardPacked(qkv, full.out, segs, { heads, causal }, full.lse);
    const some = { out: nans([1, total, W]), lse: nans([heads * total]) };
    ops.attentionForwardPacked(qkv, some.out, segs, { heads, causal }, some.lse, rows);
    for (const e of ends)
      t.deepEqual(new Uint32Array(f32(some.out).slice(e * W, (e + 1) * W).buffer), new Uint32Array(f32(full.out).slice(e * W, (e + 1) * W).buffer), `causal=${causal}: row ${e}`);
    t.true(Number.isNaN(f32(some.out)[0]), 'a row not listed is left as it was');
  }
});

test('attention forward rows: bad lists are refused, naming the op and the entry', (t) => {
  const qkv = Tensor.zeros([2, 3, 12]), out = Tensor.zeros([2, 3, 4]);
  const rows = (xs: number[]) => Tensor.from(Int32Array.from(xs), [xs.length], 'i32');
  const opts = { heads: 1, causal: false };
  t.throws(() => ops.attentionForward(qkv, out, null, opts, rows([0, 6])), { message: /attentionForward: rows\[1\] is 6; a query row must be in \[0, 6\)/ });
  t.throws(() => ops.attentionForward(qkv, out, null, opts, rows([2, 2])), { message: /attentionForward: rows must be strictly ascending, but rows\[1\] = 2 follows 2/ });
  t.throws(() => ops.attentionForward(qkv, out, null, opts, rows([-1])), { message: /rows\[0\] is -1/ });
  t.throws(() => ops.attentionForward(qkv, out, null, opts, Tensor.zeros([2])), { message: /attentionForward.*rows/ });
  const segs = Tensor.from(Int32Array.from([2, 4]), [2], 'i32');
  t.throws(() => ops.attentionForwardPacked(Tensor.zeros([1, 6, 12]), Tensor.zeros([1, 6, 4]), segs, opts, null, rows([5, 1])), { message: /attentionForwardPacked: rows must be strictly ascending/ });
});
