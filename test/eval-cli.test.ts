import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { command } from '../lib/cli/commands/eval.js';
import { writeNpy } from '../lib/eval/npy.js';
import { seededNormal, seededRandom } from '../lib/util/seeded_random.js';
import { runJsonCommand } from './_helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'clipscale-eval-cli-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));
const f = (name: string) => join(dir, name);

const hasNumpy = spawnSync('python3', ['-c', 'import numpy'], { encoding: 'utf8' }).status === 0;
const withNumpy = hasNumpy ? test : test.skip;
const numpyNote = hasNumpy ? '' : ' [skipped: python3 with numpy not found]';

/** Runs `clipscale eval ...` in-process and returns the JSON it printed. */
const run = (args: string[]) => runJsonCommand(command, args);

// Retrieval data: 30 images, 2 noisy captions each (rounded to make ties), in float64 to test conversion.
const nI = 30;
const d = 6;
const img = Float32Array.from(seededNormal(nI * d, 1), (v) => Math.round(v * 2) / 2 || 0.5);
const txt = new Float64Array(2 * nI * d);
const noise = seededNormal(2 * nI * d, 2);
for (let j = 0; j < 2 * nI; j++) for (let k = 0; k < d; k++) txt[j * d + k] = Math.round(img[Math.floor(j / 2) * d + k] * 2 + noise[j * d + k] * 2) / 2 || 0.5;
writeNpy(f('I.npy'), img, [nI, d]);
writeNpy(f('T.npy'), txt, [2 * nI, d]);
writeNpy(f('IDX.npy'), BigInt64Array.from({ length: 2 * nI }, (_, j) => BigInt(Math.floor(j / 2))), [2 * nI]);

withNumpy(`eval retrieval agrees with a numpy computation (stable descending sort)${numpyNote}`, async (t) => {
  const ours = await run(['retrieval', '--image-features', f('I.npy'), '--text-features', f('T.npy'), '--text-image', f('IDX.npy')]);
  const py = spawnSync('python3', ['-c', `
import numpy as np, json
d = ${JSON.stringify(dir)}
I = np.load(d + '/I.npy').astype(np.float32); T = np.load(d + '/T.npy').astype(np.float32); idx = np.load(d + '/IDX.npy')
# Normalise as clipscale does (float64 inverse norm, result stored as float32), so exact ties stay ties.
unit = lambda A: (A.astype(np.float64) * (1 / np.sqrt((A.astype(np.float64) ** 2).sum(axis=1, keepdims=True)))).astype(np.float32).astype(np.float64)
I = unit(I); T = unit(T)
# Elementwise products and one reduction per pair: identical inputs give identical scores (BLAS kernels need not).
S = (T[:, None, :] * I[None, :, :]).sum(axis=-1)
img_rank = np.array([np.where(np.argsort(-S[j], kind='stable') == idx[j])[0][0] + 1 for j in range(len(T))])
txt_rank = np.array([min(np.where(np.argsort(-S[:, i], kind='stable') == j)[0][0] + 1 for j in np.where(idx == i)[0]) for i in range(len(I))])
out = {}
for k in [1, 5, 10]:
    out['image_retrieval_recall@%d' % k] = float((img_rank <= k).mean())
    out['text_retrieval_recall@%d' % k] = float((txt_rank <= k).mean())
out['image_retrieval_mean_rank'] = float(img_rank.mean()); out['image_retrieval_median_rank'] = float(np.median(img_rank))
out['text_retrieval_mean_rank'] = float(txt_rank.mean()); out['text_retrieval_median_rank'] = float(np.median(txt_rank))
print(json.dumps(out))`], { encoding: 'utf8' });
  t.is(py.status, 0, py.stderr);
  const ref = JSON.parse(py.stdout) as Record<string, number>;
  for (const [k, v] of Object.entries(ref)) t.true(Math.abs((ours[k] as number) - v) < 1e-12, `${k}: ours ${ours[k]}, numpy ${v}`);
  t.true((ours['image_retrieval_recall@1'] as number) < 1, 'a case with misses');
  t.is(ours.num_texts, 60);
});

// Classification data: 4 classes, centres W; 160 train and 80 test rows.
const C = 4;
const centres = seededNormal(C * d, 3, 1);
function labelled(n: number, seed: number) {
  const r = seededRandom(seed);
  const y = Int32Array.from({ length: n }, (_, i) => (i < C ? i : Math.floor(r() * C)));
  const e = seededNormal(n * d, seed + 1, 0.8);
  const x = Float32Array.from({ length: n * d }, (_, i) => centres[y[Math.floor(i / d)] * d + (i % d)] + e[i]);
  return { x, y };
}
const train = labelled(160, 10);
const testSet = labelled(80, 20);
writeNpy(f('X.npy'), train.x, [160, d]);
writeNpy(f('Y.npy'), BigInt64Array.from(train.y, (v) => BigInt(v)), [160]);
writeNpy(f('X2.npy'), testSet.x, [80, d]);
writeNpy(f('Y2.npy'), testSet.y, [80]);
writeNpy(f('W.npy'), Float32Array.from(centres), [C, d]);

