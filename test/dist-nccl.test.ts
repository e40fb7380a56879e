// The NCCL communicator (GPU collectives). Without a GPU or libnccl.so.2 these check
// the errors that say so and the id exchange; with NCCL (or, on the emulated device, its
// stand-in: native/cuda/nccl_standin.h), a 1-rank communicator runs every collective, and
// two ranks share the GPU (NCCL_MULTI_RANK_GPU_ENABLE=1; NCCL ≥ 2.30) through `clipscale launch --nproc 2`.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';

import test from 'ava';

import { freePort } from '../lib/cli/commands/launch.js';
import { createCommunicator, ncclBlockers } from '../lib/distributed/create.js';
import type { DistEnvironment } from '../lib/distributed/environment.js';
import { createInProcessGroup } from '../lib/distributed/in_process_communicator.js';
import {
  decodeNcclId,
  encodeNcclId,
  formatNcclVersion,
  NCCL_SHARED_GPU_MIN_VERSION,
  NcclCommunicator,
  ncclSupport,
} from '../lib/distributed/nccl_communicator.js';
import { Tensor } from '../lib/tensor.js';
import { collect, repoRoot } from './_fixtures/dist-spawn.js';
import { cudaStatus, noGpuReason } from './_helpers/cuda.js';

const support = ncclSupport();
const blockers = ncclBlockers(0);
const ncclUsable = blockers.length === 0;
const workerPath = join(repoRoot, 'test', '_fixtures', 'nccl-worker.ts');

const single: DistEnvironment = { launcher: 'none', source: {}, rank: 0, worldSize: 1, localRank: 0, distributed: false, cudaDevice: 'cuda:0' };

