import test from 'ava';

import { CLIP } from '../lib/nn/clip.js';
import { parseModelConfig } from '../lib/nn/config.js';
import { Tensor } from '../lib/tensor.js';
import { StepRunner } from '../lib/train/step.js';
import { probeModelGradients, randn, rng } from './_helpers/numeric.js';

const micro = parseModelConfig({
  embed_dim: 8,
  vision_cfg: { image_size: 8, layers: 2, width: 8, head_width: 4, patch_size: 4 },
  text_cfg: { context_length: 6, vocab_size: 20, width: 8, heads: 2, layers: 2 },
});

function batch(n: number, seed: number) {
  const images = Tensor.from(randn(n * 3 * 8 * 8, seed), [n, 3, 8, 8]);
  const r = rng(seed + 1);
  const ids = new Int32Array(n * 6);
  for (let b = 0; b < n; b++) {
    const len = 2 + Math.floor(r() * 4); // eot at position len-1 (the largest id)
    for (let s = 0; s < len - 1; s++) ids[b * 6 + s] = 1 + Math.floor(r() * 17);
    ids[b * 6 + len - 1] = 19;
  }
  return { images, ids: Tensor.from(ids, [n, 6]) };
}

test('whole-model gradients match central finite differences (micro config, fp32)', (t) => {
  const model = new CLIP(micro).init(3);
  // A smaller scale keeps the loss smooth enough for finite differences.
  model.logitScale.values()[0] = Math.log(4);
  const b = batch(4, 11);
  const runner = new StepRunner(model);
  model.zeroGrad();
  const loss = runner.forwardBackward([b]);
  t.true(Number.isFinite(loss));
  const probes = probeModelGradients(model.parameters(), () => runner.lossOf(b), rng(5), 2e-3);
  const checked = probes.length;
  let worst = 0;
  let worstAt = '';
  for (const q of probes) {
    if (q.err > worst) { worst = q.err; worstAt = `${q.name}[${q.index}]: analytic ${q.analytic}, numeric ${q.numeric}`; }
    if (q.err > 5e-2) t.fail(`${q.name}[${q.index}]: analytic ${q.analytic}, numeric ${q.numeric}`);
  }
  t.log(`checked ${checked} coordinates over ${model.parameters().length} parameters; worst relative error ${worst.toExponential(2)} at ${worstAt}`);
  t.true(worst < 5e-2);
});

test('gradient accumulation over micro-batches equals the full-batch gradient', (t) => {
  const a = new CLIP(micro).init(4);
  const c = new CLIP(micro).init(4);
  const b = batch(6, 21);
  const ra = new StepRunner(a);
  const rc = new StepRunner(c);
  a.zeroGrad();
  c.zeroGrad();
  const full = ra.forwardBackward([b]);
  const img = b.images.view() as Float32Array;
  const ids = b.ids.view() as Int32Array;
  const part = (lo: number, hi: number) => ({
    images: Tensor.from(img.slice(lo * 192, hi * 192), [hi - lo, 3, 8, 8]),
    ids: Tensor.from(ids.slice(lo * 6, hi * 6), [hi - lo, 6]),
  });
  const accum = rc.forwardBackward([part(0, 2), part(2, 4), part(4, 6)]);
  t.true(Math.abs(full - accum) < 1e-6);
  for (const [i, p] of a.parameters().entries()) {
    const ga = p.grad.view() as Float32Array;
    const gc = c.parameters()[i].grad.view() as Float32Array;
    let num = 0;
    let den = 0;
    for (let k = 0; k < ga.length; k++) {
      num += (ga[k] - gc[k]) ** 2;
      den += ga[k] ** 2;
    }
    t.true(Math.sqrt(num) <= 1e-5 * Math.sqrt(den) + 1e-9, `${p.name}: ${Math.sqrt(num / Math.max(den, 1e-30))}`);
  }
});

test('activation recomputation gives bitwise the same gradients with a fraction of the activation memory', (t) => {
  const deep = parseModelConfig({ ...micro, vision_cfg: { ...micro.vision_cfg, layers: 6 }, text_cfg: { ...micro.text_cfg, layers: 6 } });
  const plain = new CLIP(deep).init(8);
  const recomputing = new CLIP(deep, { recompute: true }).init(8);
  const b = batch(4, 31);
  const rp = new StepRunner(plain);
  const rr = new StepRunner(recomputing);
  plain.zeroGrad();
  recomputing.zeroGrad();
  t.is(rp.forwardBackward([b]), rr.forwardBackward([b]));
  for (const [i, p] of plain.parameters().entries()) {
    t.deepEqual(p.grad.view(), recomputing.parameters()[i].grad.view(), p.name);
  }
  const bytesPlain = plain.bufferBytes();
  const bytesRecompute = recomputing.bufferBytes();
  t.log(`activation buffers: ${bytesPlain} bytes plain, ${bytesRecompute} bytes with recomputation (6 blocks a tower)`);
  t.true(bytesRecompute < 0.5 * bytesPlain);
});
