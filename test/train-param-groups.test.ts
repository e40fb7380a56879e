import test from 'ava';

import { Parameter } from '../lib/nn/module.js';
import { AdamW } from '../lib/optim/adamw.js';
import { ADAMW_DEFAULTS, adamwDefaultsFor, excludeFromWeightDecay, weightDecayParamGroups } from '../lib/optim/param_groups.js';

// OpenCLIP ViT-B-32 parameter names and shapes (width 768 vision, 512 text, embed 512).
const CLIP_PARAMS: Array<{ name: string; shape: number[]; decay: boolean }> = [
  { name: 'positional_embedding', shape: [77, 512], decay: false },
  { name: 'text_projection', shape: [512, 512], decay: true },
  { name: 'logit_scale', shape: [], decay: false },
  { name: 'visual.class_embedding', shape: [768], decay: false },
  { name: 'visual.positional_embedding', shape: [50, 768], decay: false },
  { name: 'visual.proj', shape: [768, 512], decay: true },
  { name: 'visual.conv1.weight', shape: [768, 3, 32, 32], decay: true },
  { name: 'visual.ln_pre.weight', shape: [768], decay: false },
  { name: 'visual.ln_pre.bias', shape: [768], decay: false },
  { name: 'visual.transformer.resblocks.0.ln_1.weight', shape: [768], decay: false },
  { name: 'visual.transformer.resblocks.0.attn.in_proj_weight', shape: [2304, 768], decay: true },
  { name: 'visual.transformer.resblocks.0.attn.in_proj_bias', shape: [2304], decay: false },
  { name: 'visual.transformer.resblocks.0.attn.out_proj.weight', shape: [768, 768], decay: true },
  { name: 'visual.transformer.resblocks.0.mlp.c_fc.weight', shape: [3072, 768], decay: true },
  { name: 'visual.transformer.resblocks.0.mlp.c_proj.bias', shape: [768], decay: false },
  { name: 'token_embedding.weight', shape: [49408, 512], decay: true },
  { name: 'transformer.resblocks.11.ln_2.weight', shape: [512], decay: false },
  { name: 'ln_final.weight', shape: [512], decay: false },
  { name: 'ln_final.bias', shape: [512], decay: false },
];

test("'openclip-main' rule: no decay on ndim <= 1 and on no_weight_decay embeddings; decay on matrices", (t) => {
  const main = { rule: 'openclip-main' as const };
  for (const p of CLIP_PARAMS) t.is(excludeFromWeightDecay(p.name, p.shape, main), !p.decay, p.name);
  // A model that stores logit_scale as [1, 1] still gets no decay.
  t.true(excludeFromWeightDecay('logit_scale', [1, 1], main));
  // CustomTextCLIP names.
  t.true(excludeFromWeightDecay('text.positional_embedding', [77, 512], main));
  t.true(excludeFromWeightDecay('text.cls_emb', [1, 512], main));
  t.false(excludeFromWeightDecay('text.token_embedding.weight', [49408, 512], main));
  // A caller's own no_weight_decay set replaces the default.
  t.false(excludeFromWeightDecay('positional_embedding', [77, 512], { ...main, noWeightDecay: ['visual.positional_embedding'] }));
  t.true(excludeFromWeightDecay('visual.positional_embedding', [50, 768], { ...main, noWeightDecay: ['visual.positional_embedding'] }));
});

