// Whole-model gradients against central finite differences for the OpenCLIP config fields beyond
// the plain ViT (LayerScale, no_ln_pre, average pooling with ln_post before and after it, GELU's
// tanh form, LayerNorm eps, text pooling first/last/eos, bidirectional text attention, biased and
// absent text projections, CustomTextCLIP names), under the CLIP and the SigLIP loss.
import test from 'ava';

import { CLIP } from '../lib/nn/clip.js';
import { parseModelConfig } from '../lib/nn/config.js';
import { Tensor } from '../lib/tensor.js';
import { type LossName, StepRunner } from '../lib/train/step.js';
import { probeModelGradients, randn, rng } from './_helpers/numeric.js';

const VISION = { image_size: 8, layers: 2, width: 8, head_width: 4, patch_size: 4 };
const TEXT = { context_length: 6, vocab_size: 20, width: 8, heads: 2, layers: 2 };

const CASES: Array<{ name: string; loss: LossName; config: unknown }> = [
  {
    name: 'SigLIP-style: ls, no_ln_pre, avg pool (ln first), GELU-tanh, eps; text last/bidirectional/proj_bias, custom_text',
    loss: 'siglip',
    config: {
      embed_dim: 8, custom_text: true, init_logit_bias: -1,
      vision_cfg: { ...VISION, ls_init_value: 0.5, no_ln_pre: true, pool_type: 'avg', act_kwargs: { approximate: 'tanh' }, norm_kwargs: { eps: 1e-6 } },
      text_cfg: { ...TEXT, pool_type: 'last', no_causal_mask: true, proj_bias: true, ls_init_value: 0.5, act_kwargs: { approximate: 'tanh' } },
    },
  },
  {
    name: 'avg pool with final_ln_after_pool; text eos pooling, no projection',
    loss: 'clip',
    config: {
      embed_dim: 8,
      vision_cfg: { ...VISION, pool_type: 'avg', final_ln_after_pool: true },
      text_cfg: { ...TEXT, pool_type: 'eos', eos_id: 5, proj_type: 'none' },
    },
  },
  {
    name: 'attentional pooler (kdim != embed_dim, query 0 pooled)',
    loss: 'clip',
    config: { embed_dim: 6, vision_cfg: { ...VISION, attentional_pool: true, attn_pooler_queries: 3, attn_pooler_heads: 2 }, text_cfg: TEXT },
  },
  {
    name: 'attentional pooler (packed in_proj_weight, mean of queries 1..) under SigLIP',
    loss: 'siglip',
    config: { embed_dim: 8, init_logit_bias: -2, vision_cfg: { ...VISION, attentional_pool: true, attn_pooler_queries: 4, attn_pooler_heads: 2, pool_type: 'avg' }, text_cfg: TEXT },
  },
  {
    name: 'QuickGELU with LayerScale; text first-token pooling',
    loss: 'clip',
    config: { embed_dim: 8, quick_gelu: true, vision_cfg: { ...VISION, ls_init_value: 0.3, final_ln_after_pool: true }, text_cfg: { ...TEXT, pool_type: 'first', ls_init_value: 0.3 } },
  },
];

function batch(n: number, seed: number) {
  const images = Tensor.from(randn(n * 3 * 8 * 8, seed), [n, 3, 8, 8]);
  const r = rng(seed + 1);
  const ids = new Int32Array(n * 6);
  for (let b = 0; b < n; b++) {
    const len = 2 + Math.floor(r() * 4);
    for (let s = 0; s < len - 1; s++) ids[b * 6 + s] = 1 + Math.floor(r() * 17);
    ids[b * 6 + len - 1] = 19;
  }
  ids[1] = 5; // an eos id for the eos case (row 0), a second row without one
  return { images, ids: Tensor.from(ids, [n, 6], 'i32') };
}

for (const c of CASES) {
  test(`finite differences: ${c.name}`, (t) => {
    using model = new CLIP(parseModelConfig(c.config)).init(3);
    // Spread the 1-D parameters (gains, biases, gammas) so none sits at its trivial init.
    const r0 = rng(9);
    for (const p of model.parameters()) if (p.shape.length === 1) for (let i = 0; i < p.numel; i++) p.values()[i] += 0.2 * (r0() - 0.5);
    model.logitScale.values()[0] = Math.log(4);
    const b = batch(4, 11);
    using runner = new StepRunner(model, c.loss);
    model.zeroGrad();
    t.true(Number.isFinite(runner.forwardBackward([b])));
    // Small steps: the token embeddings are ~0.02 in size and first-token pooling makes the loss
    // strongly curved in them (2e-3 steps are off by ~8% there, 5e-4 by 0.1%).
    const probes = probeModelGradients(model.parameters(), () => runner.lossOf(b), rng(5), 5e-4);
    let worst = 0;
    const checked = probes.length;
    for (const q of probes) {
      worst = Math.max(worst, q.err);
      if (q.err > 5e-2) t.fail(`${q.name}[${q.index}]: analytic ${q.analytic}, numeric ${q.numeric}`);
    }
    t.log(`checked ${checked} coordinates over ${model.parameters().length} parameters; worst relative error ${worst.toExponential(2)}`);
    t.true(worst < 5e-2);
    b.images.dispose();
    b.ids.dispose();
  });
}

