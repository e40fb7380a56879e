// Which rank this process is, read from the variables launchers set. The order is
// OpenCLIP's (world_info_from_env): torchrun-style RANK first, then PMI, SLURM and
// OpenMPI. Unlike OpenCLIP, a rank's size and local rank are read from the same
// launcher that gave the rank, so a half-set environment is an error, not a guess.

export type Launcher = 'torchrun' | 'pmi' | 'slurm' | 'openmpi' | 'none';

export interface DistEnvironment {
  /** Which launcher's variables gave the rank ('none': a single process). */
  launcher: Launcher;
  /** The variable names that were read, e.g. { rank: 'SLURM_PROCID', ... }. */
  source: { rank?: string; worldSize?: string; localRank?: string; localWorldSize?: string };
  rank: number;
  worldSize: number;
  /** The rank on this machine; the GPU this rank uses. */
  localRank: number;
  /** Ranks on this machine, when the launcher says. */
  localWorldSize?: number;
  /** The TCP rendezvous (torchrun style), when MASTER_ADDR and MASTER_PORT are set. */
  master?: { addr: string; port: number };
  /** worldSize > 1 */
  distributed: boolean;
  /** The GPU this rank should use: `cuda:${localRank}`. */
  cudaDevice: `cuda:${number}`;
}

interface LauncherVars {
  launcher: Exclude<Launcher, 'none'>;
  rank: string;
  size: string;
  local: string[];
  localSize: string[];
}

// Rank variables in OpenCLIP's order of precedence; each launcher's own local-rank
// variables come first, then OpenCLIP's general list.
const LAUNCHERS: LauncherVars[] = [
  { launcher: 'torchrun', rank: 'RANK', size: 'WORLD_SIZE', local: ['LOCAL_RANK'], localSize: ['LOCAL_WORLD_SIZE'] },
  { launcher: 'pmi', rank: 'PMI_RANK', size: 'PMI_SIZE', local: ['MPI_LOCALRANKID'], localSize: ['MPI_LOCALNRANKS'] },
  { launcher: 'slurm', rank: 'SLURM_PROCID', size: 'SLURM_NTASKS', local: ['SLURM_LOCALID'], localSize: [] },
  {
    launcher: 'openmpi',
    rank: 'OMPI_COMM_WORLD_RANK',
    size: 'OMPI_COMM_WORLD_SIZE',
    local: ['OMPI_COMM_WORLD_LOCAL_RANK'],
    localSize: ['OMPI_COMM_WORLD_LOCAL_SIZE'],
  },
];
const GENERAL_LOCAL_RANK = ['LOCAL_RANK', 'MPI_LOCALRANKID', 'SLURM_LOCALID', 'OMPI_COMM_WORLD_LOCAL_RANK'];

type Env = Record<string, string | undefined>;

function present(env: Env, name: string): boolean {
  return env[name] !== undefined && env[name] !== '';
}

function readInt(env: Env, name: string, min: number, context: string): number {
  const raw = env[name]!.trim();
  if (!/^[+]?\d+$/.test(raw)) throw new Error(`clipscale dist: ${name}='${env[name]}' is not a non-negative integer${context}`);
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min) throw new Error(`clipscale dist: ${name}=${raw} must be an integer >= ${min}${context}`);
  return n;
}

function firstPresent(env: Env, names: string[]): string | undefined {
  return names.find((n) => present(env, n));
}

function readMaster(env: Env): DistEnvironment['master'] {
  const hasAddr = present(env, 'MASTER_ADDR');
  const hasPort = present(env, 'MASTER_PORT');
  if (!hasAddr && !hasPort) return undefined;
  if (!hasAddr) throw new Error('clipscale dist: MASTER_PORT is set but MASTER_ADDR is not; set both (the address and port of rank 0)');
  const port = hasPort ? readInt(env, 'MASTER_PORT', 1, '') : NaN;
  if (!hasPort) throw new Error(`clipscale dist: MASTER_ADDR=${env.MASTER_ADDR} is set but MASTER_PORT is not; set both (the address and port of rank 0)`);
  if (port > 65535) throw new Error(`clipscale dist: MASTER_PORT=${port} is not a TCP port (1..65535)`);
  return { addr: env.MASTER_ADDR!.trim(), port };
}

/** Reads rank, world size and local rank from `env` (process.env by default). */
export function readDistEnvironment(env: Env = process.env): DistEnvironment {
  const master = readMaster(env);
  const vars = LAUNCHERS.find((l) => present(env, l.rank));
  if (!vars) {
    // A size without a rank is a launcher misconfiguration only when it asks for more than one process.
    for (const l of LAUNCHERS) {
      if (present(env, l.size) && l.launcher !== 'slurm' && readInt(env, l.size, 1, '') > 1)
        throw new Error(`clipscale dist: ${l.size}=${env[l.size]} is set but ${l.rank} is not; a ${l.launcher} launch sets both`);
    }
    return {
      launcher: 'none',
      source: {},
      rank: 0,
      worldSize: 1,
      localRank: 0,
      localWorldSize: 1,
      master,
      distributed: false,
      cudaDevice: 'cuda:0',
    };
  }
  const ctx = ` (read as the ${vars.launcher} rank variables)`;
  if (!present(env, vars.size)) throw new Error(`clipscale dist: ${vars.rank}=${env[vars.rank]} is set but ${vars.size} is not; a ${vars.launcher} launch sets both`);
  const rank = readInt(env, vars.rank, 0, ctx);
  const worldSize = readInt(env, vars.size, 1, ctx);
  if (rank >= worldSize) throw new Error(`clipscale dist: ${vars.rank}=${rank} must be less than ${vars.size}=${worldSize}`);

  const localName = firstPresent(env, vars.local) ?? firstPresent(env, GENERAL_LOCAL_RANK);
  const localRank = localName ? readInt(env, localName, 0, ctx) : 0;
  if (localRank >= worldSize) throw new Error(`clipscale dist: ${localName}=${localRank} must be less than ${vars.size}=${worldSize}`);
  const localSizeName = firstPresent(env, vars.localSize);
  let localWorldSize: number | undefined;
  if (localSizeName) {
    localWorldSize = readInt(env, localSizeName, 1, ctx);
    if (localRank >= localWorldSize) throw new Error(`clipscale dist: ${localName ?? 'the local rank'}=${localRank} must be less than ${localSizeName}=${localWorldSize}`);
    if (localWorldSize > worldSize) throw new Error(`clipscale dist: ${localSizeName}=${localWorldSize} must not exceed ${vars.size}=${worldSize}`);
  }
  return {
    launcher: vars.launcher,
    source: { rank: vars.rank, worldSize: vars.size, localRank: localName, localWorldSize: localSizeName },
    rank,
    worldSize,
    localRank,
    localWorldSize,
    master,
    distributed: worldSize > 1,
    cudaDevice: `cuda:${localRank}`,
  };
}

/** One line saying who this rank is, for logs. */
export function describeDistEnvironment(e: DistEnvironment): string {
  if (e.launcher === 'none') return 'single process (no launcher variables found)';
  const m = e.master ? `, rendezvous ${e.master.addr}:${e.master.port}` : '';
  return `rank ${e.rank} of ${e.worldSize} (local rank ${e.localRank}${e.localWorldSize ? ` of ${e.localWorldSize}` : ''}) launched by ${e.launcher}${m}`;
}
