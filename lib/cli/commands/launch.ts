// `clipscale launch --nproc N SCRIPT|SUBCOMMAND …`: a torchrun-style launcher for one
// machine. It starts N ranks with RANK/WORLD_SIZE/LOCAL_RANK/LOCAL_WORLD_SIZE and a
// rendezvous at MASTER_ADDR=127.0.0.1:MASTER_PORT, prefixes their output with the
// rank, and when one rank fails it stops the others and exits non-zero.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { dirname, extname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { UsageError, type Command } from '../command.js';

const USAGE = `usage: clipscale launch --nproc N [--master-port P] [--grace S] SCRIPT|COMMAND [ARGS…]

Starts N processes on this machine, as torchrun does, each with
  RANK, WORLD_SIZE=N, LOCAL_RANK, LOCAL_WORLD_SIZE=N, MASTER_ADDR=127.0.0.1, MASTER_PORT
and CLIPSCALE_NUM_THREADS = cores / N (unless already set). SCRIPT is a .js/.mjs/.cjs/.ts
file run with this Node (.ts through tsx); anything else is a clipscale command, e.g.
  clipscale launch --nproc 2 train --batch-size 64 …
Each output line is prefixed with its rank ("[rank 1] …"). If a rank fails, the others
are stopped (SIGTERM, then SIGKILL after --grace seconds, default 5) and launch exits
with that rank's exit code.

  --nproc N         number of processes (ranks), 1 or more (required)
  --master-port P   rendezvous port (default: a free port)
  --grace S         seconds between SIGTERM and SIGKILL when stopping ranks (default 5)

Several machines: run one process per rank with your cluster's launcher instead, e.g.
  srun --ntasks-per-node=8 …   (with MASTER_ADDR/MASTER_PORT exported)   or   mpirun -np 16 …`;

const SCRIPT_EXTENSIONS = new Set(['.js', '.mjs', '.cjs', '.ts', '.mts', '.cts']);

interface LaunchOptions {
  nproc: number;
  masterPort?: number;
  graceS: number;
  target: string;
  args: string[];
}

function positiveInt(name: string, v: string | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (v === undefined) throw new UsageError(`clipscale launch: ${name} needs a value`);
  const n = /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new UsageError(`clipscale launch: ${name} must be an integer in ${min}..${max}, got '${v}'`);
  return n;
}

/** Ranks on one machine: each is a whole process (~100 MB before any model); more than 8 a core only thrashes. */
const MAX_LOCAL_RANKS = Math.max(8, 8 * os.availableParallelism());

/** Launch options come before the target; everything after it belongs to the target. */
export function parseLaunchArgs(argv: string[]): LaunchOptions {
  let nproc: number | undefined;
  let masterPort: number | undefined;
  let graceS = 5;
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      i++;
      break;
    }
    if (!a.startsWith('-')) break;
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = () => inline ?? argv[++i];
    if (flag === '--nproc' || flag === '--nproc-per-node' || flag === '--nproc_per_node') nproc = positiveInt('--nproc', value(), 1, MAX_LOCAL_RANKS);
    else if (flag === '--master-port' || flag === '--master_port') masterPort = positiveInt('--master-port', value(), 1, 65535);
    else if (flag === '--grace') {
      const v = value();
      graceS = Number(v);
      // At most a day: a timer longer than 2^31 ms fires at once.
      if (!Number.isFinite(graceS) || graceS < 0 || graceS > 86_400 || v === undefined || v.trim() === '') {
        throw new UsageError(`clipscale launch: --grace must be a number of seconds in 0..86400, got '${v}'`);
      }
    } else throw new UsageError(`clipscale launch: unknown option '${flag}' (launch options come before the script or command)\n\n${USAGE}`);
  }
  if (nproc === undefined) throw new UsageError(`clipscale launch: --nproc is required\n\n${USAGE}`);
  const target = argv[i];
  if (!target) throw new UsageError(`clipscale launch: name a script or a clipscale command to run\n\n${USAGE}`);
  return { nproc, masterPort, graceS, target, args: argv.slice(i + 1) };
}

