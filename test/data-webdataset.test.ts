import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';

import { expandBraces } from '../lib/data/braces.js';
import { CsvSource, parseCsv } from '../lib/data/csv.js';
import { ImageFolderSource } from '../lib/data/image_folder.js';
import { DataLoader } from '../lib/data/loader.js';
import { inspectShards } from '../lib/data/make_shards.js';
import { readTar } from '../lib/data/tar.js';
import { TarWriter } from '../lib/data/tar_write.js';
import { WebDataset } from '../lib/data/webdataset.js';

const dir = mkdtempSync(join(tmpdir(), 'clipscale-wds-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

async function jpeg(seed: number, size = 24): Promise<Buffer> {
  return sharp({ create: { width: size, height: size + 4, channels: 3, background: { r: (seed * 40) % 256, g: 100, b: 200 } } }).jpeg().toBuffer();
}

async function goodShard(path: string, keys: string[]): Promise<void> {
  const w = new TarWriter(path);
  for (const [i, k] of keys.entries()) {
    w.add(`${k}.jpg`, await jpeg(i));
    w.add(`${k}.txt`, `caption of ${k}`);
  }
  w.close();
}

/** A shard with one sample of each kind of bad input, plus six good ones. */
async function badShard(path: string): Promise<void> {
  const w = new TarWriter(path);
  for (const k of ['a0', 'a1', 'a2', 'a3', 'a4']) {
    w.add(`${k}.jpg`, await jpeg(k.charCodeAt(1)));
    w.add(`${k}.txt`, `good ${k}`);
  }
  const whole = await jpeg(9, 64);
  w.add('b_random.jpg', Buffer.from('this is not an image at all, just text bytes'));
  w.add('b_random.txt', 'random bytes');
  w.add('b_truncated.jpg', whole.subarray(0, Math.floor(whole.length / 2)));
  w.add('b_truncated.txt', 'half a jpeg');
  w.add('b_empty.jpg', new Uint8Array(0));
  w.add('b_empty.txt', 'zero-byte image');
  w.add('b_nocaption.jpg', await jpeg(3));
  w.add('b_latin1.jpg', await jpeg(4));
  w.add('b_latin1.txt', Buffer.from([0x63, 0x61, 0x66, 0xe9, 0xff]));
  w.add('b_noimage.txt', 'a caption alone');
  w.add('c_json.png', await sharp({ create: { width: 8, height: 8, channels: 4, background: '#ff000080' } }).png().toBuffer());
  w.add('c_json.json', JSON.stringify({ caption: 'caption from json', url: 'x' }));
  w.close();
}

test.serial('bad input is skipped and counted, never fatal (inspect and loader agree)', async (t) => {
  const d = join(dir, 'bad');
  mkdirSync(d);
  await badShard(join(d, '00000.tar'));
  // A truncated tar: four samples, cut inside the third sample's image.
  await goodShard(join(d, '00001.tar'), ['t0', 't1', 't2', 't3']);
  const members: string[] = [];
  let cut = 0;
  for await (const m of readTar(join(d, '00001.tar'))) members.push(m.name);
  t.deepEqual(members.slice(0, 3), ['t0.jpg', 't0.txt', 't1.jpg']);
  // Each member here is one 512-byte header plus data padded to 512: find t2.jpg's data start.
  {
    const buf = readFileSync(join(d, '00001.tar'));
    cut = buf.indexOf(Buffer.from('t2.jpg')) + 512 + 100;
  }
  truncateSync(join(d, '00001.tar'), cut);

  const expected = { caption_not_utf8: 1, corrupt_image: 2, empty_member: 1, missing_caption: 1, missing_image: 1, truncated_tar: 1 };
  const report = await inspectShards(join(d, '{00000..00001}.tar'));
  t.deepEqual(report, { shards: 2, samples: 6 + 2, skipped: expected });

  const dataset = new WebDataset({ urls: join(d, '{00000..00001}.tar') });
  const loader = new DataLoader({ source: dataset.epoch(0), batchSize: 3, imageSize: 16, workers: 2, dropLast: false, skipped: dataset.skipped });
  const keys: string[] = [];
  const captions: string[] = [];
  for await (const b of loader) {
    t.is(b.pixels.length, b.size * 3 * 16 * 16);
    t.true(b.pixels.every(Number.isFinite));
    keys.push(...b.keys);
    captions.push(...b.captions);
  }
  t.deepEqual(keys, ['a0', 'a1', 'a2', 'a3', 'a4', 'c_json', 't0', 't1']);
  t.is(captions[5], 'caption from json');
  t.deepEqual(dataset.skipped.toJSON(), expected);
  t.is(loader.position, 8 + 2, 'position counts the samples read, the two corrupt images included');
});

test('a missing shard is a clear error naming it', (t) => {
  t.throws(() => new WebDataset({ urls: join(dir, 'nowhere', '{00000..00002}.tar') }), { message: /shard '.*nowhere\/00000\.tar' does not exist/ });
});

test('brace expansion: zero-padded ranges, lists, several braces, :: joins', (t) => {
  t.deepEqual(expandBraces('s/{00008..00011}.tar'), ['s/00008.tar', 's/00009.tar', 's/00010.tar', 's/00011.tar']);
  t.deepEqual(expandBraces('{a,b}/{1..2}.tar'), ['a/1.tar', 'a/2.tar', 'b/1.tar', 'b/2.tar']);
  t.deepEqual(expandBraces('x.tar::y/{0..1}.tar'), ['x.tar', 'y/0.tar', 'y/1.tar']);
  t.is(expandBraces('s/{00000..00999}.tar').length, 1000);
  t.throws(() => expandBraces('s/{5..2}.tar'), { message: /backwards/ });
  t.throws(() => expandBraces('s/{00000..00999.tar'), { message: /without '}'/ });
});

test('tar reader: GNU long names and pax paths (archives made by tar), and ours', async (t) => {
  const src = join(dir, 'long');
  const deep = join(src, 'a'.repeat(60), 'b'.repeat(60));
  mkdirSync(deep, { recursive: true });
  writeFileSync(join(deep, `${'c'.repeat(90)}.txt`), 'long name');
  const ours = join(dir, 'ours.tar');
  const w = new TarWriter(ours);
  w.add(`${'d'.repeat(150)}.txt`, 'pax by us');
  w.add('short.txt', 'é');
  w.close();
  const read = async (p: string) => {
    const out: [string, string][] = [];
    for await (const m of readTar(p)) out.push([m.name, m.data.toString('utf8')]);
    return out;
  };
  t.deepEqual(await read(ours), [[`${'d'.repeat(150)}.txt`, 'pax by us'], ['short.txt', 'é']]);
  const hasTar = spawnSync('tar', ['--version']).status === 0;
  if (!hasTar) {
    t.log('no tar command here: GNU/pax archives from tar not checked');
    return;
  }
  for (const format of ['gnu', 'pax', 'ustar']) {
    const out = join(dir, `long-${format}.tar`);
    const r = spawnSync('tar', [`--format=${format}`, '-cf', out, '-C', src, '.'], { encoding: 'utf8' });
    t.is(r.status, 0, r.stderr);
    const files = (await read(out)).filter(([n]) => n.endsWith('.txt'));
    t.deepEqual(files, [[`./${'a'.repeat(60)}/${'b'.repeat(60)}/${'c'.repeat(90)}.txt`, 'long name']], format);
  }
  // A header whose checksum is wrong stops the shard and is reported.
  const bad = Buffer.from(readFileSync(ours));
  bad[10] ^= 0xff;
  writeFileSync(join(dir, 'badsum.tar'), bad);
  const damage: string[] = [];
  for await (const _ of readTar(join(dir, 'badsum.tar'), (k) => damage.push(k))) void _;
  t.deepEqual(damage, ['corrupt_tar_header']);
});

test('shard shuffle, shuffle buffer, rank/worker split and resampling are seeded', async (t) => {
  const d = join(dir, 'many');
  mkdirSync(d);
  for (let s = 0; s < 6; s++) await goodShard(join(d, `${s}.tar`), Array.from({ length: 5 }, (_, i) => `s${s}_${i}`));
  const urls = join(d, '{0..5}.tar');
  const keys = async (ds: WebDataset, epoch = 0, limit = Infinity) => {
    const out: string[] = [];
    for await (const s of ds.epoch(epoch)) {
      out.push(s.key);
      if (out.length >= limit) break;
    }
    return out;
  };
  const plain = await keys(new WebDataset({ urls }));
  t.is(plain.length, 30);
  const shuffled = await keys(new WebDataset({ urls, shuffleShards: true, shuffleBuffer: 8, seed: 1 }));
  t.deepEqual([...shuffled].sort(), [...plain].sort());
  t.notDeepEqual(shuffled, plain);
  t.deepEqual(await keys(new WebDataset({ urls, shuffleShards: true, shuffleBuffer: 8, seed: 1 })), shuffled);
  t.notDeepEqual(await keys(new WebDataset({ urls, shuffleShards: true, shuffleBuffer: 8, seed: 1 }), 1), shuffled, 'epochs differ');
  // 2 ranks × 2 workers: disjoint parts that together are everything.
  const parts: string[][] = [];
  for (let rank = 0; rank < 2; rank++) for (let w = 0; w < 2; w++) parts.push(await keys(new WebDataset({ urls, rank, worldSize: 2, workerId: w, numWorkers: 2 })));
  t.deepEqual(parts.flat().sort(), [...plain].sort());
  // More readers than shards: split by sample instead.
  const thin: string[][] = [];
  for (let rank = 0; rank < 8; rank++) thin.push(await keys(new WebDataset({ urls, rank, worldSize: 8 })));
  t.deepEqual(thin.flat().sort(), [...plain].sort());
  t.true(thin.every((p) => p.length >= 3));
  const resampled = await keys(new WebDataset({ urls, resampled: true, seed: 3 }), 0, 100);
  t.is(resampled.length, 100);
  t.true(new Set(resampled).size < 100, 'with replacement');
  t.throws(() => new WebDataset({ urls, rank: 2, worldSize: 2 }), { message: /rank 2 is outside world size 2/ });
});

test('CSV source: quoting, separators, missing files counted; image folder: sorted classes', async (t) => {
  t.deepEqual(parseCsv('a,b\n"x, ""y""",z\r\n'), [['a', 'b'], ['x, "y"', 'z']]);
  const d = join(dir, 'csv');
  mkdirSync(join(d, 'img'), { recursive: true });
  writeFileSync(join(d, 'img', '1.jpg'), await jpeg(1));
  writeFileSync(join(d, 'list.tsv'), 'filepath\ttitle\nimg/1.jpg\ta cat\nimg/2.jpg\tmissing\n');
  const csv = new CsvSource(join(d, 'list.tsv'), { separator: '\t' });
  const rows = [...csv];
  t.deepEqual(rows.map((r) => r.caption), ['a cat']);
  t.is(csv.skipped.get('missing_file'), 1);
  t.throws(() => new CsvSource(join(d, 'list.tsv')), { message: /expected 'filepath' and 'title'/ });

  for (const c of ['zebra', 'ant']) {
    mkdirSync(join(d, 'folder', c), { recursive: true });
    writeFileSync(join(d, 'folder', c, 'x.jpg'), await jpeg(2));
  }
  const folder = new ImageFolderSource(join(d, 'folder'));
  t.deepEqual(folder.classnames, ['ant', 'zebra']);
  t.deepEqual([...folder].map((s) => s.label), [0, 1]);
  t.true(statSync(join(d, 'folder')).isDirectory());
});
