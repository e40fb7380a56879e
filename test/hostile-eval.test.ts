// Hostile evaluation inputs: a label that would size the classifier at 2^31 classes.
import test from 'ava';

import { featureMatrix } from '../lib/eval/features.js';
import { linearProbe } from '../lib/eval/linear_probe.js';

test('linear probe: a label of 2^31-1 among two classes is refused, naming the labels and the row', (t) => {
  const n = 8;
  const x = featureMatrix(Float32Array.from({ length: n * 2 }, (_, i) => (i % 3) + 1), n, 2);
  const y = Int32Array.from({ length: n }, (_, i) => i % 2);
  y[5] = 2 ** 31 - 1;
  t.throws(() => linearProbe(x, y, x, Int32Array.from({ length: n }, (_, i) => i % 2), { trainLabelsName: "train labels 'y.npy'" }), {
    message: /train labels 'y\.npy': class id 2147483647 at row 5 implies 2147483648 classes, but only 3 distinct classes are present/,
  });
  // A few unused ids below the largest are fine (classes absent from a subset).
  const sparse = Int32Array.from({ length: n }, (_, i) => (i % 2) * 7);
  t.notThrows(() => linearProbe(x, sparse, x, sparse, { lambdas: [1e-2] }));
});
