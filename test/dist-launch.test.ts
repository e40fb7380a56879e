import { spawn } from 'node:child_process';
import { join } from 'node:path';

import test from 'ava';

import { parseLaunchArgs, rankCommand } from '../lib/cli/commands/launch.js';
import { collect, repoRoot, worker } from './_fixtures/dist-spawn.js';

const main = join(repoRoot, 'lib', 'cli', 'main.ts');

function launch(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, ['--import=tsx', main, 'launch', ...args], {
    cwd: repoRoot,
    env: { ...process.env, CLIPSCALE_DIST_TIMEOUT_S: '30', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return collect(child);
}

test('launch options: before the target; everything after it is the target\'s', (t) => {
  t.like(parseLaunchArgs(['--nproc', '4', 'train', '--batch-size', '8']), { nproc: 4, target: 'train', args: ['--batch-size', '8'], graceS: 5 });
  t.like(parseLaunchArgs(['--nproc=2', '--master-port', '29555', '--', 'x.ts', '--nproc', '9']), { nproc: 2, masterPort: 29555, target: 'x.ts', args: ['--nproc', '9'] });
  t.throws(() => parseLaunchArgs(['train']), { message: /--nproc is required/ });
  t.throws(() => parseLaunchArgs(['--nproc', '0', 'train']), { message: /--nproc must be an integer in 1\.\.\d+, got '0'/ });
  t.throws(() => parseLaunchArgs(['--nproc', '2']), { message: /name a script or a clipscale command/ });
  t.throws(() => parseLaunchArgs(['--nproc', '2', '--bogus', 'train']), { message: /unknown option '--bogus'/ });
  t.throws(() => rankCommand('no-such-command', []), { message: /'no-such-command' is neither a script .* nor a clipscale command/ });
  t.throws(() => rankCommand('missing.ts', []), { message: /script missing\.ts not found/ });
  const cmd = rankCommand('info', ['--json']);
  t.deepEqual(cmd.slice(-3), [join(repoRoot, 'lib', 'cli', 'main.ts'), 'info', '--json']);
});

test('launch --nproc 2 SCRIPT: torchrun variables, a working rendezvous, output prefixed by rank', async (t) => {
  const r = await launch(['--nproc', '2', worker, 'collectives', 'auto']);
  t.is(r.code, 0, r.stdout + r.stderr);
  t.regex(r.stdout, /^\[rank 0\] \{"rank":0,"result":\{"size":2,"backend":"tcp"/m);
  t.regex(r.stdout, /^\[rank 1\] \{"rank":1,"result":\{"size":2,"backend":"tcp"/m);
});

test('launch: when a rank fails, the others are stopped and launch exits with its code, naming it', async (t) => {
  const start = Date.now();
  // Rank 0 exits with code 4 before the rendezvous; ranks 1 and 2 would wait 120 s for it.
  const r = await launch(['--nproc', '3', '--grace', '2', worker, 'exit-early', 'tcp'], { CLIPSCALE_DIST_CONNECT_TIMEOUT_S: '120' });
  const ms = Date.now() - start;
  t.is(r.code, 4, r.stdout + r.stderr);
  t.regex(r.stderr, /^\[rank 0\] rank 0 fails on purpose$/m);
  t.regex(r.stderr, /clipscale launch: rank 0 exited with code 4; the other ranks were stopped/);
  t.true(ms < 60_000, `launch took ${ms} ms`);
  t.log(`rank 0 failed; launch stopped ranks 1-2 and returned in ${ms} ms`);
});
