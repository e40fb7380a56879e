// A CPU communicator over plain TCP, for torchrun-style launches: rank 0 listens at
// MASTER_ADDR:MASTER_PORT, every other rank connects to it (a star), and rank 0
// reduces and redistributes. For CPU-sized tensors the star costs little, and the
// reduction happens in one place, in rank order, so every rank gets identical bits.
//
// Failure: a rank that exits or crashes closes its connection, which the others
// notice at once; rank 0 then tells every rank why and all collectives fail. A rank
// that hangs is caught by the collective timeout (CLIPSCALE_DIST_TIMEOUT_S, 300 s by
// default); start-up waits at most CLIPSCALE_DIST_CONNECT_TIMEOUT_S (120 s).
import net from 'node:net';
import os from 'node:os';

import { checkGatherLengths, checkReduceOp, checkRoot, floatsOf, type CommBuffer, type Communicator, type ReduceOp } from './communicator.js';
import { reduceParts } from './reduce.js';
import { Channel, ChannelClosed, encodeFrame, FrameOp, OP_NAMES, type Frame } from './tcp_channel.js';
import { formatSeconds, readDistTimeouts } from './timeouts.js';

const PROTOCOL_VERSION = 1;
const MAX_RANKS = 0xffff;

export interface TcpCommunicatorOptions {
  rank: number;
  size: number;
  /** Rank 0's address (MASTER_ADDR). */
  addr: string;
  /** Rank 0's port (MASTER_PORT). */
  port: number;
  /** Limit on one collective, ms (default from CLIPSCALE_DIST_TIMEOUT_S, 300 s). */
  timeoutMs?: number;
  /** Limit on start-up, ms (default from CLIPSCALE_DIST_CONNECT_TIMEOUT_S, 120 s). */
  connectTimeoutMs?: number;
}

interface Hello {
  protocol: number;
  rank: number;
  size: number;
  littleEndian: boolean;
  host: string;
  pid: number;
}

const REDUCE_PARAM: Record<ReduceOp, number> = { sum: 0, mean: 1 };
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function isLoopback(addr: string): boolean {
  return addr === 'localhost' || addr === '::1' || /^127\./.test(addr);
}

