// The emulated CUDA device (native/cuda/emu), built by npm test's pretest
// (npm run build:cuda-emu): its own checks and planted bugs, the native CUDA tests run
// against it (they skip, exit 77, without a device), and `clipscale info` naming it.
// On a machine with a GPU the native tests run in benchmarks/gpu_check.sh instead.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { countCudaTests, emulated, noGpuReason } from './_helpers/cuda.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const emuDir = join(root, 'build-cuda-emu');
const built = existsSync(join(emuDir, 'libclipscale_cuda_emu.so'));
const why = !built
  ? `the emulated device is not built (npm run build:cuda-emu; npm test builds it first)`
  : !emulated
    ? `CUDA tests run on ${noGpuReason === null ? 'a real GPU' : 'no device'} here, not the emulated one`
    : null;
const counted = countCudaTests(test, 'cuda-emulator');
const emuTest = (title: string, fn: (t: import('ava').ExecutionContext) => void) =>
  why === null
    ? test.serial(title, (t) => {
        counted();
        fn(t);
      })
    : test.skip(`${title} (skipped: ${why})`, fn);

function runNative(name: string, args: string[] = [], env: Record<string, string> = {}) {
  const r = spawnSync(join(emuDir, name), args, { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 240_000 });
  return { status: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}`, error: r.error };
}

interface Check {
  check?: string;
  ok?: boolean;
  detail?: string;
  summary?: boolean;
  unexpected?: number;
}

emuTest('emulator: PTX emulations, runtime checks and every planted bug caught', (t) => {
  const r = runNative('emu_planted_bugs');
  const lines = r.out.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Check);
  const byName = new Map(lines.filter((l) => l.check).map((l) => [l.check!, l]));
  for (const l of lines) if (l.check) t.log(`${l.ok ? 'ok  ' : 'FAIL'} ${l.check}: ${l.detail}`);
  const expected = [
    'mma.m16n8k16 emulation equals the scalar product',
    ...['x1', 'x2', 'x4', 'x1.trans', 'x2.trans', 'x4.trans'].map((v) => `ldmatrix ${v} emulation follows the PTX layout`),
    'a shuffle waiting for a lane that returned is an error',
    '__syncthreads in a branch half a warp takes deadlocks and says so',
    'more than 48 KiB of dynamic shared memory needs cudaFuncSetAttribute',
    'bug-free GEMM is exact under the inorder schedule',
    'bug-free GEMM is exact under the reversed schedule',
    'bug-free GEMM is exact under the random:7 schedule',
    // The planted bugs: each must be caught.
    'planted: wrong fragment index is detected',
    'planted: missing cp.async wait is detected',
    'planted: missing __syncthreads is detected under the reversed schedule',
    'planted: missing __syncthreads is detected under the random:7 schedule',
    'planted: store past the end of a buffer is detected',
  ];
  for (const name of expected) t.true(byName.get(name)?.ok === true, `${name}: ${byName.get(name)?.detail ?? 'missing'}`);
  // The store past the end names the kernel, the thread and the allocation it overran.
  t.regex(byName.get('planted: store past the end of a buffer is detected')?.detail ?? '',
    /illegal address: kernel small_gemm, block \(0,0,0\), thread \(\d+,0,0\).*past the end of the 12288-byte device allocation/);
  t.is(r.status, 0, r.out);
});

emuTest('emulator: the native CUDA op tests pass on the emulated device', (t) => {
  const r = runNative('cuda_ops_test');
  t.log(r.out.split('\n').filter((l) => /FAIL|PASSED|FAILED/.test(l)).join('\n'));
  t.is(r.status, 0, r.out);
  t.regex(r.out, /PASSED: 0 failure\(s\)/);
});

emuTest('emulator: the native GEMM and attention tests pass on the emulated device (random schedule)', (t) => {
  // A seeded random order of threads between barriers: code that relies on an order
  // CUDA never promised fails here. The seed is logged so a failure reproduces.
  const seed = (Date.now() % 100000) + 1;
  const r = runNative('gemm_attention_test', ['--quick'], { CLIPSCALE_EMU_SCHEDULE: `random:${seed}` });
  t.log(`CLIPSCALE_EMU_SCHEDULE=random:${seed}`);
  t.log(r.out.split('\n').filter((l) => /^FAIL|checks|device:/.test(l)).join('\n'));
  t.regex(r.out, /device: NVIDIA H100 80GB HBM3 \(emulated/);
  t.regex(r.out, /\d+ checks, 0 failed/);
  t.is(r.status, 0, r.out.slice(-3000));
});

emuTest('emulator: the own GEMM kernel with 128×128 tiles (8 warps) passes the native GEMM tests too', (t) => {
  // Small problems pick 64×64 tiles; CLIPSCALE_GEMM_TILE=128 runs the large-tile instance on them.
  const r = runNative('gemm_attention_test', ['--quick', '--gemm-only'], { CLIPSCALE_GEMM_TILE: '128' });
  t.log(r.out.split('\n').filter((l) => /^FAIL|checks/.test(l)).join('\n'));
  t.regex(r.out, /\d+ checks, 0 failed/);
  t.is(r.status, 0, r.out.slice(-3000));
});

emuTest('emulator: clipscale info says the device is emulated and names the GEMM engine', (t) => {
  const r = spawnSync(process.execPath, ['--import=tsx', join(root, 'lib/cli/main.ts'), 'info'], {
    encoding: 'utf8',
    env: { ...process.env, CLIPSCALE_CUDA: 'emulate' },
    timeout: 120_000,
  });
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /CUDA backend: EMULATED device \(CLIPSCALE_CUDA=emulate/);
  t.regex(r.stdout, /CUDA GEMM: +own mma\.sync bf16 kernel \(cuBLASLt: cuBLASLt is absent on the emulated CUDA device\)/);
});

emuTest('emulator: when cuBLASLt has no algorithm, our own GEMM kernel runs and the backend info says so', (t) => {
  // CLIPSCALE_EMU_CUBLASLT=no-algorithm: a cuBLASLt stand-in that has no algorithm for any shape.
  const script = `
    const { native } = await import(${JSON.stringify(join(root, 'lib/native.ts'))});
    const { Tensor } = await import(${JSON.stringify(join(root, 'lib/tensor.ts'))});
    const ops = await import(${JSON.stringify(join(root, 'lib/ops.ts'))});
    const M = 37, K = 70, N = 45;
    const x = Tensor.from(Float32Array.from({ length: M * K }, (_, i) => Math.sin(i)), [M, K]);
    const w = Tensor.from(Float32Array.from({ length: N * K }, (_, i) => Math.cos(i) * 0.1), [N, K]);
    const b = Tensor.from(Float32Array.from({ length: N }, (_, i) => i / N), [N]);
    const y = Tensor.empty([M, N]);
    native.setBf16Emulation(true);
    ops.linearForward(x, w, b, y);
    const yg = Tensor.empty([M, N], 'f32', 'cuda');
    ops.linearForward(x.to('cuda'), w.to('cuda'), b.to('cuda'), yg);
    const p = y.toFloat32Array(), q = yg.to('cpu').toFloat32Array();
    let num = 0, den = 0;
    for (let i = 0; i < p.length; i++) { num += (p[i] - q[i]) ** 2; den += p[i] ** 2; }
    console.log(JSON.stringify({ engine: native.cudaGemmBackend(), info: native.cudaGemmBackendInfo(), relErr: Math.sqrt(num / den) }));`;
  const r = spawnSync(process.execPath, ['--import=tsx', '--input-type=module', '-e', script], {
    encoding: 'utf8',
    env: { ...process.env, CLIPSCALE_CUDA: 'emulate', CLIPSCALE_EMU_CUBLASLT: 'no-algorithm' },
    timeout: 120_000,
  });
  t.is(r.status, 0, r.stderr);
  const got = JSON.parse(r.stdout.trim().split('\n').pop()!) as { engine: string; info: string; relErr: number };
  t.log(got.info);
  t.is(got.engine, 'cublaslt');
  t.regex(got.info, /our own kernel ran 1 GEMM\(s\) cuBLASLt had no algorithm for \(last: .*M=37 N=45 K=70/);
  t.true(got.relErr <= 1e-2, `relErr ${got.relErr}`);
});

test('emulator: the emulated device is only loaded when asked for', (t) => {
  // Without CLIPSCALE_CUDA=emulate the addon looks for the GPU build only.
  const r = spawnSync(process.execPath, ['--import=tsx', join(root, 'lib/cli/main.ts'), 'info', '--json'], {
    encoding: 'utf8',
    env: { ...process.env, CLIPSCALE_CUDA: 'gpu', CLIPSCALE_CUDA_LIB: '' },
    timeout: 120_000,
  });
  t.is(r.status, 0, r.stderr);
  const info = JSON.parse(r.stdout) as { gpu: { cudaBackend: { emulated: boolean; path?: string; searched: string } } };
  t.false(info.gpu.cudaBackend.emulated);
  t.notRegex(info.gpu.cudaBackend.searched, /libclipscale_cuda_emu|build-cuda-emu/);
});
