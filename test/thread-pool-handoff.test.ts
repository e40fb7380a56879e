// The thread pool's hand-off choice (test/native/thread_pool_handoff.cpp, built here with the system
// compiler against native/core/thread_pool.cpp): the caller runs a sleeping worker's part itself,
// and never an awake worker's. Both are timing behaviour that no result depends on, so only these
// counts show them.
import { spawnSync } from 'node:child_process';

import test from 'ava';

import { buildNativeTool, cxx, hasCompiler } from './_helpers/native_tool.js';

const built = hasCompiler ? buildNativeTool('handoff', ['test/native/thread_pool_handoff.cpp', 'native/core/thread_pool.cpp']) : null;

function handoff(jobs: number, pauseUs: number, spinUs: number): { jobs: number; caller_ran_worker_part: number } {
  const r = spawnSync(built!.exe, [String(jobs), String(pauseUs)], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, CLIPSCALE_SPIN_US: String(spinUs) } });
  if (r.status !== 0) throw new Error(`thread_pool_handoff exited ${r.status}: ${r.stdout}${r.stderr}`);
  return JSON.parse(r.stdout);
}

test('thread pool: the caller runs the part of a worker that is asleep when the job comes', (t) => {
  if (!built) return t.pass(`no C++ compiler (${cxx}) here: the hand-off test was not run`);
  t.true(built.ok, built.stderr);
  // The worker sleeps as soon as a job ends (no spin) and 1 ms passes before the next: it is asleep
  // when each job comes. Without the hand-off the caller would wait for it every time (0 taken).
  // The caller wins the race against the worker's wake-up in most jobs on a quiet machine, in as
  // few as 2% on a saturated one: 1,000 jobs keep a count of 0 out of chance's reach.
  const r = handoff(1000, 1000, 0);
  t.log(`caller ran the sleeping worker's part in ${r.caller_ran_worker_part} of ${r.jobs} jobs`);
  t.true(r.caller_ran_worker_part > 0, JSON.stringify(r));
});

test('thread pool: the caller never runs the part of a worker that is awake', (t) => {
  if (!built) return t.pass(`no C++ compiler (${cxx}) here: the hand-off test was not run`);
  t.true(built.ok, built.stderr);
  // A 10 ms spin and jobs back to back: the worker is spinning (or preempted, still not asleep)
  // when every job comes, so its part stays its own whatever the timing.
  const r = handoff(2000, 0, 10_000);
  t.is(r.caller_ran_worker_part, 0, JSON.stringify(r));
});
