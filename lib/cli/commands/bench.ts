// `clipscale bench gemm`: times one matrix product and prints one JSON line.
import { native } from '../../native.js';
import { matmul } from '../../ops.js';
import { Tensor } from '../../tensor.js';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { memoryLimitBytes } from '../../nn/memory_estimate.js';
import { intOption, parse } from '../args.js';

const usage = `usage: clipscale bench gemm --m M --n N --k K [options]

Times C[M×N] = A[M×K]·B[K×N] and prints one JSON line:
  {"op":"gemm","device":"cpu","dtype":"f32","m":…,"n":…,"k":…,"ms":…,"gflops":…,"kernel":…,"threads":…}
ms is the median of the timed repeats, after warm-up runs; gflops = 2·M·N·K / time.

options:
  --m, --n, --k N         the product's dimensions (required)
  --device cpu|cuda       default cpu (the CUDA backend is not in this build)
  --dtype f32|bf16        bf16 on the CPU: operands rounded to bf16, fp32 accumulation, output rounded
                          to bf16 (as the GPU computes); on the AVX-512 BF16 kernel where the CPU has it
  --repeat R              timed runs (default 10); warm-up runs: 3
  --threads T             CPU threads (default: CLIPSCALE_NUM_THREADS or one per core)
  --kernel NAME           CPU micro-kernel: avx512, avx2, portable or best (default: best)
  --trans-a, --trans-b    use Aᵀ (A stored K×M) / Bᵀ (B stored N×K, like a linear weight)`;

export interface GemmBenchOptions {
  m: number;
  n: number;
  k: number;
  dtype?: 'f32' | 'bf16';
  repeat?: number;
  warmup?: number;
  transA?: boolean;
  transB?: boolean;
}

export interface GemmBenchResult {
  op: 'gemm';
  device: 'cpu';
  dtype: 'f32' | 'bf16';
  m: number;
  n: number;
  k: number;
  ms: number;
  gflops: number;
  kernel: string;
  threads: number;
  transA: boolean;
  transB: boolean;
  repeat: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function uniform(n: number, seed: number): Float32Array {
  // A cheap LCG: the values only need to be ordinary floats in [-1, 1).
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2147483648 - 1;
  }
  return out;
}

/** Times one CPU GEMM with the current thread count and kernel. */
export function benchGemm(o: GemmBenchOptions): GemmBenchResult {
  const { m, n, k } = o;
  const dtype = o.dtype ?? 'f32';
  const repeat = o.repeat ?? 10;
  const warmup = o.warmup ?? 3;
  const transA = o.transA ?? false;
  const transB = o.transB ?? false;
  const a = Tensor.from(uniform(m * k, 1), transA ? [k, m] : [m, k]);
  const b = Tensor.from(uniform(k * n, 2), transB ? [n, k] : [k, n]);
  const c = Tensor.empty([m, n]);
  const wasEmulating = native.bf16Emulation();
  native.setBf16Emulation(dtype === 'bf16');
  try {
    const times: number[] = [];
    for (let r = 0; r < warmup + repeat; r++) {
      const t0 = performance.now();
      matmul(a, b, c, { transA, transB });
      const dt = performance.now() - t0;
      if (r >= warmup) times.push(dt);
    }
    const ms = median(times);
    return {
      op: 'gemm',
      device: 'cpu',
      dtype,
      m,
      n,
      k,
      ms: Number(ms.toFixed(4)),
      gflops: Number(((2 * m * n * k) / (ms * 1e6)).toFixed(2)),
      // bf16: the AVX-512 BF16 kernel where the CPU has it, else the fp32 kernel over bf16-rounded operands.
      kernel: dtype !== 'bf16' ? native.gemmKernel() : native.cpuBf16Support().speedMode ? 'avx512bf16' : `${native.gemmKernel()} (bf16 emulated)`,
      threads: native.numThreads(),
      transA,
      transB,
      repeat,
    };
  } finally {
    native.setBf16Emulation(wasEmulating);
    a.dispose();
    b.dispose();
    c.dispose();
  }
}

async function gemm(argv: string[]): Promise<number> {
  const { values } = parse('bench gemm', argv, {
    m: { type: 'string' },
    n: { type: 'string' },
    k: { type: 'string' },
    device: { type: 'string' },
    dtype: { type: 'string' },
    repeat: { type: 'string' },
    threads: { type: 'string' },
    kernel: { type: 'string' },
    'trans-a': { type: 'boolean' },
    'trans-b': { type: 'boolean' },
  });
  const cmd = 'bench gemm';
  const dims = (['m', 'n', 'k'] as const).map((d) => {
    const v = intOption(cmd, d, values[d], undefined, { min: 1, max: 1 << 16 });
    if (v < 1) throw new UsageError(`clipscale ${cmd}: --${d} must be at least 1, got ${v}`);
    return v;
  });
  {
    // A, B and C in fp32 (and a copy of each for the bf16 path): refused before allocating when they cannot fit.
    const [m, n, k] = dims;
    const bytes = 2 * 4 * (m * k + k * n + m * n);
    if (bytes > memoryLimitBytes()) throw new UsageError(`clipscale ${cmd}: ${m}×${k} · ${k}×${n} needs about ${(bytes / 2 ** 30).toFixed(1)} GiB, more than this machine's memory`);
  }
  const device = values.device ?? 'cpu';
  if (device.startsWith('cuda')) {
    throw new Error(
      `bench gemm: --device ${device} needs the CUDA backend, which is not part of this build of clipscale ` +
        `(see 'clipscale info'); use --device cpu`,
    );
  }
  if (device !== 'cpu') throw new UsageError(`clipscale ${cmd}: --device must be cpu or cuda, got '${device}'`);
  const dtype = values.dtype ?? 'f32';
  if (dtype !== 'f32' && dtype !== 'bf16') throw new UsageError(`clipscale ${cmd}: --dtype must be f32 or bf16, got '${dtype}'`);
  const repeat = intOption(cmd, 'repeat', values.repeat, 10, { min: 1, max: 1_000_000 });
  if (repeat < 1) throw new UsageError(`clipscale ${cmd}: --repeat must be at least 1, got ${repeat}`);
  if (values.threads !== undefined) {
    const t = intOption(cmd, 'threads', values.threads, undefined, { min: 1, max: 1024 });
    if (t < 1) throw new UsageError(`clipscale ${cmd}: --threads must be at least 1, got ${t}`);
    native.setNumThreads(t);
  }
  if (values.kernel !== undefined) {
    const names = ['avx512', 'avx2', 'portable', 'best'] as const;
    const kernel = names.find((x) => x === values.kernel);
    if (!kernel) throw new UsageError(`clipscale ${cmd}: --kernel must be one of ${names.join(', ')}, got '${values.kernel}'`);
    native.setGemmKernel(kernel);
  }
  const [m, n, k] = dims;
  const result = benchGemm({ m, n, k, dtype, repeat, transA: values['trans-a'], transB: values['trans-b'] });
  console.log(JSON.stringify(result));
  return 0;
}

export const command: Command = {
  name: 'bench',
  summary: 'micro-benchmarks of native kernels (gemm), as JSON lines',
  usage,
  async run(argv) {
    const [what, ...rest] = argv;
    if (what === 'gemm') return gemm(rest);
    throw new UsageError(what ? `clipscale bench: unknown benchmark '${what}'; available: gemm` : usage);
  },
};
