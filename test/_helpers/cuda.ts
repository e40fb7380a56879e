// Whether CUDA tests can run here, and on what: a real GPU (the CUDA backend library,
// npm run build:cuda, with a usable device), or else the emulated device (the same kernels
// compiled as host C++, build-cuda-emu/libclipscale_cuda_emu.so, built by npm test's
// pretest), which this helper asks for explicitly with CLIPSCALE_CUDA=emulate when the
// machine has no GPU. CLIPSCALE_CUDA=gpu insists on the real one (the GPU check sets it).
import { native } from '../../lib/native.js';
import type { Trainer } from '../../lib/train/trainer.js';

export interface CudaBackendStatus {
  loaded: boolean;
  emulated: boolean;
  path?: string;
  reason?: string;
  searched: string;
  devicesUsable: boolean;
  deviceCount: number;
  deviceError?: string;
  verifiedOnGpu: boolean;
  note?: string;
}

interface Probe {
  driver: { found: boolean; devices: unknown[] };
}

// Decided before anything loads the backend (it is loaded once per process).
if (process.env.CLIPSCALE_CUDA === undefined) {
  const probe = (native.probeGpu as () => Probe)();
  if (!probe.driver.found || probe.driver.devices.length === 0) process.env.CLIPSCALE_CUDA = 'emulate';
}

export const cudaStatus = (native.cudaBackendStatus as () => CudaBackendStatus)();

/** True when the CUDA tests run on the emulated device (no GPU here). */
export const emulated = cudaStatus.loaded && cudaStatus.emulated;

/** null when a CUDA device (real or emulated) can be used, else the reason (for t.log and skipped tests' titles). */
export const noGpuReason: string | null = !cudaStatus.loaded
  ? `CUDA backend not loaded: ${cudaStatus.reason}`
  : !cudaStatus.devicesUsable
    ? `CUDA backend loaded from ${cudaStatus.path} but no GPU is usable: ${cudaStatus.deviceError}`
    : null;

/**
 * Two runs' values agree as the device allows. The emulated device is deterministic, so they
 * must be equal bit for bit there. A GPU's float atomics (attention's dQ, embedding and bias
 * gradients) make even two identical runs differ in the last bits: there the values must agree
 * to 1e-3 of their scale (NaN with NaN).
 */
export function sameOnDevice(
  t: { is: (a: unknown, b: unknown, m?: string) => void; true: (v: boolean, m?: string) => void; fail: (m?: string) => void },
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  what: string,
): void {
  t.is(a.length, b.length, what);
  if (emulated) {
    const first = Array.prototype.findIndex.call(a, (x: number, i: number) => !Object.is(x, b[i]));
    t.is(first, -1, `${what}: first difference at ${first}: ${a[first]} vs ${b[first]}`);
    return;
  }
  let scale = 0;
  for (let i = 0; i < b.length; i++) if (Number.isFinite(b[i])) scale = Math.max(scale, Math.abs(b[i]));
  for (let i = 0; i < a.length; i++) {
    if (Number.isNaN(b[i])) t.true(Number.isNaN(a[i]), `${what}[${i}]: NaN expected`);
    else if (Math.abs(a[i] - b[i]) > 1e-3 * Math.max(scale, 1e-30)) {
      t.fail(`${what}[${i}]: ${a[i]} vs ${b[i]}`);
      return;
    }
  }
}

/** Where the CUDA tests run, for logs: "emulated device" or "GPU". */
export const cudaDeviceKind = emulated ? 'emulated device (CPU)' : 'GPU';

/**
 * Counts the CUDA tests of a file that ran (not skipped) and prints the count when the
 * file ends: `CUDA tests run: <n> of <file> on the <device>`.
 */
export function countCudaTests(test: { after: { always: (fn: () => void) => void } }, file: string) {
  let ran = 0;
  test.after.always(() => {
    console.log(`CUDA tests run: ${ran} in ${file} on the ${noGpuReason === null ? cudaDeviceKind : `(none: ${noGpuReason})`}`);
  });
  return () => {
    ran++;
  };
}

/** A trainer's parameters and AdamW moments read back to the host, in one list (for bitwise comparisons of two runs). */
export function trainingState(trainer: Pick<Trainer, 'model' | 'optimizer'>): Float32Array[] {
  return [
    ...trainer.model.parameters().map((p) => p.data.hostFloat32()),
    ...trainer.optimizer.m.map((x) => x.hostFloat32()),
    ...trainer.optimizer.v.map((x) => x.hostFloat32()),
  ];
}

