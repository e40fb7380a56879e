import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { textEmbedder, encodeImageBatches, type ClipEncoder } from '../lib/eval/encoder.js';
import { featureMatrix } from '../lib/eval/features.js';
import {
  buildZeroShotClassifier,
  classificationMetrics,
  classifierFromTemplateEmbeddings,
  parsePromptSpec,
  promptTexts,
  readPromptSpec,
  zeroShotMetrics,
} from '../lib/eval/zeroshot.js';

const rows = (vs: number[][]) => featureMatrix(Float32Array.from(vs.flat()), vs.length, vs[0].length);
const close = (a: ArrayLike<number>, b: number[], tol = 1e-6) => a.length === b.length && b.every((v, i) => Math.abs(a[i] - v) <= tol);

test('classifier: per class, mean of normalised template embeddings, normalised again', (t) => {
  // Class 0: [3,4]→[0.6,0.8] and [0,2]→[0,1]: mean [0.3,0.9] → /√0.9.
  // Class 1: [2,0]→[1,0] and [0,-5]→[0,-1]: mean [0.5,-0.5] → [1/√2, -1/√2].
  const w = classifierFromTemplateEmbeddings(rows([[3, 4], [0, 2], [2, 0], [0, -5]]), 2, 2);
  t.is(w.rows, 2);
  t.true(close(w.data, [0.3 / Math.sqrt(0.9), 0.9 / Math.sqrt(0.9), Math.SQRT1_2, -Math.SQRT1_2]), `got ${Array.from(w.data)}`);
  t.throws(() => classifierFromTemplateEmbeddings(rows([[1, 0], [-2, 0]]), 1, 2), { message: /class weights.*row 0 has zero norm/ });
  t.throws(() => classifierFromTemplateEmbeddings(rows([[1, 0], [0, 1], [1, 1]]), 2, 2), { message: /expected 2 classes × 2 templates = 4 text embeddings, got 3/ });
});

test('top-1, top-k and mean per-class recall by hand, ties go to the lower class index', (t) => {
  const logits = [
    0.9, 0.1, 0.0, // y=0: rank 1
    0.5, 0.5, 0.1, // y=1: tied with class 0, which wins → rank 2
    0.5, 0.5, 0.1, // y=0: wins the tie → rank 1
    0.2, 0.3, 0.1, // y=2: rank 3
  ];
  const m = classificationMetrics(logits, [0, 1, 0, 2], 4, 3);
  t.is(m.acc1, 2 / 4);
  t.is(m.acc5_k, 3, 'top-k with k = min(5, classes)');
  t.is(m.acc5, 1);
  t.is(m.mean_per_class_recall, (1 + 0 + 0) / 3);

  // Seven classes: ranks 5 (hit at top-5) and 6 (miss), and a class that never occurs (left out of the mean recall).
  const seven = [
    7, 6, 5, 4, 3, 2, 1, // y=4: rank 5
    7, 6, 5, 4, 3, 2, 1, // y=5: rank 6
    1, 1, 1, 1, 1, 1, 1, // y=6: all tied → rank 7
    1, 1, 1, 1, 1, 1, 1, // y=0: all tied → rank 1
  ];
  const s = classificationMetrics(seven, [4, 5, 6, 0], 4, 7);
  t.is(s.acc5_k, 5);
  t.is(s.acc1, 1 / 4);
  t.is(s.acc5, 2 / 4);
  t.is(s.mean_per_class_recall, (0 + 0 + 0 + 1) / 4, 'averaged over the 4 classes present in the labels');
});

test('zeroShotMetrics normalises images and scores them against class weights', (t) => {
  const w = rows([[1, 0], [0, 1], [Math.SQRT1_2, Math.SQRT1_2]]);
  // Image 0 (length 10) points at class 0; image 1 at class 1; image 2 at 40°: class 2 (45°) first, class 0 second.
  const img = rows([[10, 0.5], [0.1, 3], [Math.cos(0.7), Math.sin(0.7)]]);
  const m = zeroShotMetrics(img, [0, 1, 0], w);
  t.is(m.acc1, 2 / 3);
  t.is(m.acc5, 1);
  t.is(m.mean_per_class_recall, (1 / 2 + 1) / 2);
  t.is(m.num_samples, 3);
  t.is(m.num_classes, 3);
});

test('bad input gets clear errors', (t) => {
  const w = rows([[1, 0], [0, 1]]);
  t.throws(() => zeroShotMetrics(rows([[1, 0], [0, 1]]), [0, 2], w), { message: /unknown class id 2 at index 1 \(class ids run 0\.\.1\)/ });
  t.throws(() => zeroShotMetrics(rows([[1, 0], [0, 1]]), [0, -1], w), { message: /unknown class id -1 at index 1/ });
  t.throws(() => zeroShotMetrics(rows([[1, 0], [0, 1]]), [0], w), { message: /1 labels for 2 feature rows/ });
  t.throws(() => zeroShotMetrics(rows([[1, 0], [0, Infinity]]), [0, 1], w), { message: /image features: value Infinity at row 1, column 1/ });
  t.throws(() => zeroShotMetrics(rows([[1, 0, 0]]), [0], w), { message: /dimension 3 but class weights have 2/ });
  t.throws(() => zeroShotMetrics(rows([[0, 0]]), [0], w), { message: /image features: row 0 has zero norm/ });
});

