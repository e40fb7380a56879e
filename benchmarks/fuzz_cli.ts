// A fuzzing pass over the command line: hostile inputs for every parser (tar, .npy, safetensors,
// model configs, CSV, vocabularies, brace patterns, checkpoint state) and every command's options,
// special files (/dev/zero, FIFOs, directories) in every file argument, hostile environment values,
// and damaged checkpoint directories for --resume. Each case runs the real command in a child
// process with a time limit and a heap limit, and is classified:
//
//   ok              exit 0
//   clean_error     exit 1 or 2 with a message (no JavaScript stack, no internal TypeError/RangeError)
//   unclean_error   exit 1/2 with a stack trace or an internal error type: a fault not handled where it arises
//   crash           killed by a signal, or an abort / V8 fatal error (out of heap included)
//   hang            still running at the time limit and blocked (no CPU in its last 10 s)
//   long_running    still running at the time limit and computing (valid work that is large)
//   data_loss       a case-specific check failed: a pre-existing output or checkpoint was lost or torn
//
// Prints one JSON line with the counts (and the first failures with their command lines).
//
//   npx tsc -p tsconfig.json && node --import=tsx benchmarks/fuzz_cli.ts [--seconds 600] [--seed 1]
//        [--timeout 30] [--jobs 2] [--max-cases N] [--only CATEGORY] [--out FILE]
//
// Runs dist/cli/main.js when it exists (fast start), else lib/cli/main.ts under tsx.
import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string' },
    seed: { type: 'string' },
    timeout: { type: 'string' },
    jobs: { type: 'string' },
    'max-cases': { type: 'string' },
    only: { type: 'string' },
    out: { type: 'string' },
    keep: { type: 'boolean' },
  },
});
const budgetS = Number(args.seconds ?? 600);
const timeoutS = Number(args.timeout ?? 30);
const jobs = Number(args.jobs ?? 2);
const maxCases = Number(args['max-cases'] ?? Infinity);
const started = performance.now();

// A small seeded generator (mulberry32), so a run can be repeated.
let seedState = Number(args.seed ?? 1) >>> 0;
function rand(): number {
  seedState = (seedState + 0x6d2b79f5) >>> 0;
  let t = seedState;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
const int = (n: number) => Math.floor(rand() * n);

const work = mkdtempSync(join(os.tmpdir(), 'clipscale-fuzz-'));
const useDist = existsSync(join(root, 'dist', 'cli', 'main.js'));
const entry = useDist ? ['--max-old-space-size=2048', join(root, 'dist', 'cli', 'main.js')] : ['--max-old-space-size=2048', '--import=tsx', join(root, 'lib', 'cli', 'main.ts')];

interface Case {
  category: string;
  args: string[];
  env?: Record<string, string>;
  stdin?: string;
  /** A data-loss check run after the command: returns a description of what was lost, or null. */
  check?: (r: RunResult) => string | null;
  /** A small input worth showing in a failure report (a config's text). */
  input?: string;
  /** Sets up files for this case just before it runs (kept lazy so cases can be generated up front). */
  setup?: () => void;
}

interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  /** CPU seconds the process had used when it was stopped at the time limit. */
  cpuAtTimeout: number;
  /** CPU seconds it used in the last 10 s before the limit (about 0 when blocked). */
  cpuLast10s: number;
  stdout: string;
  stderr: string;
  seconds: number;
}

function runCase(c: Case): Promise<RunResult> {
  return new Promise((resolve) => {
    c.setup?.();
    const t0 = performance.now();
    const child = spawn(process.execPath, [...entry, ...c.args], {
      cwd: work,
      env: { ...process.env, CLIPSCALE_NUM_THREADS: '1', ...c.env },
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true, // its own process group: a hang is killed with everything it started
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout = (stdout + d.toString()).slice(-20000)));
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-20000)));
    child.stdin.on('error', () => {});
    child.stdin.end(c.stdin ?? '');
    let timedOut = false;
    let cpuAtTimeout = 0;
    let cpuBefore = 0;
    const probe = setTimeout(() => (cpuBefore = cpuSeconds(child.pid!)), Math.max(0, timeoutS - 10) * 1000);
    const timer = setTimeout(() => {
      timedOut = true;
      cpuAtTimeout = cpuSeconds(child.pid!);
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, timeoutS * 1000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      clearTimeout(probe);
      resolve({ code, signal, timedOut, cpuAtTimeout, cpuLast10s: cpuAtTimeout - cpuBefore, stdout, stderr, seconds: (performance.now() - t0) / 1000 });
    });
  });
}

/** User + system CPU seconds of a process (Linux /proc), 0 where unknown. */
function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return 0;
  }
}

type Verdict = 'ok' | 'clean_error' | 'unclean_error' | 'crash' | 'hang' | 'long_running' | 'other_exit';

