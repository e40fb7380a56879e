import test from 'ava';

import { featureMatrix, rowDot, similarity } from '../lib/eval/features.js';
import { seededNormal, seededRandom } from '../lib/util/seeded_random.js';
import { retrievalMetrics } from '../lib/eval/retrieval.js';

const deg = Math.PI / 180;
const at = (a: number): [number, number] => [Math.cos(a * deg), Math.sin(a * deg)];
const rows = (vs: number[][]) => featureMatrix(Float32Array.from(vs.flat()), vs.length, vs[0].length);

// Images at 0°, 90°, 45° on the unit circle; five captions, two for image 0, one for image 1, two for image 2.
// t2 = [1, 1] is equally close to images 0 and 1 (an exact tie); t4 mirrors t1, so image 2 sees them tied.
const images = rows([[1, 0], [0, 1], [1, 1]]);
const c40 = at(40);
const texts = rows([at(10), c40, [1, 1], [0, 1], [c40[1], c40[0]]]);
const textImage = Int32Array.from([0, 0, 1, 2, 2]);

test('recall@K and ranks by hand, several captions per image, ties counted against', (t) => {
  const m = retrievalMetrics(images, texts, textImage, [1, 2, 5, 10]);
  // Caption → image ranks: t0→i0: 1; t1→i0: 2 (i2 closer); t2→i1: 3 (i2 closer, i0 tied at a lower index);
  // t3→i2: 2 (i1 closer); t4→i2: 1.
  t.is(m['image_retrieval_recall@1'], 2 / 5);
  t.is(m['image_retrieval_recall@2'], 4 / 5);
  t.is(m['image_retrieval_recall@5'], 1);
  t.is(m['image_retrieval_recall@10'], 1);
  t.is(m.image_retrieval_mean_rank, 9 / 5);
  t.is(m.image_retrieval_median_rank, 2);
  // Image → best caption ranks: i0: t0 first (1); i1: t2 behind t3 and t4 (3);
  // i2: t4 behind t2 and tied with t1 at a lower index (3).
  t.is(m['text_retrieval_recall@1'], 1 / 3);
  t.is(m['text_retrieval_recall@2'], 1 / 3);
  t.is(m['text_retrieval_recall@5'], 1);
  t.is(m.text_retrieval_mean_rank, 7 / 3);
  t.is(m.text_retrieval_median_rank, 3);
  t.is(m.num_images, 3);
  t.is(m.num_texts, 5);
});

test('similarity is cosine: scaling rows changes nothing; default Ks are 1, 5, 10; identity pairing by default', (t) => {
  const scaled = rows([[3, 0], [0, 0.5], [7, 7]]);
  t.deepEqual(retrievalMetrics(scaled, texts, textImage), retrievalMetrics(images, texts, textImage));
  t.deepEqual(
    Object.keys(retrievalMetrics(images, texts, textImage)).filter((k) => k.includes('recall')),
    ['image_retrieval_recall@1', 'image_retrieval_recall@5', 'image_retrieval_recall@10', 'text_retrieval_recall@1', 'text_retrieval_recall@5', 'text_retrieval_recall@10'],
  );
  // Identity: caption j belongs to image j. Image 1's caption ties with image 0 → rank 2 (lower index wins).
  const m = retrievalMetrics(rows([[1, 0], [1, 0]]), rows([[1, 0], [1, 0]]), undefined, [1]);
  t.is(m['image_retrieval_recall@1'], 1 / 2);
  t.is(m['text_retrieval_recall@1'], 1 / 2);
  t.is(m.image_retrieval_mean_rank, 1.5);
  t.is(m.image_retrieval_median_rank, 1.5);
});

// An independent reference: sort every candidate list (stable, by score descending) and find positions.
function referenceRanks(sim: (q: number, c: number) => number, nq: number, nc: number, positives: (q: number) => number[]): number[] {
  const out: number[] = [];
  for (let q = 0; q < nq; q++) {
    const order = [...Array(nc).keys()].sort((a, b) => sim(q, b) - sim(q, a) || a - b);
    const pos = new Set(positives(q));
    out.push(order.findIndex((c) => pos.has(c)) + 1);
  }
  return out;
}

