// Write faults: outputs are atomic (a full disk leaves the previous file, never a 0-byte one) and
// every I/O error names the file. The full-disk cases need a small tmpfs (root with mount); where
// mounting is not allowed they are skipped with a note, and the directory cases still run.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';

import { writeShards } from '../lib/data/make_shards.js';
import { readNpy, writeNpy } from '../lib/eval/npy.js';
import { writeBytesAtomic } from '../lib/util/atomic_file.js';

const dir = mkdtempSync(join(tmpdir(), 'cs-hostile-io-'));
const full = join(dir, 'full');
mkdirSync(full);
const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', full]).status === 0;
test.after.always(() => {
  if (mounted) spawnSync('umount', [full]);
  rmSync(dir, { recursive: true, force: true });
});

test.serial('writeNpy on a full disk keeps the previous file whole and names the file', (t) => {
  if (!mounted) return t.pass('no tmpfs mount here (needs root): full-disk case skipped');
  const path = join(full, 'features.npy');
  writeNpy(path, new Float32Array([1, 2, 3, 4]), [2, 2]);
  const before = readFileSync(path);
  const err = t.throws(() => writeNpy(path, new Float32Array(64 * 1024), [64, 1024]));
  t.regex(err!.message, /features\.npy.*(ENOSPC|no space)/);
  t.deepEqual(readFileSync(path), before, 'the previous file is untouched');
  t.deepEqual(readNpy(path).shape, [2, 2]);
  t.deepEqual(readdirSync(full).filter((f) => f.includes('.tmp-')), [], 'no temporary file left');
});

test.serial('make-shards on a full disk names the shard and leaves no .partial file', async (t) => {
  if (!mounted) return t.pass('no tmpfs mount here (needs root): full-disk case skipped');
  const out = join(full, 'shards');
  function* inputs() {
    for (let i = 0; i < 100; i++) yield { key: String(i), ext: 'png', image: new Uint8Array(4096), caption: 'c' };
  }
  const err = await t.throwsAsync(() => writeShards(inputs(), out, 1000));
  t.regex(err!.message, /00000\.tar.*(ENOSPC|no space)/);
  t.deepEqual(readdirSync(out).filter((f) => f.endsWith('.partial')), []);
});

test('an atomic write that fails names its target and leaves no temporary file', async (t) => {
  const target = join(dir, 'occupied');
  mkdirSync(join(target, 'child'), { recursive: true });
  const err = t.throws(() => writeNpy(target, new Float32Array(2), [2]));
  t.regex(err!.message, /EISDIR.*occupied'$/);
  await t.throwsAsync(() => writeBytesAtomic(target, 'x'), { message: /EISDIR.*occupied'$/ });
  t.deepEqual(readdirSync(dir).filter((f) => f.includes('.tmp-')), []);
});