test("'openclip-3' rule (released OpenCLIP, the scaling-laws runs; the default): substrings, and 2-D positional embeddings decay", (t) => {
  const legacy = { rule: 'openclip-3' as const };
  for (const p of CLIP_PARAMS) {
    const positional = p.name.endsWith('positional_embedding');
    t.is(excludeFromWeightDecay(p.name, p.shape), positional ? false : !p.decay, `default rule: ${p.name}`);
  }
  t.false(excludeFromWeightDecay('positional_embedding', [77, 512], legacy));
  t.false(excludeFromWeightDecay('visual.positional_embedding', [50, 768], legacy));
  t.true(excludeFromWeightDecay('visual.class_embedding', [768], legacy));
  t.true(excludeFromWeightDecay('logit_scale', [], legacy));
  t.true(excludeFromWeightDecay('visual.transformer.resblocks.0.attn.in_proj_bias', [2304], legacy));
  t.false(excludeFromWeightDecay('text_projection', [512, 512], legacy));
  // The substring test catches 2-D names too: "ln" inside a matrix's name.
  t.true(excludeFromWeightDecay('head.kiln.weight', [4, 4], legacy));
  t.false(excludeFromWeightDecay('head.kiln.weight', [4, 4], { rule: 'openclip-main' }));
  t.throws(() => excludeFromWeightDecay('x', [2, 2], { rule: 'timm' as 'openclip-3' }), { message: /unknown rule "timm"/ });
});

test('two groups as OpenCLIP builds them, in the given order', (t) => {
  const groups = weightDecayParamGroups(CLIP_PARAMS, 0.2, { rule: 'openclip-main' });
  t.deepEqual(groups.map((g) => [g.name, g.weightDecay]), [['no_wd', 0], ['wd', 0.2]]);
  t.deepEqual(groups[1].params, CLIP_PARAMS.filter((p) => p.decay).map((p) => p.name));
  t.deepEqual(groups[0].params, CLIP_PARAMS.filter((p) => !p.decay).map((p) => p.name));
  t.deepEqual(weightDecayParamGroups([{ name: 'w', shape: [2, 2] }], 0.1), [{ name: 'wd', weightDecay: 0.1, params: ['w'] }]);
  t.throws(() => weightDecayParamGroups([{ name: 'w', shape: [2] }, { name: 'w', shape: [2] }], 0.1), { message: /'w' is listed twice/ });
  t.throws(() => weightDecayParamGroups([{ name: 'w', shape: [-1] }], 0.1), { message: /'w' has an invalid shape \[-1\]/ });
  t.throws(() => weightDecayParamGroups([], -1), { message: /weightDecay must be a finite number >= 0/ });
});

test('AdamW defaults are OpenCLIP\'s', (t) => {
  t.deepEqual({ ...ADAMW_DEFAULTS }, { lr: 5e-4, beta1: 0.9, beta2: 0.98, eps: 1e-6, weightDecay: 0.2 });
  t.deepEqual(adamwDefaultsFor('ViT-B-32'), { lr: 5e-4, beta1: 0.9, beta2: 0.98, eps: 1e-6, weightDecay: 0.2 });
  t.deepEqual(adamwDefaultsFor('RN50'), { lr: 5e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.2 });
  t.true(Object.isFrozen(ADAMW_DEFAULTS));
});

test('AdamW applies the rule it is given: zero gradients, so only decay moves a parameter', (t) => {
  const make = () => [new Parameter('positional_embedding', [2, 2]), new Parameter('text_projection', [2, 2]), new Parameter('ln_final.weight', [2])];
  for (const [rule, posDecays] of [['openclip-3', true], ['openclip-main', false], [undefined, true]] as const) {
    const params = make();
    for (const p of params) p.values().fill(1);
    using opt = new AdamW(params, { lr: 0.5, weightDecay: 0.2 }, rule ? { weightDecayRule: rule } : {});
    t.is(opt.weightDecayRule, rule ?? 'openclip-3');
    opt.update(0.5);
    const after = params.map((p) => p.values()[0]);
    t.is(after[0], posDecays ? Math.fround(1 - 0.5 * 0.2) : 1, `${rule}: positional_embedding`);
    t.is(after[1], Math.fround(1 - 0.5 * 0.2), `${rule}: text_projection`);
    t.is(after[2], 1, `${rule}: ln_final.weight`);
    t.is(opt.usesDecay('positional_embedding'), posDecays);
    for (const p of params) p.dispose();
  }
  t.throws(() => new AdamW([], {}, { weightDecayRule: 'legacy' as 'openclip-3' }), { message: /AdamW: unknown rule "legacy"/ });
});
