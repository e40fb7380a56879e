// Against OpenCLIP itself: small random-init models made by OpenCLIP 3.3 (torch, CPU), their
// inputs, features, loss, gradients and weights after 3 AdamW steps under both weight-decay rules,
// from benchmarks/reference/openclip_model_fixtures.py (committed under test/_fixtures/openclip/models;
// no Python here). Each model exercises config fields: QuickGELU, no_ln_pre, pool_type (avg, first,
// last, eos), final_ln_after_pool, ls_init_value, norm_kwargs.eps, no_causal_mask, proj_bias,
// proj_type 'none', custom_text names, init_logit_bias, and the SigLIP loss.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import test from 'ava';

import { CLIP, MAX_LOGIT_SCALE } from '../lib/nn/clip.js';
import { type ClipConfig, parseModelConfig } from '../lib/nn/config.js';
import { AdamW } from '../lib/optim/adamw.js';
import type { WeightDecayRule } from '../lib/optim/param_groups.js';
import { Tensor } from '../lib/tensor.js';
import { readSafetensors, type TensorRecord } from '../lib/train/safetensors.js';
import { type LossName, StepRunner } from '../lib/train/step.js';
import { maxAbsDiff, relErr } from './_helpers/numeric.js';

const dir = join(fileURLToPath(new URL('.', import.meta.url)), '_fixtures', 'openclip', 'models');
const names = readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)).sort();

interface Meta {
  config: unknown;
  loss: LossName;
  steps: boolean;
  adamw: { lr: number; beta1: number; beta2: number; eps: number; weight_decay: number };
  init_logit_scale: number;
}

async function load(name: string) {
  const meta = JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')) as Meta;
  const { tensors } = await readSafetensors(join(dir, `${name}.safetensors`));
  const get = (key: string): TensorRecord => {
    const t = tensors.get(key);
    if (!t) throw new Error(`${name}: fixture has no '${key}'`);
    return t;
  };
  const prefixed = (prefix: string) =>
    new Map([...tensors].filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), { shape: v.shape, data: v.data as Float32Array }]));
  const config: ClipConfig = parseModelConfig(meta.config, `fixture ${name}`);
  const model = new CLIP(config, { initLogitScale: meta.init_logit_scale });
  model.loadStateDict(prefixed('w.'));
  return { meta, get, prefixed, model };
}

function inputs(get: (k: string) => TensorRecord) {
  const im = get('in.images');
  const ids = get('in.ids');
  return { images: Tensor.from(im.data as Float32Array, im.shape), ids: Tensor.from(ids.data as Int32Array, ids.shape, 'i32') };
}

test('fixtures are present and small (< 5 MB together)', (t) => {
  t.true(names.length >= 6, `fixture models: ${names.join(', ')}`);
  let bytes = 0;
  for (const n of names) bytes += readFileSync(join(dir, `${n}.safetensors`)).length;
  t.true(bytes < 5e6, `${bytes} bytes`);
});

for (const name of names) {
  test(`${name}: features, loss and gradients match OpenCLIP`, async (t) => {
    const { meta, get, prefixed, model } = await load(name);
    using _m = model;
    const { images, ids } = inputs(get);
    using _i = images;
    using _d = ids;
    const fi = model.encodeImage(images).toFloat32Array();
    const ft = model.encodeText(ids).toFloat32Array();
    const ei = relErr(fi, get('out.image_features').data as Float32Array);
    const et = relErr(ft, get('out.text_features').data as Float32Array);
    t.true(ei <= 1e-5, `image features: rel err ${ei}`);
    t.true(et <= 1e-5, `text features: rel err ${et}`);

    using runner = new StepRunner(model, meta.loss);
    model.zeroGrad();
    const loss = runner.forwardBackward([{ images, ids }]);
    const refLoss = (get('out.loss').data as Float32Array)[0];
    t.true(Math.abs(loss - refLoss) <= 1e-5 * Math.max(1, Math.abs(refLoss)), `loss ${loss} vs OpenCLIP ${refLoss}`);

    const grads = prefixed('grad.');
    t.is(grads.size, model.parameters().length, 'one reference gradient per parameter');
    const bad: string[] = [];
    let worstGrad = 0;
    for (const p of model.parameters()) {
      const ref = grads.get(p.name);
      if (!ref) {
        bad.push(`${p.name}: no reference`);
        continue;
      }
      const mine = p.grad.toFloat32Array();
      // Relative to the tensor's norm, with an absolute floor for gradients that are ~0 in exact
      // arithmetic (a logit bias under the softmax loss, unused token rows).
      const diff = maxAbsDiff(mine, ref.data as Float32Array);
      const err = relErr(mine, ref.data as Float32Array);
      if (diff > 1e-7) worstGrad = Math.max(worstGrad, err);
      if (!(err <= 1e-5 || diff <= 1e-7)) bad.push(`${p.name}: rel err ${err.toExponential(2)}, max abs diff ${diff.toExponential(2)}`);
    }
    t.log(`features rel err image ${ei.toExponential(2)}, text ${et.toExponential(2)}; loss ${loss} vs ${refLoss}; worst gradient rel err ${worstGrad.toExponential(2)}`);
    t.deepEqual(bad, []);
  });
}