test('matches a sort-based reference on random features with quantised (often tied) scores', (t) => {
  const nI = 40;
  const nT = 130;
  const d = 3;
  // Values from {-1, 0, 1} make many exact ties.
  const q = (x: number) => Math.sign(Math.round(x));
  const img = Float32Array.from(seededNormal(nI * d, 11), q);
  const txt = Float32Array.from(seededNormal(nT * d, 12), q);
  for (let i = 0; i < nI; i++) img[i * d] = img[i * d] || 1; // no zero rows
  for (let j = 0; j < nT; j++) txt[j * d + 1] = txt[j * d + 1] || 1;
  const r = seededRandom(5);
  const idx = Int32Array.from({ length: nT }, (_, j) => (j < nI ? j : Math.floor(r() * nI)));
  const I = featureMatrix(img, nI, d);
  const T = featureMatrix(txt, nT, d);
  const norm = (a: Float32Array, i: number) => {
    const v = a.subarray(i * d, i * d + d);
    const inv = 1 / Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    return Array.from(v, (x) => Math.fround(x * inv));
  };
  const In = Array.from({ length: nI }, (_, i) => norm(img, i));
  const Tn = Array.from({ length: nT }, (_, j) => norm(txt, j));
  const dotp = (a: number[], b: number[]) => {
    let s = 0;
    for (let k = 0; k < d; k++) s += a[k] * b[k];
    return s;
  };
  const imgRanks = referenceRanks((j, i) => dotp(Tn[j], In[i]), nT, nI, (j) => [idx[j]]);
  const txtRanks = referenceRanks((i, j) => dotp(In[i], Tn[j]), nI, nT, (i) => [...Array(nT).keys()].filter((j) => idx[j] === i));
  const m = retrievalMetrics(I, T, idx, [1, 5, 10]);
  for (const k of [1, 5, 10]) {
    t.is(m[`image_retrieval_recall@${k}`], imgRanks.filter((x) => x <= k).length / nT);
    t.is(m[`text_retrieval_recall@${k}`], txtRanks.filter((x) => x <= k).length / nI);
  }
  t.is(m.image_retrieval_mean_rank, imgRanks.reduce((a, b) => a + b) / nT);
  t.is(m.text_retrieval_mean_rank, txtRanks.reduce((a, b) => a + b) / nI);
  t.true(m['image_retrieval_recall@1'] < 1 && m['image_retrieval_recall@1'] > 0, 'a non-trivial case');
});

test('bad input gets clear errors', (t) => {
  t.throws(() => retrievalMetrics(images, texts), { message: /5 text features but 3 image features; give the text→image index/ });
  t.throws(() => retrievalMetrics(images, texts, Int32Array.from([0, 0, 1, 2])), { message: /index has 4 entries but there are 5 text features/ });
  t.throws(() => retrievalMetrics(images, texts, Int32Array.from([0, 0, 1, 2, 3])), { message: /caption 4 belongs to image 3, but image indices run 0\.\.2/ });
  t.throws(() => retrievalMetrics(images, texts, Int32Array.from([0, 0, 0, 2, 2])), { message: /image 1 has no caption/ });
  t.throws(() => retrievalMetrics(images, rows([[1, 0, 0]])), { message: /dimension 2 but text features have 3/ });
  t.throws(() => retrievalMetrics(rows([[1, 0], [NaN, 1], [1, 1]]), texts, textImage), { message: /image features: value NaN at row 1, column 0/ });
  t.throws(() => retrievalMetrics(images, rows([[1, 0], [0, 0], [1, 1], [0, 1], [1, 1]]), textImage), { message: /text features: row 1 has zero norm/ });
  t.throws(() => retrievalMetrics(images, texts, textImage, [0]), { message: /recall K must be a positive integer, got 0/ });
  t.throws(() => retrievalMetrics(featureMatrix(new Float32Array(0), 0, 2), texts), { message: /image features: no rows/ });
});

test('similarity() and rowDot() give bit-identical scores (retrieval compares scores across the two)', (t) => {
  const a = featureMatrix(Float32Array.from(seededNormal(7 * 13, 21)), 7, 13);
  const b = featureMatrix(Float32Array.from(seededNormal(11 * 13, 22)), 11, 13);
  const s = similarity(a, b);
  let same = 0;
  for (let i = 0; i < 7; i++) for (let j = 0; j < 11; j++) if (Object.is(s[i * 11 + j], rowDot(a, i, b, j))) same++;
  t.is(same, 77);
  t.throws(() => similarity(a, featureMatrix(new Float32Array(4), 1, 4)), { message: /A has 13 columns but B has 4/ });
});
