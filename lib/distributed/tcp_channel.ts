// One TCP connection between two ranks, carrying length-prefixed frames.
// Frame: 16-byte little-endian header (magic u32, op u16, param u16, seq u32,
// payload bytes u32), then the payload. Frames are read in order; a closed or
// failed connection rejects the reader with a ChannelClosed error.
import type { Socket } from 'node:net';

export const MAGIC = 0x44545343; // 'CSTD' read little-endian
const HEADER_BYTES = 16;
export const MAX_PAYLOAD_BYTES = 0xffffffff;

export enum FrameOp {
  Hello = 1,
  Welcome = 2,
  AllReduce = 3,
  AllGather = 4,
  ReduceScatter = 5,
  Broadcast = 6,
  Barrier = 7,
  Abort = 8,
  Bye = 9,
}

export const OP_NAMES: Record<FrameOp, string> = {
  [FrameOp.Hello]: 'hello',
  [FrameOp.Welcome]: 'welcome',
  [FrameOp.AllReduce]: 'allReduce',
  [FrameOp.AllGather]: 'allGather',
  [FrameOp.ReduceScatter]: 'reduceScatter',
  [FrameOp.Broadcast]: 'broadcast',
  [FrameOp.Barrier]: 'barrier',
  [FrameOp.Abort]: 'abort',
  [FrameOp.Bye]: 'bye',
};

export interface Frame {
  op: FrameOp;
  param: number;
  seq: number;
  /** Its own ArrayBuffer at offset 0, so Float32Array views are aligned. */
  payload: Uint8Array;
}

/** The connection ended: the peer closed it (cleanly after Bye, or not), or it failed. */
export class ChannelClosed extends Error {
  constructor(
    message: string,
    readonly clean: boolean,
  ) {
    super(message);
    this.name = 'ChannelClosed';
  }
}

export function encodeFrame(op: FrameOp, param: number, seq: number, payload?: ArrayBufferView): Buffer {
  const n = payload?.byteLength ?? 0;
  if (n > MAX_PAYLOAD_BYTES) throw new RangeError(`clipscale dist (tcp): a message of ${n} bytes exceeds the 4 GiB frame limit; split the tensor`);
  // A copy: the caller may change its buffer as soon as the collective returns.
  const buf = Buffer.allocUnsafe(HEADER_BYTES + n);
  buf.writeUInt32LE(MAGIC, 0);
  buf.writeUInt16LE(op, 4);
  buf.writeUInt16LE(param, 6);
  buf.writeUInt32LE(seq >>> 0, 8);
  buf.writeUInt32LE(n, 12);
  if (payload && n > 0) buf.set(new Uint8Array(payload.buffer, payload.byteOffset, n), HEADER_BYTES);
  return buf;
}

export class Channel {
  private header = Buffer.alloc(HEADER_BYTES);
  private headerFill = 0;
  private pending: { op: FrameOp; param: number; seq: number; payload: Uint8Array; fill: number } | undefined;
  private frames: Frame[] = [];
  private waiter: { resolve: (f: Frame) => void; reject: (e: Error) => void } | undefined;
  private ended: ChannelClosed | undefined;
  private sawBye = false;

  /** `peer` names the other end in errors, e.g. "rank 2". */
  constructor(
    readonly socket: Socket,
    public peer: string,
  ) {
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 10_000);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.end(new ChannelClosed(`the connection to ${this.peer} failed: ${err.message}`, false)));
    socket.on('close', () =>
      this.end(
        this.sawBye
          ? new ChannelClosed(`${this.peer} closed its communicator`, true)
          : new ChannelClosed(`${this.peer} disconnected`, false),
      ),
    );
  }

  get closed(): ChannelClosed | undefined {
    return this.ended;
  }

  /** The next frame (Bye frames are consumed here and mark the close as clean). */
  next(): Promise<Frame> {
    const f = this.frames.shift();
    if (f) return Promise.resolve(f);
    if (this.ended) return Promise.reject(this.ended);
    if (this.waiter) return Promise.reject(new Error(`clipscale dist (tcp): internal error: two readers on the connection to ${this.peer}`));
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  /** Queues a frame. On an ended channel it does nothing: the next read reports why it ended. */
  send(op: FrameOp, param: number, seq: number, payload?: ArrayBufferView): void {
    if (this.ended || this.socket.destroyed) return;
    this.socket.write(encodeFrame(op, param, seq, payload));
  }

  /** Sends a last frame (if any), then closes; destroys the socket if the peer does not finish in `graceMs`. */
  finish(last?: Buffer, graceMs = 2000): void {
    if (!this.socket.destroyed) {
      if (last) this.socket.end(last);
      else this.socket.end();
      setTimeout(() => this.socket.destroy(), graceMs).unref();
    }
  }

  /** Ends the channel now: pending and later reads reject with `why`. */
  end(why: ChannelClosed | Error): void {
    if (!this.ended) this.ended = why instanceof ChannelClosed ? why : new ChannelClosed(why.message, false);
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w.reject(why);
    }
  }

  destroy(why: Error): void {
    this.end(why);
    this.socket.destroy();
  }

  ref(): void {
    this.socket.ref();
  }

  unref(): void {
    this.socket.unref();
  }

  private deliver(f: Frame): void {
    if (f.op === FrameOp.Bye) {
      this.sawBye = true;
      return;
    }
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w.resolve(f);
    } else this.frames.push(f);
  }

  private onData(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length && !this.ended) {
      if (!this.pending) {
        const take = Math.min(HEADER_BYTES - this.headerFill, chunk.length - at);
        chunk.copy(this.header, this.headerFill, at, at + take);
        this.headerFill += take;
        at += take;
        if (this.headerFill < HEADER_BYTES) return;
        this.headerFill = 0;
        if (this.header.readUInt32LE(0) !== MAGIC) {
          this.destroy(new ChannelClosed(`${this.peer} sent data that is not a clipscale frame (another program on this port?)`, false));
          return;
        }
        const bytes = this.header.readUInt32LE(12);
        this.pending = {
          op: this.header.readUInt16LE(4),
          param: this.header.readUInt16LE(6),
          seq: this.header.readUInt32LE(8),
          payload: new Uint8Array(bytes),
          fill: 0,
        };
      }
      const p = this.pending;
      const take = Math.min(p.payload.length - p.fill, chunk.length - at);
      p.payload.set(chunk.subarray(at, at + take), p.fill);
      p.fill += take;
      at += take;
      if (p.fill === p.payload.length) {
        this.pending = undefined;
        this.deliver({ op: p.op, param: p.param, seq: p.seq, payload: p.payload });
      }
    }
  }
}
