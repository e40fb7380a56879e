import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { decodeNpy, encodeNpy, readNpy, writeNpy } from '../lib/eval/npy.js';

const numpyCheck = spawnSync('python3', ['-c', 'import numpy'], { encoding: 'utf8' });
const hasNumpy = numpyCheck.status === 0;
const withNumpy = hasNumpy ? test : test.skip;
const numpyNote = hasNumpy ? '' : ' [skipped: python3 with numpy not found]';

function python(code: string): string {
  const r = spawnSync('python3', ['-c', code], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`python failed: ${r.stderr}`);
  return r.stdout.trim();
}

const dir = mkdtempSync(join(tmpdir(), 'clipscale-npy-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

test('round-trips float32, float64, int32 and int64 with their shapes', (t) => {
  const cases = [
    { data: new Float32Array([1.5, -2, 3.25, 1e-30, -0, Infinity]), shape: [2, 3] },
    { data: new Float64Array([Math.PI, -1e300, 5e-324]), shape: [3] },
    { data: new Int32Array([2147483647, -2147483648, 0, 7]), shape: [2, 1, 2] },
    { data: new BigInt64Array([9007199254740993n, -5n]), shape: [2] },
    { data: new Float32Array([42]), shape: [] },
    { data: new Float32Array(0), shape: [0, 512] },
  ];
  for (const c of cases) {
    const bytes = encodeNpy(c.data, c.shape);
    t.is(bytes.length % 64, c.data.byteLength % 64, 'header padded to 64 bytes');
    const back = decodeNpy(bytes);
    t.deepEqual(back.shape, c.shape);
    t.is(back.data.constructor, c.data.constructor);
    t.deepEqual(Array.from(back.data as ArrayLike<number | bigint>), Array.from(c.data as ArrayLike<number | bigint>));
  }
});

test('encoding refuses a shape that does not match the data', (t) => {
  t.throws(() => encodeNpy(new Float32Array(5), [2, 3]), { message: /shape \[2, 3\] holds 6 values but the array has 5/ });
});

test('clear errors for bad files: not npy, truncated, trailing bytes, unknown version', (t) => {
  const good = encodeNpy(new Float32Array([1, 2, 3, 4]), [2, 2]);
  t.throws(() => decodeNpy(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]), 'x.npy'), { message: /x\.npy: not a \.npy file/ });
  t.throws(() => decodeNpy(good.subarray(0, good.length - 3)), { message: /truncated data: shape \(2, 2\) of float32 needs 16 bytes, the file has 13/ });
  t.throws(() => decodeNpy(good.subarray(0, 40)), { message: /truncated header/ });
  const extra = new Uint8Array(good.length + 4);
  extra.set(good);
  t.throws(() => decodeNpy(extra), { message: /4 unexpected bytes after the data/ });
  const v9 = good.slice();
  v9[6] = 9;
  t.throws(() => decodeNpy(v9), { message: /format version 9\.0 is not supported/ });
});

function withHeader(dict: string, dataBytes: number, major = 1): Uint8Array {
  const prefix = major === 1 ? 10 : 12;
  const total = Math.ceil((prefix + dict.length + 1) / 64) * 64;
  const header = dict.padEnd(total - prefix - 1, ' ') + '\n';
  const out = new Uint8Array(total + dataBytes);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]);
  const dv = new DataView(out.buffer);
  if (major === 1) dv.setUint16(8, header.length, true);
  else dv.setUint32(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[prefix + i] = header.charCodeAt(i);
  return out;
}

