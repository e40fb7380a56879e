// CPU SGEMM against numpy (OpenBLAS or whatever BLAS numpy was built with) on the same
// machine, in the same run: 1024³ and CLIP-sized linear layers. Prints one JSON line per
// shape with both GFLOP/s and ours/numpy.
//
//   node --import=tsx benchmarks/gemm.ts [--rounds 3] [--repeat 10] [--kernel avx2] [--save]
//
// Each round runs numpy (a child python3, median of `repeat` timed runs after warm-up)
// and then ours (the same), alternating, so both see the same machine load; the best
// round of each side is reported (other processes only ever slow a round down), with
// every round's figure kept. Both use the same number of threads. --save also writes the
// lines to benchmarks/results/cpu-gemm-<cpu>-<cores>c[-<kernel>].jsonl (the kernel is
// named when --kernel forces a narrower one, e.g. to see what AVX2-only CPUs get).
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { benchGemm } from '../lib/cli/commands/bench.js';
import { native } from '../lib/native.js';

interface Shape {
  m: number;
  n: number;
  k: number;
  transB: boolean;
  what: string;
}

const shapes: Shape[] = [
  { m: 1024, n: 1024, k: 1024, transB: false, what: 'square 1024' },
  { m: 4096, n: 256, k: 256, transB: false, what: 'small CLIP (width 256) attention out-proj, 4096 tokens' },
  { m: 4096, n: 1024, k: 256, transB: false, what: 'small CLIP (width 256) MLP up-proj, 4096 tokens' },
  { m: 4096, n: 256, k: 1024, transB: false, what: 'small CLIP (width 256) MLP down-proj, 4096 tokens' },
  { m: 4096, n: 768, k: 256, transB: true, what: 'small CLIP qkv in-proj, PyTorch weight layout [out, in]' },
  { m: 1600, n: 2304, k: 768, transB: true, what: 'ViT-B/32 qkv in-proj, batch 32 (50 tokens each)' },
  { m: 1600, n: 768, k: 3072, transB: true, what: 'ViT-B/32 MLP down-proj, batch 32' },
];

// numpy side: same shapes, float32, same layout (b stored [N, K] and used as b.T when transB).
const numpyScript = `
import json, sys, time
import numpy as np
m, n, k, trans_b, repeat, warmup = json.loads(sys.argv[1])
rng = np.random.default_rng(0)
a = rng.uniform(-1, 1, (m, k)).astype(np.float32)
b = rng.uniform(-1, 1, (n, k) if trans_b else (k, n)).astype(np.float32)
bb = b.T if trans_b else b
c = np.empty((m, n), np.float32)
for _ in range(warmup): np.matmul(a, bb, out=c)
ts = []
for _ in range(repeat):
    t0 = time.perf_counter(); np.matmul(a, bb, out=c); ts.append(time.perf_counter() - t0)
ts.sort()
r = len(ts)
med = ts[r // 2] if r % 2 else (ts[r // 2 - 1] + ts[r // 2]) / 2
blas = 'unknown'
try:
    cfg = np.show_config(mode='dicts')
    d = cfg['Build Dependencies']['blas']
    blas = f"{d.get('name', '?')} {d.get('version', '')}".strip()
except Exception:
    pass
print(json.dumps({'ms': med * 1e3, 'numpy': np.__version__, 'blas': blas}))
`;

function numpyGemm(s: Shape, repeat: number, warmup: number, threads: number): { ms: number; numpy: string; blas: string } {
  const threadEnv = String(threads);
  const out = execFileSync('python3', ['-c', numpyScript, JSON.stringify([s.m, s.n, s.k, s.transB ? 1 : 0, repeat, warmup])], {
    encoding: 'utf8',
    env: { ...process.env, OPENBLAS_NUM_THREADS: threadEnv, OMP_NUM_THREADS: threadEnv, MKL_NUM_THREADS: threadEnv },
  });
  return JSON.parse(out.trim()) as { ms: number; numpy: string; blas: string };
}

const gflops = (s: Shape, ms: number) => (2 * s.m * s.n * s.k) / (ms * 1e6);
const round2 = (x: number) => Number(x.toFixed(2));

function main() {
  const { values } = parseArgs({
    options: { rounds: { type: 'string' }, repeat: { type: 'string' }, kernel: { type: 'string' }, save: { type: 'boolean' } },
  });
  if (values.kernel) native.setGemmKernel(values.kernel as 'avx512' | 'avx2' | 'portable' | 'best');
  const rounds = Number(values.rounds ?? 3);
  const repeat = Number(values.repeat ?? 10);
  const warmup = 3;
  const threads = native.numThreads();
  const cpu = os.cpus()[0]?.model.trim() ?? 'unknown';
  const cores = os.availableParallelism();
  const lines: string[] = [];

  for (const s of shapes) {
    const ours: number[] = [];
    const theirs: number[] = [];
    let numpyInfo = { numpy: '', blas: '' };
    let kernel = '';
    for (let r = 0; r < rounds; r++) {
      const np = numpyGemm(s, repeat, warmup, threads);
      numpyInfo = { numpy: np.numpy, blas: np.blas };
      theirs.push(gflops(s, np.ms));
      const mine = benchGemm({ m: s.m, n: s.n, k: s.k, transB: s.transB, repeat, warmup });
      kernel = mine.kernel;
      ours.push(gflops(s, mine.ms));
    }
    const best = (xs: number[]) => Math.max(...xs);
    const line = JSON.stringify({
      bench: 'cpu-gemm',
      m: s.m,
      n: s.n,
      k: s.k,
      transB: s.transB,
      what: s.what,
      gflops: round2(best(ours)),
      numpyGflops: round2(best(theirs)),
      ratio: Number((best(ours) / best(theirs)).toFixed(3)),
      roundsGflops: ours.map(round2),
      roundsNumpyGflops: theirs.map(round2),
      kernel,
      threads,
      cpu,
      cores,
      numpy: numpyInfo.numpy,
      blas: numpyInfo.blas,
      loadavg: os.loadavg().map(round2),
      date: new Date().toISOString(),
    });
    console.log(line);
    lines.push(line);
  }

  if (values.save) {
    const slug = `${cpu}-${cores}c${values.kernel ? `-${values.kernel}` : ''}`.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
    const dir = join(dirname(fileURLToPath(import.meta.url)), 'results');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `cpu-gemm-${slug}.jsonl`);
    writeFileSync(file, lines.join('\n') + '\n');
    console.error(`saved ${file}`);
  }
}

main();
