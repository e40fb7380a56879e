import test from 'ava';
import { createHash } from 'node:crypto';

import { SYNTHETIC_MEAN, SYNTHETIC_STD } from '../lib/data/synthetic_normalization.js';
import { COLOURS, SHAPES, SyntheticWorld, defaultSyntheticTokenizer } from '../lib/data/synthetic.js';
import { LABELS_SCENE_FRACTION, paraphrases } from '../lib/data/synthetic_captions.js';

function digest(world: SyntheticWorld, n: number): string {
  const h = createHash('sha256');
  for (let i = 0; i < n; i++) {
    h.update(world.imageBytes(i));
    h.update(world.caption(i));
  }
  return h.digest('hex');
}

test('samples are a function of (seed, index): same world same bytes, i and i+size alike', (t) => {
  const a = new SyntheticWorld({ seed: 3, size: 50, imageSize: 32 });
  const b = new SyntheticWorld({ seed: 3, size: 50, imageSize: 32 });
  t.is(digest(a, 20), digest(b, 20));
  t.deepEqual(a.sample(7), { ...b.sample(57), index: 7 });
  t.not(digest(a, 20), digest(new SyntheticWorld({ seed: 4, size: 50, imageSize: 32 }), 20));
  // Drawing order does not matter: sample 9 alone equals sample 9 after others.
  t.deepEqual(new SyntheticWorld({ seed: 3, size: 50 }).imageBytes(9), a.imageBytes(9));
});

test('pinned bytes: the world draws the same on every machine', (t) => {
  // Integer hashing and + − × ÷ only; a change here changes every dataset made before.
  const world = new SyntheticWorld({ seed: 0, size: 1000, imageSize: 32 });
  t.is(world.caption(1), 'a small red square at the bottom.');
  t.is(digest(world, 16), PINNED_DIGEST);
});
// sha256 of samples 0..15 (bytes and captions), recorded when the world was made.
const PINNED_DIGEST = '79a600d516959a5a95bceca3e646e4c3d4de6e0387688e31b53f55e5eea95f9d';

test('pixels are normalised CHW with the world\'s own mean and std (not OpenAI\'s: see synthetic_normalization.ts)', (t) => {
  const world = new SyntheticWorld({ imageSize: 16 });
  const s = world.sample(5);
  const bytes = world.imageBytes(5);
  t.is(s.pixels.length, 3 * 16 * 16);
  for (const [p, c] of [[0, 0], [37, 1], [255, 2]]) {
    const expected = (bytes[p * 3 + c] / 255 - SYNTHETIC_MEAN[c]) / SYNTHETIC_STD[c];
    t.true(Math.abs(s.pixels[c * 256 + p] - expected) < 1e-6);
  }
});

test('precise captions say what is drawn: colour at the centre, shape, relation', (t) => {
  const world = new SyntheticWorld({ seed: 1, size: 400, imageSize: 64 });
  const rgb: Record<string, number[]> = { red: [230, 31, 26], green: [31, 191, 51], blue: [38, 77, 242], white: [242, 242, 242] };
  let checkedPixels = 0;
  for (let i = 0; i < 400; i++) {
    const { attributes: a, caption } = world.materialise(i);
    const o = a.objects[0];
    t.true(caption.includes(o.colour) && (caption.includes(o.shape) || caption.includes(o.shape.slice(0, 4))), caption);
    if (a.kind === 'pair') {
      const [p, q] = a.objects;
      const ok = { 'left of': p.x < q.x, 'right of': p.x > q.x, above: p.y < q.y, below: p.y > q.y }[a.relation!];
      t.true(ok, `${caption} ${JSON.stringify(a.objects)}`);
    }
    if (a.kind === 'single' && o.shape !== 'ring' && rgb[o.colour]) {
      const bytes = world.imageBytes(i);
      const p = (Math.floor(o.y * 64) * 64 + Math.floor(o.x * 64)) * 3;
      const got = [bytes[p], bytes[p + 1], bytes[p + 2]];
      t.true(got.every((v, c) => Math.abs(v - rgb[o.colour][c]) <= 20), `${caption}: centre pixel ${got}`);
      checkedPixels++;
    }
  }
  t.true(checkedPixels > 50);
});

