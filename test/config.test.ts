import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';

import { listModelConfigs, loadModelConfig, mlpWidth, parseModelConfig, visionHeads, visionPatches } from '../lib/nn/config.js';

const tmp = mkdtempSync(join(tmpdir(), 'clipscale-config-'));
function writeConfig(name: string, value: unknown): string {
  const path = join(tmp, name);
  writeFileSync(path, typeof value === 'string' ? value : JSON.stringify(value));
  return path;
}

test('the shipped configs are listed and all load', (t) => {
  const names = listModelConfigs();
  for (const n of ['ViT-B-32', 'ViT-B-16', 'ViT-L-14', 'ViT-H-14', 'ViT-g-14', 'micro', 'tiny', 'small', 'small-plus']) {
    t.true(names.includes(n), `${n} is listed`);
  }
  for (const n of names) t.notThrows(() => loadModelConfig(n), n);
});

test('ViT-B-32 has OpenCLIP numbers and defaults filled in', (t) => {
  const c = loadModelConfig('ViT-B-32');
  t.is(c.name, 'ViT-B-32');
  t.is(c.embed_dim, 512);
  t.deepEqual(c.vision_cfg, { image_size: 224, layers: 12, width: 768, patch_size: 32, head_width: 64, mlp_ratio: 4 });
  t.deepEqual(c.text_cfg, { context_length: 77, vocab_size: 49408, width: 512, heads: 8, layers: 12, mlp_ratio: 4 });
  t.false(c.quick_gelu);
  t.is(visionHeads(c), 12);
  t.is(visionPatches(c), 49);
});

test('ViT-H-14 and ViT-g-14 keep their head widths and MLP ratio', (t) => {
  const h = loadModelConfig('ViT-H-14');
  t.is(visionHeads(h), 16);
  t.is(h.text_cfg.layers, 24);
  const g = loadModelConfig('ViT-g-14');
  t.is(visionHeads(g), 16);
  t.is(mlpWidth(g.vision_cfg.width, g.vision_cfg.mlp_ratio), 6144);
});

test('the CPU configs grow in size and the vocabulary can be overridden', (t) => {
  const widths = ['micro', 'tiny', 'small', 'small-plus'].map((n) => loadModelConfig(n).vision_cfg.width);
  t.deepEqual([...widths].sort((a, b) => a - b), widths);
  const tiny = loadModelConfig('tiny', { text_cfg: { vocab_size: 777 } });
  t.is(tiny.text_cfg.vocab_size, 777);
  t.is(tiny.text_cfg.width, 64, 'other text fields are kept');
  t.is(loadModelConfig('tiny').text_cfg.vocab_size, 1024, 'the shipped default is untouched');
});

test('a config loads from a path', (t) => {
  const path = writeConfig('mine.json', { embed_dim: 16, vision_cfg: { image_size: 16, layers: 1, width: 32, patch_size: 4, head_width: 16 }, text_cfg: { context_length: 8, vocab_size: 50, width: 16, heads: 2, layers: 1 }, quick_gelu: true });
  const c = loadModelConfig(path);
  t.is(c.name, 'mine');
  t.is(c.source, path);
  t.true(c.quick_gelu);
});

test('bad configs get errors naming the field and the file', (t) => {
  const base = { embed_dim: 16, vision_cfg: { image_size: 16, layers: 1, width: 32, patch_size: 4 }, text_cfg: { context_length: 8, vocab_size: 50, width: 16, heads: 2, layers: 1 } };
  const missing = writeConfig('missing.json', { ...base, text_cfg: { ...base.text_cfg, vocab_size: undefined } });
  t.throws(() => loadModelConfig(missing), { message: /missing\.json.*'text_cfg\.vocab_size' is missing/ });
  const negative = writeConfig('negative.json', { ...base, vision_cfg: { ...base.vision_cfg, layers: -2 } });
  t.throws(() => loadModelConfig(negative), { message: /negative\.json.*'vision_cfg\.layers' must be a positive integer, got -2/ });
  const heads = writeConfig('heads.json', { ...base, vision_cfg: { ...base.vision_cfg, head_width: 24 } });
  t.throws(() => loadModelConfig(heads), { message: /heads\.json.*'vision_cfg\.width' \(32\) must be a multiple of 'vision_cfg\.head_width' \(24\)/ });
  const unknown = writeConfig('unknown.json', { ...base, vision_cfg: { ...base.vision_cfg, timm_model_name: 'x' } });
  t.throws(() => loadModelConfig(unknown), { message: /unsupported field 'vision_cfg\.timm_model_name'/ });
  const broken = writeConfig('broken.json', '{ "embed_dim": ');
  t.throws(() => loadModelConfig(broken), { message: /broken\.json: not valid JSON/ });
  t.throws(() => loadModelConfig('ViT-Z-99'), { message: /unknown model 'ViT-Z-99'\. Known models: .*ViT-B-32/ });
  t.throws(() => loadModelConfig(join(tmp, 'absent.json')), { message: /file not found/ });
  t.throws(() => parseModelConfig({ ...base, quick_gelu: 'yes' }, 'caller'), { message: /model config caller: 'quick_gelu' must be true or false/ });
});

test("OpenCLIP's -quickgelu names: shipped files and the suffix on any shipped config", (t) => {
  for (const n of ['ViT-B-32', 'ViT-B-16', 'ViT-L-14']) {
    const plain = loadModelConfig(n);
    const quick = loadModelConfig(`${n}-quickgelu`);
    t.false(plain.quick_gelu, n);
    t.true(quick.quick_gelu, `${n}-quickgelu`);
    t.is(quick.name, `${n}-quickgelu`);
    t.deepEqual(quick.vision_cfg, plain.vision_cfg);
    t.deepEqual(quick.text_cfg, plain.text_cfg);
  }
  // No file of its own: tiny's config with QuickGELU, keeping the asked name.
  const tq = loadModelConfig('tiny-quickgelu');
  t.true(tq.quick_gelu);
  t.is(tq.name, 'tiny-quickgelu');
  t.deepEqual(tq.vision_cfg, loadModelConfig('tiny').vision_cfg);
  t.throws(() => loadModelConfig('nope-quickgelu'), { message: /unknown model 'nope-quickgelu'/ });
  t.throws(() => loadModelConfig('-quickgelu'), { message: /unknown model/ });
});
