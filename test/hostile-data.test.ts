// Hostile data inputs: special files given as images, CSVs and vocabularies; huge images decoded
// under a pixel budget; CSV quoting faults; make-shards leaving nothing half-written.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';
import sharp from 'sharp';

import { CsvSource } from '../lib/data/csv.js';
import { csvInputs, inspectShards, writeShards } from '../lib/data/make_shards.js';
import { PixelBudget } from '../lib/data/pixel_budget.js';
import { SkipCounter } from '../lib/data/skip_counter.js';
import { TarWriter } from '../lib/data/tar_write.js';
import { Tokenizer } from '../lib/data/tokenizer.js';
import { readNpy } from '../lib/eval/npy.js';
import { loadModelConfig } from '../lib/nn/config.js';
import { readRegularFileSync } from '../lib/util/regular_file.js';

const dir = mkdtempSync(join(tmpdir(), 'cs-hostile-data-'));
const fifo = join(dir, 'pipe');
execFileSync('mkfifo', [fifo]);

test('special files are refused by type before reading: vocab, npy, model config, CSV', (t) => {
  t.throws(() => Tokenizer.fromFile('/dev/zero'), { message: /\/dev\/zero.*character device/ });
  t.throws(() => Tokenizer.fromFile(fifo), { message: /pipe.*FIFO/ });
  t.throws(() => readNpy(fifo), { message: /pipe.*FIFO/ });
  t.throws(() => readNpy('/dev/zero'), { message: /character device/ });
  t.throws(() => loadModelConfig(fifo), { message: /FIFO/ });
  t.throws(() => new CsvSource(fifo), { message: /FIFO/ });
  t.throws(() => readRegularFileSync(dir), { message: /directory/ });
  const big = join(dir, 'big.bin');
  writeFileSync(big, Buffer.alloc(4096));
  t.throws(() => readRegularFileSync(big, { what: 'thing', maxBytes: 1000 }), { message: /thing '.*big\.bin'.*4096 bytes is more than the limit of 1000/ });
});

test('a gzip bomb or broken gzip as a vocabulary names the file', (t) => {
  const bad = join(dir, 'bad.txt.gz');
  writeFileSync(bad, Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3]));
  t.throws(() => Tokenizer.fromFile(bad), { message: /bad\.txt\.gz.*gzip/ });
});

test('make-shards from a CSV naming /dev/zero and a FIFO as images: both skipped and counted, no hang', async (t) => {
  const png = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#808080' } }).png().toBuffer();
  writeFileSync(join(dir, 'ok.png'), png);
  const zeroLink = join(dir, 'zero.png');
  execFileSync('ln', ['-sf', '/dev/zero', zeroLink]);
  const fifoPng = join(dir, 'pipe.png');
  execFileSync('mkfifo', [fifoPng]);
  const csv = join(dir, 'special.csv');
  writeFileSync(csv, `filepath,title\n${join(dir, 'ok.png')},fine\n${zeroLink},zero\n${fifoPng},fifo\n`);
  const skipped = new SkipCounter();
  const out = join(dir, 'special-shards');
  const r = await writeShards(csvInputs(csv, {}, skipped), out, 10, skipped);
  t.is(r.samples, 1);
  t.is(skipped.get('unreadable_file'), 2);
});

test('data inspect decodes under a pixel budget (huge images are not decoded all at once)', async (t) => {
  const d = join(dir, 'huge');
  mkdirSync(d);
  // 2000×2000 solid PNGs compress to a few KB but decode to 12 MB each.
  const png = await sharp({ create: { width: 2000, height: 2000, channels: 3, background: '#336699' } }).png().toBuffer();
  const w = new TarWriter(join(d, '00000.tar'));
  for (let i = 0; i < 4; i++) {
    w.add(`${i}.png`, png);
    w.add(`${i}.txt`, 'big');
  }
  w.close();
  const budget = new PixelBudget(4, 5_000_000);
  const r = await inspectShards(join(d, '00000.tar'), true, { budget });
  t.is(r.samples, 4);
  t.true(budget.peak <= 5_000_000, `peak ${budget.peak}`);
  t.is(budget.peak, 4_000_000);
});

test('CSV: an unterminated quote is an error naming the file and line, not rows swallowed into a caption', (t) => {
  const csv = join(dir, 'unterminated.csv');
  writeFileSync(csv, 'filepath,title\na.png,"a caption that never closes\nb.png,second\nc.png,third\n');
  t.throws(() => new CsvSource(csv), { message: /unterminated\.csv.*unterminated quote.*line 2/ });
});

test('make-shards leaves no .partial file when an input fails mid-shard', async (t) => {
  const out = join(dir, 'partial');
  async function* inputs() {
    yield { key: '0', ext: 'txt', image: new Uint8Array([1]), caption: 'a' };
    throw new Error('source failed');
  }
  await t.throwsAsync(() => writeShards(inputs(), out, 10), { message: /source failed/ });
  t.deepEqual(readdirSync(out).filter((f) => f.endsWith('.partial')), []);
});

test('an image path that is a FIFO or /dev/zero is refused by type (embed --images, eval folders, the loader)', async (t) => {
  const { transformImage } = await import('../lib/data/transforms.js');
  await t.throwsAsync(() => transformImage(fifo, { size: 8, train: false }), { message: /pipe.*FIFO/ });
  await t.throwsAsync(() => transformImage('/dev/zero', { size: 8, train: false }), { message: /character device/ });
});