const trained = names.filter((n) => (JSON.parse(readFileSync(join(dir, `${n}.json`), 'utf8')) as Meta).steps);

test('training references exist for a CLIP and a SigLIP model', (t) => {
  t.true(trained.includes('vit-b-32-small') && trained.includes('siglip-small'), trained.join(', '));
});

for (const name of trained) {
  for (const rule of ['openclip-3', 'openclip-main'] as WeightDecayRule[]) {
    test(`${name}: weights after 3 AdamW steps match OpenCLIP (${rule})`, async (t) => {
      const { meta, get, prefixed, model } = await load(name);
      using _m = model;
      const { images, ids } = inputs(get);
      using _i = images;
      using _d = ids;
      const a = meta.adamw;
      using opt = new AdamW(model.parameters(), { lr: a.lr, beta1: a.beta1, beta2: a.beta2, eps: a.eps, weightDecay: a.weight_decay }, { weightDecayRule: rule });
      using runner = new StepRunner(model, meta.loss);
      const ourGrad1 = new Map<string, Float32Array>();
      for (let step = 0; step < 3; step++) {
        model.zeroGrad();
        runner.forwardBackward([{ images, ids }]);
        if (step === 0) for (const p of model.parameters()) ourGrad1.set(p.name, p.grad.toFloat32Array());
        opt.update(a.lr);
        const ls = model.logitScale.values();
        ls[0] = Math.min(Math.max(ls[0], 0), MAX_LOGIT_SCALE);
      }
      const after = prefixed(`step3.${rule}.`);
      const initial = prefixed('w.');
      const grad1 = prefixed('grad.');
      // Adam divides by √v + eps (eps 1e-6): where the first gradient is itself ~1e-6 or below, its
      // fp32 rounding error (~1e-7 here, both sides) moves the first step by a sizeable fraction of
      // lr. That covers gradients that are 0 in exact arithmetic (the attention key bias: q·b_k is
      // the same for every logit of a softmax row) and the odd element near a zero crossing. Those
      // elements (either side's first gradient below 1e-5 in magnitude, unless both are exactly 0
      // as for unused token rows, which must agree) are checked to have moved no more than 3 steps
      // can (3·lr, plus decay); they must stay under 1% of the weights. All others agree within 1e-5.
      const bad: string[] = [];
      let exempt = 0;
      let total = 0;
      let worstAll = 0;
      for (const p of model.parameters()) {
        const ref = after.get(p.name)!.data as Float32Array;
        const g1 = grad1.get(p.name)!.data as Float32Array;
        const o1 = ourGrad1.get(p.name)!;
        const w0 = initial.get(p.name)!.data as Float32Array;
        const v = p.values();
        let worst = 0;
        for (let i = 0; i < v.length; i++) {
          total++;
          const tiny = Math.min(Math.abs(g1[i]), Math.abs(o1[i])) < 1e-5;
          if (tiny && !(g1[i] === 0 && o1[i] === 0)) {
            exempt++;
            const moved = Math.max(Math.abs(v[i] - w0[i]), Math.abs(ref[i] - w0[i]));
            if (!(moved <= 3 * a.lr * (1 + a.weight_decay) + 1e-6)) bad.push(`${p.name}[${i}]: moved ${moved} in 3 steps (> 3 lr)`);
            continue;
          }
          worst = Math.max(worst, Math.abs(v[i] - ref[i]));
        }
        worstAll = Math.max(worstAll, worst);
        if (!(worst <= 1e-5)) bad.push(`${p.name}: max abs diff ${worst.toExponential(2)}`);
      }
      t.log(`${exempt} of ${total} elements have a first gradient below 1e-5 on one side (checked to move ≤ 3 lr); the rest agree within ${worstAll.toExponential(2)}`);
      t.true(exempt < 0.01 * total, `${exempt} of ${total} elements exempt`);
      t.deepEqual(bad, []);
      // The two rules differ on the positional embeddings, so the comparison tells them apart.
      const other = prefixed(`step3.${rule === 'openclip-3' ? 'openclip-main' : 'openclip-3'}.`);
      const pos = model.parameters().find((p) => p.name.endsWith('positional_embedding'))!;
      t.true(maxAbsDiff(pos.values(), other.get(pos.name)!.data as Float32Array) > 1e-6, 'the other rule gives other weights');
    });
  }
}
