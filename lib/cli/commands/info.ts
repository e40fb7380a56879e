import os from 'node:os';

import { native } from '../../native.js';
import { version } from '../../version.js';
import type { Command } from '../command.js';
import { parse } from '../args.js';

interface CudaBackendStatus {
  loaded: boolean;
  path?: string;
  reason?: string;
  searched: string;
  abiVersion: number;
  devicesUsable: boolean;
  deviceCount: number;
  deviceError?: string;
  verifiedOnGpu: boolean;
  note?: string;
}

interface Probe {
  driver: { found: boolean; version: number; error?: string; devices: { index: number; name: string; capability: string; memoryGiB: number }[] };
  cublasLt: { found: boolean; path?: string; version?: number; error?: string };
  nccl: { found: boolean; path?: string; version?: number; error?: string };
}

/** Everything `clipscale info` reports, as an object. */
export function collectInfo() {
  const probe = (native.probeGpu as () => Probe)();
  return {
    clipscale: version,
    node: process.version,
    napi: process.versions.napi,
    platform: `${process.platform}-${process.arch}`,
    cpu: { model: os.cpus()[0]?.model ?? 'unknown', cores: os.availableParallelism(), threads: native.numThreads() },
    build: native.buildInfo(),
    gpu: {
      // build-cuda/libclipscale_cuda.so, loaded at run time (npm run build:cuda).
      cudaBackend: (native.cudaBackendStatus as () => CudaBackendStatus)(),
      driver: probe.driver,
      cublasLt: probe.cublasLt,
      nccl: probe.nccl,
    },
  };
}

/** "not found: WHY", without saying "not found" twice when WHY starts with it. */
export function notFound(error: string | undefined): string {
  const why = (error ?? '').trim();
  if (why === '') return 'not found';
  return /^not found\b/i.test(why) ? why : `not found: ${why}`;
}

function cudaBackendLine(s: CudaBackendStatus): string {
  if (!s.loaded) return `not loaded: ${s.reason}`;
  const where = `loaded from ${s.path}`;
  const devices = s.devicesUsable ? `${s.deviceCount} GPU${s.deviceCount === 1 ? '' : 's'} usable` : `no GPU usable: ${s.deviceError}`;
  const verified = s.verifiedOnGpu ? '' : ` (${s.note ?? 'not yet verified on a GPU'})`;
  return `${where}; ${devices}${verified}`;
}

export const command: Command = {
  name: 'info',
  summary: 'versions, CPU threads and what GPU support was found',
  usage: 'usage: clipscale info [--json]\n\nPrints versions, CPU threads and the GPU support found (CUDA backend, driver, devices, cuBLASLt, NCCL), with the reason when something is missing.',
  async run(argv) {
    const { values } = parse('info', argv, { json: { type: 'boolean' } });
    const info = collectInfo();
    if (values.json) {
      console.log(JSON.stringify(info));
      return 0;
    }
    const g = info.gpu;
    const lines = [
      `clipscale ${info.clipscale}  (Node ${info.node}, Node-API ${info.napi}, ${info.platform})`,
      `CPU:        ${info.cpu.model}, ${info.cpu.cores} cores, ${info.cpu.threads} compute threads (CLIPSCALE_NUM_THREADS)`,
      `CPU GEMM:   ${info.build.gemmKernel ?? 'portable'}${info.build.cpuFeatures ? ` (${info.build.cpuFeatures})` : ''}`,
      `CUDA backend: ${cudaBackendLine(g.cudaBackend)}`,
      `Driver:     ${g.driver.found ? `CUDA ${Math.floor(g.driver.version / 1000)}.${(g.driver.version % 1000) / 10}` : notFound(g.driver.error)}`,
      ...g.driver.devices.map((d) => `  GPU ${d.index}:    ${d.name} (sm ${d.capability}, ${d.memoryGiB.toFixed(1)} GiB)`),
      `cuBLASLt:   ${g.cublasLt.found ? `${g.cublasLt.version} at ${g.cublasLt.path}` : notFound(g.cublasLt.error)}`,
      `NCCL:       ${g.nccl.found ? `${g.nccl.version} at ${g.nccl.path}` : notFound(g.nccl.error)}`,
    ];
    console.log(lines.join('\n'));
    return 0;
  },
};
