// GELU's tanh form: against a float64 evaluation, its derivative against finite differences, and
// its bf16 rounding under emulation (as the native GELU rounds its stored output).
import test from 'ava';

import { native } from '../lib/native.js';
import { geluTanhBackward, geluTanhForward } from '../lib/nn/gelu_tanh.js';
import { Tensor } from '../lib/tensor.js';
import { bf16BitsFromF32, f32FromBf16Bits } from '../lib/train/safetensors.js';
import { randn } from './_helpers/numeric.js';

const ref = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));

test('forward matches float64 within f32 rounding; backward matches central differences', (t) => {
  const xs = Float32Array.from([...randn(200, 3, 3), -10, -3, 0, 1e-4, 3, 10]);
  using x = Tensor.from(xs, [xs.length]);
  using y = Tensor.empty([xs.length]);
  geluTanhForward(x, y);
  const ys = y.view() as Float32Array;
  for (let i = 0; i < xs.length; i++) t.true(Math.abs(ys[i] - ref(xs[i])) <= 1e-7 * Math.max(1, Math.abs(ref(xs[i]))), `x=${xs[i]}`);
  using ones = Tensor.full([xs.length], 1);
  using dx = Tensor.empty([xs.length]);
  geluTanhBackward(x, ones, dx);
  const ds = dx.view() as Float32Array;
  for (let i = 0; i < xs.length; i++) {
    const h = 1e-4;
    const fd = (ref(xs[i] + h) - ref(xs[i] - h)) / (2 * h);
    t.true(Math.abs(ds[i] - fd) <= 1e-6, `x=${xs[i]}: ${ds[i]} vs ${fd}`);
  }
});

test('bf16 emulation rounds the output to bf16', (t) => {
  const xs = randn(64, 5);
  using x = Tensor.from(xs, [64]);
  using y = Tensor.empty([64]);
  const was = native.bf16Emulation();
  native.setBf16Emulation(true);
  try {
    geluTanhForward(x, y);
  } finally {
    native.setBf16Emulation(was);
  }
  const ys = y.view() as Float32Array;
  for (let i = 0; i < 64; i++) t.is(ys[i], f32FromBf16Bits(bf16BitsFromF32(Math.fround(ref(xs[i])))));
});
