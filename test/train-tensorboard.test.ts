// TensorBoard event files: our reader against a file written by torch.utils.tensorboard (OpenCLIP's
// writer, committed fixture), our writer read back by our reader, and — where Python's tensorboard
// package is installed — our writer's files read by tensorboard's own EventAccumulator.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import test from 'ava';

import { crc32c, frameRecord, maskedCrc32c, readRecords } from '../lib/train/tfrecord.js';
import { readEventFile, readScalars, scalarsOfRecord, TensorBoardWriter } from '../lib/train/tensorboard.js';

const fixtures = fileURLToPath(new URL('./_fixtures/tensorboard/', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'clipscale-tb-'));

test('CRC-32C and its mask match the published check values', (t) => {
  t.is(crc32c(new TextEncoder().encode('123456789')), 0xe3069283);
  t.is(crc32c(new Uint8Array(32)), 0x8a9136aa); // RFC 3720 B.4: 32 bytes of zeros
  t.is(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  const c = crc32c(new Uint8Array(0));
  t.is(maskedCrc32c(new Uint8Array(0)), ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0);
});

test("a file written by torch.utils.tensorboard (OpenCLIP's writer) reads back with its values", (t) => {
  const expected = JSON.parse(readFileSync(join(fixtures, 'expected.json'), 'utf8')) as { scalars: { tag: string; step: number; value: number }[] };
  const events = readEventFile(join(fixtures, 'events.out.tfevents.torch'));
  t.is(events[0].fileVersion, 'brain.Event:2');
  const got = events.flatMap((e) => e.scalars.map((s) => ({ tag: s.tag, step: e.step, value: s.value })));
  t.is(got.length, expected.scalars.length, 'old-style and new-style scalars, the text summary skipped');
  for (const [i, e] of expected.scalars.entries()) {
    t.is(got[i].tag, e.tag);
    t.is(got[i].step, e.step);
    t.is(got[i].value, Math.fround(e.value), `${e.tag} at ${e.step}`);
  }
  for (const e of events) t.true(e.wallTime > 1.6e9);
});

test('our writer: a tfevents file named as TensorFlow names it, read back exactly', (t) => {
  const dir = join(tmp, 'roundtrip');
  const w = new TensorBoardWriter(dir, { wallTime: 1764600000.25, host: 'box' });
  t.regex(w.path, /events\.out\.tfevents\.1764600000\.box$/);
  w.record({ step: 10, samples: 1280, loss: 4.5, lr: 1e-3, logit_scale: 14.3, samples_per_s: 1234.5, data_time_s: 0.01, step_time_s: 0.1, grad_norm: 2, zeroshot_colour_acc1: 0.5, note: 'x' });
  w.scalars(20, [{ tag: 'train/loss', value: NaN }], 1764600010);
  const second = new TensorBoardWriter(dir, { wallTime: 1764600000.9, host: 'box' });
  second.scalars(30, [{ tag: 'train/loss', value: 3.25 }], 1764600020);
  second.close();
  w.close();
  t.throws(() => w.scalars(1, [{ tag: 'x', value: 1 }]), { message: /closed/ });
  const events = readEventFile(w.path);
  t.is(events.length, 3);
  t.deepEqual(events[0], { wallTime: 1764600000.25, step: 0, fileVersion: 'brain.Event:2', scalars: [] });
  const byTag = Object.fromEntries(events[1].scalars.map((s) => [s.tag, s.value]));
  t.is(events[1].step, 10);
  t.is(byTag['train/loss'], 4.5);
  t.is(byTag['train/lr'], Math.fround(1e-3));
  t.is(byTag['train/scale'], Math.fround(14.3));
  t.is(byTag['train/samples_per_second'], Math.fround(1234.5));
  t.is(byTag['val/zeroshot_colour_acc1'], 0.5);
  t.is(byTag['train/samples_seen'], 1280);
  t.false('note' in byTag, 'strings are not scalars');
  t.true(Number.isNaN(events[2].scalars[0].value));
  // The second writer of the same second gets its own file; the directory reads in order.
  t.is(readdirSync(dir).length, 2);
  const loss = readScalars(dir).get('train/loss')!;
  t.deepEqual(loss.map((p) => p.step), [10, 20, 30]);
  t.deepEqual(scalarsOfRecord({ step: 1, samples: 2, loss: 1, lr: 2, logit_scale: 3, samples_per_s: 4, data_time_s: 5, step_time_s: 6 }).map((s) => s.tag), [
    'train/loss', 'train/lr', 'train/scale', 'train/samples_per_second', 'train/data_time', 'train/batch_time', 'train/samples_seen',
  ]);
});

test('a torn last record ends the file; a corrupted one is an error naming its offset', (t) => {
  const a = frameRecord(new Uint8Array([1, 2, 3]));
  const b = frameRecord(new Uint8Array([4, 5, 6, 7]));
  const whole = new Uint8Array([...a, ...b]);
  t.is(readRecords(whole).length, 2);
  t.is(readRecords(whole.subarray(0, whole.length - 3)).length, 1, 'a writer still writing: the whole records');
  const bad = whole.slice();
  bad[a.length + 13] ^= 1;
  t.throws(() => readRecords(bad, 'f'), { message: `f: bad data CRC in the record at byte ${a.length}` });
  const badLen = whole.slice();
  badLen[0] ^= 1;
  t.throws(() => readRecords(badLen, 'f'), { message: 'f: bad length CRC at byte 0' });
});

test("tensorboard's own EventAccumulator reads our files (where Python's tensorboard is installed)", (t) => {
  const probe = spawnSync('python3', ['-c', 'import tensorboard'], { encoding: 'utf8' });
  if (probe.status !== 0) {
    t.log("SKIPPED: python3 with the tensorboard package is not installed here (pip install tensorboard); our reader is checked against the committed torch fixture above");
    t.pass();
    return;
  }
  const dir = join(tmp, 'python');
  const w = new TensorBoardWriter(dir);
  for (let step = 1; step <= 4; step++) w.record({ step, samples: 8 * step, loss: 5 / step, lr: 1e-4 * step, logit_scale: 14 + step, samples_per_s: 100 * step, data_time_s: 0, step_time_s: 0.1 });
  w.close();
  const r = spawnSync('python3', [join(fixtures, 'read_events.py'), dir], { encoding: 'utf8', timeout: 120_000 });
  t.is(r.status, 0, r.stderr);
  const scalars = JSON.parse(r.stdout) as Record<string, [number, number][]>;
  t.deepEqual(scalars['train/loss'], [1, 2, 3, 4].map((s) => [s, Math.fround(5 / s)]));
  t.deepEqual(scalars['train/scale'].map(([s]) => s), [1, 2, 3, 4]);
  t.is(scalars['train/samples_per_second'][3][1], 400);
  writeFileSync(join(tmp, 'python.json'), r.stdout);
});
