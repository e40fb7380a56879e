// Starts the ranks of a distributed test as child processes and collects what each printed.
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { freePort } from '../../lib/cli/commands/launch.js';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const worker = join(repoRoot, 'test', '_fixtures', 'dist-worker.ts');

export interface RankRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The worker's JSON report lines. */
  reports: { rank: number; result?: Record<string, unknown>; error?: string }[];
}

export function collect(child: ChildProcess): Promise<RankRun> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d) => (stdout += d));
  child.stderr?.on('data', (d) => (stderr += d));
  return new Promise((res) => {
    child.on('close', (code, signal) => {
      const reports = stdout
        .split('\n')
        .map((l) => l.replace(/^\[rank \d+\] /, ''))
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as RankRun['reports'][number]);
      res({ code, signal, stdout, stderr, reports });
    });
  });
}

/** Runs dist-worker.ts as `size` torchrun-style ranks on a fresh port; `extraEnv` may vary per rank. */
export async function runTcpRanks(size: number, args: string[], extraEnv: (rank: number) => Record<string, string> = () => ({})) {
  const port = await freePort();
  const children = Array.from({ length: size }, (_, rank) =>
    spawn(process.execPath, ['--import=tsx', worker, ...args], {
      cwd: repoRoot,
      env: {
        ...process.env,
        RANK: String(rank),
        WORLD_SIZE: String(size),
        LOCAL_RANK: String(rank),
        MASTER_ADDR: '127.0.0.1',
        MASTER_PORT: String(port),
        CLIPSCALE_NUM_THREADS: '1',
        CLIPSCALE_DIST_TIMEOUT_S: '30',
        CLIPSCALE_DIST_CONNECT_TIMEOUT_S: '60',
        ...extraEnv(rank),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  return { children, runs: children.map(collect) };
}
