// A small native program for a test (test/native/*.cpp), built with the system compiler against the
// parts of native/ it checks. Without a compiler nothing is built and the test says it did not run.
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..', '..');
export const cxx = process.env.CXX ?? 'g++';
export const hasCompiler = spawnSync(cxx, ['--version']).status === 0;

export interface NativeTool {
  exe: string;
  ok: boolean;
  stderr: string;
}

/** Builds `sources` (paths from the repository root) with -std=c++17, -I native and `flags`. */
export function buildNativeTool(name: string, sources: string[], flags: string[] = ['-O2']): NativeTool {
  const exe = join(mkdtempSync(join(tmpdir(), `cs-${name}-`)), name);
  const r = spawnSync(cxx, ['-std=c++17', ...flags, '-I', join(root, 'native'), ...sources.map((s) => join(root, s)), '-o', exe, '-lpthread'], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { exe, ok: r.status === 0, stderr: r.stderr ?? '' };
}
