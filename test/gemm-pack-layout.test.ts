// The AVX2 GEMM's packing (transpose_pack_avx) against the packed layout value by value, and no
// write past a panel (test/native/transpose_pack_layout.cpp, built here against
// native/cpu/gemm_avx2.cpp): narrow panels use whole-vector stores that run into the next k's
// slot, which the GEMM tests' results could not show if the last one ran past the buffer.
import { spawnSync } from 'node:child_process';

import test from 'ava';

import { buildNativeTool, cxx, hasCompiler } from './_helpers/native_tool.js';

test('AVX2 packing: every width 1-17, rows ≤ width, kc 1-41: the layout, nothing written past it', (t) => {
  if (!hasCompiler) return t.pass(`no C++ compiler (${cxx}) here: the packing check was not run`);
  const built = buildNativeTool('pack_layout', ['test/native/transpose_pack_layout.cpp', 'native/cpu/gemm_avx2.cpp']);
  t.true(built.ok, built.stderr);
  const r = spawnSync(built.exe, [], { encoding: 'utf8', timeout: 60_000 });
  t.is(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { avx2: boolean; cases: number; wrong_values: number; writes_past_end: number };
  if (!out.avx2) return t.pass('this CPU has no AVX2: the AVX2 packing does not run here');
  t.is(out.cases, 17 * 18 / 2 * 41 + 17 * 41);
  t.is(out.wrong_values, 0);
  t.is(out.writes_past_end, 0);
});
