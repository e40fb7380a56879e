// Host memory for tensors (native/core/host_memory.cpp): test/native/host_memory_check.cpp is
// built here with the system compiler and checks alignment, that every byte is writable, and
// that blocks from 1 MB ask for 2 MB huge pages (their mapping advised MADV_HUGEPAGE) unless
// CLIPSCALE_HUGE_PAGES=0. Whether the kernel grants them depends on its THP setting and free
// memory; the test reports how much it granted.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

import test from 'ava';

import * as ops from '../lib/ops.js';
import { Tensor } from '../lib/tensor.js';

import { buildNativeTool, cxx, hasCompiler } from './_helpers/native_tool.js';

const built = hasCompiler ? buildNativeTool('host-memory-check', ['test/native/host_memory_check.cpp', 'native/core/host_memory.cpp']) : null;

function thpMode(): string {
  try {
    return /\[(\w+)\]/.exec(readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8'))?.[1] ?? 'unknown';
  } catch {
    return 'unavailable';
  }
}

function run(env: NodeJS.ProcessEnv) {
  const r = spawnSync(built!.exe, [], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...env } });
  return { status: r.status, out: `${r.stdout}${r.stderr}`, json: r.status === 0 ? JSON.parse(r.stdout) : null };
}

test('host memory: aligned, writable, huge pages asked for from 1 MB', (t) => {
  if (!hasCompiler) return t.pass(`no C++ compiler (${cxx}) here: the check was not run`);
  t.true(built!.ok, built!.stderr);
  const r = run({ CLIPSCALE_HUGE_PAGES: '' });
  t.is(r.status, 0, r.out);
  t.is(r.json.min_bytes, 1 << 20);
  if (process.platform !== 'linux') return t.false(r.json.huge_pages, 'huge pages are only asked for on Linux');
  t.true(r.json.huge_pages);
  // Asked for: the block's mapping carries MADV_HUGEPAGE ("hg" in its VmFlags), whatever the kernel then grants.
  t.true(r.json.advised_8mb, `an 8 MB block's mapping was not advised MADV_HUGEPAGE: ${r.out}`);
  const mode = thpMode();
  t.log(`THP "${mode}": ${r.json.granted_kb_of_8mb} kB of the 8 MB block on huge pages`);
  if (mode === 'never') t.is(r.json.granted_kb_of_8mb, 0);
});

test('host memory: CLIPSCALE_HUGE_PAGES=0 keeps ordinary pages', (t) => {
  if (!hasCompiler) return t.pass(`no C++ compiler (${cxx}) here: the check was not run`);
  t.true(built!.ok, built!.stderr);
  const r = run({ CLIPSCALE_HUGE_PAGES: '0' });
  t.is(r.status, 0, r.out);
  t.false(r.json.huge_pages);
  t.false(r.json.advised_8mb, r.out);
  if (thpMode() !== 'always') t.is(r.json.granted_kb_of_8mb, 0, r.out);  // "always" gives them unasked
});

test('host memory: tensors on huge pages keep their values and sizes (a 3 MB tensor round trip)', (t) => {
  const n = 3 * (1 << 18) + 5;  // 3 MB and a little: rounded up to whole huge pages inside
  const d = Float32Array.from({ length: n }, (_, i) => (i % 1000) - 0.5);
  const x = Tensor.from(d, [n]);
  const y = Tensor.empty([n]);
  ops.copy(x, y);
  t.deepEqual(y.toFloat32Array(), d);
  t.is(y.numel, n);
  x.dispose();
  y.dispose();
});
