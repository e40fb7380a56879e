// Writing ustar files member by member (names longer than ustar allows get a pax header).
import { closeSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';

const BLOCK = 512;

function octal(value: number, len: number): string {
  return value.toString(8).padStart(len - 1, '0') + '\0';
}

function header(name: string, size: number, type: string, mtime: number): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(name, 0, 100, 'utf8');
  h.write(octal(0o644, 8), 100, 'ascii');
  h.write(octal(0, 8), 108, 'ascii');
  h.write(octal(0, 8), 116, 'ascii');
  h.write(octal(size, 12), 124, 'ascii');
  h.write(octal(mtime, 12), 136, 'ascii');
  h.write('        ', 148, 'ascii');
  h.write(type, 156, 'ascii');
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += h[i];
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
  return h;
}

function paxRecord(key: string, value: string): Buffer {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
  return Buffer.from(`${len}${body}`, 'utf8');
}

/** Appends members to a tar; the file appears under its name only when closed (written to NAME.partial first). */
export class TarWriter {
  private fd: number;
  private closed = false;
  readonly path: string;
  private readonly partial: string;
  /** Fixed modification time, so the same content gives the same bytes. */
  private readonly mtime: number;

  constructor(path: string, options: { mtime?: number } = {}) {
    this.path = path;
    this.partial = path + '.partial';
    this.mtime = options.mtime ?? 0;
    this.fd = openSync(this.partial, 'w');
  }

  add(name: string, data: Uint8Array | string): void {
    if (this.closed) throw new Error(`TarWriter: '${this.path}' is already closed`);
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    if (Buffer.byteLength(name) > 100) {
      const pax = paxRecord('path', name);
      this.write(header('PaxHeader', pax.length, 'x', this.mtime));
      this.writePadded(pax);
      name = name.slice(0, 100);
    }
    this.write(header(name, bytes.length, '0', this.mtime));
    this.writePadded(bytes);
  }

  /** Writes the end-of-archive blocks and moves the file into place. */
  close(): void {
    if (this.closed) return;
    try {
      this.write(Buffer.alloc(2 * BLOCK));
      closeSync(this.fd);
    } catch (err) {
      this.abort();
      throw new Error(`cannot write shard '${this.path}': ${(err as Error).message}`);
    }
    this.closed = true;
    renameSync(this.partial, this.path);
  }

  /** Closes and removes the partial file: nothing half-written is left behind. */
  abort(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      closeSync(this.fd);
    } finally {
      rmSync(this.partial, { force: true });
    }
  }

  private writePadded(data: Buffer): void {
    this.write(data);
    const pad = (BLOCK - (data.length % BLOCK)) % BLOCK;
    if (pad) this.write(Buffer.alloc(pad));
  }

  private write(b: Buffer): void {
    let off = 0;
    try {
      while (off < b.length) off += writeSync(this.fd, b, off, b.length - off);
    } catch (err) {
      // ENOSPC, EIO …: say which file; the caller aborts the writer.
      throw new Error(`cannot write shard '${this.partial}': ${(err as Error).message}`);
    }
  }
}
