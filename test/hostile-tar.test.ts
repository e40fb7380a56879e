// Hostile tar files: sizes the reader must bound before allocating or reading, negative sizes,
// and inputs that are not regular files. Each used to abort the process or loop forever.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';

import { readTar } from '../lib/data/tar.js';
import { TarWriter } from '../lib/data/tar_write.js';
import { WebDataset } from '../lib/data/webdataset.js';

const dir = mkdtempSync(join(tmpdir(), 'cs-hostile-tar-'));

/** A ustar header whose size field holds `sizeField` verbatim (12 bytes), with a valid checksum. */
function header(name: string, sizeField: string | Buffer, type = '0'): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write('0000644\0', 100, 'ascii');
  if (typeof sizeField === 'string') h.write(sizeField.padEnd(12, '\0').slice(0, 12), 124, 'ascii');
  else sizeField.copy(h, 124, 0, 12);
  h.write('00000000000\0', 136, 'ascii');
  h.write('        ', 148, 'ascii');
  h.write(type, 156, 'ascii');
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += h[i];
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
  return h;
}

async function damages(path: string, maxMember?: number): Promise<{ names: string[]; damage: [string, string][] }> {
  const damage: [string, string][] = [];
  const names: string[] = [];
  for await (const m of readTar(path, (k, d) => damage.push([k, d]), maxMember)) names.push(m.name);
  return { names, damage };
}

test('tar: a member claiming 2^31..2^32 bytes (octal or pax) is refused by the file size, naming the shard', async (t) => {
  const octal = join(dir, 'huge-octal.tar');
  writeFileSync(octal, Buffer.concat([header('a.jpg', (2 ** 31 + 5).toString(8).padStart(11, '0') + '\0'), Buffer.alloc(4096)]));
  const r = await damages(octal);
  t.deepEqual(r.names, []);
  t.is(r.damage[0][0], 'truncated_tar');
  t.regex(r.damage[0][1], /huge-octal\.tar.*a\.jpg.*2147483653 bytes/);

  const pax = join(dir, 'huge-pax.tar');
  const rec = '19 size=3000000000\n';
  writeFileSync(pax, Buffer.concat([header('PaxHeader', '00000000023\0', 'x'), Buffer.from(rec.padEnd(512, '\0')), header('b.jpg', '00000000001\0'), Buffer.alloc(1024)]));
  const p = await damages(pax);
  t.deepEqual(p.names, []);
  t.regex(p.damage[0][1], /b\.jpg.*3000000000 bytes/);
});

test('tar: a per-member limit bounds what is read into memory', async (t) => {
  const path = join(dir, 'limit.tar');
  const w = new TarWriter(path);
  w.add('x.txt', Buffer.alloc(5000, 97));
  w.close();
  const r = await damages(path, 4096);
  t.deepEqual(r.names, []);
  t.regex(r.damage[0][1], /5000 bytes, more than the per-member limit of 4096/);
  t.deepEqual((await damages(path)).names, ['x.txt']);
});

test('tar: a large member is read whole in bounded chunks', async (t) => {
  const path = join(dir, 'big.tar');
  const body = Buffer.alloc(3 * (1 << 20) + 7);
  for (let i = 0; i < body.length; i++) body[i] = (i * 31) & 255;
  const w = new TarWriter(path);
  w.add('big.bin', body);
  w.add('after.txt', 'ok');
  w.close();
  const got: Buffer[] = [];
  for await (const m of readTar(path)) got.push(m.data);
  t.is(got.length, 2);
  t.true(got[0].equals(body));
  t.is(got[1].toString(), 'ok');
});

test('tar: negative or non-octal size fields stop the shard as corrupt (no endless loop)', async (t) => {
  for (const field of ['-0000001000\0', '0000000abc\0', Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0x00])]) {
    const path = join(dir, 'neg.tar');
    writeFileSync(path, Buffer.concat([header('a.txt', '00000000001\0'), Buffer.from('x'.padEnd(512, '\0')), header('b.txt', field), Buffer.alloc(2048)]));
    const r = await damages(path);
    t.deepEqual(r.names, ['a.txt']);
    t.is(r.damage.length, 1);
    t.is(r.damage[0][0], 'corrupt_tar_header');
    t.regex(r.damage[0][1], /b\.txt.*invalid size/);
  }
});

test('tar and webdataset: a FIFO or a device is refused by type, not opened and read forever', async (t) => {
  const fifo = join(dir, 'pipe.tar');
  execFileSync('mkfifo', [fifo]);
  await t.throwsAsync(async () => {
    for await (const _ of readTar(fifo)) void _;
  }, { message: /pipe\.tar.*FIFO/ });
  await t.throwsAsync(async () => {
    for await (const _ of readTar('/dev/zero')) void _;
  }, { message: /\/dev\/zero.*character device/ });
  t.throws(() => new WebDataset({ urls: fifo }), { message: /pipe\.tar.*not a (regular )?file/ });
});
