import os from 'node:os';

import { native } from '../../native.js';
import { version } from '../../version.js';
import type { Command } from '../command.js';
import { parse } from '../args.js';

interface CudaBackendStatus {
  loaded: boolean;
  /** The emulated device (CLIPSCALE_CUDA=emulate): the kernels run on the CPU, for CI. */
  emulated: boolean;
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
  const cudaBackend = (native.cudaBackendStatus as () => CudaBackendStatus)();
  return {
    clipscale: version,
    node: process.version,
    napi: process.versions.napi,
    platform: `${process.platform}-${process.arch}`,
    cpu: { model: os.cpus()[0]?.model ?? 'unknown', cores: os.availableParallelism(), threads: native.numThreads() },
    build: native.buildInfo(),
    gpu: {
      // build-cuda/libclipscale_cuda.so, loaded at run time (npm run build:cuda), or the
      // emulated device build-cuda-emu/libclipscale_cuda_emu.so with CLIPSCALE_CUDA=emulate.
      cudaBackend,
      // The GEMM engine: cuBLASLt, or our own mma.sync kernel when cuBLASLt is absent or
      // finds no algorithm (always on the emulated device). Only asked where a device is usable.
      gemmEngine: cudaBackend.loaded && cudaBackend.devicesUsable ? gemmEngineLine() : undefined,
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

function gemmEngineLine(): string {
  try {
    return (native.cudaGemmBackendInfo as () => string)();
  } catch (e) {
    return `unavailable: ${(e as Error).message}`;
  }
}

function cudaBackendLine(s: CudaBackendStatus): string {
  if (!s.loaded) return `not loaded: ${s.reason}`;
  if (s.emulated)
    return `EMULATED device (CLIPSCALE_CUDA=emulate: the CUDA kernels run as host C++ on the CPU, for testing; ` +
      `no GPU is used) loaded from ${s.path}`;
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
      ...(g.gemmEngine ? [`CUDA GEMM:  ${g.gemmEngine}`] : []),
      `Driver:     ${g.driver.found ? `CUDA ${Math.floor(g.driver.version / 1000)}.${(g.driver.version % 1000) / 10}` : notFound(g.driver.error)}`,
      ...g.driver.devices.map((d) => `  GPU ${d.index}:    ${d.name} (sm ${d.capability}, ${d.memoryGiB.toFixed(1)} GiB)`),
      `cuBLASLt:   ${g.cublasLt.found ? `${g.cublasLt.version} at ${g.cublasLt.path}` : notFound(g.cublasLt.error)}`,
      `NCCL:       ${g.nccl.found ? `${g.nccl.version} at ${g.nccl.path}` : notFound(g.nccl.error)}`,
    ];
    console.log(lines.join('\n'));
    return 0;
  },
};