test('parameter names follow OpenCLIP: LayerScale gammas, biased text projection under text., no ln_pre, logit_bias', (t) => {
  using model = new CLIP(parseModelConfig(CASES[0].config));
  const names = new Set(model.parameters().map((p) => p.name));
  for (const n of [
    'visual.transformer.resblocks.0.ls_1.gamma', 'visual.transformer.resblocks.1.ls_2.gamma',
    'text.token_embedding.weight', 'text.positional_embedding', 'text.transformer.resblocks.0.ls_1.gamma',
    'text.ln_final.weight', 'text.text_projection.weight', 'text.text_projection.bias', 'logit_bias', 'logit_scale',
  ]) t.true(names.has(n), n);
  t.false(names.has('visual.ln_pre.weight'));
  t.false(names.has('text_projection'));
  t.deepEqual(model.namedParameters().get('text.text_projection.weight')!.shape, [8, 8]);
  t.deepEqual(model.logitBias!.shape, []);
  t.is(model.logitBias!.values()[0], -1);
  using plain = new CLIP(parseModelConfig(CASES[1].config));
  t.false(plain.parameters().some((p) => p.name.includes('text_projection')));
  t.is(plain.logitBias, null);
});

test('activation recomputation gives the same gradients with LayerScale and the new pooling', (t) => {
  const cfg = parseModelConfig(CASES[0].config);
  using a = new CLIP(cfg).init(4);
  using c = new CLIP(cfg, { recompute: true }).init(4);
  const b = batch(4, 21);
  using ra = new StepRunner(a, 'siglip');
  using rc = new StepRunner(c, 'siglip');
  a.zeroGrad();
  c.zeroGrad();
  t.is(ra.forwardBackward([b]), rc.forwardBackward([b]));
  for (const [i, p] of a.parameters().entries()) t.deepEqual(p.grad.toFloat32Array(), c.parameters()[i].grad.toFloat32Array(), p.name);
  b.images.dispose();
  b.ids.dispose();
});

test('loading weights of another kind says which config field to set', (t) => {
  const siglipCfg = parseModelConfig(CASES[0].config);
  using siglip = new CLIP(siglipCfg);
  using plain = new CLIP(parseModelConfig({ embed_dim: 8, vision_cfg: VISION, text_cfg: TEXT }));
  const sd = siglip.stateDict();
  t.throws(() => plain.loadStateDict(sd), { message: /CustomTextCLIP does: set 'custom_text': true/ });
  using withBias = new CLIP(parseModelConfig({ embed_dim: 8, init_logit_bias: -10, vision_cfg: VISION, text_cfg: TEXT }));
  t.throws(() => plain.loadStateDict(withBias.stateDict()), { message: /logit_bias, as SigLIP models do: give the config 'init_logit_bias'/ });
  t.throws(() => withBias.loadStateDict(plain.stateDict()), { message: /has 'init_logit_bias' but the weights have no logit_bias/ });
});

test('SigLIP: gradient accumulation over micro-batches equals the full-batch gradient', (t) => {
  const cfg = parseModelConfig(CASES[0].config);
  using a = new CLIP(cfg).init(6);
  using c = new CLIP(cfg).init(6);
  const b = batch(6, 31);
  using ra = new StepRunner(a, 'siglip');
  using rc = new StepRunner(c, 'siglip');
  a.zeroGrad();
  c.zeroGrad();
  const full = ra.forwardBackward([b]);
  const img = b.images.view() as Float32Array;
  const ids = b.ids.view() as Int32Array;
  const part = (lo: number, hi: number) => ({
    images: Tensor.from(img.slice(lo * 192, hi * 192), [hi - lo, 3, 8, 8]),
    ids: Tensor.from(ids.slice(lo * 6, hi * 6), [hi - lo, 6], 'i32'),
  });
  const parts = [part(0, 2), part(2, 4), part(4, 6)];
  const accumulated = rc.forwardBackward(parts);
  t.true(Math.abs(full - accumulated) <= 1e-6 * Math.abs(full), `${full} vs ${accumulated}`);
  for (const [i, p] of a.parameters().entries()) {
    const g = c.parameters()[i].grad.toFloat32Array();
    const ref = p.grad.toFloat32Array();
    let num = 0;
    let den = 0;
    for (let k = 0; k < g.length; k++) { num += (g[k] - ref[k]) ** 2; den += ref[k] ** 2; }
    t.true(Math.sqrt(num) <= 1e-5 * Math.sqrt(den) + 1e-9, p.name);
  }
  for (const x of [...parts, b]) { x.images.dispose(); x.ids.dispose(); }
});
