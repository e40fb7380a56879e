// The inference API (OpenCLIP's create_model_and_transforms / get_tokenizer): default vocabulary by
// model, normalised features equal to the encoder's, similarity, run folders naming their model.
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';
import sharp from 'sharp';

import { SyntheticWorld } from '../lib/data/synthetic.js';
import { createModelAndTransforms, getTokenizer, listImageFiles, normalizationFor, readRunModel, similarity } from '../lib/inference/index.js';
import { OPENAI_NORMALIZATION } from '../lib/data/normalize.js';
import { SYNTHETIC_NORMALIZATION } from '../lib/data/synthetic_normalization.js';
import { clipEncoder } from '../lib/nn/encoder.js';
import { SyntheticData } from '../lib/train/sources.js';
import { Trainer } from '../lib/train/trainer.js';
import { defaultSyntheticTokenizer } from '../lib/data/synthetic.js';

const tmp = mkdtempSync(join(tmpdir(), 'clipscale-inference-'));
const golden = JSON.parse(readFileSync(new URL('./_fixtures/tokenizer/clip_tokenizer_golden.json', import.meta.url), 'utf8')) as { cases: { text: string; ids: number[] }[] };

/** A folder of PNGs drawn from the synthetic world (32 px). */
async function imageFolder(n: number): Promise<string> {
  const dir = join(tmp, 'images');
  mkdirSync(join(dir, 'sub'), { recursive: true });
  const world = new SyntheticWorld({ imageSize: 32, size: 1000 });
  for (let i = 0; i < n; i++) {
    const s = world.materialise(i);
    const png = await sharp(Buffer.from(s.bytes), { raw: { width: 32, height: 32, channels: 3 } }).png().toBuffer();
    writeFileSync(join(dir, i % 2 ? 'sub' : '', `img${i}.png`), png);
  }
  writeFileSync(join(dir, 'notes.txt'), 'not an image');
  return dir;
}

