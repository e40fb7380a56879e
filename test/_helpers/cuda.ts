// Whether CUDA tests can run here, and why not: the CUDA backend library must be built
// (npm run build:cuda) and find a usable GPU.
import { native } from '../../lib/native.js';

export interface CudaBackendStatus {
  loaded: boolean;
  path?: string;
  reason?: string;
  searched: string;
  devicesUsable: boolean;
  deviceCount: number;
  deviceError?: string;
  verifiedOnGpu: boolean;
  note?: string;
}

export const cudaStatus = (native.cudaBackendStatus as () => CudaBackendStatus)();

/** null when a GPU can be used, else the reason (for t.log and skipped tests' titles). */
export const noGpuReason: string | null = !cudaStatus.loaded
  ? `CUDA backend not loaded: ${cudaStatus.reason}`
  : !cudaStatus.devicesUsable
    ? `CUDA backend loaded from ${cudaStatus.path} but no GPU is usable: ${cudaStatus.deviceError}`
    : null;