function floatsOfPayload(f: Frame): Float32Array {
  return new Float32Array(f.payload.buffer, 0, f.payload.byteLength / 4);
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export class TcpCommunicator implements Communicator {
  readonly backend = 'tcp' as const;
  readonly rank: number;
  readonly size: number;
  /** Rank 0: peers[r] is the connection to rank r (peers[0] unused). Other ranks: peers[0] is rank 0. */
  private peers: (Channel | undefined)[] = [];
  private seq = 0;
  private chain: Promise<unknown> = Promise.resolve();
  private broken: Error | undefined;
  private closed = false;
  private readonly timeoutMs: number;
  private readonly where: string;

  private constructor(opts: TcpCommunicatorOptions, timeoutMs: number) {
    this.rank = opts.rank;
    this.size = opts.size;
    this.timeoutMs = timeoutMs;
    this.where = `clipscale dist (tcp, rank ${opts.rank}/${opts.size})`;
  }

  /** Meets every rank at addr:port; resolves when all `size` ranks are connected. */
  static async connect(opts: TcpCommunicatorOptions): Promise<TcpCommunicator> {
    const { rank, size, addr, port } = opts;
    if (!Number.isInteger(size) || size < 1 || size > MAX_RANKS) throw new RangeError(`TcpCommunicator: size must be an integer in 1..${MAX_RANKS}, got ${size}`);
    if (!Number.isInteger(rank) || rank < 0 || rank >= size) throw new RangeError(`TcpCommunicator: rank must be an integer in 0..${size - 1}, got ${rank}`);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`TcpCommunicator: port must be a TCP port (1..65535), got ${port}`);
    if (typeof addr !== 'string' || addr === '') throw new TypeError('TcpCommunicator: addr (MASTER_ADDR) must be a host name or address');
    const env = readDistTimeouts();
    const comm = new TcpCommunicator(opts, opts.timeoutMs ?? env.collectiveMs);
    const connectMs = opts.connectTimeoutMs ?? env.connectMs;
    if (size === 1) return comm;
    if (rank === 0) await comm.accept(addr, port, connectMs);
    else await comm.dial(addr, port, connectMs);
    comm.idle();
    return comm;
  }

  // ── start-up ──

  private hello(): Hello {
    return { protocol: PROTOCOL_VERSION, rank: this.rank, size: this.size, littleEndian: LITTLE_ENDIAN, host: os.hostname(), pid: process.pid };
  }

  private async accept(addr: string, port: number, connectMs: number): Promise<void> {
    const server = net.createServer();
    // Loopback rendezvous stays on loopback; otherwise listen everywhere, as torchrun's store does.
    const host = isLoopback(addr) ? addr : undefined;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        const why = err.code === 'EADDRINUSE' ? 'the port is in use (another job, or an earlier run still holding it); choose another MASTER_PORT' : err.message;
        reject(new Error(`${this.where}: could not listen on ${host ?? '*'}:${port} for the rendezvous: ${why}`));
      });
      server.listen({ port, host }, resolve);
    });
    const missing = new Set(Array.from({ length: this.size - 1 }, (_, i) => i + 1));
    const unclaimed = new Set<Channel>();
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          reject(
            new Error(
              `${this.where}: waited ${formatSeconds(connectMs)} at ${addr}:${port} but rank(s) ${[...missing].join(', ')} never connected ` +
                `(did they start, with the same MASTER_ADDR/MASTER_PORT and WORLD_SIZE=${this.size}? ` +
                'CLIPSCALE_DIST_CONNECT_TIMEOUT_S sets this limit)',
            ),
          );
        }, connectMs);
        const failAll = (err: Error) => {
          clearTimeout(timer);
          reject(err);
        };
        server.on('connection', (socket) => {
          const ch = new Channel(socket, `a connection from ${socket.remoteAddress}`);
          unclaimed.add(ch);
          ch.next().then(
            (f) => {
              unclaimed.delete(ch);
              if (f.op !== FrameOp.Hello) {
                ch.destroy(new Error('not a clipscale hello'));
                return;
              }
              let h: Hello;
              try {
                h = JSON.parse(Buffer.from(f.payload).toString('utf8')) as Hello;
              } catch {
                ch.destroy(new Error('unreadable hello'));
                return;
              }
              const problem =
                h.protocol !== PROTOCOL_VERSION
                  ? `speaks protocol ${h.protocol}, rank 0 speaks ${PROTOCOL_VERSION} (mixed clipscale versions?)`
                  : h.size !== this.size
                    ? `has WORLD_SIZE=${h.size} but rank 0 has WORLD_SIZE=${this.size}`
                    : !Number.isInteger(h.rank) || h.rank < 1 || h.rank >= this.size
                      ? `claims rank ${h.rank}, outside 1..${this.size - 1}`
                      : this.peers[h.rank]
                        ? `claims rank ${h.rank}, which another process (${this.peers[h.rank]!.peer}) already took`
                        : h.littleEndian !== LITTLE_ENDIAN
                          ? 'has a different byte order from rank 0'
                          : undefined;
              if (problem) {
                const err = new Error(`${this.where}: the process ${h.pid} on ${h.host} ${problem}`);
                ch.finish(encodeFrame(FrameOp.Abort, 0, 0, Buffer.from(err.message)));
                failAll(err);
                return;
              }
              ch.peer = `rank ${h.rank} (pid ${h.pid} on ${h.host})`;
              this.peers[h.rank] = ch;
              missing.delete(h.rank);
              if (missing.size === 0) {
                clearTimeout(timer);
                resolve();
              }
            },
            () => undefined, // a connection that closed before saying hello: not one of ours
          );
        });
      });
      for (let r = 1; r < this.size; r++) this.peers[r]!.send(FrameOp.Welcome, 0, 0);
    } catch (err) {
      this.abortPeers((err as Error).message);
      throw err;
    } finally {
      server.close();
      for (const ch of unclaimed) ch.destroy(new Error('the job started without this connection'));
    }
  }

  private async dial(addr: string, port: number, connectMs: number): Promise<void> {
    const deadline = Date.now() + connectMs;
    let lastError = '';
    for (let attempt = 0; ; attempt++) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `${this.where}: could not reach rank 0 at ${addr}:${port} within ${formatSeconds(connectMs)} (last error: ${lastError || 'none'}); ` +
            'is rank 0 running, and do all ranks have the same MASTER_ADDR/MASTER_PORT? (CLIPSCALE_DIST_CONNECT_TIMEOUT_S sets this limit)',
        );
      }
      try {
        const socket = await new Promise<net.Socket>((resolve, reject) => {
          const s = net.connect({ host: addr, port });
          const t = setTimeout(() => s.destroy(new Error('connect timed out')), Math.min(left, 10_000));
          s.once('connect', () => {
            clearTimeout(t);
            s.removeAllListeners('error');
            resolve(s);
          });
          s.once('error', (e) => {
            clearTimeout(t);
            reject(e);
          });
        });
        const ch = new Channel(socket, `rank 0 at ${addr}:${port}`);
        ch.send(FrameOp.Hello, 0, 0, Buffer.from(JSON.stringify(this.hello())));
        this.peers[0] = ch;
        break;
      } catch (err) {
        lastError = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
        await delay(Math.min(50 * 2 ** Math.min(attempt, 4), 1000));
      }
    }
    const ch = this.peers[0]!;
    const timer = setTimeout(
      () => ch.destroy(new Error(`rank 0 accepted the connection but did not start the job within ${formatSeconds(connectMs)} (other ranks missing?)`)),
      Math.max(deadline - Date.now(), 1),
    );
    try {
      const f = await ch.next();
      if (f.op === FrameOp.Abort) throw new Error(`${this.where}: rank 0 refused to start: ${Buffer.from(f.payload).toString('utf8')}`);
      if (f.op !== FrameOp.Welcome) throw new Error(`${this.where}: rank 0 answered with ${OP_NAMES[f.op] ?? `op ${f.op}`} instead of welcome`);
    } catch (err) {
      ch.destroy(err as Error);
      if (err instanceof ChannelClosed) throw new Error(`${this.where}: while waiting for rank 0 to start the job: ${err.message}`);
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  // ── collectives ──

  async allReduce(x: CommBuffer, op: ReduceOp = 'sum'): Promise<void> {
    checkReduceOp(op, 'allReduce');
    const v = floatsOf(x, 'allReduce', 'x');
    await this.run(FrameOp.AllReduce, REDUCE_PARAM[op], async (seq) => {
      if (this.rank === 0) {
        const parts = [v, ...(await this.gatherFrom(FrameOp.AllReduce, REDUCE_PARAM[op], seq, v.byteLength)).map(floatsOfPayload)];
        reduceParts(parts, v, op);
        for (let r = 1; r < this.size; r++) this.peers[r]!.send(FrameOp.AllReduce, REDUCE_PARAM[op], seq, v);
      } else {
        this.peers[0]!.send(FrameOp.AllReduce, REDUCE_PARAM[op], seq, v);
        v.set(floatsOfPayload(await this.receiveFromRoot(FrameOp.AllReduce, REDUCE_PARAM[op], seq, v.byteLength)));
      }
    });
  }

  async allGather(input: CommBuffer, output: CommBuffer): Promise<void> {
    const i = floatsOf(input, 'allGather', 'input');
    const o = floatsOf(output, 'allGather', 'output');
    const n = checkGatherLengths(i, o, this.size, 'allGather', 'input', 'output');
    await this.run(FrameOp.AllGather, 0, async (seq) => {
      if (this.rank === 0) {
        const parts = await this.gatherFrom(FrameOp.AllGather, 0, seq, i.byteLength);
        o.set(i, 0);
        parts.forEach((f, k) => o.set(floatsOfPayload(f), (k + 1) * n));
        for (let r = 1; r < this.size; r++) this.peers[r]!.send(FrameOp.AllGather, 0, seq, o);
      } else {
        this.peers[0]!.send(FrameOp.AllGather, 0, seq, i);
        o.set(floatsOfPayload(await this.receiveFromRoot(FrameOp.AllGather, 0, seq, o.byteLength)));
      }
    });
  }

  async reduceScatter(input: CommBuffer, output: CommBuffer, op: ReduceOp = 'sum'): Promise<void> {
    checkReduceOp(op, 'reduceScatter');
    const i = floatsOf(input, 'reduceScatter', 'input');
    const o = floatsOf(output, 'reduceScatter', 'output');
    const n = checkGatherLengths(o, i, this.size, 'reduceScatter', 'output', 'input');
    const p = REDUCE_PARAM[op];
    await this.run(FrameOp.ReduceScatter, p, async (seq) => {
      if (this.rank === 0) {
        const parts = [i, ...(await this.gatherFrom(FrameOp.ReduceScatter, p, seq, i.byteLength)).map(floatsOfPayload)];
        const slice = new Float32Array(n);
        for (let r = 1; r < this.size; r++) {
          reduceParts(parts, slice, op, r * n);
          this.peers[r]!.send(FrameOp.ReduceScatter, p, seq, slice);
        }
        reduceParts(parts, o, op, 0);
      } else {
        this.peers[0]!.send(FrameOp.ReduceScatter, p, seq, i);
        o.set(floatsOfPayload(await this.receiveFromRoot(FrameOp.ReduceScatter, p, seq, o.byteLength)));
      }
    });
  }

  async broadcast(x: CommBuffer, root = 0): Promise<void> {
    checkRoot(root, this.size, 'broadcast');
    const v = floatsOf(x, 'broadcast', 'x');
    await this.run(FrameOp.Broadcast, root, async (seq) => {
      if (this.rank === 0) {
        // A root other than 0 sends to rank 0, which forwards.
        if (root !== 0) v.set(floatsOfPayload((await this.gatherFrom(FrameOp.Broadcast, root, seq, v.byteLength, [root]))[0]));
        for (let r = 1; r < this.size; r++) if (r !== root) this.peers[r]!.send(FrameOp.Broadcast, root, seq, v);
      } else if (this.rank === root) {
        this.peers[0]!.send(FrameOp.Broadcast, root, seq, v);
      } else {
        v.set(floatsOfPayload(await this.receiveFromRoot(FrameOp.Broadcast, root, seq, v.byteLength)));
      }
    });
  }

  async barrier(): Promise<void> {
    await this.run(FrameOp.Barrier, 0, async (seq) => {
      if (this.rank === 0) {
        await this.gatherFrom(FrameOp.Barrier, 0, seq, 0);
        for (let r = 1; r < this.size; r++) this.peers[r]!.send(FrameOp.Barrier, 0, seq);
      } else {
        this.peers[0]!.send(FrameOp.Barrier, 0, seq);
        await this.receiveFromRoot(FrameOp.Barrier, 0, seq, 0);
      }
    });
  }

  /** Says goodbye and closes the connections. Call it on every rank when done. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.chain.catch(() => undefined);
    this.closed = true;
    const bye = encodeFrame(FrameOp.Bye, 0, this.seq);
    for (const ch of this.peers) ch?.finish(bye);
  }

  // ── machinery ──

  /**
   * Runs one collective after the ones before it, under the timeout. On any failure
   * the communicator breaks: rank 0 tells the others why, and every later call fails.
   */
  private run(op: FrameOp, param: number, body: (seq: number) => Promise<void>): Promise<void> {
    const name = OP_NAMES[op];
    if (this.closed) return Promise.reject(new Error(`${this.where}: ${name} after close()`));
    const exec = async () => {
      if (this.broken) throw this.broken;
      if (this.size === 1) return body(this.seq++);
      const seq = this.seq++;
      this.busy();
      let timer: NodeJS.Timeout | undefined;
      try {
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            const waitingFor = this.rank === 0 ? this.waitingFor.join(', ') : '0';
            reject(
              new Error(
                `${this.where}: ${name} #${seq} timed out after ${formatSeconds(this.timeoutMs)} waiting for rank(s) ${waitingFor || '?'} ` +
                  '(a rank hung, or is far slower than the others; CLIPSCALE_DIST_TIMEOUT_S sets this limit)',
              ),
            );
          }, this.timeoutMs);
        });
        await Promise.race([body(seq), timeout]);
      } catch (err) {
        throw this.fail(this.explain(err as Error, name, seq));
      } finally {
        clearTimeout(timer);
        this.idle();
      }
    };
    const p = this.chain.catch(() => undefined).then(exec);
    this.chain = p;
    return p;
  }

  private waitingFor: number[] = [];

  /** Rank 0: one frame from each rank in `from` (default all others), checked against what rank 0 called. */
  private async gatherFrom(op: FrameOp, param: number, seq: number, bytes: number, from?: number[]): Promise<Frame[]> {
    const ranks = from ?? Array.from({ length: this.size - 1 }, (_, i) => i + 1);
    this.waitingFor = [...ranks];
    return Promise.all(
      ranks.map(async (r) => {
        const f = await this.peers[r]!.next();
        this.check(f, op, param, seq, bytes, `rank ${r}`);
        this.waitingFor = this.waitingFor.filter((x) => x !== r);
        return f;
      }),
    );
  }

  private async receiveFromRoot(op: FrameOp, param: number, seq: number, bytes: number): Promise<Frame> {
    const f = await this.peers[0]!.next();
    if (f.op === FrameOp.Abort) throw new AbortedByRoot(Buffer.from(f.payload).toString('utf8'));
    this.check(f, op, param, seq, bytes, 'rank 0');
    return f;
  }

  private check(f: Frame, op: FrameOp, param: number, seq: number, bytes: number, who: string): void {
    if (f.op === op && f.param === param && f.seq === seq && f.payload.byteLength === bytes) return;
    const describe = (o: FrameOp, p: number, s: number, b: number) =>
      `${OP_NAMES[o] ?? `op ${o}`}${o === FrameOp.Broadcast ? `(root ${p})` : o === FrameOp.AllReduce || o === FrameOp.ReduceScatter ? `(${p ? 'mean' : 'sum'})` : ''} #${s} with ${b / 4} floats`;
    throw new Mismatch(
      `${who} called ${describe(f.op, f.param, f.seq, f.payload.byteLength)} while rank ${this.rank} called ${describe(op, param, seq, bytes)}; ` +
        'every rank must call the same collectives in the same order with the same sizes',
    );
  }

  private explain(err: Error, name: string, seq: number): Error {
    if (err instanceof AbortedByRoot) return new Error(`${this.where}: rank 0 stopped the job during ${name} #${seq}: ${err.message}`);
    if (err instanceof Mismatch) return new Error(`${this.where}: ${err.message}`);
    if (err instanceof ChannelClosed) {
      const why = err.clean
        ? `${err.message} before ${name} #${seq} (it called close() while this rank still runs collectives)`
        : this.rank === 0
          ? `${err.message} during ${name} #${seq} (it exited or crashed; its own output says why)`
          : `${err.message} during ${name} #${seq} (rank 0 exited or crashed, or stopped the job after another rank failed)`;
      return new Error(`${this.where}: ${why}`);
    }
    return err.message.startsWith('clipscale dist') ? err : new Error(`${this.where}: ${name} #${seq} failed: ${err.message}`);
  }

  /** Breaks the communicator (once) and returns the error every later call gets. */
  private fail(err: Error): Error {
    if (this.broken) return this.broken;
    this.broken = err;
    this.abortPeers(err.message);
    return err;
  }

  private abortPeers(reason: string): void {
    const frame = encodeFrame(FrameOp.Abort, 0, 0, Buffer.from(reason));
    for (const ch of this.peers) {
      if (!ch) continue;
      ch.end(new Error(reason));
      ch.finish(this.rank === 0 ? frame : undefined, 1000);
    }
  }

  // While no collective runs, the connections do not keep the process alive.
  private busy(): void {
    for (const ch of this.peers) ch?.ref();
  }

  private idle(): void {
    for (const ch of this.peers) ch?.unref();
  }
}

class AbortedByRoot extends Error {}
class Mismatch extends Error {}
