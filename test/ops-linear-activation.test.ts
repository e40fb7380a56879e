// The fused MLP ops (CPU): linearActivationForward (c_fc and GELU/QuickGELU in one pass) and
// activationBackwardBias (the activation's backward with c_fc's bias gradient), against the
// separate ops they replace (bit for bit), float64 references and finite differences.
import test from 'ava';

import { native } from '../lib/native.js';
import * as ops from '../lib/ops.js';
import { Tensor } from '../lib/tensor.js';
import { dot, finiteDiff, lossWeights, randTensor, relErr } from './_helpers/numeric.js';

const f32 = (t: Tensor) => Array.from(t.view() as Float32Array);
type Kind = 'gelu' | 'quick_gelu';
const separateForward = (kind: Kind, h: Tensor, a: Tensor) => (kind === 'gelu' ? ops.geluForward(h, a) : ops.quickGeluForward(h, a));
const separateBackward = (kind: Kind, h: Tensor, da: Tensor, dh: Tensor) => (kind === 'gelu' ? ops.geluBackward(h, da, dh) : ops.quickGeluBackward(h, da, dh));

// Small; many rows with edge tiles (70 = 2·32 + 6 columns) and threads; K ≥ 384 (several k-blocks).
const cases = [
  { lead: [13], K: 32, N: 24, bias: true },
  { lead: [4, 250], K: 64, N: 70, bias: true },
  { lead: [300], K: 400, N: 48, bias: false },
];

for (const kind of ['gelu', 'quick_gelu'] as const) {
  for (const [ci, c] of cases.entries()) {
    test(`${kind} [${c.lead}]×${c.K}→${c.N}${c.bias ? '' : ' no bias'}: fused forward and backward equal the separate ops bit for bit`, (t) => {
      const M = c.lead.reduce((a, b) => a * b, 1);
      const x = randTensor([...c.lead, c.K], 10 + ci, 2);
      const w = randTensor([c.N, c.K], 20 + ci, 0.3);
      const b = c.bias ? randTensor([c.N], 30 + ci) : null;
      const h = Tensor.empty([...c.lead, c.N]), a = Tensor.empty([...c.lead, c.N]);
      ops.linearActivationForward(x, w, b, h, a, kind);
      const h2 = Tensor.empty([...c.lead, c.N]), a2 = Tensor.empty([...c.lead, c.N]);
      ops.linearForward(x, w, b, h2);
      separateForward(kind, h2, a2);
      t.deepEqual(f32(h), f32(h2));
      t.deepEqual(f32(a), f32(a2));

      const da = randTensor([...c.lead, c.N], 40 + ci);
      const db = Tensor.full([c.N], 0.125), dh = Tensor.empty([...c.lead, c.N]);
      ops.activationBackwardBias(h, da, dh, db, kind, true);
      const dh2 = Tensor.empty([...c.lead, c.N]);
      separateBackward(kind, h, da, dh2);
      const db2 = Tensor.full([c.N], 0.125);
      ops.linearBackward(x, w, dh2, { db: db2, accumulate: true });
      t.deepEqual(f32(dh), f32(dh2));
      t.deepEqual(f32(db), f32(db2));
      // In place (dh = da), overwriting db, and without db.
      const inPlace = da.clone();
      const dbOver = Tensor.from(new Float32Array(c.N).fill(NaN), [c.N]);
      ops.activationBackwardBias(h, inPlace, inPlace, dbOver, kind);
      t.deepEqual(f32(inPlace), f32(dh2));
      const dbFresh = Tensor.from(new Float32Array(c.N).fill(NaN), [c.N]);
      ops.linearBackward(x, w, dh2, { db: dbFresh });
      t.deepEqual(f32(dbOver), f32(dbFresh));
      const dbRef = new Float64Array(c.N);
      const dh2v = f32(dh2);
      for (let m = 0; m < M; m++) for (let n = 0; n < c.N; n++) dbRef[n] += dh2v[m * c.N + n];
      t.true(relErr(f32(dbOver), dbRef) < 1e-5, `db vs float64 ${relErr(f32(dbOver), dbRef)}`);
      const noDb = Tensor.empty([...c.lead, c.N]);
      ops.activationBackwardBias(h, da, noDb, null, kind);
      t.deepEqual(f32(noDb), f32(dh2));
    });
  }

  test(`${kind}: fused gradients match finite differences of Σ lw·f(x·wᵀ + b)`, (t) => {
    const [M, K, N] = [40, 24, 20];
    const x = randTensor([M, K], 51), w = randTensor([N, K], 52, 0.3), b = randTensor([N], 53);
    const h = Tensor.empty([M, N]), a = Tensor.empty([M, N]);
    const lw = lossWeights(M * N, 54);
    const loss = () => {
      ops.linearActivationForward(x, w, b, h, a, kind);
      return dot(a.view() as Float32Array, lw);
    };
    loss();
    const dh = Tensor.empty([M, N]), db = Tensor.empty([N]);
    ops.activationBackwardBias(h, Tensor.from(lw, [M, N]), dh, db, kind);
    const dw = Tensor.empty([N, K]);
    ops.linearBackward(x, w, dh, { dw });
    for (const [name, param, analytic] of [['b', b, f32(db)], ['w', w, f32(dw)]] as const) {
      const { idx, grad } = finiteDiff(loss, param, 16, 1e-2);
      const err = relErr(idx.map((i) => analytic[i]), grad);
      t.true(err < 1e-2, `${name}: finite-difference relErr ${err}`);
    }
  });
}

