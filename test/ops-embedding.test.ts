import test from 'ava';

import { native } from '../lib/native.js';
import { Tensor } from '../lib/tensor.js';
import * as ops from '../lib/ops.js';
import { randTensor, relErr, rng } from './_helpers/numeric.js';

const f32 = (t: Tensor) => t.view() as Float32Array;

function randomIds(n: number, vocab: number, seed: number): Int32Array {
  const r = rng(seed);
  return Int32Array.from({ length: n }, () => Math.floor(r() * vocab));
}

test('embeddingForward looks rows up; embeddingBackward scatter-adds repeated ids and zeroes the rest', (t) => {
  const [B, S, V, W] = [3, 6, 10, 17];
  const idsArr = randomIds(B * S, V, 1);
  idsArr[0] = idsArr[1] = idsArr[7] = 4; // a repeated id must add up
  const ids = Tensor.from(idsArr, [B, S]);
  const table = randTensor([V, W], 2);
  const out = Tensor.empty([B, S, W]);
  ops.embeddingForward(ids, table, out);
  const ref = new Float64Array(B * S * W);
  for (let n = 0; n < B * S; n++) for (let j = 0; j < W; j++) ref[n * W + j] = f32(table)[idsArr[n] * W + j];
  t.deepEqual(Array.from(f32(out)), Array.from(ref));

  const dout = randTensor([B, S, W], 3);
  const dtable = Tensor.full([V, W], 99);
  ops.embeddingBackward(ids, dout, dtable);
  const dref = new Float64Array(V * W);
  for (let n = 0; n < B * S; n++) for (let j = 0; j < W; j++) dref[idsArr[n] * W + j] += f32(dout)[n * W + j];
  t.true(relErr(f32(dtable), dref) < 1e-6, `relErr ${relErr(f32(dtable), dref)}`);
  // The backward is the transpose of the lookup: <dout, E(table)> = <dtable, table>.
  let lhs = 0;
  let rhs = 0;
  for (let i = 0; i < B * S * W; i++) lhs += f32(dout)[i] * f32(out)[i];
  for (let i = 0; i < V * W; i++) rhs += f32(dtable)[i] * f32(table)[i];
  t.true(Math.abs(lhs - rhs) < 1e-4 * Math.abs(lhs) + 1e-4);
});

test('embedding: an id out of range is an error naming its position and value, and nothing is written', (t) => {
  const idsArr = new Int32Array([1, 2, 3, 4, 5, 12]);
  const ids = Tensor.from(idsArr, [2, 3]);
  const table = randTensor([10, 4], 4);
  const out = Tensor.full([2, 3, 4], 5);
  t.throws(() => ops.embeddingForward(ids, table, out), { message: /embeddingForward: ids\[1, 2\] = 12 is out of range for a table of 10 rows/ });
  t.true(Array.from(f32(out)).every((v) => v === 5), 'out untouched');
  const neg = Tensor.from(new Int32Array([0, -1]), [2]);
  const dtable = Tensor.full([10, 4], 5);
  t.throws(() => ops.embeddingBackward(neg, Tensor.zeros([2, 4]), dtable), { message: /embeddingBackward: ids\[1\] = -1 is out of range/ });
  t.true(Array.from(f32(dtable)).every((v) => v === 5), 'dtable untouched');
  t.throws(() => ops.embeddingForward(Tensor.zeros([2, 3]), table, out), { message: /embeddingForward: ids must be i32, got f32/ });
  t.throws(() => ops.embeddingForward(ids, table, Tensor.zeros([2, 3, 5])), { message: /embeddingForward: out must have shape \[2, 3, 4\]/ });
});

test('posEmbedForward adds pos to every sample; posEmbedBackward sums over the batch', (t) => {
  const [B, S, W] = [4, 5, 9];
  const x = randTensor([B, S, W], 5);
  const pos = randTensor([S, W], 6);
  const out = Tensor.empty([B, S, W]);
  ops.posEmbedForward(x, pos, out);
  const ref = Array.from(f32(x), (v, i) => v + f32(pos)[i % (S * W)]);
  t.true(relErr(f32(out), ref) < 1e-7);
  const inPlace = x.clone();
  ops.posEmbedForward(inPlace, pos, inPlace);
  t.deepEqual(Array.from(f32(inPlace)), Array.from(f32(out)));

  const dout = randTensor([B, S, W], 7);
  const dpos = Tensor.full([S, W], 3);
  ops.posEmbedBackward(dout, dpos);
  const dref = new Float64Array(S * W);
  for (let i = 0; i < B * S * W; i++) dref[i % (S * W)] += f32(dout)[i];
  t.true(relErr(f32(dpos), dref) < 1e-6);
  t.throws(() => ops.posEmbedForward(x, Tensor.zeros([S + 1, W]), out), { message: /posEmbedForward: pos must have shape \[5, 9\], got f32\[6, 9\]/ });
});

