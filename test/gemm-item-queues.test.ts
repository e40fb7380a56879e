// The GEMM's work queues wait for a late owner before taking its items
// (test/native/item_queues_patience.cpp, built here with the system compiler against the header
// native/cpu/gemm_blocking.h): timing behaviour that no result depends on, so only these counts
// show it. Thread 0's own items take 40 ms each, so it waits about 60 ms for thread 1.
import { spawnSync } from 'node:child_process';

import test from 'ava';

import { buildNativeTool, cxx, hasCompiler } from './_helpers/native_tool.js';

const built = hasCompiler ? buildNativeTool('patience', ['test/native/item_queues_patience.cpp']) : null;

function patience(lateMs: number): { stolen: number; own_items: number; waited_ms: number } {
  const r = spawnSync(built!.exe, ['40', String(lateMs)], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`item_queues_patience exited ${r.status}: ${r.stdout}${r.stderr}`);
  return JSON.parse(r.stdout);
}

test('GEMM work queues: a thread done early leaves a late owner its items', (t) => {
  if (!built) return t.pass(`no C++ compiler (${cxx}) here: the queue test was not run`);
  t.true(built.ok, built.stderr);
  // The owner starts 1 ms after thread 0 runs out of its own items: inside the ~60 ms wait.
  const r = patience(1);
  t.is(r.stolen, 0, JSON.stringify(r));
});

test('GEMM work queues: an owner that never comes has its items taken after the wait', (t) => {
  if (!built) return t.pass(`no C++ compiler (${cxx}) here: the queue test was not run`);
  t.true(built.ok, built.stderr);
  const r = patience(-1);
  t.is(r.stolen, r.own_items, JSON.stringify(r));
  t.true(r.waited_ms >= 50, `took the absent owner's items after ${r.waited_ms} ms, not after the ~60 ms wait`);
});
