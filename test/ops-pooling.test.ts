import test from 'ava';

import { Tensor } from '../lib/tensor.js';
import * as ops from '../lib/ops.js';
import { randTensor } from './_helpers/numeric.js';

const f32 = (t: Tensor) => t.view() as Float32Array;

test('argmaxIds finds the first position of the largest id (the end-of-text token)', (t) => {
  const eot = 49407;
  const ids = Tensor.from(
    new Int32Array([
      49406, 320, 1929, eot, 0, 0, //
      49406, eot, 0, 0, 0, 0, //
      7, 7, 7, 7, 7, 7, // ties: the first, as torch.argmax
      49406, 1, 2, 3, 4, eot,
    ]),
    [4, 6],
  );
  const out = Tensor.empty([4], 'i32');
  ops.argmaxIds(ids, out);
  t.deepEqual(Array.from(out.view() as Int32Array), [3, 1, 0, 5]);
  t.throws(() => ops.argmaxIds(ids, Tensor.empty([4])), { message: /argmaxIds: out must be i32, got f32/ });
});

test('gatherRows picks one row a sample; its backward scatters back and zeroes the rest', (t) => {
  const [B, S, W] = [3, 5, 7];
  const x = randTensor([B, S, W], 1);
  const index = Tensor.from(new Int32Array([4, 0, 2]), [B]);
  const out = Tensor.empty([B, W]);
  ops.gatherRows(x, index, out);
  const ix = [4, 0, 2];
  for (let b = 0; b < B; b++) {
    t.deepEqual(Array.from(f32(out).subarray(b * W, (b + 1) * W)), Array.from(f32(x).subarray((b * S + ix[b]) * W, (b * S + ix[b] + 1) * W)));
  }
  const dout = randTensor([B, W], 2);
  const dx = Tensor.full([B, S, W], 9);
  ops.gatherRowsBackward(dout, index, dx);
  for (let b = 0; b < B; b++) {
    for (let s = 0; s < S; s++) {
      const row = Array.from(f32(dx).subarray((b * S + s) * W, (b * S + s + 1) * W));
      t.deepEqual(row, s === ix[b] ? Array.from(f32(dout).subarray(b * W, (b + 1) * W)) : new Array(W).fill(0));
    }
  }
});

test('gatherRows: an index out of range is an error naming the sample', (t) => {
  const x = Tensor.zeros([2, 3, 4]);
  t.throws(() => ops.gatherRows(x, Tensor.from(new Int32Array([0, 3]), [2]), Tensor.zeros([2, 4])), {
    message: /gatherRows: index\[1\] = 3 is out of range for 3 rows/,
  });
  t.throws(() => ops.gatherRows(x, Tensor.from(new Int32Array([0]), [1]), Tensor.zeros([2, 4])), {
    message: /gatherRows: index must have shape \[2\], got i32\[1\]/,
  });
});
