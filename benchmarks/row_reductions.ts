// The ops whose row reductions run in vector lanes (native/core/lane_fold.h): attention forward
// and backward, layernorm forward, gradNorm, at the shapes of a tiny b128 step and a ViT-B-32 b8
// encode, against numpy doing the same forward arithmetic (float32 matmuls and softmax; mean and
// variance; Σ g² in float64) in the same run. One JSON line per (op, shape, threads): median and
// best of our calls, numpy's, and ours/numpy. numpy's threads are its BLAS's (matmuls only).
//
//   node --import=tsx benchmarks/row_reductions.ts [--threads 1,2] [--repeat 100]
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { parseArgs } from 'node:util';

import { native } from '../lib/native.js';
import * as ops from '../lib/ops.js';
import { Tensor } from '../lib/tensor.js';

const { values } = parseArgs({ options: { threads: { type: 'string' }, repeat: { type: 'string' } } });
const repeat = Number(values.repeat ?? 100);
const threadList = (values.threads ?? '1,2').split(',').map(Number);
if (!(Number.isInteger(repeat) && repeat > 0)) throw new Error(`--repeat must be a positive integer, got ${values.repeat}`);
if (threadList.some((t) => !(Number.isInteger(t) && t > 0))) throw new Error(`--threads must list positive integers, got ${values.threads}`);

let seed = 1;
const rand = (shape: number[]) => Tensor.from(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => {
  seed = (seed * 1664525 + 1013904223) >>> 0;
  return seed / 2 ** 32 - 0.5;
}), shape);
const r3 = (x: number) => Number(x.toFixed(3));
function time(fn: () => void): { median_ms: number; best_ms: number } {
  for (let i = 0; i < Math.min(20, repeat); i++) fn();
  const ts: number[] = [];
  for (let i = 0; i < repeat; i++) {
    const t0 = performance.now();
    fn();
    ts.push(performance.now() - t0);
  }
  ts.sort((a, b) => a - b);
  return { median_ms: r3(ts[ts.length >> 1]), best_ms: r3(ts[0]) };
}

// numpy's medians for the same cases, one child per thread count (OMP/OpenBLAS threads set).
const PEER = String.raw`
import json, sys, time
import numpy as np
cases, repeat = json.loads(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(1)
def med(fn):
    for _ in range(min(20, repeat)): fn()
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter(); fn(); ts.append(time.perf_counter() - t0)
    ts.sort(); return ts[len(ts) // 2] * 1000
out = {}
for c in cases:
    if c["op"] == "attentionForward":
        B, S, W, H, causal = c["B"], c["S"], c["W"], c["H"], c["causal"]
        d = W // H
        qkv = rng.standard_normal((B, S, 3, H, d), dtype=np.float32)
        q, k, v = (qkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))
        mask = np.triu(np.full((S, S), -np.inf, np.float32), 1) if causal else None
        def f():
            s = q @ k.transpose(0, 1, 3, 2) / np.float32(np.sqrt(d))
            if mask is not None: s = s + mask
            s = np.exp(s - s.max(-1, keepdims=True)); s /= s.sum(-1, keepdims=True)
            return s @ v
    elif c["op"] == "layernormForward":
        x = rng.standard_normal((c["M"], c["W"]), dtype=np.float32); g = np.ones(c["W"], np.float32); b = np.zeros(c["W"], np.float32)
        def f():
            m = x.mean(-1, keepdims=True); var = x.var(-1, keepdims=True)
            return (x - m) / np.sqrt(var + 1e-5) * g + b
    elif c["op"] == "gradNorm":
        x = rng.standard_normal(c["n"], dtype=np.float32)
        def f():
            y = x.astype(np.float64); return np.sqrt(np.dot(y, y))
    else:
        continue
    out[c["key"]] = med(f)
print(json.dumps({"numpy": np.__version__, "medians_ms": out}))
`;

interface Case { key: string; op: string; [k: string]: unknown }
const cases: Case[] = [];
for (const [name, B, S, W, H, causal] of [['tiny text', 128, 32, 64, 2, true], ['tiny vision', 128, 17, 64, 2, false], ['ViT-B-32 text', 8, 77, 512, 8, true], ['ViT-B-32 vision', 8, 50, 768, 12, false]] as const) {
  cases.push({ key: `attentionForward ${name}`, op: 'attentionForward', B, S, W, H, causal });
  cases.push({ key: `attentionBackward ${name}`, op: 'attentionBackward', B, S, W, H, causal });
}
for (const [name, M, W] of [['tiny text', 4096, 64], ['tiny vision', 2176, 64], ['ViT-B-32 vision', 400, 768]] as const)
  cases.push({ key: `layernormForward ${name}`, op: 'layernormForward', M, W });
cases.push({ key: 'gradNorm tiny', op: 'gradNorm', n: 289537 });

const cpu = os.cpus()[0]?.model.trim() ?? 'unknown';
for (const threads of threadList) {
  let peer: { numpy?: string; medians_ms: Record<string, number> } = { medians_ms: {} };
  try {
    const env = { ...process.env, OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads), MKL_NUM_THREADS: String(threads) };
    peer = JSON.parse(execFileSync('python3', ['-c', PEER, JSON.stringify(cases), String(repeat)], { encoding: 'utf8', env }).trim().split('\n').pop()!);
  } catch (err) {
    console.error(`numpy peer unavailable (${(err as Error).message.split('\n')[0]}): ours only`);
  }
  native.setNumThreads(threads);
  for (const c of cases) {
    let t: { median_ms: number; best_ms: number };
    if (c.op.startsWith('attention')) {
      const { B, S, W, H, causal } = c as unknown as { B: number; S: number; W: number; H: number; causal: boolean };
      const qkv = rand([B, S, 3 * W]), out = Tensor.empty([B, S, W]), lse = Tensor.empty([B, H, S]);
      const dout = rand([B, S, W]), dqkv = Tensor.empty([B, S, 3 * W]);
      ops.attentionForward(qkv, out, lse, { heads: H, causal });
      t = c.op === 'attentionForward'
        ? time(() => ops.attentionForward(qkv, out, lse, { heads: H, causal }))
        : time(() => ops.attentionBackward(qkv, out, dout, lse, dqkv, { heads: H, causal }));
      for (const x of [qkv, out, lse, dout, dqkv]) x.dispose();
    } else if (c.op === 'layernormForward') {
      const { M, W } = c as unknown as { M: number; W: number };
      const x = rand([M, W]), g = rand([W]), b = rand([W]), y = Tensor.empty([M, W]), mean = Tensor.empty([M]), rstd = Tensor.empty([M]);
      t = time(() => ops.layernormForward(x, g, b, y, mean, rstd));
      for (const v of [x, g, b, y, mean, rstd]) v.dispose();
    } else {
      const g = rand([c.n as number]);
      t = time(() => native.gradNorm([g.handle]));
      g.dispose();
    }
    const np = peer.medians_ms[c.key];
    console.log(JSON.stringify({
      bench: 'row-reductions', case: c.key, threads, ...t,
      ...(np !== undefined ? { numpy_median_ms: r3(np), speedup_vs_numpy: r3(np / t.median_ms), numpy: peer.numpy } : {}),
      loadavg: os.loadavg().map((l) => r3(l)), cpu,
    }));
  }
}
