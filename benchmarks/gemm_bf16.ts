// The CPU's bf16 GEMM (bf16 operands, fp32 accumulation: the bf16 mode's linear layers) against
// PyTorch's bf16 matmul on the same cores, in the same run, at the three products of a training
// step's linear layers (forward x·Wᵀ, input gradient dY·W, weight gradient dYᵀ·X), with the
// fp32 GEMM and the emulation (operands rounded around the fp32 GEMM: CPUs without AVX-512 BF16)
// beside them. One JSON line per shape: GFLOP/s of each, best of the rounds.
//
//   node --import=tsx benchmarks/gemm_bf16.ts [--rounds 3] [--repeat 10] [--save]
//
// PyTorch (a child python3 with torch; left out, saying so, where torch is not installed) is
// timed two ways: torch.matmul on bf16 tensors made beforehand (no conversion in the timing) and
// under torch.autocast('cpu', bfloat16) from fp32 tensors (OpenCLIP's amp_bf16: the conversion in
// the timing, as ours). Rounds alternate the sides. --save writes
// benchmarks/results/cpu-gemm-bf16-<cpu>-<cores>c.jsonl.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { native } from '../lib/native.js';
import { matmul, matmulBf16 } from '../lib/ops.js';
import { Tensor } from '../lib/tensor.js';

interface Shape {
  m: number;
  n: number;
  k: number;
  transA: boolean;
  transB: boolean;
  what: string;
}

// ViT-S-32's text tower at batch 32 (2,464 tokens, width 384, MLP 1,536) and ViT-B-32's image
// tower at batch 32 (1,600 tokens, width 768, MLP 3,072): each layer's three products.
const shapes: Shape[] = [];
for (const [tokens, width, mlp, model] of [
  [2464, 384, 1536, 'ViT-S-32 text b32'],
  [1600, 768, 3072, 'ViT-B-32 image b32'],
] as const) {
  shapes.push({ m: tokens, n: mlp, k: width, transA: false, transB: true, what: `${model} c_fc forward x·Wᵀ` });
  shapes.push({ m: tokens, n: width, k: mlp, transA: false, transB: false, what: `${model} c_fc input gradient dY·W` });
  shapes.push({ m: mlp, n: width, k: tokens, transA: true, transB: false, what: `${model} c_fc weight gradient dYᵀ·X` });
}

const torchScript = `
import json, sys, time
try:
    import torch
except ImportError:
    print(json.dumps({'missing': 'torch is not installed'})); sys.exit(0)
m, n, k, ta, tb, repeat, warmup, threads = json.loads(sys.argv[1])
torch.set_num_threads(threads)
g = torch.Generator().manual_seed(0)
a = torch.randn((k, m) if ta else (m, k), generator=g)
b = torch.randn((n, k) if tb else (k, n), generator=g)
op = lambda x, y: (x.t() if ta else x) @ (y.t() if tb else y)
a16, b16 = a.bfloat16(), b.bfloat16()
def timed(f):
    for _ in range(warmup): f()
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter(); f(); ts.append(time.perf_counter() - t0)
    ts.sort(); return ts[len(ts) // 2] * 1e3
def autocast():
    with torch.autocast('cpu', dtype=torch.bfloat16):
        return op(a, b)
print(json.dumps({'bf16_ms': timed(lambda: op(a16, b16)), 'autocast_ms': timed(autocast), 'fp32_ms': timed(lambda: op(a, b)),
                  'torch': torch.__version__,
                  'mkldnn_bf16': bool(getattr(torch.ops.mkldnn, '_is_mkldnn_bf16_supported', lambda: False)())}))
`;

function torchGemm(s: Shape, repeat: number, warmup: number, threads: number): Record<string, unknown> {
  const out = execFileSync('python3', ['-c', torchScript, JSON.stringify([s.m, s.n, s.k, s.transA, s.transB, repeat, warmup, threads])], {
    encoding: 'utf8',
    env: { ...process.env, OMP_NUM_THREADS: String(threads), MKL_NUM_THREADS: String(threads) },
  });
  return JSON.parse(out.trim().split('\n').pop()!) as Record<string, unknown>;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[(s.length >> 1) - 1] + s[s.length >> 1]) / 2;
}

