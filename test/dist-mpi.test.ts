import { execFileSync, spawn } from 'node:child_process';

import test from 'ava';

import { mpiSupport } from '../lib/distributed/mpi_communicator.js';
import { collect, repoRoot, worker } from './_fixtures/dist-spawn.js';

function which(cmd: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

const mpirun = which('mpirun');
const support = mpiSupport();
// mpi.h present but the addon built without it means the build missed MPI: that must fail, not skip.
const headerFound = execFileSync(process.execPath, ['native/tools/find_mpi.cjs', 'found'], { cwd: repoRoot, encoding: 'utf8' }).trim() === 'true';
const skipReason = !mpirun
  ? 'mpirun not found (install openmpi-bin and libopenmpi-dev, then rebuild)'
  : !support.built && !headerFound
    ? `mpirun found but no mpi.h: ${support.reason}`
    : undefined;

function mpiRun(np: number, args: string[]) {
  // Open MPI refuses root without --allow-run-as-root; --oversubscribe lets -np exceed the
  // cores, and --bind-to none keeps concurrent jobs from pinning their ranks to the same core.
  const child = spawn(mpirun!, ['--allow-run-as-root', '--oversubscribe', '--bind-to', 'none', '-np', String(np), process.execPath, '--import=tsx', worker, ...args], {
    cwd: repoRoot,
    env: { ...process.env, CLIPSCALE_NUM_THREADS: '1', OMPI_MCA_btl: process.env.OMPI_MCA_btl ?? 'self,vader,tcp', OMPI_MCA_mpi_yield_when_idle: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return collect(child);
}

if (skipReason) {
  test('MPI communicator under mpirun', (t) => {
    t.log(`skipped: ${skipReason}`);
    t.pass();
  });
} else {
  test('the addon was built with MPI (mpi.h was found)', (t) => {
    t.true(support.built, `find_mpi.cjs finds mpi.h but the addon says: ${support.reason}; rebuild (npm run build)`);
  });

  for (const scenario of ['collectives', 'loss']) {
    test(`mpirun -np 2: ${scenario} over the MPI communicator`, async (t) => {
      const r = await mpiRun(2, [scenario, 'mpi']);
      t.is(r.code, 0, `mpirun exited with ${r.code}\n${r.stdout}\n${r.stderr}`);
      const ranks = r.reports.map((x) => x.rank).sort();
      t.deepEqual(ranks, [0, 1], r.stdout + r.stderr);
      for (const rep of r.reports) {
        t.is(rep.error, undefined);
        t.like(rep.result, { size: 2, backend: 'mpi' });
      }
    });
  }

  test('mpirun: a rank that exits with an error aborts the job instead of leaving the others waiting', async (t) => {
    const start = Date.now();
    const r = await mpiRun(3, ['die', 'mpi']);
    const ms = Date.now() - start;
    t.is(r.code, 3, `mpirun exited with ${r.code} (expected the dying rank's code 3)\n${r.stdout}\n${r.stderr}`);
    t.true(ms < 60_000, `the job took ${ms} ms to end`);
    t.log(`mpirun -np 3, rank 2 exits with code 3: the job ended in ${ms} ms with code ${r.code}`);
  });

  test('mpirun: createCommunicator picks MPI from the Open MPI variables', async (t) => {
    const r = await mpiRun(2, ['collectives', 'auto']);
    t.is(r.code, 0, r.stdout + r.stderr);
    t.deepEqual(r.reports.map((x) => x.result?.backend), ['mpi', 'mpi']);
  });
}
