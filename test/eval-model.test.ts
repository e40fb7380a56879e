import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';
import sharp from 'sharp';

import { command } from '../lib/cli/commands/eval.js';
import { SYNTHETIC_MEAN, SYNTHETIC_NORMALIZATION, SYNTHETIC_STD } from '../lib/data/synthetic_normalization.js';
import { defaultSyntheticTokenizer, SyntheticWorld } from '../lib/data/synthetic.js';
import { TarWriter } from '../lib/data/tar_write.js';
import { textEmbedder } from '../lib/eval/encoder.js';
import { featureMatrix } from '../lib/eval/features.js';
import { imageFolderImages, splitImages, syntheticTaskImages, webdatasetImages, type LabelledImages } from '../lib/eval/labelled_images.js';
import { modelTokenize, retrievalEval, syntheticRetrievalEval, zeroShotEval } from '../lib/eval/model_eval.js';
import { writeNpy } from '../lib/eval/npy.js';
import { retrievalMetrics } from '../lib/eval/retrieval.js';
import { promptTexts } from '../lib/eval/zeroshot.js';
import { createModel } from '../lib/nn/clip.js';
import { parseModelConfig } from '../lib/nn/config.js';
import { clipEncoder } from '../lib/nn/encoder.js';
import { writeSafetensors, type TensorRecord } from '../lib/train/safetensors.js';
import { SyntheticData } from '../lib/train/sources.js';
import { Trainer } from '../lib/train/trainer.js';
import { runJsonCommand } from './_helpers/cli.js';

const tokenizer = defaultSyntheticTokenizer();
const microJson = {
  embed_dim: 16,
  vision_cfg: { image_size: 16, layers: 1, width: 16, head_width: 8, patch_size: 8 },
  text_cfg: { context_length: 16, vocab_size: tokenizer.vocabSize, width: 16, heads: 2, layers: 1 },
};
const micro = parseModelConfig(microJson);

