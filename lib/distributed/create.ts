// Picks and creates the communicator for this process from the launch environment.
import type { Communicator } from './communicator.js';
import { readDistEnvironment, type DistEnvironment } from './environment.js';
import { MpiCommunicator, mpiSupport } from './mpi_communicator.js';
import { cudaDeviceIndex, NcclCommunicator, ncclSupport } from './nccl_communicator.js';
import { native } from '../native.js';
import { SingleProcessCommunicator } from './single_communicator.js';
import { TcpCommunicator } from './tcp_communicator.js';

export type BackendChoice = 'auto' | 'single' | 'tcp' | 'mpi';

export interface CreateCommunicatorOptions {
  /**
   * 'auto' (default): a world of 1 → single; launched by mpirun (Open MPI or PMI
   * variables) → MPI when built, else TCP; torchrun-style or SLURM → TCP at
   * MASTER_ADDR:MASTER_PORT (SLURM without them → MPI when built).
   */
  backend?: BackendChoice;
  /**
   * The device of the tensors it will move: 'cpu' (default), or 'cuda' (this rank's GPU,
   * cuda:LOCAL_RANK) / 'cuda:N' for an NCCL communicator, whose unique id goes over the
   * CPU communicator that `backend` picks (MPI under mpirun, else TCP at MASTER_ADDR:MASTER_PORT).
   */
  device?: string;
  /** The environment to use (default: read from process.env). */
  env?: DistEnvironment;
  /** TCP and NCCL: limit on one collective (NCCL: also on joining), ms (default CLIPSCALE_DIST_TIMEOUT_S, 300 s). */
  timeoutMs?: number;
  /** TCP: limit on start-up, ms (default CLIPSCALE_DIST_CONNECT_TIMEOUT_S, 120 s). */
  connectTimeoutMs?: number;
}

const BACKENDS: BackendChoice[] = ['auto', 'single', 'tcp', 'mpi'];

export async function createCommunicator(opts: CreateCommunicatorOptions = {}): Promise<Communicator> {
  const backend = opts.backend ?? 'auto';
  if (!BACKENDS.includes(backend)) throw new TypeError(`createCommunicator: backend must be one of ${BACKENDS.join(', ')}, got ${JSON.stringify(backend)}`);
  const device = opts.device ?? 'cpu';
  if (device === 'cuda' || device.startsWith('cuda:')) return createNcclCommunicator(opts, backend, device);
  if (device !== 'cpu') throw new TypeError(`createCommunicator: device must be 'cpu', 'cuda' or 'cuda:N', got ${JSON.stringify(device)}`);
  const env = opts.env ?? readDistEnvironment();

  const tcp = () => {
    if (!env.master) {
      throw new Error(
        `createCommunicator: the TCP communicator needs MASTER_ADDR and MASTER_PORT (rank 0's address and a free port) on every rank; ` +
          `this rank has neither (${env.launcher === 'none' ? 'no launcher found' : `launched by ${env.launcher}`})`,
      );
    }
    return TcpCommunicator.connect({
      rank: env.rank,
      size: env.worldSize,
      addr: env.master.addr,
      port: env.master.port,
      timeoutMs: opts.timeoutMs,
      connectTimeoutMs: opts.connectTimeoutMs,
    });
  };
  const mpi = () => {
    const c = new MpiCommunicator();
    if (env.launcher !== 'none' && (c.rank !== env.rank || c.size !== env.worldSize)) {
      const why = `MPI says rank ${c.rank} of ${c.size} but the ${env.launcher} variables say rank ${env.rank} of ${env.worldSize}`;
      void c.close();
      throw new Error(`createCommunicator: ${why}; start the job with mpirun (or srun with PMIx) to use MPI, or use the TCP communicator`);
    }
    return c;
  };

  switch (backend) {
    case 'single':
      if (env.worldSize !== 1) throw new Error(`createCommunicator: backend 'single' needs a world of 1 process, but this is rank ${env.rank} of ${env.worldSize}`);
      return new SingleProcessCommunicator();
    case 'tcp':
      return tcp();
    case 'mpi':
      return mpi();
  }
  if (env.worldSize === 1) return new SingleProcessCommunicator();
  const built = mpiSupport();
  if (env.launcher === 'openmpi' || env.launcher === 'pmi') {
    if (built.built) return mpi();
    if (env.master) return tcp();
    throw new Error(`createCommunicator: launched by ${env.launcher} (mpirun) but ${built.reason}; or set MASTER_ADDR and MASTER_PORT to use the TCP communicator`);
  }
  if (env.launcher === 'slurm' && !env.master) {
    if (built.built) return mpi();
    throw new Error(
      'createCommunicator: launched by SLURM without MASTER_ADDR/MASTER_PORT; export them (e.g. MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1), ' +
        `MASTER_PORT=29500) for the TCP communicator, or build with MPI (${built.reason})`,
    );
  }
  return tcp();
}

interface CudaStatus {
  loaded: boolean;
  reason?: string;
  devicesUsable: boolean;
  deviceCount: number;
  deviceError?: string;
}

/**
 * Every reason this process cannot run NCCL on cuda:index (the CUDA backend, a GPU,
 * libnccl.so.2), so one message says all that is missing; empty when nothing is.
 */
export function ncclBlockers(index: number): string[] {
  const why: string[] = [];
  const cuda = (native.cudaBackendStatus as () => CudaStatus)();
  if (!cuda.loaded) {
    why.push(`the CUDA backend is not available (${cuda.reason})`);
    return why; // NCCL is reached through the CUDA backend: nothing more to learn
  }
  if (!cuda.devicesUsable) why.push(`no GPU can be used (${cuda.deviceError})`);
  else if (index >= cuda.deviceCount) why.push(`cuda:${index} does not exist (${cuda.deviceCount} GPU${cuda.deviceCount === 1 ? '' : 's'} found)`);
  const nccl = ncclSupport();
  if (!nccl.available) why.push(`NCCL cannot be loaded (${nccl.reason})`);
  return why;
}

async function createNcclCommunicator(opts: CreateCommunicatorOptions, backend: BackendChoice, device: string): Promise<Communicator> {
  const env = opts.env ?? readDistEnvironment();
  const index = device === 'cuda' ? cudaDeviceIndex(env.cudaDevice, 'createCommunicator') : cudaDeviceIndex(device, 'createCommunicator');
  const blockers = ncclBlockers(index);
  if (blockers.length > 0) {
    throw new Error(
      `createCommunicator: no communicator for cuda:${index} tensors (rank ${env.rank} of ${env.worldSize}): GPU collectives use NCCL, and here ` +
        `${blockers.join('; ')}. ` +
        (env.worldSize === 1 ? 'A single process needs no communicator; ' : '') +
        "use device 'cpu' for collectives on CPU tensors.",
    );
  }
  // The CPU communicator that carries rank 0's NCCL id (owned, and closed, by the NCCL one).
  const bootstrap = await createCommunicator({ ...opts, backend, device: 'cpu', env });
  return NcclCommunicator.create({ device: `cuda:${index}`, bootstrap, timeoutMs: opts.timeoutMs });
}