function classify(r: RunResult): Verdict {
  // At the time limit: blocked (no CPU used in its last 10 s: a lost wake-up, a FIFO, a dead
  // worker) is a hang; still computing is a long run of valid work (a large accepted config),
  // counted apart. (CPU, not wall time: on a loaded machine a busy process gets a small share.)
  if (r.timedOut) return r.cpuLast10s < 0.05 ? 'hang' : 'long_running';
  if (r.signal !== null || r.code === 134 || r.code === 133 || r.code === 139) return 'crash';
  if (/FATAL ERROR|Abort(ed)?\b.*core|Segmentation fault|Assertion failed|terminate called|heap out of memory/i.test(r.stderr)) return 'crash';
  if (r.code === 0) return 'ok';
  if (r.code === 1 || r.code === 2) {
    // A handled error is one line of message (the CLI prints no stack unless CLIPSCALE_DEBUG).
    if (/\n\s+at .+\(.+:\d+:\d+\)/.test(r.stderr) || /^(clipscale: )?(TypeError|RangeError|ReferenceError|SyntaxError)\b(?!.*(JSON|Unexpected token|not valid JSON))/m.test(r.stderr)) return 'unclean_error';
    return 'clean_error';
  }
  return 'other_exit';
}

// ---------------------------------------------------------------------------------------------
// Fixtures: a micro model, its weights and a checkpoint, shards, npy files, a CSV, a vocabulary.
// ---------------------------------------------------------------------------------------------
const F = (name: string) => join(work, name);

