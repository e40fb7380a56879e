import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

import {
  SafetensorsReader,
  bf16BitsFromF32,
  f16BitsFromF32,
  f32FromBf16Bits,
  f32FromF16Bits,
  parseSafetensors,
  readSafetensors,
  readSafetensorsHeader,
  serializeSafetensors,
  writeSafetensors,
  type TensorRecord,
} from '../lib/train/safetensors.js';
import { writeFileAtomic } from '../lib/util/atomic_file.js';

const enc = new TextEncoder();

async function tempDir(t: { teardown: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'clipscale-st-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function u64le(n: number): number[] {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n), true);
  return [...b];
}

function f32le(...xs: number[]): number[] {
  return [...new Uint8Array(new Float32Array(xs).buffer)];
}

/** A file assembled byte by byte: length prefix, header text exactly as given, then data bytes. */
function rawFile(header: string, data: number[], declaredLength = enc.encode(header).byteLength): Uint8Array {
  return new Uint8Array([...u64le(declaredLength), ...enc.encode(header), ...data]);
}

test('serialize matches the reference implementation byte for byte (its own test vector)', (t) => {
  // huggingface/safetensors test_serialization: "attn.0" F32 [1,2,3] = 0..5; 64-byte header, no padding needed.
  const out = serializeSafetensors({ 'attn.0': { dtype: 'F32', shape: [1, 2, 3], data: new Float32Array([0, 1, 2, 3, 4, 5]) } });
  const header = '{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}';
  t.is(header.length, 64);
  t.deepEqual([...out], [...u64le(64), ...enc.encode(header), ...f32le(0, 1, 2, 3, 4, 5)]);
});

test('serialize orders by dtype (widest first) then name, puts __metadata__ first and pads with spaces', (t) => {
  const out = serializeSafetensors(
    {
      c: { dtype: 'BF16', shape: [3], data: new Uint16Array([0x3f80, 0x4000, 0xc040]) },
      a: { dtype: 'F32', shape: [2], data: new Float32Array([1.5, -2]) },
      b: { dtype: 'I64', shape: [2], data: new BigInt64Array([7n, -1n]) },
      '10': { dtype: 'I32', shape: [], data: new Int32Array([258]) },
      d: { dtype: 'F16', shape: [1], data: new Uint16Array([0x3c00]) },
      aa: { dtype: 'F32', shape: [0], data: new Float32Array(0) },
    },
    { format: 'pt', b_key: 'x' },
  );
  // Reference order: I64 > F32 > I32 > BF16 > F16 (the Rust Dtype enum descending), names by bytes.
  const json =
    '{"__metadata__":{"b_key":"x","format":"pt"},' +
    '"b":{"dtype":"I64","shape":[2],"data_offsets":[0,16]},' +
    '"a":{"dtype":"F32","shape":[2],"data_offsets":[16,24]},' +
    '"aa":{"dtype":"F32","shape":[0],"data_offsets":[24,24]},' +
    '"10":{"dtype":"I32","shape":[],"data_offsets":[24,28]},' +
    '"c":{"dtype":"BF16","shape":[3],"data_offsets":[28,34]},' +
    '"d":{"dtype":"F16","shape":[1],"data_offsets":[34,36]}}';
  // Counted by hand: 44 (metadata) + 54 + 55 + 56 + 55 + 56 + 55 = 375, so one space pads it to 376 = 47 × 8.
  t.is(json.length, 375);
  const header = json + ' ';
  const data = [
    7, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 255, 255, 255, 255, // I64 7, -1
    ...f32le(1.5, -2),
    2, 1, 0, 0, // I32 258
    0x80, 0x3f, 0x00, 0x40, 0x40, 0xc0, // BF16 1, 2, -3
    0x00, 0x3c, // F16 1
  ];
  t.deepEqual([...out], [...u64le(376), ...enc.encode(header), ...data]);

  const back = parseSafetensors(out);
  t.deepEqual(back.metadata, { format: 'pt', b_key: 'x' });
  t.deepEqual([...back.tensors.keys()], ['b', 'a', 'aa', '10', 'c', 'd']);
  t.deepEqual([...(back.tensors.get('b')!.data as BigInt64Array)], [7n, -1n]);
  t.deepEqual(back.tensors.get('10')!, { dtype: 'I32', shape: [], data: new Int32Array([258]) });
  const asF32 = parseSafetensors(out, { asF32: true });
  t.deepEqual(asF32.tensors.get('c')!, { dtype: 'F32', shape: [3], data: new Float32Array([1, 2, -3]) });
  t.deepEqual(asF32.tensors.get('d')!, { dtype: 'F32', shape: [1], data: new Float32Array([1]) });
});

test('reads the reference implementation\'s test files (unpadded header, scalar shape)', (t) => {
  // test_deserialization: header of 60 bytes (not a multiple of 8), I32 [2,2] zeros.
  const a = parseSafetensors(rawFile('{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}', new Array(16).fill(0)));
  t.deepEqual(a.tensors.get('test'), { dtype: 'I32', shape: [2, 2], data: new Int32Array(4) });
  t.is(a.metadata, null);
  // test_empty_shapes_allowed
  const b = parseSafetensors(rawFile('{"test":{"dtype":"I32","shape":[],"data_offsets":[0,4]}}', [0, 0, 0, 0]));
  t.deepEqual(b.tensors.get('test')!.shape, []);
  // A file that has no tensors at all.
  t.is(parseSafetensors(rawFile('{}      ', [])).tensors.size, 0);
  // Offsets may be listed in any order in the header.
  const c = parseSafetensors(
    rawFile('{"y":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', f32le(1, 2)),
  );
  t.deepEqual([...c.tensors.keys()], ['x', 'y']);
  t.is((c.tensors.get('y')!.data as Float32Array)[0], 2);
});

test('bf16 conversion rounds to nearest even; f16 conversion is exact over every half value', (t) => {
  t.is(bf16BitsFromF32(1), 0x3f80);
  t.is(bf16BitsFromF32(1 + 2 ** -8), 0x3f80, 'tie rounds to even (down)');
  t.is(bf16BitsFromF32(1 + 3 * 2 ** -8), 0x3f82, 'tie rounds to even (up)');
  t.is(bf16BitsFromF32(1 + 2 ** -8 + 2 ** -20), 0x3f81, 'above the tie rounds up');
  t.is(bf16BitsFromF32(-0), 0x8000);
  t.is(bf16BitsFromF32(NaN), 0x7fc0);
  t.is(bf16BitsFromF32(3.4e38), 0x7f80, 'rounds past the largest bf16 to inf');
  t.is(f32FromBf16Bits(0xc040), -3);

  // f16 → f32 against the definition, for all 2^16 bit patterns; then f32 → f16 inverts it,
  // and every midpoint between neighbouring halves rounds to the one with an even mantissa.
  let checked = 0;
  for (let h = 0; h < 0x10000; h++) {
    const exp = (h >> 10) & 0x1f;
    const mant = h & 0x3ff;
    const sign = h & 0x8000 ? -1 : 1;
    const x = f32FromF16Bits(h);
    if (exp === 0x1f) {
      if (mant === 0) t.is(x, sign * Infinity);
      else if (!Number.isNaN(x) || (f16BitsFromF32(x) & 0x7e00) !== 0x7e00) t.fail(`NaN pattern ${h.toString(16)}`);
      continue;
    }
    const expected = exp === 0 ? sign * mant * 2 ** -24 : sign * (1 + mant / 1024) * 2 ** (exp - 15);
    if (!Object.is(x, expected)) t.fail(`f32FromF16Bits(0x${h.toString(16)}) = ${x}, expected ${expected}`);
    if (f16BitsFromF32(x) !== h) t.fail(`f16BitsFromF32(${x}) != 0x${h.toString(16)}`);
    if ((h & 0x7fff) < 0x7bff) {
      const next = f32FromF16Bits(h + 1);
      const mid = (x + next) / 2; // exact in f32: halves have 11 significant bits
      const want = (h & 1) === 0 ? h : h + 1;
      if (f16BitsFromF32(mid) !== want) t.fail(`midpoint after 0x${h.toString(16)} rounded to 0x${f16BitsFromF32(mid).toString(16)}`);
      checked++;
    }
  }
  t.true(checked > 60000);
  t.is(f16BitsFromF32(65504), 0x7bff);
  t.is(f16BitsFromF32(65520), 0x7c00, 'the midpoint above the largest half rounds (to even) to inf');
  t.is(f16BitsFromF32(2 ** -25), 0, 'half the smallest subnormal ties to zero');
  t.is(f16BitsFromF32(1.5 * 2 ** -25), 1);
  t.is(f16BitsFromF32(0.1), 0x2e66);
});

test('write then read round-trips every dtype through a file, and converts to f32 on request', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'all.safetensors');
  const f32 = new Float32Array([0.1, -2.5, 3e-8, 1e30, 0, -0]);
  const tensors: Record<string, TensorRecord> = {
    'visual.proj': { dtype: 'F32', shape: [2, 3], data: f32 },
    'w.bf16': { dtype: 'BF16', shape: [6], data: f32 },
    'w.f16': { dtype: 'F16', shape: [3, 2], data: new Float32Array([1, -0.5, 65504, 1e-7, 2 ** -24, 3.14159]) },
    'w.f64': { dtype: 'F64', shape: [2], data: new Float64Array([Math.PI, -1e300]) },
    ids: { dtype: 'I32', shape: [2, 2], data: new Int32Array([1, -2, 2 ** 31 - 1, -(2 ** 31)]) },
    big: { dtype: 'I64', shape: [1], data: new BigInt64Array([-(2n ** 63n)]) },
  };
  await writeSafetensors(file, tensors, { format: 'pt' });
  const header = await readSafetensorsHeader(file);
  t.is(header.headerLength % 8, 0);
  t.deepEqual(header.metadata, { format: 'pt' });

  const raw = await readSafetensors(file);
  t.deepEqual(raw.tensors.get('visual.proj'), tensors['visual.proj']);
  t.deepEqual(raw.tensors.get('w.f64'), tensors['w.f64']);
  t.deepEqual(raw.tensors.get('ids'), tensors.ids);
  t.deepEqual(raw.tensors.get('big'), tensors.big);
  const bf = raw.tensors.get('w.bf16')!;
  t.is(bf.dtype, 'BF16');
  t.deepEqual([...(bf.data as Uint16Array)], [...f32].map(bf16BitsFromF32));

  const conv = await readSafetensors(file, { asF32: true, filter: (n) => n.startsWith('w.') });
  t.deepEqual([...conv.tensors.keys()].sort(), ['w.bf16', 'w.f16', 'w.f64']);
  const f16 = conv.tensors.get('w.f16')!;
  t.is(f16.dtype, 'F32');
  t.deepEqual([...(f16.data as Float32Array)], [1, -0.5, 65504, f32FromF16Bits(f16BitsFromF32(1e-7)), 2 ** -24, f32FromF16Bits(0x4248)]);
  t.deepEqual([...(conv.tensors.get('w.f64')!.data as Float32Array)], [Math.fround(Math.PI), -Infinity]);
  const bfBack = conv.tensors.get('w.bf16')!.data as Float32Array;
  for (let i = 0; i < f32.length; i++) t.true(Math.abs(bfBack[i] - f32[i]) <= Math.abs(f32[i]) * 2 ** -8, `bf16 ${i}`);
  const reader = await SafetensorsReader.open(file);
  const into = new Float32Array(6);
  await reader.readInto('w.bf16', into);
  t.deepEqual(into, bfBack, 'readInto converts bf16 into an f32 target');
  await reader.close();
});