test('prompt files are validated with messages that say what is wrong', (t) => {
  const ok = parsePromptSpec({ classnames: ['cat', 'dog'], templates: ['a photo of a {c}.', 'a {c}, drawn'] });
  t.deepEqual(promptTexts(ok), ['a photo of a cat.', 'a cat, drawn', 'a photo of a dog.', 'a dog, drawn']);
  t.throws(() => parsePromptSpec([]), { message: /expected an object/ });
  t.throws(() => parsePromptSpec({ templates: ['{c}'] }), { message: /"classnames" must be an array of strings, got nothing/ });
  t.throws(() => parsePromptSpec({ classnames: [], templates: ['{c}'] }), { message: /"classnames" is empty/ });
  t.throws(() => parsePromptSpec({ classnames: ['a', 3], templates: ['{c}'] }), { message: /classnames\[1\] must be a non-empty string, got 3/ });
  t.throws(() => parsePromptSpec({ classnames: ['a', 'b', 'a'], templates: ['{c}'] }), { message: /"a" appears twice \(classnames\[0\] and classnames\[2\]\)/ });
  t.throws(() => parsePromptSpec({ classnames: ['a'], templates: ['a photo'] }), { message: /templates\[0\] "a photo" has no \{c\} placeholder/ });
  t.throws(() => parsePromptSpec({ classnames: ['a'], templates: ['{c}'], classes: 3 }), { message: /unknown key "classes"/ });
  const dir = mkdtempSync(join(tmpdir(), 'clipscale-prompts-'));
  try {
    writeFileSync(join(dir, 'bad.json'), '{"classnames": [');
    t.throws(() => readPromptSpec(join(dir, 'bad.json')), { message: /bad\.json': not valid JSON/ });
    t.throws(() => readPromptSpec(join(dir, 'missing.json')), { message: /cannot read '.*missing\.json'/ });
    writeFileSync(join(dir, 'p.json'), JSON.stringify({ classnames: ['x'], templates: ['{c}!'] }));
    t.deepEqual(readPromptSpec(join(dir, 'p.json')), { classnames: ['x'], templates: ['{c}!'] });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// A stand-in model: a text's embedding is a one-hot of its class word plus a small template-specific
// offset; an image is its pixels. It shows how a real model plugs in.
const vocab = ['cat', 'dog', 'bird'];
const fakeEncoder: ClipEncoder = {
  embedDim: 4,
  async encodeTexts(tokens, n) {
    const out = new Float32Array(n * 4);
    for (let i = 0; i < n; i++) {
      out[i * 4 + tokens[i * 2]] = 1;
      out[i * 4 + 3] = tokens[i * 2 + 1] * 0.1;
    }
    return out;
  },
  async encodeImages(pixels, n) {
    return pixels.slice(0, n * 4);
  },
};
const tokenize = (texts: string[]) => {
  const out = new Int32Array(texts.length * 2);
  texts.forEach((s, i) => {
    out[i * 2] = vocab.findIndex((w) => s.includes(w));
    out[i * 2 + 1] = s.startsWith('a photo') ? 1 : -1;
  });
  return out;
};

test('a model plugs in through the encoder interface: classifier from prompts, metrics from image batches', async (t) => {
  const spec = parsePromptSpec({ classnames: vocab, templates: ['a photo of a {c}', 'the {c}'] });
  // Batch size 4 splits the six prompts over two calls.
  const w = await buildZeroShotClassifier(spec, textEmbedder(fakeEncoder, tokenize, 4));
  // The ±0.1 template offsets cancel in the mean: each class weight is its one-hot.
  t.true(close(w.data, [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]), `got ${Array.from(w.data)}`);
  const batches = [
    { pixels: Float32Array.from([0.9, 0.1, 0, 0, 0, 1, 0, 0]), n: 2, labels: Int32Array.from([0, 1]) },
    { pixels: Float32Array.from([0.5, 0, 0.4, 0]), n: 1, labels: Int32Array.from([2]) },
  ];
  const { features, labels } = await encodeImageBatches(fakeEncoder, batches);
  t.deepEqual(Array.from(labels!), [0, 1, 2]);
  const m = zeroShotMetrics(features, labels!, w);
  t.is(m.acc1, 2 / 3);
  t.is(m.acc5, 1);
  await t.throwsAsync(() => encodeImageBatches(fakeEncoder, [{ pixels: new Float32Array(4), n: 1, labels: Int32Array.from([0, 1]) }]), {
    message: /a batch of 1 images has 2 labels/,
  });
  const badEncoder: ClipEncoder = { ...fakeEncoder, encodeTexts: async () => new Float32Array(3) };
  await t.throwsAsync(() => buildZeroShotClassifier(spec, textEmbedder(badEncoder, tokenize)), { message: /returned 3 values for 6 texts of dimension 4/ });
});