const dir = mkdtempSync(join(tmpdir(), 'clipscale-eval-model-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));
const f = (name: string) => join(dir, name);

// One model for the whole file: a micro CLIP after a few training steps (its zero-shot is weak
// but not constant, so the metrics below are not all ties).
const trainer = new Trainer({ model: micro, data: new SyntheticData({ size: 2048, imageSize: 16, contextLength: 16 }), batchSize: 64, samples: 640, lr: 3e-3, warmup: 2, seed: 4 });
const ready = (async () => {
  await trainer.train();
  const tensors: Record<string, TensorRecord> = {};
  for (const [name, v] of trainer.model.stateDict()) tensors[name] = { dtype: 'F32', shape: v.shape, data: v.data };
  await writeSafetensors(f('micro.safetensors'), tensors);
  writeFileSync(f('micro.json'), JSON.stringify(microJson));
  return trainer.model;
})();
test.after.always(() => trainer.dispose());

/** Runs `clipscale eval ...` in-process and returns the JSON it printed. */
const run = (args: string[]) => runJsonCommand(command, args);

/** Normalised CHW floats back to RGB bytes (the synthetic renders are bytes, so this is exact). */
function toBytes(data: LabelledImages, i: number): Buffer {
  const s = data.imageSize;
  const plane = s * s;
  const out = Buffer.alloc(3 * plane);
  for (let c = 0; c < 3; c++) {
    for (let p = 0; p < plane; p++) {
      const x = data.pixels[i * 3 * plane + c * plane + p];
      out[p * 3 + c] = Math.round((x * SYNTHETIC_STD[c] + SYNTHETIC_MEAN[c]) * 255);
    }
  }
  return out;
}

async function png(data: LabelledImages, i: number): Promise<Buffer> {
  const s = data.imageSize;
  return sharp(toBytes(data, i), { raw: { width: s, height: s, channels: 3 } }).png().toBuffer();
}

test.serial('zero-shot from the model equals the precomputed-features path (eval zeroshot on .npy) on the same features', async (t) => {
  const model = await ready;
  const data = syntheticTaskImages('shape_colour', { imageSize: 16, n: 192, seed: 3 });
  const prompts = data.prompts!;
  const direct = await zeroShotEval(model, data, prompts, tokenizer);
  // The same features, computed separately and written to .npy.
  const enc = clipEncoder(model);
  const imgs = await enc.encodeImages(data.pixels, data.n);
  const templ = await textEmbedder(enc, modelTokenize(model, tokenizer))(promptTexts(prompts));
  writeNpy(f('I.npy'), imgs, [data.n, enc.embedDim]);
  writeNpy(f('Y.npy'), data.labels, [data.n]);
  writeNpy(f('W.npy'), templ.data, [templ.rows, templ.cols]);
  const fromNpy = await run(['zeroshot', '--image-features', f('I.npy'), '--labels', f('Y.npy'), '--class-features', f('W.npy'), '--templates-per-class', String(prompts.templates.length)]);
  const { task, ...metrics } = fromNpy;
  t.is(task, 'zeroshot');
  t.deepEqual(metrics, { ...direct });
  // And the model form of the command, on the same draw.
  const cli = await run(['zeroshot', '--model', f('micro.json'), '--weights', f('micro.safetensors'), '--data', 'synthetic:shape_colour', '--n', '192', '--seed', '3']);
  t.is(cli.acc1, direct.acc1);
  t.is(cli.acc5, direct.acc5);
  t.is(cli.mean_per_class_recall, direct.mean_per_class_recall);
  t.log(`micro after 10 steps, shape_colour (64 classes): acc1 ${direct.acc1.toFixed(3)}, acc5 ${direct.acc5.toFixed(3)}`);
});

test.serial('an image folder (a folder per class) and labelled shards evaluate like the same images in memory', async (t) => {
  const model = await ready;
  const data = syntheticTaskImages('colour', { imageSize: 16, n: 24, seed: 5 });
  const root = f('folder');
  const tar = new TarWriter(f('shard-0.tar'));
  for (let i = 0; i < data.n; i++) {
    const name = data.classnames[data.labels[i]].replace(/ /g, '_');
    mkdirSync(join(root, name), { recursive: true });
    const bytes = await png(data, i);
    writeFileSync(join(root, name, `${String(i).padStart(3, '0')}.png`), bytes);
    const key = String(i).padStart(4, '0');
    tar.add(`${key}.png`, bytes);
    // Half the samples carry the class id in a .cls member, half in json.
    if (i % 2) tar.add(`${key}.cls`, String(data.labels[i]));
    else tar.add(`${key}.json`, JSON.stringify({ label: data.labels[i] }));
  }
  tar.add('9999.png', await png(data, 0)); // no label: skipped and counted
  tar.close();

  const folder = await imageFolderImages(root, { imageSize: 16, normalization: SYNTHETIC_NORMALIZATION });
  t.deepEqual(folder.classnames, [...data.classnames].sort());
  t.is(folder.n, data.n);
  // Folder order is class by class; map back to the in-memory order through the class names.
  const sortedNames = folder.classnames;
  const remap = Int32Array.from(data.labels, (y) => sortedNames.indexOf(data.classnames[y]));
  const plane = 3 * 16 * 16;
  let k = 0;
  for (let c = 0; c < sortedNames.length; c++) {
    for (let i = 0; i < data.n; i++) {
      if (remap[i] !== c) continue;
      t.is(folder.labels[k], c);
      let maxDiff = 0;
      for (let p = 0; p < plane; p++) maxDiff = Math.max(maxDiff, Math.abs(folder.pixels[k * plane + p] - data.pixels[i * plane + p]));
      t.true(maxDiff < 1e-6, `image ${i}: the eval transform of a 16-pixel PNG at 16 pixels should be the identity (max diff ${maxDiff})`);
      k++;
    }
  }
  const prompts = { classnames: sortedNames, templates: data.prompts!.templates };
  const inMemory = await zeroShotEval(model, { ...data, labels: remap, classnames: sortedNames }, prompts, tokenizer);
  const fromFolder = await zeroShotEval(model, folder, prompts, tokenizer);
  t.deepEqual(fromFolder, inMemory);

  const shards = await webdatasetImages(f('shard-{0..0}.tar'), { imageSize: 16, classnames: data.classnames, normalization: SYNTHETIC_NORMALIZATION });
  t.is(shards.n, data.n);
  t.deepEqual([...shards.labels], [...data.labels]);
  t.deepEqual(shards.skipped, { missing_label: 1 });
  t.deepEqual(await zeroShotEval(model, shards, data.prompts!, tokenizer), await zeroShotEval(model, data, data.prompts!, tokenizer));

  writeFileSync(f('prompts.json'), JSON.stringify(prompts));
  const cli = await run(['zeroshot', '--model', f('micro.json'), '--weights', f('micro.safetensors'), '--images', root, '--prompts', f('prompts.json')]);
  t.is(cli.acc1, inMemory.acc1);
  t.is(cli.num_samples, data.n);
  const split = splitImages(folder, 0.25, 1);
  t.is(split.train.n + split.test.n, folder.n);
  t.deepEqual(new Set(split.test.labels).size, sortedNames.length, 'every class is in the test split');
});

test.serial('retrieval from the model equals retrieval metrics on the same features', async (t) => {
  const model = await ready;
  const world = new SyntheticWorld({ imageSize: 16 });
  const set = world.retrievalSet(40, 2, 3);
  const r = await retrievalEval(model, { pixels: set.images, n: set.n, imageSize: 16 }, set.captions, set.captionImage, tokenizer);
  const enc = clipEncoder(model);
  const imgs = featureMatrix(await enc.encodeImages(set.images, set.n), set.n, enc.embedDim);
  const txts = await textEmbedder(enc, modelTokenize(model, tokenizer))(set.captions);
  t.deepEqual(r, retrievalMetrics(imgs, txts, set.captionImage));
  t.deepEqual(await syntheticRetrievalEval(model, tokenizer, { n: 40, seed: 2, captionsPerImage: 3 }), r);
  t.log(`micro after 10 steps, 40 images × 3 captions: text R@1 ${r['text_retrieval_recall@1']}, image R@1 ${r['image_retrieval_recall@1']}`);
  await t.throwsAsync(() => retrievalEval(model, { pixels: set.images, n: set.n, imageSize: 16 }, set.captions, set.captionImage.subarray(1), tokenizer), {
    message: /120 captions but 119 caption→image entries/,
  });
});

test.serial('bad input gets clear errors', async (t) => {
  const model = await ready;
  mkdirSync(f('empty'));
  await t.throwsAsync(() => imageFolderImages(f('empty'), { imageSize: 16 }), { message: /image folder '.*empty' has no class folders/ });
  mkdirSync(f('no-images/cat'), { recursive: true });
  writeFileSync(f('no-images/cat/readme.txt'), 'not an image');
  await t.throwsAsync(() => imageFolderImages(f('no-images'), { imageSize: 16 }), { message: /has 1 class folder\(s\) \(cat\) but no images in them/ });
  t.throws(() => syntheticTaskImages('texture', { imageSize: 16 }), { message: /unknown task 'texture'/ });
  await t.throwsAsync(() => run(['zeroshot', '--model', f('micro.json'), '--weights', f('micro.safetensors'), '--data', 'synthetic:texture']), { message: /unknown task 'texture'/ });

  const data = syntheticTaskImages('colour', { imageSize: 16, n: 16 });
  await t.throwsAsync(() => zeroShotEval(model, data, { classnames: ['red', 'green', 'blue'], templates: ['a {c}.'] }, tokenizer), {
    message: /synthetic:colour \(seed 0\) has 8 classes \(red, green, blue, yellow, …\) but the prompts name 3 \(red, green, blue\)/,
  });
  const unnamed = { ...data, classnames: [] };
  await t.throwsAsync(() => zeroShotEval(model, unnamed, { classnames: ['red', 'green', 'blue'], templates: ['a {c}.'] }, tokenizer), {
    message: /unknown class id 3 at index 3 \(class ids run 0\.\.2\)/,
  });
  await t.throwsAsync(() => zeroShotEval(model, syntheticTaskImages('colour', { imageSize: 32, n: 8 }), data.prompts!, tokenizer), {
    message: /the model takes 16-pixel images but synthetic:colour \(seed 0\) are 32 pixels/,
  });
  const smallVocab = createModel(parseModelConfig({ ...microJson, text_cfg: { ...microJson.text_cfg, vocab_size: 300 } }));
  await t.throwsAsync(() => zeroShotEval(smallVocab, data, data.prompts!, tokenizer), { message: new RegExp(`the tokenizer has ${tokenizer.vocabSize} tokens but the model's vocabulary has 300`) });
  smallVocab.dispose();
  await t.throwsAsync(() => run(['zeroshot', '--model', f('micro.json'), '--weights', f('micro.safetensors'), '--shards', f('shard-0.tar')]), {
    message: /--shards holds class ids only; give --prompts/,
  });
  await t.throwsAsync(() => run(['zeroshot', '--model', f('micro.json'), '--weights', f('micro.safetensors'), '--data', 'synthetic:colour', '--images', f('folder')]), {
    message: /give exactly one of --data/,
  });
  await t.throwsAsync(() => webdatasetImages(f('missing-{0..1}.tar'), { imageSize: 16, classnames: ['a'] }), { message: /shard '.*missing-0\.tar' does not exist/ });
});
