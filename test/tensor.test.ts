import test from 'ava';

import { native } from '../lib/native.js';
import { Tensor } from '../lib/tensor.js';
import * as ops from '../lib/ops.js';

test('from and view round-trip f32, i32, i64 without copying on view', (t) => {
  const a = Tensor.from(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
  t.deepEqual(a.shape, [2, 3]);
  t.is(a.dtype, 'f32');
  const v = a.view() as Float32Array;
  v[0] = 42;
  t.is((a.view() as Float32Array)[0], 42, 'view is zero-copy');
  t.deepEqual(Tensor.from(new Int32Array([7, -8])).toArray(), [7, -8]);
  t.deepEqual(Array.from(Tensor.from(new BigInt64Array([5n, -9n])).view() as BigInt64Array), [5n, -9n]);
});

test('bf16 conversion rounds to nearest even and widens exactly', (t) => {
  // 1 + 2^-8 lies halfway between two bf16 values: ties to even gives 1.
  const x = Tensor.from(new Float32Array([1 + 2 ** -8, 1 + 3 * 2 ** -8, -2.5, 65504]), [4], 'bf16');
  t.is(x.dtype, 'bf16');
  t.deepEqual(x.toArray(), [1, 1 + 2 * 2 ** -7, -2.5, 65536]);
  const nan = Tensor.from(new Float32Array([NaN]), [1], 'bf16');
  t.true(Number.isNaN(nan.toArray()[0]));
});

test('dispose frees the handle; views keep memory alive; using works', (t) => {
  const a = Tensor.zeros([4]);
  const v = a.view();
  a.dispose();
  t.true(a.disposed);
  t.is(v[0], 0, 'a view taken before dispose stays readable');
  t.throws(() => ops.fill(a, 1), { message: /fill: x is a disposed tensor/ });
  t.throws(() => a.shape, { message: /disposed/ });
  let inner: Tensor | undefined;
  {
    using b = Tensor.zeros([2]);
    inner = b;
  }
  t.true(inner.disposed);
});

test('reshape shares memory and checks sizes', (t) => {
  const a = Tensor.from(new Float32Array([1, 2, 3, 4]), [2, 2]);
  const b = a.reshape([4]);
  (b.view() as Float32Array)[3] = 9;
  t.is((a.view() as Float32Array)[3], 9);
  t.throws(() => a.reshape([3]), { message: /reshape: cannot view f32\[2, 2\] on cpu as shape \[3\]/ });
});

test('element-wise ops match a float64 reference', (t) => {
  const n = 1000;
  const xs = Float32Array.from({ length: n }, (_, i) => Math.sin(i));
  const ys = Float32Array.from({ length: n }, (_, i) => Math.cos(i));
  const x = Tensor.from(xs);
  const y = Tensor.from(ys);
  ops.axpy(0.5, x, y);
  const out = y.view() as Float32Array;
  for (let i = 0; i < n; i++) t.true(Math.abs(out[i] - (ys[i] + 0.5 * xs[i])) < 1e-6);
  ops.scale(x, -2);
  t.true(Math.abs((x.view() as Float32Array)[7] - -2 * xs[7]) < 1e-6);
  ops.fill(x, 3);
  t.true(Array.from(x.view() as Float32Array).every((v) => v === 3));
  const s = Tensor.zeros([n]);
  ops.add(x, y, s);
  t.true(Math.abs((s.view() as Float32Array)[5] - (3 + ys[5] + 0.5 * xs[5])) < 1e-6);
  const c = Tensor.zeros([n]);
  ops.copy(y, c);
  t.deepEqual(c.view(), y.view());
  const i32 = Tensor.zeros([n], 'i32');
  ops.convert(Tensor.from(new Float32Array(n).fill(-2.7)), i32);
  t.is((i32.view() as Int32Array)[0], -2);
});

test('bad arguments give errors naming the op, the argument and what was wrong', (t) => {
  const a = Tensor.zeros([3]);
  const i = Tensor.zeros([3], 'i32');
  t.throws(() => ops.axpy(1, a, i), { message: 'axpy: y must be f32, got i32[3] on cpu' });
  t.throws(() => ops.add(a, Tensor.zeros([4]), a), { message: /add: a and b must have the same shape, got f32\[3\] on cpu and f32\[4\] on cpu/ });
  // In place is fine; a view of the same memory one element along is not (threads would race over it).
  const row = Tensor.from(Float32Array.from({ length: 9 }, (_, k) => k));
  const head = row.slice(0, [8]), tail = row.slice(1, [8]);
  ops.add(head, head, head);
  ops.axpy(1, head, head);
  t.deepEqual(Array.from(row.view() as Float32Array), [0, 4, 8, 12, 16, 20, 24, 28, 8]);
  t.throws(() => ops.add(head, Tensor.zeros([8]), tail), { message: 'add: output out overlaps input a; pass a separate tensor' });
  t.throws(() => ops.add(Tensor.zeros([8]), head, tail), { message: 'add: output out overlaps input b; pass a separate tensor' });
  t.throws(() => ops.axpy(2, head, tail), { message: 'axpy: output y overlaps input x; pass a separate tensor' });
  t.deepEqual(Array.from(row.view() as Float32Array), [0, 4, 8, 12, 16, 20, 24, 28, 8]);  // refused before writing anything
  t.throws(() => native.fill({} as never, 1), { message: 'fill: x must be a Tensor, got object' });
  t.throws(() => native.scale(a.handle, 'x' as never), { message: 'scale: alpha must be a number, got string' });
  const cuda = (native.cudaBackendStatus as () => { devicesUsable: boolean })();
  if (!cuda.devicesUsable) t.throws(() => Tensor.empty([2], 'f32', 'cuda:0'), { message: /CUDA backend/ });
  t.throws(() => Tensor.empty([2], 'f8' as never), { message: /empty: dtype must be one of f32, bf16, f16, i32, i64, got 'f8'/ });
  t.throws(() => Tensor.from(new Float32Array(3), [2, 2]), { message: /needs 16 bytes, the array has 12/ });
  t.throws(() => new (native.NativeTensor as new () => unknown)(), { message: /cannot be constructed directly/ });
});

test('the thread pool can be resized and reports its size', (t) => {
  const before = native.numThreads();
  t.true(before >= 1);
  native.setNumThreads(3);
  t.is(native.numThreads(), 3);
  const x = Tensor.from(new Float32Array(1 << 20).fill(1));
  ops.scale(x, 2);
  t.true((x.view() as Float32Array).every((v) => v === 2));
  native.setNumThreads(before);
  t.is(native.numThreads(), before);
});