test('the streaming reader reads one tensor at a time and notices a file shrinking under it', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'm.safetensors');
  const big = new Float32Array(100_000).map((_, i) => i * 0.5);
  await writeSafetensors(file, {
    a: { dtype: 'F32', shape: [100_000], data: big },
    b: { dtype: 'I32', shape: [3], data: new Int32Array([4, 5, 6]) },
  });
  const r = await SafetensorsReader.open(file);
  t.deepEqual(r.names(), ['a', 'b']);
  t.true(r.has('b'));
  t.deepEqual(r.entry('b').shape, [3]);
  t.deepEqual((await r.read('b')).data, new Int32Array([4, 5, 6]));
  t.deepEqual((await r.read('a')).data, big);
  await t.throwsAsync(r.read('c'), { message: /m\.safetensors: no tensor named 'c'/ });
  // Straight into caller-owned memory (e.g. a native tensor's view), at an offset inside a larger buffer.
  const backing = new Float32Array(100_004);
  const target = backing.subarray(4);
  await r.readInto('a', target);
  t.deepEqual(target, big);
  t.deepEqual([...backing.subarray(0, 4)], [0, 0, 0, 0]);
  await t.throwsAsync(r.readInto('b', new Int32Array(4)), { message: /'b' has 3 elements \(I32\[3\]\) but the target holds 4/ });
  await t.throwsAsync(r.readInto('b', new Float32Array(3)), { message: /'b' is I32 and cannot be read into a Float32Array/ });
  await truncate(file, 200);
  await t.throwsAsync(r.read('b'), { message: /m\.safetensors: file ended at byte \d+ while reading/ });
  await r.close();
  await t.throwsAsync(r.read('b'), { message: /after close/ });
});