test('fused MLP ops with bf16 emulation equal the separate ops (same rounding points)', (t) => {
  const x = randTensor([300, 64], 61), w = randTensor([70, 64], 62, 0.3), b = randTensor([70], 63);
  native.setBf16Emulation(true);
  try {
    const h = Tensor.empty([300, 70]), a = Tensor.empty([300, 70]);
    ops.linearActivationForward(x, w, b, h, a, 'gelu');
    const h2 = Tensor.empty([300, 70]), a2 = Tensor.empty([300, 70]);
    ops.linearForward(x, w, b, h2);
    ops.geluForward(h2, a2);
    t.deepEqual(f32(h), f32(h2));
    t.deepEqual(f32(a), f32(a2));
    const da = randTensor([300, 70], 64);
    const dh = Tensor.empty([300, 70]), db = Tensor.zeros([70]);
    ops.activationBackwardBias(h, da, dh, db, 'gelu', true);
    const dh2 = Tensor.empty([300, 70]), db2 = Tensor.zeros([70]);
    ops.geluBackward(h, da, dh2);
    ops.linearBackward(x, w, dh2, { db: db2, accumulate: true });
    t.deepEqual(f32(dh), f32(dh2));
    t.deepEqual(f32(db), f32(db2));
  } finally {
    native.setBf16Emulation(false);
  }
});

test('fused MLP op errors name the op and the argument', (t) => {
  const x = Tensor.zeros([4, 8]), w = Tensor.zeros([6, 8]), h = Tensor.zeros([4, 6]);
  t.throws(() => ops.linearActivationForward(x, w, null, h, Tensor.zeros([4, 5]), 'gelu'), { message: /linearActivationForward: .*out/ });
  t.throws(() => ops.linearActivationForward(x, w, null, h, h, 'gelu'), { message: /linearActivationForward: .*a.*h/ });
  t.throws(() => ops.linearActivationForward(x, w, null, h, Tensor.zeros([4, 6]), 'relu' as 'gelu'), {
    message: "linearActivationForward: activation must be 'gelu' or 'quick_gelu', got 'relu'",
  });
  t.throws(() => ops.activationBackwardBias(h, h, Tensor.zeros([4, 6]), Tensor.zeros([5]), 'gelu'), { message: /activationBackwardBias: db must have shape \[6\]/ });
});