test('ncclSupport says whether NCCL loads, and why not', (t) => {
  t.log(support.available ? `NCCL ${support.versionString} at ${support.path}` : `NCCL not usable: ${support.reason}`);
  if (support.available) {
    t.true(support.version! >= 21400, `version ${support.version}`);
    // The emulated device's stand-in takes libnccl.so.2's place (CLIPSCALE_EMU_NCCL=absent turns it off).
    if (cudaStatus.emulated) t.regex(support.path!, /emulated device's NCCL stand-in/);
    else t.regex(support.path!, /libnccl\.so\.2$/);
    t.is(support.versionString, formatNcclVersion(support.version!));
  } else if (!cudaStatus.loaded) {
    t.regex(support.reason!, /CUDA backend is not available/);
  } else {
    t.regex(support.reason!, /libnccl\.so\.2 was not found .*CLIPSCALE_NCCL_PATH/);
  }
});

test('formatNcclVersion reads both version encodings', (t) => {
  t.is(formatNcclVersion(22703), '2.27.3');
  t.is(formatNcclVersion(23000), '2.30.0');
  t.is(formatNcclVersion(2804), '2.8.4');
});

test('createCommunicator for cuda tensors without a GPU or NCCL says everything that is missing', async (t) => {
  if (ncclUsable) return t.pass('GPU and NCCL usable here: the GPU tests below run instead');
  const err = await t.throwsAsync(createCommunicator({ device: 'cuda:0', env: single }));
  t.log(err!.message);
  t.regex(err!.message, /^createCommunicator: no communicator for cuda:0 tensors \(rank 0 of 1\): GPU collectives use NCCL, and here /);
  for (const b of blockers) t.true(err!.message.includes(b), `names "${b}"`);
  if (!cudaStatus.loaded) t.regex(err!.message, /the CUDA backend is not available/);
  else {
    if (!cudaStatus.devicesUsable) t.regex(err!.message, /no GPU can be used \(.+\)/);
    if (!support.available) t.regex(err!.message, /NCCL cannot be loaded \(.*libnccl\.so\.2/);
  }
  t.regex(err!.message, /A single process needs no communicator; use device 'cpu'/);
  // 'cuda' alone means this rank's GPU, cuda:LOCAL_RANK.
  const err3 = await t.throwsAsync(createCommunicator({ device: 'cuda', env: { ...single, localRank: 3, cudaDevice: 'cuda:3' } }));
  t.regex(err3!.message, /no communicator for cuda:3 tensors/);
});

test('createCommunicator rejects a device that is neither cpu nor cuda:N', async (t) => {
  await t.throwsAsync(createCommunicator({ device: 'gpu', env: single }), { instanceOf: TypeError, message: /device must be 'cpu', 'cuda' or 'cuda:N', got "gpu"/ });
  await t.throwsAsync(createCommunicator({ device: 'cuda:x', env: single }), { instanceOf: TypeError, message: /device must be 'cuda' or 'cuda:N', got "cuda:x"/ });
});

test('the NCCL id survives the trip over a CPU communicator byte for byte', async (t) => {
  const id = Uint8Array.from({ length: 128 }, (_, i) => (i * 37 + 255) % 256);
  id[0] = 0;
  id[1] = 255;
  const comms = createInProcessGroup(3);
  const packets = comms.map((c) => encodeNcclId(c.rank === 0 ? id : null));
  await Promise.all(comms.map((c, r) => c.broadcast(packets[r], 0)));
  for (const [r, p] of packets.entries()) t.deepEqual(decodeNcclId(p, `rank ${r}`), id, `rank ${r}`);
  t.throws(() => decodeNcclId(encodeNcclId(null), 'here'), { message: /^here: rank 0 could not create the NCCL unique id/ });
  const bad = encodeNcclId(id);
  bad[5] = 0.5;
  t.throws(() => decodeNcclId(bad, 'here'), { message: /the NCCL id from rank 0 is corrupt \(byte 4 = 0.5\)/ });
});

test('when rank 0 cannot make the NCCL id, every rank fails with a clear error (no hang), bootstraps closed', async (t) => {
  if (support.available) return t.pass('NCCL loads here: rank 0 makes the id');
  const comms = createInProcessGroup(2);
  const results = await Promise.allSettled(comms.map((bootstrap) => NcclCommunicator.create({ device: 'cuda:0', bootstrap, timeoutMs: 5000 })));
  const [r0, r1] = results.map((r) => (r.status === 'rejected' ? (r.reason as Error).message : 'resolved'));
  t.regex(r0, /^clipscale dist \(nccl, rank 0\/2\): NCCL cannot be used: /);
  t.regex(r1, /^clipscale dist \(nccl, rank 1\/2\): rank 0 could not create the NCCL unique id \(its own error says why\); NCCL cannot be used on this rank either: /);
  for (const c of comms) await t.throwsAsync(c.barrier(), { message: /closed/ });
});

test('CLIPSCALE_NCCL_PATH is searched first, and a file there that does not load is named', async (t) => {
  if (!cudaStatus.loaded) return t.pass(`CUDA backend not loaded (${cudaStatus.reason}): NCCL is not searched`);
  const dir = mkdtempSync(join(os.tmpdir(), 'clipscale-nccl-'));
  writeFileSync(join(dir, 'libnccl.so.2'), 'not a library');
  const code = "import { ncclSupport } from './lib/distributed/nccl_communicator.ts'; console.log(JSON.stringify(ncclSupport()));";
  const child = spawn(process.execPath, ['--import=tsx', '--input-type=module', '-e', code], {
    cwd: repoRoot,
    env: { ...process.env, CLIPSCALE_NCCL_PATH: `/nonexistent-dir:${dir}` },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const r = await collect(child);
  t.is(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout.trim().split('\n').pop()!) as ReturnType<typeof ncclSupport>;
  t.log(s.available ? `NCCL found past the bogus file: ${s.path}` : s.reason);
  if (s.available) t.not(s.path, join(dir, 'libnccl.so.2'));
  else t.true(s.reason!.includes(`a candidate failed to load: ${join(dir, 'libnccl.so.2')}`), s.reason);
});

test('on the emulated device, CLIPSCALE_EMU_NCCL=absent turns the NCCL stand-in off and says so', async (t) => {
  if (!cudaStatus.loaded || !cudaStatus.emulated) return t.pass('not the emulated device: its stand-in is not used here');
  const code = "import { ncclSupport } from './lib/distributed/nccl_communicator.ts'; console.log(JSON.stringify(ncclSupport()));";
  const child = spawn(process.execPath, ['--import=tsx', '--input-type=module', '-e', code], {
    cwd: repoRoot,
    env: { ...process.env, CLIPSCALE_CUDA: 'emulate', CLIPSCALE_EMU_NCCL: 'absent' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const r = await collect(child);
  t.is(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout.trim().split('\n').pop()!) as ReturnType<typeof ncclSupport>;
  t.false(s.available);
  t.regex(s.reason!, /NCCL is absent on the emulated CUDA device \(CLIPSCALE_EMU_NCCL=absent/);
});

// ── with a GPU and NCCL ──

const gpuTest = ncclUsable ? test : test.skip;
const gpuTitle = (title: string) => (ncclUsable ? title : `${title} (skipped: ${blockers.join('; ') || noGpuReason})`);

gpuTest(gpuTitle('1-rank NCCL communicator: every collective on CUDA tensors, CPU buffers staged, errors'), async (t) => {
  const comm = (await createCommunicator({ device: 'cuda:0', env: single })) as NcclCommunicator;
  t.is(comm.backend, 'nccl');
  t.like(comm, { rank: 0, size: 1, device: 'cuda:0' });
  t.log(`NCCL ${formatNcclVersion(comm.ncclVersion)} at ${comm.ncclPath}`);
  const vals = [1.5, -2, 3.25, 1e-30, 7e20];
  const x = Tensor.from(Float32Array.from(vals)).to('cuda:0');
  await comm.allReduce(x, 'sum');
  t.deepEqual(x.to('cpu').toArray(), Array.from(Float32Array.from(vals)));
  await comm.allReduce(x, 'mean');
  t.deepEqual(x.to('cpu').toArray(), Array.from(Float32Array.from(vals)));
  const out = Tensor.zeros([5], 'f32', 'cuda:0');
  await comm.allGather(x, out);
  t.deepEqual(out.to('cpu').toArray(), Array.from(Float32Array.from(vals)));
  const rs = Tensor.zeros([5], 'f32', 'cuda:0');
  await comm.reduceScatter(out, rs, 'sum');
  t.deepEqual(rs.to('cpu').toArray(), Array.from(Float32Array.from(vals)));
  await comm.broadcast(rs, 0);
  t.deepEqual(rs.to('cpu').toArray(), Array.from(Float32Array.from(vals)));
  await comm.barrier();
  const arr = Float32Array.from([4, 5, 6]);
  await comm.allReduce(arr, 'sum');
  t.deepEqual(Array.from(arr), [4, 5, 6]);
  const gathered = new Float32Array(3);
  await comm.allGather(Float32Array.from([7, 8, 9]), gathered);
  t.deepEqual(Array.from(gathered), [7, 8, 9]);
  await t.throwsAsync(comm.allGather(x, Tensor.zeros([4], 'f32', 'cuda:0')), { message: /output must hold 1 × 5 = 5 floats/ });
  await t.throwsAsync(comm.allReduce(Tensor.zeros([2], 'i32', 'cuda:0')), { message: /x must be f32/ });
  t.false(comm.broken);
  await comm.close();
  await comm.close();
  await t.throwsAsync(comm.allReduce(x), { message: /allReduce: the communicator was closed/ });
});

async function launch2(mode: string, extraEnv: Record<string, string>) {
  const child = spawn(process.execPath, ['--import=tsx', join(repoRoot, 'lib', 'cli', 'main.ts'), 'launch', '--nproc', '2', '--master-port', String(await freePort()), workerPath, mode], {
    cwd: repoRoot,
    env: { ...process.env, NCCL_TEST_DEVICE: 'cuda:0', NCCL_MULTI_RANK_GPU_ENABLE: '1', CLIPSCALE_NUM_THREADS: '1', ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return collect(child);
}

const shared = ncclUsable && support.version! >= NCCL_SHARED_GPU_MIN_VERSION;
const sharedTest = shared ? test : test.skip;
const sharedTitle = (title: string) =>
  shared
    ? title
    : `${title} (skipped: ${ncclUsable ? `NCCL ${support.versionString} < 2.30 cannot put 2 ranks on one GPU` : blockers.join('; ') || noGpuReason})`;

sharedTest(sharedTitle('2 ranks on one GPU (clipscale launch --nproc 2, NCCL_MULTI_RANK_GPU_ENABLE=1): every collective'), async (t) => {
  const r = await launch2('collectives', { CLIPSCALE_DIST_TIMEOUT_S: '60' });
  t.is(r.code, 0, r.stdout + r.stderr);
  const reports = r.reports.sort((a, b) => a.rank - b.rank);
  t.deepEqual(reports.map((x) => x.error), [undefined, undefined], r.stdout);
  const v = (n: number, rank: number) => Array.from({ length: n }, (_, i) => (rank + 1) * 100 + i);
  const add = (a: number[], b: number[]) => a.map((x, i) => x + b[i]);
  for (const { rank, result } of reports) {
    t.like(result, { backend: 'nccl', size: 2, device: 'cuda:0' });
    t.deepEqual(result!.sum, add(v(5, 0), v(5, 1)), `rank ${rank} sum`);
    t.deepEqual(result!.mean, add(v(5, 0), v(5, 1)).map((x) => x / 2), `rank ${rank} mean`);
    t.deepEqual(result!.gathered, [...v(3, 0), ...v(3, 1)], `rank ${rank} allGather`);
    t.deepEqual(result!.scattered, add(v(4, 0), v(4, 1)).slice(2 * rank, 2 * rank + 2), `rank ${rank} reduceScatter`);
    t.deepEqual(result!.bcast, v(4, 1), `rank ${rank} broadcast from rank 1`);
    t.deepEqual(result!.staged, add(v(3, 0), v(3, 1)), `rank ${rank} Float32Array staged`);
    t.deepEqual(result!.cpuTensor, add(v(3, 0), v(3, 1)).map((x) => x / 2), `rank ${rank} CPU tensor staged`);
    t.deepEqual(result!.big, [3, 3, true], `rank ${rank} 4 Mi floats`);
    t.deepEqual(result!.bigGather, [true, true], `rank ${rank} allGather of 1.5 Mi floats a rank`);
    t.deepEqual(result!.bigScatter, [3, true], `rank ${rank} reduceScatter of 1.5 Mi floats a rank`);
  }
});

sharedTest(sharedTitle('2 ranks on one GPU: a rank that dies makes the other fail within CLIPSCALE_DIST_TIMEOUT_S, not hang'), async (t) => {
  const port = await freePort();
  const children = [0, 1].map((rank) =>
    spawn(process.execPath, ['--import=tsx', workerPath, 'die'], {
      cwd: repoRoot,
      env: {
        ...process.env,
        RANK: String(rank),
        WORLD_SIZE: '2',
        LOCAL_RANK: String(rank),
        MASTER_ADDR: '127.0.0.1',
        MASTER_PORT: String(port),
        NCCL_TEST_DEVICE: 'cuda:0',
        NCCL_MULTI_RANK_GPU_ENABLE: '1',
        CLIPSCALE_NUM_THREADS: '1',
        CLIPSCALE_DIST_TIMEOUT_S: '5',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  const [r0, r1] = await Promise.all(children.map(collect));
  t.is(r1.code, 3, r1.stdout + r1.stderr);
  const rep = r0.reports[0];
  t.is(rep?.error, undefined, r0.stdout + r0.stderr);
  t.log(`rank 0: ${rep.result?.failed} after ${rep.result?.ms} ms`);
  t.regex(String(rep.result?.failed), /nccl allReduce \(rank 0 of 2, cuda:0\): ncclAllReduce(: no progress after 5 s .*CLIPSCALE_DIST_TIMEOUT_S| failed: )/);
  t.true((rep.result?.ms as number) < 20_000, `failed after ${rep.result?.ms} ms`);
  t.true(rep.result?.broken as boolean);
});
