// Data parallelism end to end: 2 ranks with per-rank batch B train exactly as one
// process with batch 2B (loss and weights after 3 steps), under mpirun and under
// clipscale launch (TCP), also with gradient accumulation (accumFreq 2).
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test, { type ExecutionContext } from 'ava';

import { mpiSupport } from '../lib/distributed/mpi_communicator.js';
import { collect, repoRoot } from './_fixtures/dist-spawn.js';

const fixture = join(repoRoot, 'test', '_fixtures', 'ddp-train.ts');
const dir = mkdtempSync(join(tmpdir(), 'clipscale-ddp-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

interface RunResult {
  world: number;
  losses: number[];
  weights: Record<string, number[]>;
}

function which(cmd: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

const env = { ...process.env, CLIPSCALE_NUM_THREADS: '1' };

async function single(): Promise<RunResult> {
  const out = join(dir, 'single.json');
  const r = await collect(spawn(process.execPath, ['--import=tsx', fixture, out, '16'], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] }));
  if (r.code !== 0) throw new Error(`single-process run failed (${r.code}):\n${r.stderr}`);
  return JSON.parse(readFileSync(out, 'utf8')) as RunResult;
}

let baseline: Promise<RunResult> | undefined;
const getBaseline = () => (baseline ??= single());

function compare(t: import('ava').ExecutionContext, a: RunResult, b: RunResult): void {
  t.is(b.world, 2);
  t.is(a.losses.length, 3);
  a.losses.forEach((l, i) => t.true(Math.abs(l - b.losses[i]) <= 1e-5 * Math.abs(l), `step ${i + 1}: loss ${l} vs ${b.losses[i]}`));
  compareWeights(t, a, b);
}

function compareWeights(t: import('ava').ExecutionContext, a: RunResult, b: RunResult): void {
  let num = 0;
  let den = 0;
  for (const [name, w] of Object.entries(a.weights)) {
    const v = b.weights[name];
    t.truthy(v, name);
    for (let i = 0; i < w.length; i++) {
      num += (w[i] - v[i]) ** 2;
      den += w[i] ** 2;
    }
  }
  const rel = Math.sqrt(num / den);
  t.log(`losses ${b.losses.map((l) => l.toFixed(6)).join(', ')}; weights after 3 steps differ by ${rel.toExponential(2)} (relative)`);
  t.true(rel <= 1e-5, `weights differ by ${rel}`);
}

const mpirun = which('mpirun');
const mpiReady = mpirun && mpiSupport().built;
if (!mpiReady) {
  test('2 ranks under mpirun train as one process with twice the batch', (t) => {
    t.log(`skipped: ${mpirun ? mpiSupport().reason : 'mpirun not found (install openmpi-bin and libopenmpi-dev, then rebuild)'}`);
    t.pass();
  });
} else {
  test('2 ranks under mpirun train as one process with twice the batch', async (t) => {
    const out = join(dir, 'mpi.json');
    const child = spawn(mpirun!, ['--allow-run-as-root', '--oversubscribe', '--bind-to', 'none', '-np', '2', process.execPath, '--import=tsx', fixture, out, '16'], {
      cwd: repoRoot,
      env: { ...env, OMPI_MCA_btl: process.env.OMPI_MCA_btl ?? 'self,vader,tcp', OMPI_MCA_mpi_yield_when_idle: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const r = await collect(child);
    t.is(r.code, 0, r.stderr);
    compare(t, await getBaseline(), JSON.parse(readFileSync(out, 'utf8')) as RunResult);
  });
}

/** The fixture on 2 ranks under `clipscale launch` (TCP), its result compared with one process's. */
async function launchedRunMatchesBaseline(t: ExecutionContext, out: string, fixtureArgs: string[]): Promise<void> {
  const child = spawn(process.execPath, ['--import=tsx', join(repoRoot, 'lib', 'cli', 'main.ts'), 'launch', '--nproc', '2', fixture, out, ...fixtureArgs], {
    cwd: repoRoot,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const r = await collect(child);
  t.is(r.code, 0, `${r.stdout}\n${r.stderr}`);
  compare(t, await getBaseline(), JSON.parse(readFileSync(out, 'utf8')) as RunResult);
}

test('2 ranks under clipscale launch (TCP) train as one process with twice the batch', async (t) => {
  await launchedRunMatchesBaseline(t, join(dir, 'tcp.json'), ['16']);
});

test('2 ranks × accumFreq 2 (TCP) train as one process with the whole global batch in one piece', async (t) => {
  await launchedRunMatchesBaseline(t, join(dir, 'accum.json'), ['16', '', 'accum2']);
});

test('a checkpoint written by 2 ranks resumes in one process with the same global batch', async (t) => {
  const ckpt = join(dir, 'ckpt');
  const two = spawn(process.execPath, ['--import=tsx', join(repoRoot, 'lib', 'cli', 'main.ts'), 'launch', '--nproc', '2', fixture, join(dir, 'part.json'), '16', ckpt, 'stop2'], {
    cwd: repoRoot,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const r2 = await collect(two);
  t.is(r2.code, 0, `${r2.stdout}\n${r2.stderr}`);
  const out = join(dir, 'resumed.json');
  const one = await collect(spawn(process.execPath, ['--import=tsx', fixture, out, '16', ckpt, 'resume'], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] }));
  t.is(one.code, 0, one.stderr);
  const resumed = JSON.parse(readFileSync(out, 'utf8')) as RunResult;
  const base = await getBaseline();
  t.is(resumed.losses.length, 1, 'the resumed run trains the one remaining step');
  t.true(Math.abs(resumed.losses[0] - base.losses[2]) <= 1e-5 * Math.abs(base.losses[2]), `step 3: ${resumed.losses[0]} vs ${base.losses[2]}`);
  t.is(resumed.world, 1);
  compareWeights(t, base, resumed);
});
