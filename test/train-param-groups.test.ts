import test from 'ava';

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

test('OpenCLIP rule: no decay on ndim <= 1 and on no_weight_decay embeddings; decay on matrices', (t) => {
  for (const p of CLIP_PARAMS) t.is(excludeFromWeightDecay(p.name, p.shape), !p.decay, p.name);
  // A model that stores logit_scale as [1, 1] still gets no decay.
  t.true(excludeFromWeightDecay('logit_scale', [1, 1]));
  // CustomTextCLIP names.
  t.true(excludeFromWeightDecay('text.positional_embedding', [77, 512]));
  t.true(excludeFromWeightDecay('text.cls_emb', [1, 512]));
  t.false(excludeFromWeightDecay('text.token_embedding.weight', [49408, 512]));
  // A caller's own no_weight_decay set replaces the default.
  t.false(excludeFromWeightDecay('positional_embedding', [77, 512], { noWeightDecay: ['visual.positional_embedding'] }));
  t.true(excludeFromWeightDecay('visual.positional_embedding', [50, 768], { noWeightDecay: ['visual.positional_embedding'] }));
});

test('legacy rule (older OpenCLIP, the scaling-laws runs): substrings, and 2-D positional embeddings decay', (t) => {
  const legacy = { rule: 'legacy' as const };
  t.false(excludeFromWeightDecay('positional_embedding', [77, 512], legacy));
  t.false(excludeFromWeightDecay('visual.positional_embedding', [50, 768], legacy));
  t.true(excludeFromWeightDecay('visual.class_embedding', [768], legacy));
  t.true(excludeFromWeightDecay('logit_scale', [], legacy));
  t.true(excludeFromWeightDecay('visual.transformer.resblocks.0.attn.in_proj_bias', [2304], legacy));
  t.false(excludeFromWeightDecay('text_projection', [512, 512], legacy));
  // The substring test catches 2-D names too: "ln" inside a matrix's name.
  t.true(excludeFromWeightDecay('head.kiln.weight', [4, 4], legacy));
  t.false(excludeFromWeightDecay('head.kiln.weight', [4, 4]));
  t.throws(() => excludeFromWeightDecay('x', [2, 2], { rule: 'timm' as 'legacy' }), { message: /unknown rule 'timm'/ });
});

test('two groups as OpenCLIP builds them, in the given order', (t) => {
  const groups = weightDecayParamGroups(CLIP_PARAMS, 0.2);
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