/** A port that was free a moment ago (the usual race, as torchrun has). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((res, rej) => {
    const srv = net.createServer();
    srv.once('error', rej);
    srv.listen({ port: 0, host }, () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => res(port));
    });
  });
}

const hasTsxLoader = (execArgv: string[]) => execArgv.some((a) => /tsx/.test(a));

/** The command line that runs `target` in a rank: [executable, ...args]. */
export function rankCommand(target: string, args: string[]): string[] {
  const node = process.execPath;
  const execArgv = process.execArgv.filter((a) => !a.startsWith('--inspect'));
  const ext = extname(target);
  if (SCRIPT_EXTENSIONS.has(ext)) {
    const script = resolve(target);
    if (!existsSync(script)) throw new UsageError(`clipscale launch: script ${target} not found`);
    const isTs = ext === '.ts' || ext === '.mts' || ext === '.cts';
    const loader = isTs && !hasTsxLoader(execArgv) ? ['--import=tsx'] : [];
    return [node, ...execArgv, ...loader, script, ...args];
  }
  // A clipscale command: run this same CLI (main.ts under tsx, main.js when built).
  const commandsDir = dirname(fileURLToPath(import.meta.url));
  const ownExt = extname(fileURLToPath(import.meta.url));
  const names = readdirSync(commandsDir).filter((f) => f.endsWith(ownExt) && !f.endsWith('.d.ts')).map((f) => f.slice(0, -ownExt.length));
  if (!names.includes(target)) throw new UsageError(`clipscale launch: '${target}' is neither a script (.js/.mjs/.cjs/.ts) nor a clipscale command (${names.join(', ')})`);
  if (target === 'launch') throw new UsageError('clipscale launch: cannot launch launch');
  const main = join(commandsDir, '..', `main${ownExt}`);
  return [node, ...execArgv, main, target, ...args];
}

/** Copies a child's stream to ours line by line, each line prefixed with the rank. */
function prefixLines(stream: NodeJS.ReadableStream, out: NodeJS.WriteStream, prefix: string): Promise<void> {
  return new Promise((res) => {
    const rl = createInterface({ input: stream, crlfDelay: Infinity });
    rl.on('line', (line) => out.write(`${prefix}${line}\n`));
    rl.on('close', res);
  });
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `was killed by ${signal}` : `exited with code ${code}`;
}

export async function launch(opts: LaunchOptions): Promise<number> {
  const [exe, ...args] = rankCommand(opts.target, opts.args);
  const port = opts.masterPort ?? (await freePort());
  const threads = Math.max(1, Math.floor(os.availableParallelism() / opts.nproc));
  const children: ChildProcess[] = [];
  const outputs: Promise<void>[] = [];
  let failure: { rank: number; code: number; why: string } | undefined;
  let killTimer: NodeJS.Timeout | undefined;

  const stopOthers = (signal: NodeJS.Signals) => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill(signal);
    killTimer ??= setTimeout(() => {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    }, opts.graceS * 1000);
    killTimer.unref();
  };

  // Our own interruption goes to every rank.
  const forward = (signal: NodeJS.Signals) => () => {
    failure ??= { rank: -1, code: 128 + (os.constants.signals[signal] ?? 1), why: `launch received ${signal}` };
    stopOthers(signal);
  };
  const onInt = forward('SIGINT');
  const onTerm = forward('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);

  const exits = Array.from({ length: opts.nproc }, (_, rank) => {
    const env = {
      ...process.env,
      RANK: String(rank),
      WORLD_SIZE: String(opts.nproc),
      LOCAL_RANK: String(rank),
      LOCAL_WORLD_SIZE: String(opts.nproc),
      MASTER_ADDR: '127.0.0.1',
      MASTER_PORT: String(port),
      CLIPSCALE_NUM_THREADS: process.env.CLIPSCALE_NUM_THREADS ?? String(threads),
    };
    const child = spawn(exe, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    const prefix = opts.nproc > 1 ? `[rank ${rank}] ` : '';
    outputs.push(prefixLines(child.stdout!, process.stdout, prefix), prefixLines(child.stderr!, process.stderr, prefix));
    return new Promise<void>((res) => {
      child.on('error', (err) => {
        failure ??= { rank, code: 1, why: `could not start: ${err.message}` };
        stopOthers('SIGTERM');
        res();
      });
      child.on('exit', (code, signal) => {
        if ((code !== 0 || signal) && !failure) {
          failure = { rank, code: code && code > 0 ? code : 1, why: describeExit(code, signal) };
          stopOthers('SIGTERM');
        }
        res();
      });
    });
  });
  await Promise.all(exits);
  await Promise.all(outputs);
  if (killTimer) clearTimeout(killTimer);
  process.off('SIGINT', onInt);
  process.off('SIGTERM', onTerm);
  if (failure) {
    const who = failure.rank >= 0 ? `rank ${failure.rank} ${failure.why}` : failure.why;
    const others = opts.nproc > 1 ? '; the other ranks were stopped' : '';
    process.stderr.write(`clipscale launch: ${who}${others}\n`);
    return failure.code;
  }
  return 0;
}

export const command: Command = {
  name: 'launch',
  summary: 'run a script or command as N ranks on this machine (torchrun style)',
  usage: USAGE,
  async run(argv) {
    return launch(parseLaunchArgs(argv));
  },
};
