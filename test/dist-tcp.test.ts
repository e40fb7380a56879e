import test from 'ava';

import { createCommunicator, ncclBlockers } from '../lib/distributed/create.js';
import { createInProcessGroup } from '../lib/distributed/in_process_communicator.js';
import { SingleProcessCommunicator } from '../lib/distributed/single_communicator.js';
import { TcpCommunicator } from '../lib/distributed/tcp_communicator.js';
import { freePort } from '../lib/cli/commands/launch.js';
import { Tensor } from '../lib/tensor.js';
import { runTcpRanks } from './_fixtures/dist-spawn.js';

for (const size of [2, 3]) {
  test(`TCP communicator, ${size} processes: allReduce (sum, mean), allGather, reduceScatter, broadcast, barrier`, async (t) => {
    const { runs } = await runTcpRanks(size, ['collectives', 'tcp']);
    const done = await Promise.all(runs);
    for (const [rank, r] of done.entries()) {
      t.is(r.code, 0, `rank ${rank} exited with ${r.code}\n${r.stdout}\n${r.stderr}`);
      t.deepEqual(r.reports.map((x) => x.error), [undefined], `rank ${rank}: ${r.stdout}`);
      t.like(r.reports[0], { rank, result: { size, backend: 'tcp' } });
    }
  });
}

