// AdamW over flat buffers (CPU): parameters, gradients and moments as views of one buffer each,
// one update per weight-decay group. It must equal the per-parameter AdamW bit for bit, keep
// every parameter's name, shape and bytes, and leave no stale tensor usable.
import test from 'ava';

import { Parameter } from '../lib/nn/module.js';
import { AdamW } from '../lib/optim/adamw.js';
import { Tensor } from '../lib/tensor.js';
import { randn } from './_helpers/numeric.js';

// Decayed and exempt parameters interleaved, so the flat order differs from the given order.
const SPECS: [string, number[]][] = [
  ['visual.conv1.weight', [8, 3, 2, 2]],
  ['visual.ln_pre.weight', [8]],
  ['visual.transformer.resblocks.0.attn.in_proj_weight', [24, 8]],
  ['visual.transformer.resblocks.0.attn.in_proj_bias', [24]],
  ['logit_scale', []],
  ['text_projection', [8, 4]],
];

function makeParams(seed: number): Parameter[] {
  return SPECS.map(([name, shape], i) => {
    const p = new Parameter(name, shape);
    p.setValues(randn(p.numel, seed + i));
    return p;
  });
}

const bytes = (t: Tensor) => Buffer.from((t.view() as Float32Array).slice().buffer);

test('flat AdamW equals per-parameter AdamW bit for bit over several steps, names and shapes kept', (t) => {
  const a = makeParams(1), b = makeParams(1);
  const before = a.map((p) => bytes(p.data));
  const flat = new AdamW(a, { lr: 1e-2, weightDecay: 0.2 });
  const plain = new AdamW(b, { lr: 1e-2, weightDecay: 0.2 }, { flat: false });
  // Rebinding keeps every value and name.
  a.forEach((p, i) => {
    t.is(p.name, SPECS[i][0]);
    t.deepEqual(p.shape, SPECS[i][1]);
    t.true(bytes(p.data).equals(before[i]), p.name);
  });
  for (let step = 0; step < 4; step++) {
    t.true(flat.zeroGrad());
    t.false(plain.zeroGrad());
    for (const p of b) p.grad.view().fill(0);
    a.forEach((p, i) => {
      const g = randn(p.numel, 100 * step + i);
      (p.grad.view() as Float32Array).set(g);
      (b[i].grad.view() as Float32Array).set(g);
    });
    flat.update(1e-2 * (step + 1), step === 2 ? 0.5 : 1);
    plain.update(1e-2 * (step + 1), step === 2 ? 0.5 : 1);
  }
  a.forEach((p, i) => {
    t.true(bytes(p.data).equals(bytes(b[i].data)), `${p.name} values`);
    t.true(bytes(flat.m[i]).equals(bytes(plain.m[i])), `${p.name} m`);
    t.true(bytes(flat.v[i]).equals(bytes(plain.v[i])), `${p.name} v`);
    t.deepEqual(flat.m[i].shape, p.shape);
  });
  // Weight decay per group: exempt parameters are not decayed (a zero gradient leaves them as they were).
  t.is(flat.usesDecay('visual.ln_pre.weight'), false);
  t.is(flat.usesDecay('text_projection'), true);
  flat.zeroGrad();
  t.true(a.every((p) => (p.grad.view() as Float32Array).every((x) => x === 0)));
  flat.dispose();
  plain.dispose();
  // The parameters stay usable after the optimizer is gone (their views hold the memory).
  t.is(a[2].values().length, 24 * 8);
});

test('Tensor.slice shares memory, and refuses ranges outside the tensor', (t) => {
  const base = Tensor.from(new Float32Array([0, 1, 2, 3, 4, 5]), [6]);
  const s = base.slice(2, [2, 2]);
  t.deepEqual(Array.from(s.view() as Float32Array), [2, 3, 4, 5]);
  (s.view() as Float32Array)[0] = 9;
  t.is((base.view() as Float32Array)[2], 9);
  t.throws(() => base.slice(3, [4]), { message: /slice: elements \[3, 7\) are outside f32\[6\]/ });
  t.throws(() => base.slice(-1, [1]), { message: /slice/ });
});
