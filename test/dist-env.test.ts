import test from 'ava';

import { describeDistEnvironment, readDistEnvironment } from '../lib/distributed/environment.js';
import { readDistTimeouts } from '../lib/distributed/timeouts.js';

test('no launcher variables: a world of one', (t) => {
  const e = readDistEnvironment({ PATH: '/bin' });
  t.like(e, { launcher: 'none', rank: 0, worldSize: 1, localRank: 0, distributed: false, cudaDevice: 'cuda:0', master: undefined });
  t.regex(describeDistEnvironment(e), /single process/);
});

test('torchrun: RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR/PORT', (t) => {
  const e = readDistEnvironment({ RANK: '5', WORLD_SIZE: '8', LOCAL_RANK: '1', LOCAL_WORLD_SIZE: '4', MASTER_ADDR: 'node0', MASTER_PORT: '29500' });
  t.like(e, { launcher: 'torchrun', rank: 5, worldSize: 8, localRank: 1, localWorldSize: 4, distributed: true, cudaDevice: 'cuda:1' });
  t.deepEqual(e.master, { addr: 'node0', port: 29500 });
  t.deepEqual(e.source, { rank: 'RANK', worldSize: 'WORLD_SIZE', localRank: 'LOCAL_RANK', localWorldSize: 'LOCAL_WORLD_SIZE' });
  t.is(describeDistEnvironment(e), 'rank 5 of 8 (local rank 1 of 4) launched by torchrun, rendezvous node0:29500');
});

test('SLURM: SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID', (t) => {
  const e = readDistEnvironment({ SLURM_PROCID: '9', SLURM_NTASKS: '16', SLURM_LOCALID: '1', SLURM_JOB_NODELIST: 'gpu[01-02]' });
  t.like(e, { launcher: 'slurm', rank: 9, worldSize: 16, localRank: 1, cudaDevice: 'cuda:1', master: undefined });
});

test('Open MPI: OMPI_COMM_WORLD_RANK, _SIZE, _LOCAL_RANK, _LOCAL_SIZE', (t) => {
  const e = readDistEnvironment({ OMPI_COMM_WORLD_RANK: '3', OMPI_COMM_WORLD_SIZE: '4', OMPI_COMM_WORLD_LOCAL_RANK: '1', OMPI_COMM_WORLD_LOCAL_SIZE: '2' });
  t.like(e, { launcher: 'openmpi', rank: 3, worldSize: 4, localRank: 1, localWorldSize: 2, cudaDevice: 'cuda:1' });
});

test('PMI (MPICH, Intel MPI, srun --mpi=pmi2): PMI_RANK, PMI_SIZE, MPI_LOCALRANKID', (t) => {
  const e = readDistEnvironment({ PMI_RANK: '2', PMI_SIZE: '3', MPI_LOCALRANKID: '2' });
  t.like(e, { launcher: 'pmi', rank: 2, worldSize: 3, localRank: 2 });
  // PMI without a local rank: OpenCLIP's general list (here SLURM's) gives it.
  t.like(readDistEnvironment({ PMI_RANK: '1', PMI_SIZE: '2', SLURM_LOCALID: '1' }), { launcher: 'pmi', localRank: 1 });
});

test("precedence is OpenCLIP's: RANK over PMI over SLURM over Open MPI", (t) => {
  const all = { RANK: '1', WORLD_SIZE: '2', PMI_RANK: '3', PMI_SIZE: '4', SLURM_PROCID: '5', SLURM_NTASKS: '6', OMPI_COMM_WORLD_RANK: '7', OMPI_COMM_WORLD_SIZE: '8' };
  t.is(readDistEnvironment(all).launcher, 'torchrun');
  t.is(readDistEnvironment({ ...all, RANK: undefined, WORLD_SIZE: undefined }).launcher, 'pmi');
  t.like(readDistEnvironment({ SLURM_PROCID: '5', SLURM_NTASKS: '6', OMPI_COMM_WORLD_RANK: '7', OMPI_COMM_WORLD_SIZE: '8' }), { launcher: 'slurm', rank: 5, worldSize: 6 });
  // `clipscale launch` inside an sbatch job: its RANK wins over the job's SLURM variables.
  t.like(readDistEnvironment({ RANK: '0', WORLD_SIZE: '2', LOCAL_RANK: '0', SLURM_PROCID: '0', SLURM_NTASKS: '8', SLURM_LOCALID: '3' }), { launcher: 'torchrun', worldSize: 2, localRank: 0 });
});