test('posEmbedBackward over blocks and threads\' chunks: each value the batch summed in order in float64', (t) => {
  // 3 × 1000 × 3 = 3000 values a sample: several 256-value blocks in each thread's chunk, and a part block
  const [B, S, W] = [37, 1000, 3];
  const dout = randTensor([B, S, W], 21);
  const dpos = Tensor.full([S, W], 7);
  ops.posEmbedBackward(dout, dpos);
  const d = f32(dout), got = f32(dpos);
  let wrong = 0;
  for (let i = 0; i < S * W; i++) {
    let s = 0;
    for (let b = 0; b < B; b++) s += d[b * S * W + i];
    if (got[i] !== Math.fround(s)) wrong++;
  }
  t.is(wrong, 0, 'values not the float64 sum in batch order, rounded once');
});

test('posEmbedForward over many threads\' chunks: chunk edges inside a sample add the right positions', (t) => {
  // 64 × 50 × 97 values: many parallel chunks, whose edges fall anywhere in the positional table
  const [B, S, W] = [64, 50, 97];
  const x = randTensor([B, S, W], 11);
  const pos = randTensor([S, W], 12);
  const out = Tensor.empty([B, S, W]);
  ops.posEmbedForward(x, pos, out);
  const xs = f32(x), ps = f32(pos), os = f32(out);
  let wrong = 0;
  for (let i = 0; i < B * S * W; i++) if (os[i] !== Math.fround(xs[i] + ps[i % (S * W)])) wrong++;
  t.is(wrong, 0);
});

test('classTokenConcat puts cls first; its backward splits the gradient and sums dcls over the batch', (t) => {
  const [B, S, W] = [3, 4, 6];
  const x = randTensor([B, S, W], 8);
  const cls = randTensor([W], 9);
  const out = Tensor.empty([B, S + 1, W]);
  ops.classTokenConcat(x, cls, out);
  const o = f32(out);
  for (let b = 0; b < B; b++) {
    t.deepEqual(Array.from(o.subarray(b * (S + 1) * W, b * (S + 1) * W + W)), Array.from(f32(cls)));
    t.deepEqual(Array.from(o.subarray(b * (S + 1) * W + W, (b + 1) * (S + 1) * W)), Array.from(f32(x).subarray(b * S * W, (b + 1) * S * W)));
  }
  const dout = randTensor([B, S + 1, W], 10);
  const dx = Tensor.empty([B, S, W]);
  const dcls = Tensor.full([W], 1);
  ops.classTokenConcatBackward(dout, dx, dcls);
  const d = f32(dout);
  const dclsRef = new Float64Array(W);
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < W; j++) dclsRef[j] += d[b * (S + 1) * W + j];
    t.deepEqual(Array.from(f32(dx).subarray(b * S * W, (b + 1) * S * W)), Array.from(d.subarray(b * (S + 1) * W + W, (b + 1) * (S + 1) * W)));
  }
  t.true(relErr(f32(dcls), dclsRef) < 1e-6);
  t.throws(() => ops.classTokenConcat(x, cls, Tensor.zeros([B, S, W])), { message: /classTokenConcat: out must have shape \[3, 5, 6\]/ });
});

test('embedding outputs are bf16 values under bf16 emulation', (t) => {
  const ids = Tensor.from(new Int32Array([0, 3, 2]), [1, 3]);
  const table = randTensor([4, 8], 11);
  const out = Tensor.empty([1, 3, 8]);
  const pos = randTensor([3, 8], 12);
  native.setBf16Emulation(true);
  try {
    ops.embeddingForward(ids, table, out);
    ops.posEmbedForward(out, pos, out);
  } finally {
    native.setBf16Emulation(false);
  }
  t.deepEqual(Array.from(f32(out)), Array.from(out.clone('bf16').toFloat32Array()));
});