/** Our three ways at one shape: ms (median of `repeat` after `warmup`) each. */
function ours(s: Shape, repeat: number, warmup: number) {
  const fill = (n: number, seed: number) => {
    const out = new Float32Array(n);
    let x = seed >>> 0;
    for (let i = 0; i < n; i++) out[i] = ((x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 31) - 1;
    return out;
  };
  using a = Tensor.from(fill(s.m * s.k, 1), s.transA ? [s.k, s.m] : [s.m, s.k]);
  using b = Tensor.from(fill(s.k * s.n, 2), s.transB ? [s.n, s.k] : [s.k, s.n]);
  using c = Tensor.zeros([s.m, s.n]);
  const opts = { transA: s.transA, transB: s.transB };
  const timed = (f: () => void) => {
    for (let i = 0; i < warmup; i++) f();
    const ts: number[] = [];
    for (let i = 0; i < repeat; i++) {
      const t0 = performance.now();
      f();
      ts.push(performance.now() - t0);
    }
    return median(ts);
  };
  const wasEmulating = native.bf16Emulation();
  const wasNative = native.cpuBf16Support().speedMode;
  try {
    const fp32 = timed(() => matmul(a, b, c, opts));
    const kernel = native.cpuBf16Support().avx512bf16 ? timed(() => matmulBf16(a, b, c, { ...opts, kernel: 'avx512bf16' })) : null;
    // The emulation: the bf16 mode where the kernel is off (operands rounded, fp32 GEMM, output rounded).
    native.setBf16Emulation(true);
    if (wasNative) native.setCpuBf16Native(false);
    const emulated = timed(() => matmul(a, b, c, opts));
    return { fp32, kernel, emulated };
  } finally {
    if (wasNative) native.setCpuBf16Native(true);
    native.setBf16Emulation(wasEmulating);
  }
}

const gflops = (s: Shape, ms: number | null) => (ms === null ? null : Number(((2 * s.m * s.n * s.k) / (ms * 1e6)).toFixed(1)));

function main() {
  const { values } = parseArgs({ options: { rounds: { type: 'string' }, repeat: { type: 'string' }, save: { type: 'boolean' } } });
  const rounds = Number(values.rounds ?? 3), repeat = Number(values.repeat ?? 10), warmup = 3;
  const threads = native.numThreads();
  const cpu = os.cpus()[0]?.model.trim() ?? 'unknown';
  const lines: string[] = [];
  for (const s of shapes) {
    const mine: ReturnType<typeof ours>[] = [];
    const theirs: Record<string, unknown>[] = [];
    for (let r = 0; r < rounds; r++) {
      const runOurs = () => mine.push(ours(s, repeat, warmup));
      const runTorch = () => theirs.push(torchGemm(s, repeat, warmup, threads));
      if (r % 2 === 0) (runOurs(), runTorch());
      else (runTorch(), runOurs());
    }
    const best = (xs: (number | null)[]) => (xs.some((x) => x === null) ? null : Math.min(...(xs as number[])));
    const line: Record<string, unknown> = {
      bench: 'cpu-gemm-bf16', what: s.what, m: s.m, n: s.n, k: s.k, transA: s.transA, transB: s.transB,
      gflops: {
        clipscale_bf16_kernel: gflops(s, best(mine.map((x) => x.kernel))),
        clipscale_bf16_emulated: gflops(s, best(mine.map((x) => x.emulated))),
        clipscale_fp32: gflops(s, best(mine.map((x) => x.fp32))),
      },
    };
    if (theirs[0]?.missing) line.torch = theirs[0].missing;
    else {
      const g = line.gflops as Record<string, number | null>;
      g.torch_bf16 = gflops(s, best(theirs.map((x) => x.bf16_ms as number)));
      g.torch_autocast_bf16 = gflops(s, best(theirs.map((x) => x.autocast_ms as number)));
      g.torch_fp32 = gflops(s, best(theirs.map((x) => x.fp32_ms as number)));
      if (g.clipscale_bf16_kernel !== null && g.torch_bf16) {
        line.kernel_vs_torch_bf16 = Number((g.clipscale_bf16_kernel / g.torch_bf16).toFixed(2));
        line.kernel_vs_torch_autocast = Number((g.clipscale_bf16_kernel / g.torch_autocast_bf16!).toFixed(2));
      }
      line.torch = { version: theirs[0].torch, mkldnn_bf16: theirs[0].mkldnn_bf16 };
    }
    if (line.gflops && (line.gflops as Record<string, number | null>).clipscale_bf16_kernel === null)
      line.note = 'this CPU has no AVX-512 BF16: the kernel was not run';
    Object.assign(line, { threads, rounds, repeat, cpu, cores: os.availableParallelism(), loadavg: os.loadavg().map((x) => Number(x.toFixed(2))), date: new Date().toISOString() });
    const text = JSON.stringify(line);
    console.log(text);
    lines.push(text);
  }
  if (values.save) {
    const slug = `${cpu}-${os.availableParallelism()}c`.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
    const file = join(dirname(fileURLToPath(import.meta.url)), 'results', `cpu-gemm-bf16-${slug}.jsonl`);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, lines.join('\n') + '\n');
    console.error(`wrote ${file}`);
  }
}

main();