test("getTokenizer: OpenAI's vocabulary for 49,408-token models, the synthetic one otherwise", (t) => {
  const b32 = getTokenizer('ViT-B-32');
  t.is(b32.contextLength, 77);
  t.is(b32.tokenizer.vocabSize, 49408);
  for (const c of golden.cases.slice(0, 20)) t.deepEqual(Array.from(b32(c.text)), c.ids, c.text);
  const two = b32(['a photo of a cat', 'a dog']);
  t.is(two.length, 2 * 77);
  const tiny = getTokenizer('tiny');
  t.is(tiny.contextLength, 32);
  t.is(tiny.tokenizer.vocabSize, defaultSyntheticTokenizer().vocabSize);
  t.throws(() => getTokenizer('tiny', { vocab: 'openai' }), { message: /49408 tokens but the model's text_cfg.vocab_size is 1024/ });
});

test('createModelAndTransforms: normalised features equal the encoder on preprocessed pixels; similarity', async (t) => {
  const dir = await imageFolder(6);
  const files = listImageFiles(dir);
  t.is(files.length, 6, 'recursive, images only');
  using clip = await createModelAndTransforms('micro', { seed: 3 });
  const img = await clip.encodeImages(files);
  t.is(img.rows, 6);
  t.is(img.cols, 32);
  const prompts = ['a red circle', 'a blue square', 'a green star'];
  const txt = await clip.encodeTexts(prompts);
  t.is(txt.rows, 3);
  for (const m of [img, txt]) {
    for (let r = 0; r < m.rows; r++) {
      let ss = 0;
      for (let c = 0; c < m.cols; c++) ss += m.data[r * m.cols + c] ** 2;
      t.true(Math.abs(ss - 1) < 1e-5, `row ${r} has unit norm (${ss})`);
    }
  }
  // The same through the lower-level pieces: preprocess + the encoder, normalised here.
  const px = await clip.preprocess(files[1]);
  t.is(px.length, 3 * 32 * 32);
  const raw = await clipEncoder(clip.model).encodeImages(px, 1);
  const norm = Math.hypot(...raw);
  for (let c = 0; c < 32; c++) t.true(Math.abs(raw[c] / norm - img.data[32 + c]) < 1e-6);
  const rawText = await clipEncoder(clip.model).encodeTexts(clip.tokenizer(prompts[2]), 1);
  const tn = Math.hypot(...rawText);
  for (let c = 0; c < 32; c++) t.true(Math.abs(rawText[c] / tn - txt.data[64 + c]) < 1e-6);

  const cos = similarity(img, txt);
  t.is(cos.rows, 6);
  t.is(cos.cols, 3);
  let dot = 0;
  for (let c = 0; c < 32; c++) dot += img.data[32 + c] * txt.data[64 + c];
  t.true(Math.abs(cos.data[1 * 3 + 2] - dot) < 1e-6);
  const probs = similarity(img, txt, { scale: 100, softmax: true });
  for (let r = 0; r < 6; r++) {
    const row = Array.from(probs.data.subarray(r * 3, r * 3 + 3));
    t.true(Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-5);
    // The softmax keeps the order of the scores.
    const scores = Array.from(cos.data.subarray(r * 3, r * 3 + 3));
    t.is(row.indexOf(Math.max(...row)), scores.indexOf(Math.max(...scores)));
  }
  t.throws(() => similarity(img, { data: new Float32Array(4), rows: 1, cols: 4 }), { message: /32 columns but the second 4/ });
  await t.throwsAsync(clip.encodeImages([join(dir, 'notes.txt')]), { message: /cannot read image '.*notes.txt'/ });
});

test('createModelAndTransforms: a run folder names its model; weights are loaded', async (t) => {
  const out = join(tmp, 'run');
  const data = new SyntheticData({ size: 64, imageSize: 32, contextLength: 32, tokenizer: defaultSyntheticTokenizer() });
  {
    using trainer = new Trainer({ model: 'micro', data, batchSize: 8, samples: 16, out, seed: 5 });
    await trainer.train();
  }
  const saved = await readRunModel(out);
  t.is(saved.name, 'micro');
  t.is(saved.config.embed_dim, 32);
  using fromRun = await createModelAndTransforms(undefined, { pretrained: out });
  using fresh = await createModelAndTransforms('micro', { seed: 5 });
  using named = await createModelAndTransforms('micro', { pretrained: out });
  const a = fromRun.model.logitScale.values()[0];
  t.is(a, named.model.logitScale.values()[0]);
  const w1 = fromRun.model.namedParameters().get('visual.proj')!.values();
  const w0 = fresh.model.namedParameters().get('visual.proj')!.values();
  t.notDeepEqual(Array.from(w1), Array.from(w0), 'trained weights, not a fresh initialisation');
  await t.throwsAsync(createModelAndTransforms(undefined), { message: /give a model name/ });
  await t.throwsAsync(createModelAndTransforms(undefined, { pretrained: tmp }), { message: /holds no whole training checkpoint/ });
});

test("image normalisation: OpenAI's for 49,408-token models, the synthetic world's otherwise, or as given", async (t) => {
  t.is(normalizationFor(undefined, 49408), OPENAI_NORMALIZATION);
  t.is(normalizationFor(undefined, 1024), SYNTHETIC_NORMALIZATION);
  t.is(normalizationFor('openai', 1024), OPENAI_NORMALIZATION);
  const mine = { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] };
  t.is(normalizationFor(mine, 1024), mine);
  t.throws(() => normalizationFor({ mean: [0.5], std: [0.2] }, 1024), { message: /expected 'openai', 'synthetic' or \{mean/ });
  using a = await createModelAndTransforms('micro');
  using b = await createModelAndTransforms('micro', { normalization: 'openai' });
  t.is(a.normalization, SYNTHETIC_NORMALIZATION);
  const png = await sharp(Buffer.alloc(32 * 32 * 3, 128), { raw: { width: 32, height: 32, channels: 3 } }).png().toBuffer();
  const pa = await a.preprocess(png);
  const pb = await b.preprocess(png);
  t.true(Math.abs(pa[0] - (128 / 255 - SYNTHETIC_NORMALIZATION.mean[0]) / SYNTHETIC_NORMALIZATION.std[0]) < 1e-5);
  t.true(Math.abs(pb[0] - (128 / 255 - OPENAI_NORMALIZATION.mean[0]) / OPENAI_NORMALIZATION.std[0]) < 1e-5);
});