test('TCP: a rank that dies makes the others fail at once with an error naming it', async (t) => {
  const start = Date.now();
  const { runs } = await runTcpRanks(3, ['die', 'tcp']);
  const done = await Promise.all(runs);
  const elapsed = Date.now() - start;
  t.is(done[2].code, 3, 'the dying rank exits with its own code');
  for (const rank of [0, 1]) {
    const rep = done[rank].reports[0];
    t.is(rep?.error, undefined, done[rank].stdout + done[rank].stderr);
    const failed = String(rep.result?.failed);
    t.regex(failed, /rank 2 \(pid \d+ on .*\) disconnected during allReduce #1 \(it exited or crashed/, `rank ${rank}: ${failed}`);
    if (rank === 1) t.regex(failed, /^clipscale dist \(tcp, rank 1\/3\): rank 0 stopped the job during allReduce #1/);
    // Far sooner than the 30 s collective timeout the ranks run with: they did not wait for it.
    t.true((rep.result?.ms as number) < 15_000, `rank ${rank} noticed after ${rep.result?.ms} ms`);
  }
  t.log(`3 ranks, rank 2 killed: the others failed within ${Math.max(...[0, 1].map((r) => done[r].reports[0].result?.ms as number))} ms (whole run ${elapsed} ms)`);
});

test('TCP: a hung rank makes the others fail within the collective timeout (CLIPSCALE_DIST_TIMEOUT_S)', async (t) => {
  const { children, runs } = await runTcpRanks(2, ['hang', 'tcp'], () => ({ CLIPSCALE_DIST_TIMEOUT_S: '1' }));
  const r0 = await runs[0];
  children[1].kill('SIGKILL');
  await runs[1];
  const rep = r0.reports[0];
  t.is(r0.code, 0, r0.stdout + r0.stderr);
  t.regex(String(rep.result?.failed), /allReduce #1 timed out after 1 s waiting for rank\(s\) 1 .*CLIPSCALE_DIST_TIMEOUT_S/);
  const ms = rep.result?.ms as number;
  t.true(ms >= 950 && ms < 10_000, `failed after ${ms} ms`);
});

// The rest run several TCP ranks inside this process (they are all async).

async function group(size: number, opts: { timeoutMs?: number; connectTimeoutMs?: number } = {}): Promise<TcpCommunicator[]> {
  const port = await freePort();
  return Promise.all(Array.from({ length: size }, (_, rank) => TcpCommunicator.connect({ rank, size, addr: '127.0.0.1', port, ...opts })));
}

test('TCP: collectives called in different orders or sizes fail on every rank with an error saying so', async (t) => {
  const [c0, c1] = await group(2, { timeoutMs: 5000 });
  const results = await Promise.allSettled([c0.allReduce(new Float32Array(4)), c1.allGather(new Float32Array(2), new Float32Array(4))]);
  t.is(results[0].status, 'rejected');
  t.regex(String((results[0] as PromiseRejectedResult).reason.message), /rank 1 called allGather #0 with 2 floats while rank 0 called allReduce\(sum\) #0 with 4 floats/);
  t.is(results[1].status, 'rejected');
  t.regex(String((results[1] as PromiseRejectedResult).reason.message), /rank 0 stopped the job during allGather #0/);
  // Broken for good: later calls fail with the same reason.
  await t.throwsAsync(c0.barrier(), { message: /rank 1 called allGather/ });
  await Promise.all([c0.close(), c1.close()]);
});

test('TCP: a rank that never connects is named after the connect timeout', async (t) => {
  const port = await freePort();
  const start = Date.now();
  const err = await t.throwsAsync(TcpCommunicator.connect({ rank: 0, size: 3, addr: '127.0.0.1', port, connectTimeoutMs: 300 }));
  t.regex(err!.message, /waited 0\.3 s at 127\.0\.0\.1:\d+ but rank\(s\) 1, 2 never connected .*CLIPSCALE_DIST_CONNECT_TIMEOUT_S/);
  t.true(Date.now() - start < 3000);
  const err1 = await t.throwsAsync(TcpCommunicator.connect({ rank: 1, size: 2, addr: '127.0.0.1', port, connectTimeoutMs: 300 }));
  t.regex(err1!.message, /could not reach rank 0 at 127\.0\.0\.1:\d+ within 0\.3 s \(last error: ECONNREFUSED\)/);
});

test('TCP: ranks that disagree on WORLD_SIZE are refused with a clear error', async (t) => {
  const port = await freePort();
  const [r0, r1] = await Promise.allSettled([
    TcpCommunicator.connect({ rank: 0, size: 2, addr: '127.0.0.1', port, connectTimeoutMs: 5000 }),
    TcpCommunicator.connect({ rank: 1, size: 3, addr: '127.0.0.1', port, connectTimeoutMs: 5000 }),
  ]);
  t.regex(String((r0 as PromiseRejectedResult).reason?.message), /has WORLD_SIZE=3 but rank 0 has WORLD_SIZE=2/);
  t.regex(String((r1 as PromiseRejectedResult).reason?.message), /rank 0 refused to start: .*has WORLD_SIZE=3/);
});

test('TCP: a root other than 0 broadcasts; many collectives in flight keep their order', async (t) => {
  const comms = await group(3);
  await Promise.all(
    comms.map(async (c) => {
      const x = Float32Array.from({ length: 5 }, (_, i) => c.rank * 10 + i);
      const pending = [c.broadcast(x, 2), c.allReduce(new Float32Array(3).fill(c.rank + 1), 'sum')];
      const y = new Float32Array(3).fill(c.rank + 1);
      pending.push(c.allReduce(y, 'mean'));
      await Promise.all(pending);
      t.deepEqual(Array.from(x), [20, 21, 22, 23, 24]);
      t.deepEqual(Array.from(y), [2, 2, 2]);
    }),
  );
  await Promise.all(comms.map((c) => c.close()));
  await t.throwsAsync(comms[0].barrier(), { message: /barrier after close\(\)/ });
});

test('argument checks: sizes, ops, roots, devices', async (t) => {
  const [c0, c1] = createInProcessGroup(2);
  await t.throwsAsync(c0.allGather(new Float32Array(3), new Float32Array(5)), { message: /allGather: output must hold 2 × 3 = 6 floats/ });
  await t.throwsAsync(c0.reduceScatter(new Float32Array(5), new Float32Array(3)), { message: /reduceScatter: input must hold 2 × 3 = 6 floats/ });
  await t.throwsAsync(c0.allReduce(new Float32Array(1), 'max' as 'sum'), { message: /op must be 'sum' or 'mean', got "max"/ });
  await t.throwsAsync(c1.broadcast(new Float32Array(1), 2), { message: /root must be a rank in 0\.\.1, got 2/ });
  await t.throwsAsync(c0.allReduce(Tensor.from(new Int32Array([1]))), { message: /allReduce: x must be f32/ });
  await t.throwsAsync(c0.allReduce([1, 2] as unknown as Float32Array), { message: /x must be a Tensor or a Float32Array, got Array/ });
  // Refused where NCCL cannot run (test/dist-nccl.test.ts has the rest).
  if (ncclBlockers(0).length > 0)
    await t.throwsAsync(createCommunicator({ device: 'cuda:0' }), { message: /no communicator for cuda:0 tensors \(rank 0 of 1\): GPU collectives use NCCL, and here / });
  await t.throwsAsync(createCommunicator({ backend: 'tcp', env: { ...(await import('../lib/distributed/environment.js')).readDistEnvironment({ RANK: '0', WORLD_SIZE: '2' }) } }), {
    message: /needs MASTER_ADDR and MASTER_PORT/,
  });
});

test('single process and in-process groups: the same results as the TCP path', async (t) => {
  const s = await createCommunicator({ env: (await import('../lib/distributed/environment.js')).readDistEnvironment({}) });
  t.true(s instanceof SingleProcessCommunicator);
  const x = Tensor.from(new Float32Array([1, 2, 3]));
  await s.allReduce(x, 'mean');
  t.deepEqual(x.toArray(), [1, 2, 3]);
  const out = new Float32Array(3);
  await s.allGather(x, out);
  t.deepEqual(Array.from(out), [1, 2, 3]);
  await s.close();
  await t.throwsAsync(s.barrier(), { message: /closed/ });

  const g = createInProcessGroup(3);
  const res = await Promise.all(
    g.map(async (c) => {
      const v = new Float32Array([c.rank, 1]);
      await c.allReduce(v, 'sum');
      const rs = new Float32Array(1);
      await c.reduceScatter(new Float32Array([1, 2, 3]).map((q) => q * (c.rank + 1)), rs, 'mean');
      return [...v, ...rs];
    }),
  );
  t.deepEqual(res, [
    [3, 3, 2],
    [3, 3, 4],
    [3, 3, 6],
  ]);
});

test('allReduceTensors / broadcastTensors: many tensors in a few buckets, over TCP', async (t) => {
  const { allReduceTensors, broadcastTensors } = await import('../lib/distributed/tensors.js');
  const comms = await group(2);
  const sizes = [3, 1, 7, 2, 5];
  await Promise.all(
    comms.map(async (c) => {
      const grads = sizes.map((n, k) => Tensor.from(Float32Array.from({ length: n }, (_, i) => (c.rank + 1) * (k * 10 + i))));
      await allReduceTensors(c, grads, 'mean', 8); // buckets of ≤ 8 floats: [3,1], [7], [2,5]
      grads.forEach((g, k) => t.deepEqual(g.toArray(), Array.from({ length: sizes[k] }, (_, i) => 1.5 * (k * 10 + i))));
      const params = sizes.map((n) => new Float32Array(n).fill(c.rank === 1 ? 7 : -1));
      await broadcastTensors(c, params, 1, 4);
      params.forEach((p) => t.true(p.every((v) => v === 7)));
    }),
  );
  await Promise.all(comms.map((c) => c.close()));
});
