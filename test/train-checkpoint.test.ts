import test from 'ava';
import { spawnSync } from 'node:child_process';
import { copyFile, mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

import {
  checkpointPaths,
  findLatestCheckpoint,
  listTrainingCheckpoints,
  loadTrainingCheckpoint,
  pruneTrainingCheckpoints,
  saveTrainingCheckpoint,
  type TrainingState,
} from '../lib/train/checkpoint.js';
import { readSafetensors, type TensorRecord } from '../lib/train/safetensors.js';
import { Rng, type RngState } from '../lib/util/rng.js';

async function tempDir(t: { teardown: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'clipscale-ckpt-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function f32(shape: number[], rng: Rng): TensorRecord {
  const n = shape.reduce((a, b) => a * b, 1);
  return { dtype: 'F32', shape, data: rng.fillNormal(new Float32Array(n)) };
}

/** A small set of OpenCLIP-named parameters with moments, all different per seed. */
function fakeTraining(step: number, seed = step) {
  const rng = new Rng(seed);
  const shapes: Record<string, number[]> = {
    positional_embedding: [4, 8],
    'visual.class_embedding': [8],
    'visual.transformer.resblocks.0.attn.in_proj_weight': [24, 8],
    text_projection: [8, 8],
    logit_scale: [],
  };
  const weights: Record<string, TensorRecord> = {};
  const m: Record<string, TensorRecord> = {};
  const v: Record<string, TensorRecord> = {};
  for (const [name, shape] of Object.entries(shapes)) {
    weights[name] = f32(shape, rng);
    m[name] = f32(shape, rng);
    v[name] = f32(shape, rng);
  }
  const dataRng = new Rng(1000 + seed);
  dataRng.normal();
  const state: TrainingState = {
    step,
    samplesSeen: step * 32,
    schedule: { name: 'cosine', baseLr: 5e-4, warmupSteps: 10, totalSteps: 100 },
    dataPosition: { shard: 3, offset: 17, epoch: 0 },
    rng: { init: rng.getState() as unknown as TrainingState['rng'], data: dataRng.getState() as unknown as TrainingState['rng'] },
    config: { model: 'micro', embed_dim: 8, batch_size: 32 },
    precision: 'fp32',
    extra: { skippedSteps: 1, lossScale: null },
  };
  return { weights, optimizer: { m, v }, state };
}

test('save then load gives back every tensor, moment and state field exactly', async (t) => {
  const dir = await tempDir(t);
  const input = fakeTraining(40);
  const paths = await saveTrainingCheckpoint(dir, input);
  t.deepEqual(paths, checkpointPaths(dir, 40));
  t.deepEqual((await readdir(dir)).sort(), ['checkpoint-40.safetensors', 'latest.json', 'state-40.json', 'state-40.safetensors']);
  t.deepEqual(JSON.parse(await readFile(path.join(dir, 'latest.json'), 'utf8')), { step: 40, state: 'state-40.json' });

  // The weights file stands alone: OpenCLIP names, format "pt".
  const alone = await readSafetensors(paths.weights);
  t.deepEqual([...alone.tensors.keys()].sort(), Object.keys(input.weights).sort());
  t.is(alone.metadata?.format, 'pt');
  const moments = await readSafetensors(paths.optimizer);
  t.true(moments.tensors.has('m.text_projection') && moments.tensors.has('v.logit_scale'));

  const loaded = await loadTrainingCheckpoint(dir);
  t.deepEqual(loaded.paths, paths);
  t.deepEqual(loaded.state, input.state);
  for (const [name, w] of Object.entries(input.weights)) {
    t.deepEqual(loaded.weights.get(name), w, name);
    t.deepEqual(loaded.optimizer.m.get(name), input.optimizer.m[name], `m.${name}`);
    t.deepEqual(loaded.optimizer.v.get(name), input.optimizer.v[name], `v.${name}`);
  }
  // The RNG continues exactly where it stood.
  const rngOf = (state: TrainingState) => Rng.fromState((state.rng as unknown as { data: RngState }).data);
  const before = rngOf(input.state);
  const after = rngOf(loaded.state);
  t.deepEqual([after.normal(), after.normal(), after.uniform()], [before.normal(), before.normal(), before.uniform()]);
});

test('a crash at any point of a save leaves the previous checkpoint the one found', async (t) => {
  const dir = await tempDir(t);
  const other = await tempDir(t);
  await saveTrainingCheckpoint(dir, fakeTraining(10));
  await saveTrainingCheckpoint(other, fakeTraining(20));
  const p20 = checkpointPaths(dir, 20);
  const o20 = checkpointPaths(other, 20);

  // Crash after the weights: no state JSON for 20.
  await copyFile(o20.weights, p20.weights);
  t.is((await findLatestCheckpoint(dir))?.step, 10);
  // Crash after the state JSON, before latest.json moved: the pointer still says 10.
  await copyFile(o20.optimizer, p20.optimizer);
  await copyFile(o20.state, p20.state);
  t.is((await findLatestCheckpoint(dir))?.step, 10);
  t.deepEqual((await listTrainingCheckpoints(dir)).map((p) => p.step), [10, 20], 'step 20 is whole, just not committed');
  // The pointer moves: now 20 is found.
  await writeFile(path.join(dir, 'latest.json'), '{"step":20,"state":"state-20.json"}');
  t.is((await findLatestCheckpoint(dir))?.step, 20);

  // A torn weights file for 20 (the disk lost its tail): 20 is passed over, with the reason.
  await truncate(p20.weights, 300);
  const found = await findLatestCheckpoint(dir);
  t.is(found?.step, 10);
  t.is(found?.skipped.length, 1);
  t.regex(found!.skipped[0], /^step 20: safetensors: .*checkpoint-20\.safetensors: .*(truncated|runs past)/);
  await t.throwsAsync(loadTrainingCheckpoint(p20), { message: /checkpoint-20\.safetensors/ });

  // A garbled pointer falls back to the newest whole checkpoint.
  await writeFile(path.join(dir, 'latest.json'), '{"step":');
  t.is((await findLatestCheckpoint(dir))?.step, 10);
});

test('files from two saves of the same step are never mixed', async (t) => {
  const dir = await tempDir(t);
  const other = await tempDir(t);
  await saveTrainingCheckpoint(dir, fakeTraining(10, 1));
  await saveTrainingCheckpoint(other, fakeTraining(10, 2));
  // A crash while re-saving step 10: the new weights landed, the old state JSON remains.
  await copyFile(checkpointPaths(other, 10).weights, checkpointPaths(dir, 10).weights);
  t.is(await findLatestCheckpoint(dir), null);
  await t.throwsAsync(loadTrainingCheckpoint(checkpointPaths(dir, 10)), {
    message: /checkpoint-10\.safetensors: belongs to a different save than state-10\.json/,
  });
  await t.throwsAsync(loadTrainingCheckpoint(dir), { message: /no whole checkpoint in/ });
});

test('pruning keeps the newest and the committed checkpoints and clears dead writers\' temporaries', async (t) => {
  const dir = await tempDir(t);
  for (const step of [1, 2, 3]) await saveTrainingCheckpoint(dir, fakeTraining(step));
  // A temporary file from a writer that died, and one from a live process (this test's parent stays alive).
  const dead = spawnSync(process.execPath, ['-e', '']).pid!;
  await writeFile(path.join(dir, `.checkpoint-4.safetensors.tmp-${dead}-abcdef`), 'partial');
  await writeFile(path.join(dir, `.checkpoint-4.safetensors.tmp-${process.ppid}-abcdef`), 'partial');
  // Debris of a crashed save of step 9 (weights only).
  await copyFile(checkpointPaths(dir, 3).weights, checkpointPaths(dir, 9).weights);

  await saveTrainingCheckpoint(dir, fakeTraining(5), { keepLast: 2 });
  t.deepEqual((await readdir(dir)).sort(), [
    `.checkpoint-4.safetensors.tmp-${process.ppid}-abcdef`,
    'checkpoint-3.safetensors',
    'checkpoint-5.safetensors',
    'latest.json',
    'state-3.json',
    'state-3.safetensors',
    'state-5.json',
    'state-5.safetensors',
  ]);
  // The committed checkpoint survives even when newer whole ones outnumber keepLast.
  await saveTrainingCheckpoint(dir, fakeTraining(6));
  await saveTrainingCheckpoint(dir, fakeTraining(7));
  await writeFile(path.join(dir, 'latest.json'), '{"step":5,"state":"state-5.json"}');
  const removed = await pruneTrainingCheckpoints(dir, 1);
  t.deepEqual(removed, ['checkpoint-3.safetensors', 'checkpoint-6.safetensors', 'state-3.json', 'state-3.safetensors', 'state-6.json', 'state-6.safetensors']);
  t.deepEqual((await listTrainingCheckpoints(dir)).map((p) => p.step), [5, 7]);
  await t.throwsAsync(pruneTrainingCheckpoints(dir, 0), { message: /keepLast must be an integer >= 1/ });
});

test('bad inputs are refused before anything is written', async (t) => {
  const dir = await tempDir(t);
  const base = fakeTraining(3);
  const cases: Array<[Parameters<typeof saveTrainingCheckpoint>[1], RegExp]> = [
    [{ ...base, optimizer: { m: { ...base.optimizer.m, extra: base.weights.text_projection }, v: base.optimizer.v } }, /moment m\.extra has no parameter 'extra'/],
    [{ ...base, optimizer: { m: base.optimizer.m, v: { ...base.optimizer.v, text_projection: base.weights.positional_embedding } } }, /v\.text_projection has shape \[4,8\] but the parameter has \[8,8\]/],
    [{ ...base, optimizer: { m: base.optimizer.m, v: {} } }, /has a m moment but no v moment/],
    [{ ...base, state: { ...base.state, samplesSeen: NaN } }, /samplesSeen must be a non-negative integer/],
    [{ ...base, state: { ...base.state, dataPosition: { offset: Infinity } } }, /state\.dataPosition\.offset is Infinity, which JSON cannot hold/],
    [{ ...base, state: { ...base.state, extra: { big: 3n as never } } }, /state\.extra\.big is a bigint, not plain JSON/],
    [{ ...base, state: { ...base.state, step: 1.5 } }, /state\.step must be a non-negative integer, got 1\.5/],
  ];
  for (const [input, pattern] of cases) await t.throwsAsync(saveTrainingCheckpoint(dir, input), { message: pattern });
  t.deepEqual(await readdir(dir), []);
  t.is(await findLatestCheckpoint(path.join(dir, 'missing')), null);
  await t.throwsAsync(loadTrainingCheckpoint(path.join(dir, 'missing')), { message: /no whole checkpoint in .*missing \(empty or missing directory\)/ });
});
