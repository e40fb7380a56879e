// The CPU thread pool's hand-off under stress: test/native/thread_pool_stress.cpp runs hundreds of
// thousands of jobs from several threads at once, with exceptions, nested regions and resizes
// racing the jobs, and a watchdog that reports a hang (a lost wake-up) as exit code 3. It is built
// here with the system compiler against native/core/thread_pool.cpp, and again under
// ThreadSanitizer where the compiler supports it.
import { spawnSync } from 'node:child_process';

import test from 'ava';

import { buildNativeTool, cxx, hasCompiler } from './_helpers/native_tool.js';

const sources = ['test/native/thread_pool_stress.cpp', 'native/core/thread_pool.cpp'];

function stress(exe: string, args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; out: string } {
  const r = spawnSync(exe, args, { encoding: 'utf8', timeout: 120_000, env: { ...process.env, ...env } });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

test('thread pool: 300k jobs from 3 threads with resizes racing them, more threads than cores, no hang', (t) => {
  if (!hasCompiler) return t.pass(`no C++ compiler (${cxx}) here: the stress test was not run`);
  const b = buildNativeTool('stress', sources, ['-O2']);
  t.true(b.ok, b.stderr);
  const r = stress(b.exe, ['300000', '3', '8', '20', '1']);
  t.is(r.status, 0, r.out);
  t.regex(r.out, /"jobs":300000/);
});

test('thread pool: the same hand-off under ThreadSanitizer reports no data race', (t) => {
  if (!hasCompiler) return t.pass(`no C++ compiler (${cxx}) here: the stress test was not run`);
  const b = buildNativeTool('stress-tsan', sources, ['-O1', '-g', '-fsanitize=thread']);
  if (!b.ok) {
    t.log(`this compiler cannot build with -fsanitize=thread; the sanitizer run was skipped:\n${b.stderr.slice(0, 400)}`);
    return t.pass();
  }
  const r = stress(b.exe, ['30000', '3', '4', '30', '1'], { TSAN_OPTIONS: 'halt_on_error=1 exitcode=66' });
  t.is(r.status, 0, r.out);
  t.notRegex(r.out, /ThreadSanitizer/);
});