test('noisy world: skewed attributes and alt-text-like captions', (t) => {
  const precise = new SyntheticWorld({ captions: 'precise', size: 2000 });
  const noisy = new SyntheticWorld({ captions: 'noisy', size: 2000 });
  const count = (w: SyntheticWorld, shape: string) => Array.from({ length: 2000 }, (_, i) => w.attributes(i).objects[0].shape).filter((s) => s === shape).length;
  t.true(count(noisy, 'circle') > 3 * count(noisy, 'star'), 'noisy: circles far more common than stars');
  const ratio = count(precise, 'circle') / count(precise, 'star');
  t.true(ratio > 0.7 && ratio < 1.4, `precise: uniform shapes (ratio ${ratio})`);
  let differ = 0;
  let distractors = 0;
  let wrongOrMissing = 0;
  for (let i = 0; i < 500; i++) {
    const c = noisy.caption(i);
    if (c !== precise.caption(i)) differ++;
    if (/png|clipart|stock|wallpaper|vector|icon|logo|free|hd\b|img_/i.test(c)) distractors++;
    const o = noisy.attributes(i).objects[0];
    if (!c.toLowerCase().includes(o.colour)) wrongOrMissing++;
  }
  t.is(differ, 500);
  t.true(distractors > 50, `distractors in ${distractors}/500`);
  t.true(wrongOrMissing > 50 && wrongOrMissing < 250, `colour wrong or missing in ${wrongOrMissing}/500`);
});

test("the study's two datasets: 'labels' name every object right, the layout only in a minority; 'web' say the whole scene but not always the shape", (t) => {
  const labels = new SyntheticWorld({ captions: 'labels', size: 1000 });
  const web = new SyntheticWorld({ captions: 'web', size: 1000 });
  const layout = /\b(left|right|above|below|top|bottom|center|small|large|two|three|four)\b/;
  const n = 1000;
  let labelsScene = 0;
  let webLayout = 0;
  let webShape = 0;
  for (let i = 0; i < n; i++) {
    const scene = labels.attributes(i);
    t.deepEqual(web.attributes(i), scene, 'both use the same uniform scenes');
    const l = labels.caption(i);
    for (const o of scene.objects) t.true(l.includes(`${o.colour} ${o.shape}`) || l.includes(`${o.colour} ${o.shape === 'cross' ? 'crosses' : o.shape + 's'}`), `labels caption '${l}' names ${o.colour} ${o.shape}`);
    // a labels caption is either label-like (no layout at all) or one of the scene's full, true descriptions
    if (layout.test(l)) {
      t.true(paraphrases(scene, 7).includes(l), `labels caption '${l}' that speaks of the layout is a true description of its scene`);
      labelsScene++;
    }
    const w = web.caption(i);
    for (const o of scene.objects) t.true(w.includes(o.colour), `web caption '${w}' names the colour ${o.colour}`);
    if (scene.kind !== 'pair' && layout.test(w)) webLayout++;
    if (new RegExp(`\\b${scene.objects[0].shape}`).test(w)) webShape++;
  }
  // a binomial count: within 4.5 standard deviations of n·LABELS_SCENE_FRACTION
  const expected = n * LABELS_SCENE_FRACTION;
  const sd = Math.sqrt(expected * (1 - LABELS_SCENE_FRACTION));
  t.true(LABELS_SCENE_FRACTION > 0 && LABELS_SCENE_FRACTION <= 0.25, `a minority of labels captions describe the scene: ${LABELS_SCENE_FRACTION}`);
  t.true(Math.abs(labelsScene - expected) < 4.5 * sd, `labels captions that describe the scene: ${labelsScene}/${n}, expected about ${expected}`);
  t.true(webLayout > 0.375 * n, `web captions say the size, place or number: ${webLayout}/${n}`);
  t.true(webShape > 0.375 * n && webShape < 0.75 * n, `web captions name the subject's shape about half the time: ${webShape}/${n}`);
});

