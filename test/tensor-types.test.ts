// Tensor views are typed by dtype: `Array.from(t.view())` type-checks for the tensors users make
// (test/_fixtures/types/tensor_view.ts, compiled here with the project's strict settings).
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import test from 'ava';

import { Tensor } from '../lib/tensor.js';

const root = fileURLToPath(new URL('..', import.meta.url));

test('typed views: the fixture type-checks (tsc, strict)', (t) => {
  const tsc = join(root, 'node_modules', '.bin', 'tsc');
  const r = spawnSync(tsc, ['-p', join(root, 'test', '_fixtures', 'types', 'tsconfig.json')], { encoding: 'utf8', timeout: 120_000 });
  t.is(r.status, 0, `${r.stdout}${r.stderr}`);
});

test('dtype-specific views check the dtype at run time', (t) => {
  using x = Tensor.from(new Float32Array([1, 2]));
  using ids = Tensor.from(new Int32Array([3, 4]));
  t.deepEqual(Array.from(x.viewF32()), [1, 2]);
  t.deepEqual(Array.from(ids.viewI32()), [3, 4]);
  t.throws(() => ids.viewF32(), { message: 'Tensor.viewF32: the tensor is i32, not f32' });
  t.throws(() => x.viewI32(), { message: 'Tensor.viewI32: the tensor is f32, not i32' });
  const plain: Tensor = x;
  t.is(plain.dtype, 'f32');
});
