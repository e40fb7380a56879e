// Whether CUDA tests can run here, and on what: a real GPU (the CUDA backend library,
// npm run build:cuda, with a usable device), or else the emulated device (the same kernels
// compiled as host C++, build-cuda-emu/libclipscale_cuda_emu.so, built by npm test's
// pretest), which this helper asks for explicitly with CLIPSCALE_CUDA=emulate when the
// machine has no GPU. CLIPSCALE_CUDA=gpu insists on the real one (the GPU check sets it).
import { native } from '../../lib/native.js';

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