test('zero-shot tasks: balanced labels, class names, templates, held-out images', (t) => {
  const world = new SyntheticWorld({ seed: 0, size: 100, imageSize: 16 });
  const expected = { shape: SHAPES.length, colour: COLOURS.length, shape_colour: SHAPES.length * COLOURS.length };
  for (const [name, classes] of Object.entries(expected)) {
    const task = world.zeroShotTask(name, 2 * classes, 0);
    t.is(task.classnames.length, classes);
    t.is(task.images.length, 2 * classes * 3 * 16 * 16);
    t.true(task.templates.length >= 3 && task.templates.every((s) => s.includes('{c}')));
    for (let k = 0; k < classes; k++) t.is(task.labels.filter((l) => l === k).length, 2);
  }
  t.deepEqual(world.zeroShotTask('color', 8).classnames, [...COLOURS]);
  t.is(world.zeroShotTask('shape_colour', 64).classnames[9], `${COLOURS[1]} ${SHAPES[1]}`);
  t.throws(() => world.zeroShotTask('texture', 8), { message: /unknown task 'texture'/ });
  // Held out: the images are none of the training samples, and the task seed changes them.
  const task = world.zeroShotTask('shape', 8, 0);
  const train = world.batch(Array.from({ length: 100 }, (_, i) => i)).pixels;
  const n = 3 * 16 * 16;
  for (let j = 0; j < 8; j++) {
    const img = task.images.subarray(j * n, (j + 1) * n);
    for (let i = 0; i < 100; i++) t.false(img.every((v, k) => v === train[i * n + k]));
  }
  t.notDeepEqual(world.zeroShotTask('shape', 8, 1).images, task.images);
  t.deepEqual(world.zeroShotTask('shape', 8, 0).images, task.images);
});

test('retrieval set: k distinct true captions per image', (t) => {
  const world = new SyntheticWorld({ imageSize: 16 });
  const r = world.retrievalSet(20, 0, 5);
  t.is(r.captions.length, 100);
  t.is(r.images.length, 20 * 3 * 16 * 16);
  for (let i = 0; i < 20; i++) {
    const mine = r.captions.slice(i * 5, i * 5 + 5);
    t.is(new Set(mine).size, 5);
    t.deepEqual(Array.from(r.captionImage.subarray(i * 5, i * 5 + 5)), [i, i, i, i, i]);
  }
});

test('batch: pixels, captions and token ids', (t) => {
  const world = new SyntheticWorld({ imageSize: 8, size: 10 });
  const tokenizer = defaultSyntheticTokenizer();
  const b = world.batch([0, 1, 12], { tokenizer, contextLength: 16 });
  t.is(b.pixels.length, 3 * 3 * 8 * 8);
  t.is(b.tokens!.length, 3 * 16);
  t.deepEqual(Array.from(b.tokens!.subarray(0, 16)), Array.from(tokenizer.tokenize([world.caption(0)], 16)));
  t.is(b.captions[2], world.caption(2));
  t.throws(() => world.sample(-1), { message: /index must be an integer/ });
  t.throws(() => new SyntheticWorld({ captions: 'weird' as never }), { message: /captions must be 'precise', 'noisy', 'labels', 'web', got 'weird'/ });
});

test('training batches are the same with rendered images kept, none kept or some kept, epoch after epoch', (t) => {
  const indices = Array.from({ length: 3 * 40 }, (_, j) => (j * 7) % 40);  // every sample three times
  const none = new SyntheticWorld({ seed: 2, size: 40, imageSize: 16, imageCacheBytes: 0 });
  const all = new SyntheticWorld({ seed: 2, size: 40, imageSize: 16 });
  const some = new SyntheticWorld({ seed: 2, size: 40, imageSize: 16, imageCacheBytes: 10 * 3 * 16 * 16 + 5 });
  t.is(none.imageCacheLimit, 0);
  t.is(all.imageCacheLimit, 40);
  t.is(some.imageCacheLimit, 10);
  for (let round = 0; round < 2; round++) {
    const a = none.batch(indices), b = all.batch(indices), c = some.batch(indices);
    t.deepEqual(b.pixels, a.pixels);
    t.deepEqual(c.pixels, a.pixels);
    t.deepEqual(b.captions, a.captions);
    t.deepEqual(b.attributes, a.attributes);
  }
  // A batch's pixels are its own: writing them leaves the kept images alone.
  const first = all.batch([5]);
  first.pixels.fill(0);
  t.deepEqual(all.batch([5]).pixels, none.batch([5]).pixels);
  t.throws(() => new SyntheticWorld({ imageCacheBytes: -1 }), { message: /imageCacheBytes must be a number ≥ 0, got -1/ });
  t.throws(() => new SyntheticWorld({ imageCacheBytes: Number.NaN }), { message: /imageCacheBytes must be a number ≥ 0, got NaN/ });
});