test('eval linear-probe prints the probe result; --shots gives mean and std per k', async (t) => {
  const full = await run(['linear-probe', '--train-features', f('X.npy'), '--train-labels', f('Y.npy'), '--test-features', f('X2.npy'), '--test-labels', f('Y2.npy')]);
  t.is(full.task, 'linear-probe');
  t.is(full.num_train, 160);
  t.is(full.num_classes, C);
  t.true((full.acc1 as number) > 0.8, `accuracy ${full.acc1}`);
  const few = await run(['linear-probe', '--train-features', f('X.npy'), '--train-labels', f('Y.npy'), '--test-features', f('X2.npy'), '--test-labels', f('Y2.npy'), '--shots', '1,4', '--seeds', '2', '--lambdas', '0.1,0.01']);
  const results = few.results as { shots: number; seeds: number; acc1_std: number; runs: unknown[] }[];
  t.deepEqual(results.map((r) => [r.shots, r.seeds, r.runs.length]), [[1, 2, 2], [4, 2, 2]]);
});

test('eval zeroshot scores precomputed image features against class embeddings', async (t) => {
  const m = await run(['zeroshot', '--image-features', f('X2.npy'), '--labels', f('Y2.npy'), '--class-features', f('W.npy')]);
  t.is(m.task, 'zeroshot');
  t.is(m.num_classes, C);
  t.is(m.acc5, 1, 'four classes: top-4 always holds the answer');
  t.true((m.acc1 as number) > 0.7, `accuracy ${m.acc1}`);
  // Template embeddings: each class twice (identical templates) gives the same classifier.
  const twice = new Float32Array(2 * C * d);
  for (let c = 0; c < C; c++) for (let t2 = 0; t2 < 2; t2++) twice.set(centres.subarray(c * d, c * d + d), (c * 2 + t2) * d);
  writeNpy(f('W2.npy'), twice, [2 * C, d]);
  const m2 = await run(['zeroshot', '--image-features', f('X2.npy'), '--labels', f('Y2.npy'), '--class-features', f('W2.npy'), '--templates-per-class', '2']);
  t.deepEqual(m2, m);
});

test('eval says clearly what is wrong', async (t) => {
  await t.throwsAsync(() => command.run(['finetune']), { name: 'UsageError', message: /needs a model with weights: --weights FILE\|RUN_DIR \[--model NAME\|config\.json\]/ });
  await t.throwsAsync(() => command.run(['zeroshot']), { name: 'UsageError', message: /needs a model.*--image-features I\.npy --labels Y\.npy --class-features W\.npy/ });
  await t.throwsAsync(() => command.run(['bogus']), { message: /unknown task 'bogus'/ });
  await t.throwsAsync(() => command.run([]), { message: /give a task/ });
  await t.throwsAsync(() => command.run(['retrieval', '--image-features', f('I.npy')]), { message: /--text-features is required/ });
  await t.throwsAsync(() => command.run(['retrieval', '--image-features', f('I.npy'), '--text-features', f('T.npy')]), { message: /60 text features but 30 image features/ });
  await t.throwsAsync(() => command.run(['retrieval', '--image-features', f('Y.npy'), '--text-features', f('T.npy')]), { message: /image features '.*Y\.npy': expected a 2-D array \[rows, dim\], got shape \(160\)/ });
  await t.throwsAsync(() => run(['linear-probe', '--train-features', f('X.npy'), '--train-labels', f('Y2.npy'), '--test-features', f('X2.npy'), '--test-labels', f('Y2.npy')]), { message: /80 train labels for 160 train feature rows/ });
  await t.throwsAsync(() => run(['linear-probe', '--train-features', f('X.npy'), '--train-labels', f('Y.npy'), '--test-features', f('X2.npy'), '--test-labels', f('Y2.npy'), '--shots', '100']), { message: /fewer than the 100 shots asked for/ });
  await t.throwsAsync(() => run(['zeroshot', '--image-features', f('X2.npy'), '--labels', f('Y2.npy'), '--class-features', f('W.npy'), '--templates-per-class', '3']), { message: /4 class feature rows are not a whole number of classes at 3 templates per class/ });
  await t.throwsAsync(() => run(['retrieval', '--image-features', f('I.npy'), '--text-features', f('T.npy'), '--k', '1,x']), { message: /--k must be a comma-separated list of numbers/ });
});