test('inconsistent or malformed values are errors that name the variable', (t) => {
  t.throws(() => readDistEnvironment({ RANK: '2', WORLD_SIZE: '2' }), { message: /RANK=2 must be less than WORLD_SIZE=2/ });
  t.throws(() => readDistEnvironment({ RANK: '1.5', WORLD_SIZE: '4' }), { message: /RANK='1.5' is not a non-negative integer \(read as the torchrun rank variables\)/ });
  t.throws(() => readDistEnvironment({ RANK: '-1', WORLD_SIZE: '4' }), { message: /RANK='-1' is not a non-negative integer/ });
  t.throws(() => readDistEnvironment({ RANK: '0', WORLD_SIZE: 'two' }), { message: /WORLD_SIZE='two' is not a non-negative integer/ });
  t.throws(() => readDistEnvironment({ RANK: '0', WORLD_SIZE: '0' }), { message: /WORLD_SIZE=0 must be an integer >= 1/ });
  t.throws(() => readDistEnvironment({ RANK: '0' }), { message: /RANK=0 is set but WORLD_SIZE is not/ });
  t.throws(() => readDistEnvironment({ WORLD_SIZE: '4' }), { message: /WORLD_SIZE=4 is set but RANK is not/ });
  t.throws(() => readDistEnvironment({ SLURM_PROCID: '3', SLURM_NTASKS: '2' }), { message: /SLURM_PROCID=3 must be less than SLURM_NTASKS=2/ });
  t.throws(() => readDistEnvironment({ OMPI_COMM_WORLD_RANK: '0', OMPI_COMM_WORLD_SIZE: '4', OMPI_COMM_WORLD_LOCAL_RANK: '2', OMPI_COMM_WORLD_LOCAL_SIZE: '2' }), {
    message: /OMPI_COMM_WORLD_LOCAL_RANK=2 must be less than OMPI_COMM_WORLD_LOCAL_SIZE=2/,
  });
  t.throws(() => readDistEnvironment({ RANK: '0', WORLD_SIZE: '2', LOCAL_RANK: 'x' }), { message: /LOCAL_RANK='x'/ });
  t.throws(() => readDistEnvironment({ MASTER_ADDR: 'h' }), { message: /MASTER_ADDR=h is set but MASTER_PORT is not/ });
  t.throws(() => readDistEnvironment({ MASTER_PORT: '29500' }), { message: /MASTER_PORT is set but MASTER_ADDR is not/ });
  t.throws(() => readDistEnvironment({ MASTER_ADDR: 'h', MASTER_PORT: '70000' }), { message: /MASTER_PORT=70000 is not a TCP port/ });
});

test('timeouts: defaults 300 s / 120 s, overridden by CLIPSCALE_DIST_TIMEOUT_S and CLIPSCALE_DIST_CONNECT_TIMEOUT_S', (t) => {
  t.deepEqual(readDistTimeouts({}), { collectiveMs: 300_000, connectMs: 120_000 });
  t.deepEqual(readDistTimeouts({ CLIPSCALE_DIST_TIMEOUT_S: '1.5', CLIPSCALE_DIST_CONNECT_TIMEOUT_S: '10' }), { collectiveMs: 1500, connectMs: 10_000 });
  t.throws(() => readDistTimeouts({ CLIPSCALE_DIST_TIMEOUT_S: '0' }), { message: /CLIPSCALE_DIST_TIMEOUT_S='0' must be a positive number of seconds/ });
});