test('torn and foreign files are refused with an error naming the file and the fault', async (t) => {
  const dir = await tempDir(t);
  const good = serializeSafetensors({
    x: { dtype: 'F32', shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) },
    y: { dtype: 'I64', shape: [1], data: new BigInt64Array([9n]) },
  });
  const hdr = (h: string, data: number[] = f32le(1, 2, 3, 4)) => rawFile(h, data);
  const tensorX = (offsets: string, shape = '[2,2]', dtype = 'F32') => `"x":{"dtype":"${dtype}","shape":${shape},"data_offsets":${offsets}}`;
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ['empty', new Uint8Array(0), /file is 0 bytes, shorter than the 8-byte header length/],
    ['short', new Uint8Array([1, 2, 3]), /file is 3 bytes/],
    ['truncated-data', good.subarray(0, good.byteLength - 1), /runs past the end of the data region \(\d+ bytes; truncated file\)/],
    ['truncated-header', good.subarray(0, 40), /header length \d+ runs past the end of the file \(40 bytes/],
    ['header-length-huge', new Uint8Array([...u64le(2 ** 40), ...good.subarray(8)]), /header length 256·2\^32 \+ 0 exceeds the format's limit/],
    ['header-length-over-limit', new Uint8Array([...u64le(100_000_001), ...good.subarray(8)]), /header length 100000001 exceeds/],
    ['header-length-too-long', rawFile(`{${tensorX('[0,16]')}}`, f32le(1, 2, 3, 4), 70), /header is not valid (UTF-8|JSON)/],
    ['not-json', hdr('this is not json'), /header is not valid JSON/],
    ['json-array', hdr('[1,2,3]         '), /header is not a JSON object/],
    ['not-utf8', new Uint8Array([...u64le(4), 0x7b, 0xff, 0xfe, 0x7d]), /header is not valid UTF-8/],
    ['zip-file', new Uint8Array([0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0x00, 0x00, 0x08, 0x00]), /exceeds the format's limit|runs past the end/],
    ['offsets-out-of-range', hdr(`{${tensorX('[0,32]', '[2,4]')}}`), /tensor 'x' \[0, 32\] runs past the end of the data region \(16 bytes/],
    ['overlap', hdr(`{${tensorX('[0,16]')},"y":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}}`), /tensor 'x' \[0, 16\] overlaps tensor 'y'|tensor 'y' \[12, 16\] overlaps/],
    ['gap', hdr(`{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}}`), /gap in the data region: bytes \[8, 12\) belong to no tensor/],
    ['trailing', hdr(`{"x":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}}`), /cover 12 bytes but the data region holds 16 \(4 unexplained trailing bytes\)/],
    ['not-starting-at-0', hdr(`{"x":{"dtype":"F32","shape":[3],"data_offsets":[4,16]}}`), /gap in the data region: bytes \[0, 4\)/],
    ['wrong-shape-bytes', hdr(`{${tensorX('[0,16]', '[3,2]')}}`), /tensor 'x' is F32\[3,2\] = 24 bytes, but data_offsets \[0, 16\] hold 16/],
    ['wrong-dtype-bytes', hdr(`{${tensorX('[0,16]', '[2,2]', 'F16')}}`), /F16\[2,2\] = 8 bytes/],
    ['unknown-dtype', hdr(`{${tensorX('[0,16]', '[4]', 'F31')}}`), /tensor 'x' has unknown dtype 'F31'/],
    ['end-before-begin', hdr(`{${tensorX('[16,0]')}}`), /end before begin/],
    ['fractional-offset', hdr(`{${tensorX('[0,15.5]')}}`), /invalid data_offsets \[0,15.5\]/],
    ['negative-shape', hdr(`{${tensorX('[0,16]', '[-2,-2]')}}`), /invalid shape \[-2,-2\]/],
    ['missing-offsets', hdr('{"x":{"dtype":"F32","shape":[4]}}'), /invalid data_offsets undefined/],
    ['metadata-not-strings', hdr(`{"__metadata__":{"epoch":3},${tensorX('[0,16]')}}`), /__metadata__ value for 'epoch' is number, not a string/],
    ['shape-overflow', hdr(`{${tensorX('[0,16]', '[4294967296,4294967296]')}}`), /shape too large to address/],
  ];
  for (const [name, bytes, pattern] of cases) {
    const file = path.join(dir, `${name}.safetensors`);
    await writeFile(file, bytes);
    const escaped = file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const full = new RegExp(`^safetensors: ${escaped}: .*(${pattern.source})`);
    await t.throwsAsync(readSafetensors(file), { message: full }, name);
    t.throws(() => parseSafetensors(bytes, { label: name }), { message: pattern }, `${name} (in memory)`);
  }
  // A supported-format file holding a dtype clipscale does not read: the header is fine, the read is refused.
  const u8 = path.join(dir, 'u8.safetensors');
  await writeFile(u8, hdr('{"x":{"dtype":"U8","shape":[16],"data_offsets":[0,16]}}'));
  t.is((await readSafetensorsHeader(u8)).tensors[0].dtype, 'U8');
  await t.throwsAsync(readSafetensors(u8), { message: /tensor 'x' has dtype U8, which clipscale does not read/ });
});

test('writing refuses bad records before creating anything', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'w.safetensors');
  const bad: Array<[Record<string, TensorRecord>, RegExp]> = [
    [{ x: { dtype: 'F32', shape: [3], data: new Float32Array(2) } }, /tensor 'x' has shape \[3\] \(3 elements\) but its data is Float32Array of length 2/],
    [{ x: { dtype: 'I32', shape: [2], data: new Float32Array(2) } }, /tensor 'x' is I32 but its data is a Float32Array \(expected Int32Array\)/],
    [{ x: { dtype: 'U8' as 'F32', shape: [2], data: new Float32Array(2) } }, /writable dtypes are F32, F16, BF16, F64, I32, I64/],
    [{ __metadata__: { dtype: 'F32', shape: [1], data: new Float32Array(1) } }, /'__metadata__' is reserved/],
    [{ x: { dtype: 'F32', shape: [1.5], data: new Float32Array(1) } }, /invalid shape \[1.5\]/],
  ];
  for (const [tensors, pattern] of bad) await t.throwsAsync(writeSafetensors(file, tensors), { message: pattern });
  await t.throwsAsync(writeSafetensors(file, {}, { n: 3 as unknown as string }), { message: /metadata value for 'n' is number/ });
  t.deepEqual(await readdir(dir), [], 'no file and no temporary left behind');
});