function runSync(a: string[], env: Record<string, string> = {}): void {
  const r = spawnSync(process.execPath, [...entry, ...a], { cwd: work, env: { ...process.env, CLIPSCALE_NUM_THREADS: '1', ...env }, encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) throw new Error(`fixture command failed: clipscale ${a.join(' ')}\n${r.stderr}`);
}

function npyBytes(descr: string, shape: number[], data: Uint8Array, fortran = false): Buffer {
  let header = `{'descr': '${descr}', 'fortran_order': ${fortran ? 'True' : 'False'}, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  return Buffer.concat([pre, Buffer.from(header, 'latin1'), Buffer.from(data)]);
}

function f32(n: number, fill: (i: number) => number): Uint8Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = fill(i);
  return new Uint8Array(a.buffer);
}

function i32(n: number, fill: (i: number) => number): Uint8Array {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = fill(i);
  return new Uint8Array(a.buffer);
}

const MICRO = {
  embed_dim: 16,
  vision_cfg: { image_size: 16, layers: 1, width: 16, head_width: 8, patch_size: 8 },
  text_cfg: { context_length: 16, vocab_size: 1100, width: 16, heads: 2, layers: 1 },
};

function makeFixtures(): void {
  writeFileSync(F('micro.json'), JSON.stringify(MICRO));
  // Shards of the synthetic world (also the source of a template tar).
  runSync(['data', 'make-shards', '--from', 'synthetic', '--samples', '24', '--image-size', '16', '--out', F('shards'), '--shard-size', '12']);
  // A short run: weights and a checkpoint directory to damage.
  runSync(['train', '--model', F('micro.json'), '--data', 'synthetic:size=64', '--batch-size', '8', '--samples', '32', '--stop-after-steps', '2', '--checkpoint-every', '1', '--schedule', 'const', '--out', F('run')]);
  // Features and labels.
  writeFileSync(F('feat.npy'), npyBytes('<f4', [12, 4], f32(48, (i) => Math.sin(i + 1))));
  writeFileSync(F('labels.npy'), npyBytes('<i4', [12], i32(12, (i) => i % 3)));
  writeFileSync(F('classes.npy'), npyBytes('<f4', [3, 4], f32(12, (i) => Math.cos(i))));
  writeFileSync(F('pixels.npy'), npyBytes('<f4', [2, 3, 16, 16], f32(2 * 3 * 256, (i) => (i % 7) / 7)));
  writeFileSync(F('tokens.npy'), npyBytes('<i4', [2, 16], i32(32, (i) => (i % 16 === 0 ? 1 : i % 16 === 1 ? 2 : 0))));
  writeFileSync(F('captions.txt'), 'a red square\na blue circle\n');
  mkdirSync(F('images/cat'), { recursive: true });
  mkdirSync(F('images/dog'), { recursive: true });
  spawnSync('mkfifo', [F('fifo')]);
  spawnSync('mkfifo', [F('fifo.png')]);
  spawnSync('ln', ['-s', '/dev/zero', F('zero.png')]);
  // A real image for CSV rows and image folders (the first member of a synthetic shard).
  const shard = readFileSync(F('shards/00000.tar'));
  const size = parseInt(shard.subarray(124, 135).toString('latin1'), 8);
  writeFileSync(F('img.png'), shard.subarray(512, 512 + size));
  copyFileSync(F('img.png'), F('images/cat/1.png'));
  copyFileSync(F('img.png'), F('images/dog/1.png'));
  mkdirSync(F('a-directory'), { recursive: true });
  // An image folder whose classes hold a FIFO, a link to /dev/zero and a directory named like an image.
  mkdirSync(F('hostile-images/a/dir.png'), { recursive: true });
  mkdirSync(F('hostile-images/b'), { recursive: true });
  copyFileSync(F('img.png'), F('hostile-images/a/ok.png'));
  spawnSync('mkfifo', [F('hostile-images/a/pipe.png')]);
  spawnSync('ln', ['-s', '/dev/zero', F('hostile-images/b/zero.jpg')]);
  copyFileSync(F('img.png'), F('hostile-images/b/ok.png'));
}

// ---------------------------------------------------------------------------------------------
// Mutators
// ---------------------------------------------------------------------------------------------
const HOSTILE_NUMBERS = ['', '-1', '0', '1', '-0', '1.5', '0x10', '1e3', '1e309', '-1e309', 'NaN', 'Infinity', '2147483647', '2147483648', '4294967296', '9007199254740993', '99999999999999999999', 'abc', ' 7 ', '٣', '1_000', '+5', '-2147483649', '1e-400'];
const HOSTILE_STRINGS = ['', '/dev/zero', '/dev/null', 'fifo', 'a-directory', 'no-such-file', '../../../../etc/passwd', 'x'.repeat(5000), '{0..999}{0..999}{0..999}', '{', '}', '{a,', 'synthetic:size=-1', 'synthetic:size=1e309', '\u202e', 'con', '-', '--', '%s%n'];
const SPECIAL_FILES = ['/dev/zero', 'fifo', 'a-directory', '/dev/null', 'no-such-file'];

function mutateBytes(b: Buffer, n = 1 + int(8)): Buffer {
  const out = Buffer.from(b);
  for (let k = 0; k < n; k++) {
    const kind = int(4);
    const i = int(Math.max(1, out.length));
    if (kind === 0) out[i] ^= 1 << int(8);
    else if (kind === 1) out[i] = pick([0, 0xff, 0x80, 0x7f, 0x30, 0x37, 0x2d, 0x20]);
    else if (kind === 2) out[i] = int(256);
    else out.fill(pick([0, 0xff, 0x30]), i, Math.min(out.length, i + 1 + int(16)));
  }
  return out;
}

function truncate(b: Buffer): Buffer {
  return b.subarray(0, int(b.length));
}

/** A ustar header with a chosen size field and a valid checksum. */
function tarHeader(name: string, size: Buffer | string, type = '0'): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100);
  h.write('0000644\0', 100);
  if (typeof size === 'string') h.write(size.padEnd(12, '\0').slice(0, 12), 124, 'latin1');
  else size.copy(h, 124, 0, 12);
  h.write('00000000000\0', 136);
  h.write('        ', 148);
  h.write(type, 156);
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += h[i];
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  return h;
}

function hostileTar(): Buffer {
  const template = readFileSync(F('shards/00000.tar'));
  switch (int(6)) {
    case 0:
      return mutateBytes(template, 1 + int(40));
    case 1:
      return truncate(template);
    case 2: {
      const size = pick(['-0000001000\0', (2 ** 31 + int(2 ** 31)).toString(8).padStart(11, '0') + '\0', '77777777777\0', 'zzzzzzzzzzz\0', Buffer.from([0x80, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff]), Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf0])]);
      return Buffer.concat([tarHeader('000000000.png', size), Buffer.alloc(512 * (1 + int(4)))]);
    }
    case 3: {
      const value = pick(['3000000000', '-5', '1e9', '99999999999999999999', '', 'abc', String(2 ** 53 + 2)]);
      const rec = `size=${value}\n`;
      let len = rec.length + 3;
      if (String(len).length + 1 + rec.length !== len) len = String(len + 1).length + 1 + rec.length;
      const body = Buffer.from(`${len} ${rec}`);
      return Buffer.concat([tarHeader('PaxHeader', body.length.toString(8).padStart(11, '0') + '\0', 'x'), Buffer.concat([body, Buffer.alloc(512 - body.length)]), tarHeader('k.png', '00000000010\0'), Buffer.alloc(1024)]);
    }
    case 4: {
      // Many tiny members, names without extensions, directories, links.
      const parts: Buffer[] = [];
      for (let i = 0; i < 50; i++) parts.push(tarHeader(pick(['a', 'a.', '.png', 'x/y.txt', `${i}.txt`, `${i}.png`]), '00000000000\0', pick(['0', '5', '2', '1', 'L', 'g'])));
      return Buffer.concat([...parts, Buffer.alloc(1024)]);
    }
    default:
      return Buffer.concat([template.subarray(0, 512 * int(template.length / 512)), mutateBytes(template.subarray(0, 2048))]);
  }
}

function hostileNpy(kind: 'features' | 'labels' | 'pixels' | 'tokens'): Buffer {
  const descr = pick(['<f4', '<f8', '<i4', '<i8', '>f4', '|u1', '<c8', '<f2', 'O', "<U5", '<f4', '<f4']);
  const shapes: Record<string, number[][]> = {
    features: [[12, 4], [0, 4], [12, 0], [2147483648, 1], [12], [1, 1, 1], [-1, 4], [9007199254740993, 2], [12, 4, 1]],
    labels: [[12], [12, 1], [0], [2147483648]],
    pixels: [[2, 3, 16, 16], [1, 3, 16, 16], [2, 3, 17, 16], [65536, 3, 16, 16], [2, 3, 16]],
    tokens: [[2, 16], [2, 17], [1 << 30, 16]],
  };
  const shape = pick(shapes[kind]);
  let data: Uint8Array;
  const n = Math.max(0, Math.min(4096, shape.reduce((a, b) => a * Math.max(0, b), 1)));
  if (kind === 'labels') data = i32(n, () => pick([0, 1, 2, -1, 2 ** 31 - 1, 1000000, 3]));
  else if (kind === 'tokens') data = i32(n, () => pick([0, 1, 5, -3, 2 ** 31 - 1, 49407]));
  else data = f32(n, () => pick([0.5, -1, NaN, Infinity, 1e38, 0]));
  const bytes = npyBytes(descr, shape, data, rand() < 0.05);
  switch (int(4)) {
    case 0:
      return mutateBytes(bytes, 1 + int(6));
    case 1:
      return truncate(bytes);
    default:
      return bytes;
  }
}

function hostileSafetensors(): Buffer {
  const good = readFileSync(F('run/checkpoint-2.safetensors'));
  const headerLen = Number(good.readBigUInt64LE(0));
  const header = JSON.parse(good.subarray(8, 8 + headerLen).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  switch (int(5)) {
    case 0:
      return mutateBytes(good, 1 + int(30));
    case 1:
      return truncate(good);
    case 2: {
      const b = Buffer.from(good);
      b.writeBigUInt64LE(pick([0n, 2n ** 63n, BigInt(good.length), 2n ** 40n, 7n]), 0);
      return b;
    }
    default: {
      const names = Object.keys(header).filter((k) => k !== '__metadata__');
      const name = pick(names);
      const e = header[name];
      const which = int(4);
      if (which === 0) e.shape = e.shape.map(() => pick([0, 1, 2 ** 31, 2 ** 53, -1]));
      else if (which === 1) e.data_offsets = [pick([0, -8, 2 ** 40]), pick([0, 2 ** 53, 1])];
      else if (which === 2) e.dtype = pick(['F32', 'I8', 'BOOL', 'U64', 'F8_E4M3', 'X', 'BF16']);
      else delete header[name];
      const h = Buffer.from(JSON.stringify(header));
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(h.length));
      return Buffer.concat([len, h, good.subarray(8 + headerLen)]);
    }
  }
}

function hostileConfig(): string {
  const cfg = JSON.parse(JSON.stringify(MICRO)) as Record<string, Record<string, unknown> | unknown>;
  const paths: [string, string | null][] = [
    ['embed_dim', null], ['vision_cfg', 'image_size'], ['vision_cfg', 'layers'], ['vision_cfg', 'width'], ['vision_cfg', 'head_width'], ['vision_cfg', 'patch_size'],
    ['text_cfg', 'context_length'], ['text_cfg', 'vocab_size'], ['text_cfg', 'width'], ['text_cfg', 'heads'], ['text_cfg', 'layers'],
  ];
  const values = [0, -1, 1.5, 1e6, 32768, 1e7, 2 ** 31, 2 ** 53 + 2, 1e309, 'x', null, [], {}, true, 1024];
  for (let k = 0; k < 1 + int(3); k++) {
    const [a, b] = pick(paths);
    const v = pick(values);
    if (b === null) cfg[a] = v;
    else (cfg[a] as Record<string, unknown>)[b] = v;
  }
  const text = JSON.stringify(cfg).replace('1e309', '1e309');
  return rand() < 0.1 ? text.slice(0, int(text.length)) : text;
}

function hostileCsv(): string {
  const rows = ['filepath,title'];
  for (let i = 0; i < 1 + int(12); i++) {
    const path = pick(['img.png', 'img.png', 'img.png', '/dev/zero', 'fifo', 'fifo.png', 'zero.png', 'a-directory', 'missing.png', '"img.png"', 'x.jpg', '/etc/passwd', '']);
    const caption = pick(['a cat', 'a cat', '"a ""quoted"" caption"', '"comma, inside"', '"multi\nline"', '\u0000', 'é', '', ...(rand() < 0.2 ? ['"unterminated', 'comma, inside'] : [])]);
    rows.push(`${path}${rand() < 0.9 ? ',' : pick([';', '\t', ',,'])}${caption}`);
  }
  return rows.join(pick(['\n', '\r\n', '\r']));
}

let gzipBomb: Buffer | undefined;

function hostileVocab(): Buffer {
  const real = readFileSync(join(root, 'lib', 'data', 'vocab', readdirSync(join(root, 'lib', 'data', 'vocab')).find((f) => f.endsWith('.gz'))!));
  switch (int(6)) {
    case 0:
      return mutateBytes(real, 1 + int(20));
    case 1:
      return truncate(real);
    case 2:
      return (gzipBomb ??= gzipSync(Buffer.alloc(200_000_000, 0x61))); // 200 MB from ~200 KB: far beyond a vocabulary
    case 3:
      return Buffer.from('#version\n' + Array.from({ length: 50 }, () => pick(['a b', 'a', 'a b c', '', ' ', 'ab</w> c', '\u0000 x'])).join('\n'));
    case 4:
      return Buffer.from([0x1f, 0x8b, ...Array.from({ length: 64 }, () => int(256))]);
    default:
      return Buffer.alloc(int(4096), int(256));
  }
}

// ---------------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------------
let fileCounter = 0;
function tmpFile(ext: string, content: Buffer | string): string {
  const p = F(`case-${fileCounter++}${ext}`);
  writeFileSync(p, content);
  return p;
}

const TRAIN = () => ['train', '--model', F('micro.json'), '--data', 'synthetic:size=64', '--batch-size', '8', '--samples', '16'];
const TRAIN_OPTS = ['batch-size', 'samples', 'lr', 'warmup', 'wd', 'beta1', 'beta2', 'eps', 'cooldown-steps', 'lr-cooldown-end', 'lr-cooldown-power', 'accum-freq', 'grad-clip-norm', 'seed', 'log-every', 'checkpoint-every', 'stop-after-steps', 'eval-every', 'workers', 'shuffle-buffer'];

/** Cases whose command line is generated: every command, with hostile option values and file arguments. */
function optionCase(): Case {
  const kind = int(14);
  const num = () => pick(HOSTILE_NUMBERS);
  switch (kind) {
    case 0:
    case 1: {
      const opt = pick(TRAIN_OPTS);
      const extra = opt === 'workers' || opt === 'shuffle-buffer' ? ['--data', F('shards/00000.tar'), '--vocab', 'synthetic'] : [];
      const base = TRAIN();
      if (extra.length) base.splice(base.indexOf('--data'), 2, ...extra);
      const a = [...base.filter((_, i) => base[i - 1] !== `--${opt}` && base[i] !== `--${opt}`), `--${opt}`, num()];
      // One step at most (a valid but huge --samples is a long run, not a hang).
      const stop = opt === 'stop-after-steps' ? [] : ['--stop-after-steps', '1'];
      return { category: 'options:train', args: [...a, ...stop, '--out', F(`out-${fileCounter++}`)] };
    }
    case 2:
      return { category: 'options:train', args: [...TRAIN(), pick(['--schedule', '--precision', '--device', '--data', '--model', '--eval-tasks']), pick([...HOSTILE_STRINGS, 'tpu', 'cuda:99', 'fp16', 'bf16', 'const-cooldown'])] };
    case 3:
      return { category: 'options:eval', args: ['eval', 'retrieval', '--image-features', F('feat.npy'), '--text-features', F('feat.npy'), '--k', pick(['0', '1,2', '-1', '1e9', '', ',', '1,,2', 'NaN', '99999999999999999999'])] };
    case 4:
      return {
        category: 'options:eval',
        args: ['eval', 'linear-probe', '--train-features', F('feat.npy'), '--train-labels', F('labels.npy'), '--test-features', F('feat.npy'), '--test-labels', F('labels.npy'), pick(['--val-fraction', '--seed', '--seeds', '--shots', '--lambdas']), num()],
      };
    case 5:
      return { category: 'options:eval', args: ['eval', 'zeroshot', '--image-features', F('feat.npy'), '--labels', F('labels.npy'), '--class-features', F('classes.npy'), '--templates-per-class', num()] };
    case 6:
      return { category: 'options:tokenize', args: ['tokenize', '--context-length', num()], stdin: 'a red square\n' };
    case 7:
      return { category: 'options:tokenizer', args: ['tokenizer', 'train', '--captions', F('captions.txt'), '--vocab-size', num(), '--out', F(`vocab-${fileCounter++}.txt.gz`)] };
    case 8:
      return { category: 'options:flops', args: ['flops', '--model', 'tiny', '--vocab-size', num()] };
    case 9:
      return { category: 'options:bench', args: ['bench', 'gemm', '--m', pick(['8', num()]), '--n', pick(['8', num()]), '--k', pick(['8', num()]), '--repeat', pick(['1', num()]), ...(rand() < 0.3 ? ['--threads', num()] : [])] };
    case 10:
      return { category: 'options:data', args: ['data', 'make-shards', '--from', 'synthetic', '--out', F(`shards-${fileCounter++}`), '--shard-size', pick(['4', num()]), '--samples', pick(['4', num()]), '--image-size', pick(['16', num()])] };
    case 11:
      return { category: 'options:fit', args: ['fit', '--results', join(root, 'lib/scaling/paper/zeroshot_results.csv'), '--compute', 'gmacs*samples_seen', '--metric', pick(['acc1', 'acc1', 'x']), pick(['--bins', '--bootstrap', '--level', '--seed', '--predict']), num()] };
    case 12:
      return { category: 'options:launch', args: ['launch', pick(['--nproc', '--grace', '--master-port']), num(), 'flops', '--model', 'tiny'] };
    default:
      return { category: 'options:embed', args: ['embed', '--model', F('micro.json'), '--weights', F('run'), '--pixels', F('pixels.npy'), '--out', F(`emb-${fileCounter++}`), '--batch-size', num()] };
  }
}

/** Hostile files given to each parser through the command that reads them. */
function fileCase(): Case {
  switch (int(11)) {
    case 0: {
      const p = tmpFile('.tar', hostileTar());
      return { category: 'parser:tar', args: ['data', 'inspect', p] };
    }
    case 1: {
      const p = tmpFile('.tar', hostileTar());
      return { category: 'parser:tar', args: ['train', '--model', F('micro.json'), '--data', p, '--vocab', 'synthetic', '--batch-size', '2', '--samples', '4', '--workers', '1'] };
    }
    case 2: {
      const which = pick(['features', 'labels'] as const);
      const p = tmpFile('.npy', hostileNpy(which));
      return which === 'features'
        ? { category: 'parser:npy', args: ['eval', 'retrieval', '--image-features', p, '--text-features', F('feat.npy')] }
        : { category: 'parser:npy', args: ['eval', 'linear-probe', '--train-features', F('feat.npy'), '--train-labels', p, '--test-features', F('feat.npy'), '--test-labels', F('labels.npy')] };
    }
    case 3: {
      const which = pick(['pixels', 'tokens'] as const);
      const p = tmpFile('.npy', hostileNpy(which));
      return { category: 'parser:npy', args: ['embed', '--model', F('micro.json'), '--weights', F('run'), which === 'pixels' ? '--pixels' : '--tokens', p, '--out', F(`emb-${fileCounter++}`)] };
    }
    case 4: {
      const p = tmpFile('.safetensors', hostileSafetensors());
      return { category: 'parser:safetensors', args: ['embed', '--model', F('micro.json'), '--weights', p, '--pixels', F('pixels.npy'), '--out', F(`emb-${fileCounter++}`)] };
    }
    case 5: {
      const text = hostileConfig();
      const p = tmpFile('.json', text);
      return { category: 'parser:config', input: text, args: pick([['flops', '--model', p], ['train', '--model', p, '--data', 'synthetic:size=16', '--batch-size', '2', '--samples', '2']]) };
    }
    case 6: {
      const p = tmpFile('.csv', hostileCsv());
      copyFileSync(F('shards/00000.tar'), F('x.jpg'));
      return { category: 'parser:csv', args: ['data', 'make-shards', '--from', p, '--out', F(`csvshards-${fileCounter++}`), '--shard-size', '4'] };
    }
    case 7: {
      const p = tmpFile('.txt.gz', hostileVocab());
      return { category: 'parser:vocab', args: ['tokenize', '--vocab', p], stdin: 'a photo of a cat\n' };
    }
    case 8: {
      const pattern = pick(['{0..999}{0..999}{0..999}', '{00000..00001}.tar', '{1..0}', '{a,b', 'a}b', '{}', '{0..99999999999}', '{,,,,}', '::', '{0..9}::{0..9}']);
      return { category: 'parser:braces', args: ['data', 'inspect', join(F('shards'), pattern)] };
    }
    case 9: {
      // Special files in every file argument.
      const s = pick(SPECIAL_FILES);
      const target = s.startsWith('/') ? s : F(s);
      return {
        category: 'special-files',
        args: pick([
          ['tokenize', '--vocab', target],
          ['eval', 'retrieval', '--image-features', target, '--text-features', F('feat.npy')],
          ['eval', 'zeroshot', '--image-features', F('feat.npy'), '--labels', target, '--class-features', F('classes.npy')],
          ['embed', '--model', F('micro.json'), '--weights', target, '--pixels', F('pixels.npy'), '--out', F(`emb-${fileCounter++}`)],
          ['embed', '--model', F('micro.json'), '--weights', F('run'), '--images', target, '--out', F(`emb-${fileCounter++}`)],
          ['embed', '--model', F('micro.json'), '--weights', F('run'), '--texts', target, '--vocab', 'synthetic', '--out', F(`emb-${fileCounter++}`)],
          ['flops', '--model', target],
          ['data', 'make-shards', '--from', F('hostile-images'), '--out', F(`hi-${fileCounter++}`), '--shard-size', '2'],
          ['embed', '--model', F('micro.json'), '--weights', F('run'), '--images', F('hostile-images'), '--out', F(`emb-${fileCounter++}`)],
          ['eval', 'zeroshot', '--model', F('micro.json'), '--weights', F('run'), '--data', F('hostile-images'), '--vocab', 'synthetic'],
          ['data', 'inspect', target],
          ['data', 'make-shards', '--from', target, '--out', F(`sp-${fileCounter++}`), '--shard-size', '2'],
          ['fit', '--results', target, '--compute', 'gmacs', '--metric', 'x'],
          ['tokenizer', 'train', '--captions', target, '--vocab-size', '600', '--out', F(`v-${fileCounter++}.gz`)],
          ['train', '--model', F('micro.json'), '--data', target, '--vocab', 'synthetic', '--batch-size', '2', '--samples', '2'],
          ['train', '--model', F('micro.json'), '--data', F('shards/00000.tar'), '--vocab', target, '--batch-size', '2', '--samples', '2'],
        ]),
      };
    }
    default: {
      const value = pick(['100000', '0', '-1', 'abc', '99999999999999999999', '1e3', '']);
      return { category: 'environment', args: ['bench', 'gemm', '--m', '8', '--n', '8', '--k', '8', '--repeat', '1'], env: { CLIPSCALE_NUM_THREADS: value } };
    }
  }
}

/** A damaged copy of a checkpoint directory, resumed: failures must lose no whole checkpoint. */
function resumeCase(): Case {
  const dir = F(`resume-${fileCounter++}`);
  const damage = int(8);
  let wholeBefore: string[] = [];
  const setup = () => {
    cpSync(F('run'), dir, { recursive: true });
    const files = readdirSync(dir);
    const pickFile = (re: RegExp) => join(dir, pick(files.filter((f) => re.test(f))));
    switch (damage) {
      case 0:
        writeFileSync(pickFile(/^checkpoint-\d+\.safetensors$/), truncate(readFileSync(pickFile(/^checkpoint-\d+\.safetensors$/))));
        break;
      case 1: {
        const p = pickFile(/^state-\d+\.json$/);
        const doc = JSON.parse(readFileSync(p, 'utf8'));
        const key = pick(['step', 'samplesSeen', 'precision', 'config', 'schedule', 'dataPosition']);
        doc.state[key] = pick([null, -1, 'x', 1e300, [], {}, 2 ** 53 + 2]);
        writeFileSync(p, JSON.stringify(doc));
        break;
      }
      case 2:
        writeFileSync(join(dir, `state-${pick(['99999999999999999999', '-1', '00', '1e3', '9007199254740993'])}.json`), pick(['{}', 'x', '']));
        break;
      case 3:
        writeFileSync(join(dir, 'latest.json'), pick(['', '{"step": 99}', '{"step": -1}', 'null', '{"step": 1e400}']));
        break;
      case 4:
        for (const f of files.filter((n) => /^checkpoint-/.test(n))) writeFileSync(join(dir, f), Buffer.alloc(0));
        break;
      case 5:
        writeFileSync(pickFile(/^state-\d+\.safetensors$/), mutateBytes(readFileSync(pickFile(/^state-\d+\.safetensors$/)), 20));
        break;
      case 6:
        writeFileSync(pickFile(/^state-\d+\.json$/), mutateBytes(readFileSync(pickFile(/^state-\d+\.json$/)), 3));
        break;
      default:
        break; // intact: the resume must work
    }
    wholeBefore = readdirSync(dir).filter((f) => /^(checkpoint|state)-\d+\./.test(f)).sort();
  };
  const argsChanged = rand() < 0.25;
  return {
    category: 'resume',
    setup,
    args: ['train', '--model', F('micro.json'), '--data', 'synthetic:size=64', '--batch-size', argsChanged ? '4' : '8', '--samples', '32', '--schedule', 'const', '--checkpoint-every', '1', '--out', dir, '--resume'],
    check: (r) => {
      const after = new Set(readdirSync(dir));
      if (r.code === 0) {
        // Done: the run's last checkpoint must be there.
        return after.has('checkpoint-4.safetensors') && after.has('state-4.json') ? null : `resume ended 0 but checkpoint-4 is missing (files: ${[...after].join(', ')})`;
      }
      const lost = wholeBefore.filter((f) => !after.has(f));
      return lost.length ? `a failed resume deleted ${lost.join(', ')}` : null;
    },
  };
}

/** embed into a directory holding good outputs: a failure must leave them whole. */
function embedOverwriteCase(): Case {
  const out = F(`embout-${fileCounter++}`);
  let before: Buffer | undefined;
  const pixels = tmpFile('.npy', hostileNpy('pixels'));
  return {
    category: 'data-loss:embed',
    setup: () => {
      mkdirSync(out, { recursive: true });
      writeFileSync(join(out, 'image_features.npy'), npyBytes('<f4', [2, 16], f32(32, (i) => i)));
      before = readFileSync(join(out, 'image_features.npy'));
    },
    args: ['embed', '--model', F('micro.json'), '--weights', F('run'), '--pixels', pixels, '--out', out],
    check: (r) => {
      const now = readFileSync(join(out, 'image_features.npy'));
      if (r.code !== 0 && !now.equals(before!)) return 'a failed embed changed image_features.npy';
      if (now.length < 128) return 'image_features.npy is torn';
      const stray = readdirSync(out).filter((f) => f.includes('.tmp-') || f.endsWith('.partial'));
      return stray.length ? `left ${stray.join(', ')}` : null;
    },
  };
}

function makeShardsCase(): Case {
  const out = F(`msout-${fileCounter++}`);
  const csv = tmpFile('.csv', hostileCsv());
  return {
    category: 'data-loss:make-shards',
    args: ['data', 'make-shards', '--from', csv, '--out', out, '--shard-size', '2'],
    check: () => {
      if (!existsSync(out)) return null;
      const stray = readdirSync(out).filter((f) => f.endsWith('.partial'));
      return stray.length ? `left ${stray.join(', ')}` : null;
    },
  };
}

function nextCase(): Case {
  const only = args.only;
  const r = rand();
  const generators: [string, () => Case, number][] = [
    ['options', optionCase, 0.35],
    ['files', fileCase, 0.4],
    ['resume', resumeCase, 0.12],
    ['embed', embedOverwriteCase, 0.07],
    ['make-shards', makeShardsCase, 0.06],
  ];
  if (only) {
    const g = generators.find(([name]) => name === only);
    if (!g) throw new Error(`--only: one of ${generators.map(([n]) => n).join(', ')}`);
    return g[1]();
  }
  let acc = 0;
  for (const [, gen, p] of generators) {
    acc += p;
    if (r < acc) return gen();
  }
  return optionCase();
}

// ---------------------------------------------------------------------------------------------
async function main(): Promise<void> {
  makeFixtures();
  const counts: Record<string, number> = { cases: 0, ok: 0, clean_errors: 0, unclean_errors: 0, crashes_by_signal: 0, hangs: 0, long_running: 0, other_exits: 0, data_loss: 0 };
  const byCategory: Record<string, Record<string, number>> = {};
  const failures: { category: string; verdict: string; args: string; env?: Record<string, string>; input?: string; detail: string }[] = [];
  const key: Record<Verdict, string> = { ok: 'ok', clean_error: 'clean_errors', unclean_error: 'unclean_errors', crash: 'crashes_by_signal', hang: 'hangs', long_running: 'long_running', other_exit: 'other_exits' };
  const deadline = started + budgetS * 1000;
  const worker = async () => {
    while (performance.now() + timeoutS * 1000 < deadline && counts.cases < maxCases) {
      counts.cases++;
      const c = nextCase();
      const r = await runCase(c);
      const v = classify(r);
      counts[key[v]]++;
      const cat = (byCategory[c.category] ??= {});
      cat[v] = (cat[v] ?? 0) + 1;
      let lossDetail: string | null = null;
      try {
        lossDetail = c.check?.(r) ?? null;
      } catch (err) {
        lossDetail = `check failed: ${(err as Error).message}`;
      }
      if (lossDetail) {
        counts.data_loss++;
        cat.data_loss = (cat.data_loss ?? 0) + 1;
      }
      if ((v !== 'ok' && v !== 'clean_error') || lossDetail) {
        failures.push({
          category: c.category,
          verdict: lossDetail ? `data_loss (${v})` : v,
          args: c.args.map((a) => (a.length > 200 ? `${a.slice(0, 40)}…(${a.length})` : a)).join(' '),
          ...(c.env ? { env: c.env } : {}),
          ...(c.input ? { input: c.input.slice(0, 400) } : {}),
          detail: lossDetail ?? `${r.signal ?? r.code}${r.timedOut ? ` at the ${timeoutS} s limit after ${r.cpuAtTimeout.toFixed(1)} CPU s, ${r.cpuLast10s.toFixed(2)} in its last 10 s` : ''}: ${r.stderr.trim().split('\n').slice(-6).join(' | ').slice(0, 600)}`,
        });
      }
    }
  };
  await Promise.all(Array.from({ length: jobs }, worker));
  const line = {
    bench: 'fuzz_cli',
    seed: Number(args.seed ?? 1),
    seconds: +((performance.now() - started) / 1000).toFixed(1),
    timeout_s: timeoutS,
    runner: useDist ? 'dist' : 'tsx',
    load_avg_1m: +os.loadavg()[0].toFixed(2),
    ...counts,
    by_category: byCategory,
    failures: failures.slice(0, 30),
  };
  console.log(JSON.stringify(line));
  if (args.out) appendFileSync(args.out, JSON.stringify(line) + '\n');
  if (!args.keep) rmSync(work, { recursive: true, force: true });
  else console.error(`kept ${work}`);
}

await main();