test('clear errors for Fortran order, big-endian and unsupported dtypes (hand-made headers)', (t) => {
  t.throws(() => decodeNpy(withHeader("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 24)), { message: /Fortran-order arrays are not supported.*ascontiguousarray/ });
  t.throws(() => decodeNpy(withHeader("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8)), { message: /big-endian float32 \('>f4'\) is not supported/ });
  t.throws(() => decodeNpy(withHeader("{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }", 4)), { message: /dtype '<f2' \(float16\) is not supported; use float32, float64, int32 or int64/ });
  t.throws(() => decodeNpy(withHeader("{'descr': '|u1', 'fortran_order': False, 'shape': (2,), }", 2)), { message: /dtype '\|u1' \(uint8\) is not supported/ });
  t.throws(() => decodeNpy(withHeader("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", 8)), { message: /structured dtypes/ });
  // A 1-D array is the same in either order, so fortran_order True is harmless there.
  const ok = withHeader("{'descr': '<i4', 'fortran_order': True, 'shape': (2,), }", 8);
  new DataView(ok.buffer).setInt32(ok.length - 4, 9, true);
  t.deepEqual(Array.from(decodeNpy(ok).data as Int32Array), [0, 9]);
  // Version 2.0 headers (4-byte length) read the same.
  const v2 = withHeader("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", 8, 2);
  new DataView(v2.buffer).setFloat64(v2.length - 8, 2.5, true);
  t.deepEqual(Array.from(decodeNpy(v2).data as Float64Array), [2.5]);
});

test('readNpy names the path when the file is missing', (t) => {
  t.throws(() => readNpy(join(dir, 'nope.npy')), { message: /npy: cannot read '.*nope\.npy'/ });
});

withNumpy(`numpy reads what we write (every dtype)${numpyNote}`, (t) => {
  writeNpy(join(dir, 'f4.npy'), new Float32Array([0.1, -2.5, 3, 4, 5, 6]), [2, 3]);
  writeNpy(join(dir, 'f8.npy'), new Float64Array([Math.PI, Math.E]), [2]);
  writeNpy(join(dir, 'i4.npy'), new Int32Array([-7, 2147483647]), [1, 2]);
  writeNpy(join(dir, 'i8.npy'), new BigInt64Array([-(2n ** 62n), 3n]), [2]);
  const out = python(`
import numpy as np, json
d = ${JSON.stringify(dir)}
r = {}
for n in ['f4', 'f8', 'i4', 'i8']:
    a = np.load(d + '/' + n + '.npy')
    r[n] = [str(a.dtype), list(a.shape), [repr(v) for v in a.ravel().tolist()], bool(a.flags['C_CONTIGUOUS'])]
print(json.dumps(r))`);
  const r = JSON.parse(out) as Record<string, [string, number[], string[], boolean]>;
  t.deepEqual(r.f4.slice(0, 2), ['float32', [2, 3]]);
  t.deepEqual(r.f4[2].map(Number), Array.from(new Float32Array([0.1, -2.5, 3, 4, 5, 6])));
  t.deepEqual(r.f8, ['float64', [2], [repr(Math.PI), repr(Math.E)], true]);
  t.deepEqual(r.i4, ['int32', [1, 2], ['-7', '2147483647'], true]);
  t.deepEqual(r.i8, ['int64', [2], [String(-(2n ** 62n)), '3'], true]);
});

function repr(x: number): string {
  return String(x);
}

withNumpy(`we read what numpy writes: versions 1.0/2.0/3.0, every dtype; and refuse what we do not support${numpyNote}`, (t) => {
  python(`
import numpy as np
from numpy.lib import format as fmt
d = ${JSON.stringify(dir)}
a = (np.arange(12, dtype=np.float64).reshape(3, 4) / 7.0)
np.save(d + '/np_f8.npy', a)
np.save(d + '/np_f4.npy', a.astype(np.float32))
np.save(d + '/np_i4.npy', np.array([[1, -2], [3, 2**31 - 1]], dtype=np.int32))
np.save(d + '/np_i8.npy', np.array([2**40, -1], dtype=np.int64))
np.save(d + '/np_scalar.npy', np.float32(1.25))
for v in [(1, 0), (2, 0), (3, 0)]:
    with open(d + '/np_v%d.npy' % v[0], 'wb') as f:
        fmt.write_array(f, a.astype(np.float32), version=v)
np.save(d + '/np_fortran.npy', np.asfortranarray(a))
np.save(d + '/np_be.npy', a.astype('>f4'))
np.save(d + '/np_f2.npy', a.astype(np.float16))
np.save(d + '/np_bool.npy', a > 1)
`);
  const expected = Array.from({ length: 12 }, (_, i) => i / 7);
  const f8 = readNpy(join(dir, 'np_f8.npy'));
  t.is(f8.dtype, 'float64');
  t.deepEqual(f8.shape, [3, 4]);
  t.deepEqual(Array.from(f8.data as Float64Array), expected);
  const f4 = readNpy(join(dir, 'np_f4.npy'));
  t.deepEqual(Array.from(f4.data as Float32Array), Array.from(Float32Array.from(expected)));
  t.deepEqual(Array.from(readNpy(join(dir, 'np_i4.npy')).data as Int32Array), [1, -2, 3, 2147483647]);
  t.deepEqual(Array.from(readNpy(join(dir, 'np_i8.npy')).data as BigInt64Array), [2n ** 40n, -1n]);
  const scalar = readNpy(join(dir, 'np_scalar.npy'));
  t.deepEqual(scalar.shape, []);
  t.deepEqual(Array.from(scalar.data as Float32Array), [1.25]);
  for (const v of [1, 2, 3]) {
    const r = readNpy(join(dir, `np_v${v}.npy`));
    t.is(readFileSync(join(dir, `np_v${v}.npy`))[6], v, `file is format version ${v}`);
    t.deepEqual(Array.from(r.data as Float32Array), Array.from(Float32Array.from(expected)), `version ${v}`);
  }
  t.throws(() => readNpy(join(dir, 'np_fortran.npy')), { message: /np_fortran\.npy'.*Fortran-order/ });
  t.throws(() => readNpy(join(dir, 'np_be.npy')), { message: /big-endian float32/ });
  t.throws(() => readNpy(join(dir, 'np_f2.npy')), { message: /float16\) is not supported/ });
  t.throws(() => readNpy(join(dir, 'np_bool.npy')), { message: /'\|b1' \(bool\) is not supported/ });
  // Truncate a numpy file by a few bytes.
  const bytes = readFileSync(join(dir, 'np_f8.npy'));
  writeFileSync(join(dir, 'np_trunc.npy'), bytes.subarray(0, bytes.length - 5));
  t.throws(() => readNpy(join(dir, 'np_trunc.npy')), { message: /truncated data: shape \(3, 4\) of float64 needs 96 bytes, the file has 91/ });
});