test('writes are atomic: a failed write leaves the old file whole and no temporary behind', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'ckpt.safetensors');
  await writeSafetensors(file, { a: { dtype: 'F32', shape: [1], data: new Float32Array([1]) } });
  const before = await readFile(file);
  await t.throwsAsync(
    writeFileAtomic(file, async (fh) => {
      await fh.write(new Uint8Array(100), 0, 100, 0);
      throw new Error('disk full (simulated)');
    }),
    { message: /ckpt\.safetensors.*disk full \(simulated\)/ },
  );
  t.deepEqual(await readFile(file), before);
  t.deepEqual(await readdir(dir), ['ckpt.safetensors']);
  // Overwriting goes through a rename: the new content replaces the old whole.
  await writeSafetensors(file, { a: { dtype: 'F32', shape: [2], data: new Float32Array([2, 3]) } });
  t.deepEqual((await readSafetensors(file)).tensors.get('a')!.data, new Float32Array([2, 3]));
  t.deepEqual(await readdir(dir), ['ckpt.safetensors']);
});

function python(script: string, args: string[]): string | null {
  try {
    return execFileSync('python3', ['-c', script, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT' || /No module named/.test(String(e.stderr))) return null;
    throw err;
  }
}

test('interoperates with python: the safetensors package when installed, else a numpy reader written from the spec', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'interop.safetensors');
  await writeSafetensors(
    file,
    {
      'visual.conv1.weight': { dtype: 'F32', shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6.5]) },
      'token_embedding.weight': { dtype: 'BF16', shape: [2], data: new Float32Array([1.5, -2]) },
      ids: { dtype: 'I64', shape: [3], data: new BigInt64Array([1n, 2n, 3n]) },
    },
    { format: 'pt' },
  );
  const official = python(
    // Tensor by tensor: numpy has no bfloat16, and newer safetensors refuse BF16 through numpy.
    'import sys, json\nfrom safetensors import safe_open\nfrom safetensors.numpy import save_file\nimport numpy as np\n' +
      'seen = {}\nwith safe_open(sys.argv[1], framework="numpy") as f:\n' +
      '  for k in f.keys():\n    try:\n      v = f.get_tensor(k)\n      seen[k] = [str(v.dtype), list(v.shape), float(v.astype(np.float64).sum()) if v.dtype != np.uint16 else 0]\n' +
      '    except Exception as e:\n      seen[k] = ["unreadable by numpy", str(e)[:80]]\nprint(json.dumps(seen))\n' +
      'save_file({"b": np.arange(6, dtype=np.float32).reshape(2, 3), "a": np.array([7, 8], dtype=np.int32)}, sys.argv[2], metadata={"k": "v"})',
    [file, path.join(dir, 'from-python.safetensors')],
  );
  if (official !== null) {
    const seen = JSON.parse(official);
    t.deepEqual(seen['visual.conv1.weight'], ['float32', [2, 3], 21.5]);
    t.deepEqual(seen.ids, ['int64', [3], 6]);
    const back = await readSafetensors(path.join(dir, 'from-python.safetensors'));
    t.deepEqual(back.tensors.get('b')!.data, new Float32Array([0, 1, 2, 3, 4, 5]));
    t.deepEqual(back.metadata, { k: 'v' });
    // Same tensors, same bytes: the writers agree.
    const ours = serializeSafetensors(back.tensors, back.metadata);
    t.deepEqual(ours, new Uint8Array(await readFile(path.join(dir, 'from-python.safetensors'))));
    return;
  }
  t.log('python safetensors is not installed; checking against a numpy reader written from the spec instead');
  const spec = python(
    'import sys, json, struct\nimport numpy as np\nb = open(sys.argv[1], "rb").read()\n' +
      'n = struct.unpack("<Q", b[:8])[0]\nh = json.loads(b[8:8+n])\nmeta = h.pop("__metadata__", None)\n' +
      'dt = {"F32": "<f4", "I64": "<i8", "BF16": "<u2"}\nout = {"n": n, "meta": meta}\n' +
      'for k, v in h.items():\n  s, e = v["data_offsets"]\n  a = np.frombuffer(b[8+n+s:8+n+e], dtype=dt[v["dtype"]]).reshape(v["shape"])\n' +
      '  if v["dtype"] == "BF16": a = (a.astype(np.uint32) << 16).view(np.float32)\n  out[k] = a.astype(np.float64).ravel().tolist()\n' +
      'print(json.dumps(out))',
    [file],
  );
  if (spec === null) {
    t.log('python3 with numpy not found: interop check skipped');
    t.pass();
    return;
  }
  const seen = JSON.parse(spec);
  t.is(seen.n % 8, 0);
  t.deepEqual(seen.meta, { format: 'pt' });
  t.deepEqual(seen['visual.conv1.weight'], [1, 2, 3, 4, 5, 6.5]);
  t.deepEqual(seen['token_embedding.weight'], [1.5, -2]);
  t.deepEqual(seen.ids, [1, 2, 3]);
});
