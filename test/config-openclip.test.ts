// OpenCLIP's config schema beyond the plain ViT: which of OpenCLIP 3.3's shipped configs load
// (a copy of them is in test/_fixtures/openclip/model_configs.json, MIT, from open_clip), what
// each new field parses to, and the clear refusals for what is not built.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import test from 'ava';

import { CLIP } from '../lib/nn/clip.js';
import { parseModelConfig } from '../lib/nn/config.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const shipped = (JSON.parse(readFileSync(join(here, '_fixtures', 'openclip', 'model_configs.json'), 'utf8')) as { configs: Record<string, unknown> }).configs;

test("OpenCLIP 3.3's shipped configs: 45 of 144 load; every other one is refused naming what is not built", (t) => {
  const loaded: string[] = [];
  const refused = new Map<string, string[]>();
  for (const [name, cfg] of Object.entries(shipped)) {
    try {
      parseModelConfig(cfg, name);
      loaded.push(name);
    } catch (err) {
      const m = (err as Error).message;
      const why = /timm_model_name/.test(m) ? 'timm image tower'
        : /hf_model_name/.test(m) ? 'Hugging Face text tower'
          : /multimodal_cfg/.test(m) ? 'CoCa'
            : /'vision_cfg\.layers' must be a positive integer, got \[/.test(m) ? 'ResNet image tower'
              : `other: ${m}`;
      refused.set(why, [...(refused.get(why) ?? []), name]);
    }
  }
  t.is(Object.keys(shipped).length, 144);
  t.deepEqual(Object.fromEntries([...refused].map(([k, v]) => [k, v.length])), {
    'timm image tower': 78, // includes every SigLIP config: their image towers are timm models
    'Hugging Face text tower': 7,
    CoCa: 4,
    'ResNet image tower': 10,
  });
  t.is(loaded.length, 45);
  // Loaded before the new fields: 31 plain ViTs. Now also CLIPA (no_ln_pre, avg pooling,
  // final_ln_after_pool, last-token bidirectional text), the 'worldwide' models (eos pooling)
  // and ViT-M-16-alt (LayerScale). Their tokenizers (hf_tokenizer_name) are not clipscale's.
  for (const n of ['ViT-L-14-CLIPA', 'ViT-bigG-14-CLIPA-336', 'ViT-H-14-worldwide', 'ViT-L-14-worldwide-quickgelu', 'ViT-M-16-alt', 'ViT-B-32']) t.true(loaded.includes(n), n);
  t.true(refused.get('timm image tower')!.includes('ViT-B-16-SigLIP'));
});

test('the new fields parse to OpenCLIP meanings and build the matching parameters', (t) => {
  const clipa = parseModelConfig(shipped['ViT-L-14-CLIPA'], 'ViT-L-14-CLIPA');
  t.like(clipa.vision_cfg, { no_ln_pre: true, pool_type: 'avg', final_ln_after_pool: true });
  t.like(clipa.text_cfg, { pool_type: 'last', no_causal_mask: true, hf_tokenizer_name: 'bert-base-uncased' });
  const ww = parseModelConfig(shipped['ViT-L-14-worldwide'], 'ViT-L-14-worldwide');
  t.like(ww.text_cfg, { pool_type: 'eos', eos_id: 1 });
  t.is(parseModelConfig(shipped['ViT-M-16-alt'], 'ViT-M-16-alt').vision_cfg.ls_init_value, 1e-4);
  // A plain config parses exactly as before (no new keys appear).
  t.deepEqual(Object.keys(parseModelConfig(shipped['ViT-B-32'], 'ViT-B-32').vision_cfg).sort(), ['head_width', 'image_size', 'layers', 'mlp_ratio', 'patch_size', 'width']);

  const small = {
    embed_dim: 8,
    vision_cfg: { image_size: 8, layers: 1, width: 8, head_width: 4, patch_size: 4, no_ln_pre: true, ls_init_value: 0.1 },
    text_cfg: { context_length: 4, vocab_size: 10, width: 8, heads: 2, layers: 1, proj_bias: true },
    init_logit_bias: -10,
  };
  using m = new CLIP(parseModelConfig(small));
  const names = new Set(m.parameters().map((p) => p.name));
  t.false(names.has('visual.ln_pre.weight'));
  t.true(names.has('visual.transformer.resblocks.0.ls_1.gamma'));
  t.true(names.has('text_projection.weight') && names.has('text_projection.bias') && names.has('logit_bias'));
  t.is(m.namedParameters().get('visual.transformer.resblocks.0.ls_2.gamma')!.values()[0], Math.fround(0.1));
});

test('what is not built is refused clearly, naming the field', (t) => {
  const base = () => ({
    embed_dim: 8,
    vision_cfg: { image_size: 8, layers: 1, width: 8, head_width: 4, patch_size: 4 } as Record<string, unknown>,
    text_cfg: { context_length: 4, vocab_size: 10, width: 8, heads: 2, layers: 1 } as Record<string, unknown>,
  });
  const refuse = (edit: (c: ReturnType<typeof base>) => void, message: RegExp) => {
    const c = base();
    edit(c);
    t.throws(() => parseModelConfig(c, 'x'), { message });
  };
  refuse((c) => { c.vision_cfg.attentional_pool = 'parallel'; }, /'vision_cfg\.attentional_pool' "parallel" \(separate contrastive and token poolers\) is not built/);
  refuse((c) => { c.vision_cfg.attentional_pool = true; c.vision_cfg.attn_pooler_heads = 3; }, /'embed_dim' \(8\) must be a multiple of 'vision_cfg\.attn_pooler_heads' \(3\)/);
  refuse((c) => { c.vision_cfg.attentional_pool = true; c.vision_cfg.attn_pooler_queries = 1; c.vision_cfg.pool_type = 'avg'; c.vision_cfg.attn_pooler_heads = 2; }, /'attn_pooler_queries' must be at least 2/);
  refuse((c) => { c.vision_cfg.pool_type = 'none'; }, /'vision_cfg\.pool_type' 'none' makes the image tower return every token/);
  refuse((c) => { c.vision_cfg.pool_type = 'max'; }, /'vision_cfg\.pool_type' must be 'tok' or 'avg', got "max"/);
  refuse((c) => { c.text_cfg.pool_type = 'none'; }, /'text_cfg\.pool_type' 'none'/);
  refuse((c) => { c.text_cfg.proj_type = 'mlp'; }, /'text_cfg\.proj_type' 'mlp' is not supported: OpenCLIP's own text tower builds a plain linear/);
  refuse((c) => { c.text_cfg.proj_type = 'none'; c.embed_dim = 6; }, /proj_type' 'none' leaves the text features at the text width \(8\), which must then equal 'embed_dim' \(6\)/);
  refuse((c) => { c.vision_cfg.act_kwargs = { approximate: 'sigmoid' }; }, /'vision_cfg\.act_kwargs\.approximate' must be 'none' or 'tanh'/);
  refuse((c) => { c.text_cfg.norm_kwargs = { eps: 1e-6, elementwise_affine: false }; }, /unsupported field 'text_cfg\.norm_kwargs\.elementwise_affine'/);
  refuse((c) => { c.text_cfg.norm_kwargs = { eps: -1 }; }, /'text_cfg\.norm_kwargs\.eps' must be a positive number/);
  refuse((c) => { c.vision_cfg.patch_dropout = 0.5; }, /'vision_cfg\.patch_dropout' 0\.5 is not supported/);
  refuse((c) => { c.text_cfg.embed_cls = true; }, /'text_cfg\.embed_cls' is not supported/);
  refuse((c) => { (c as Record<string, unknown>).init_logit_bias = 'a'; }, /'init_logit_bias' must be a finite number/);
  refuse((c) => { c.vision_cfg.qk_norm = true; }, /unsupported field 'vision_cfg\.qk_norm'/);
});

test('flops: parameter counts follow the new fields (equal to the built model)', async (t) => {
  const { computeCost } = await import('../lib/scaling/flops.js');
  const cases = [
    shipped['ViT-L-14-CLIPA'], shipped['ViT-M-16-alt'], shipped['ViT-H-14-worldwide'],
    {
      embed_dim: 8, init_logit_bias: -10, custom_text: true,
      vision_cfg: { image_size: 8, layers: 2, width: 8, head_width: 4, patch_size: 4, no_ln_pre: true, pool_type: 'avg', ls_init_value: 0.1 },
      text_cfg: { context_length: 4, vocab_size: 10, width: 8, heads: 2, layers: 1, proj_bias: true, ls_init_value: 0.1 },
    },
    { embed_dim: 8, vision_cfg: { image_size: 8, layers: 1, width: 8, head_width: 4, patch_size: 4 }, text_cfg: { context_length: 4, vocab_size: 10, width: 8, heads: 2, layers: 1, proj_type: 'none' } },
    { embed_dim: 6, vision_cfg: { image_size: 8, layers: 1, width: 8, head_width: 4, patch_size: 4, attentional_pool: true, attn_pooler_queries: 3, attn_pooler_heads: 2 }, text_cfg: { context_length: 4, vocab_size: 10, width: 8, heads: 2, layers: 1 } },
    { embed_dim: 8, vision_cfg: { image_size: 8, layers: 1, width: 8, head_width: 4, patch_size: 4, attentional_pool: true }, text_cfg: { context_length: 4, vocab_size: 10, width: 8, heads: 2, layers: 1 } },
  ];
  for (const raw of cases) {
    const cfg = parseModelConfig(raw);
    // Count without allocating the big ones: shapes from a model only for the small configs.
    const cost = computeCost(cfg);
    if (cfg.vision_cfg.width <= 64) {
      using m = new CLIP(cfg);
      t.is(cost.params, m.parameterCount());
    } else {
      t.true(cost.params > 1e7);
    }
  }
  // ViT-M-16-alt: LayerScale adds 2·width per block to the plain ViT-M-16 of the same shape.
  const alt = computeCost(parseModelConfig(shipped['ViT-M-16-alt']));
  const plain = computeCost(parseModelConfig({ ...(shipped['ViT-M-16-alt'] as object), vision_cfg: { ...((shipped['ViT-M-16-alt'] as { vision_cfg: object }).vision_cfg), ls_init_value: undefined } }));
  const v = parseModelConfig(shipped['ViT-M-16-alt']).vision_cfg;
  t.is(alt.params - plain.params, v.layers * 2 * v.width);
});
