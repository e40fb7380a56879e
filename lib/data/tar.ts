// Reading tar files (ustar, pax extended headers, GNU long names) as a stream of members,
// without loading the whole file. A damaged tar is not an exception: reading stops and the
// result says why ('truncated_tar', 'corrupt_tar_header'), so a loader can count it and go on.
import type { FileHandle } from 'node:fs/promises';

import { openRegularFile } from '../util/regular_file.js';

export interface TarMember {
  name: string;
  data: Buffer;
}

export type TarDamage = 'truncated_tar' | 'corrupt_tar_header';

const BLOCK = 512;

/** The largest member read into memory (1 GiB): a webdataset member is an image or a caption. */
export const MAX_TAR_MEMBER_BYTES = 2 ** 30;

/** Reads a file forward in bounded chunks and hands out exact byte counts. */
class ChunkedReader {
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  private eof = false;
  /** Bytes of the file handed out or skipped so far. */
  offset = 0;

  constructor(private readonly fh: FileHandle, private readonly chunk = 1 << 20) {}

  /** Exactly n bytes, or fewer at the end of the file; each read call takes at most `chunk` bytes. */
  async read(n: number): Promise<Buffer> {
    if (this.buf.length - this.pos < n && !this.eof) {
      const parts: Buffer[] = [this.buf.subarray(this.pos)];
      let have = parts[0].length;
      while (have < n && !this.eof) {
        const want = this.chunk;
        const next = Buffer.allocUnsafe(want);
        const { bytesRead } = await this.fh.read(next, 0, want, null);
        if (bytesRead === 0) this.eof = true;
        parts.push(next.subarray(0, bytesRead));
        have += bytesRead;
      }
      this.buf = parts.length === 1 ? parts[0] : Buffer.concat(parts, have);
      this.pos = 0;
    }
    const end = Math.min(this.buf.length, this.pos + n);
    const out = this.buf.subarray(this.pos, end);
    this.offset += out.length;
    this.pos = end;
    return out;
  }
}

function cString(b: Buffer, start: number, len: number): string {
  const field = b.subarray(start, start + len);
  const nul = field.indexOf(0);
  return field.subarray(0, nul < 0 ? len : nul).toString('utf8');
}

/** A numeric field: octal text, or GNU base-256 when the high bit of the first byte is set. */
/** NaN when the field is not a number (or is negative): a header that says so is corrupt. */
function numberField(b: Buffer, start: number, len: number): number {
  if (b[start] & 0x80) {
    if (b[start] & 0x40) return NaN; // base-256 negative (0xff…)
    let v = b[start] & 0x3f;
    for (let i = 1; i < len; i++) v = v * 256 + b[start + i];
    return Number.isSafeInteger(v) ? v : NaN;
  }
  const text = cString(b, start, len).trim();
  if (text === '') return 0;
  return /^[0-7]+$/.test(text) ? parseInt(text, 8) : NaN;
}

/** A pax `size=` value: decimal digits only. */
function paxSize(value: string): number {
  return /^[0-9]+$/.test(value) ? Number(value) : NaN;
}

function checksumOk(h: Buffer): boolean {
  const stored = numberField(h, 148, 8);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i];
  return sum === stored;
}

/** Pax records: "<len> key=value\n" … */
function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < data.length) {
    const space = data.indexOf(0x20, i);
    if (space < 0) break;
    const len = parseInt(data.subarray(i, space).toString('ascii'), 10);
    if (!(len > 0) || i + len > data.length) break;
    const record = data.subarray(space + 1, i + len - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    i += len;
  }
  return out;
}

/**
 * The regular-file members of a tar, in order. The `damage` callback is told once if the
 * tar ends in the middle of a member or a header fails its checksum; reading stops there.
 * Opening a file that does not exist throws (naming it).
 */
export async function* readTar(
  path: string,
  damage: (kind: TarDamage, detail: string) => void = () => {},
  maxMemberBytes = MAX_TAR_MEMBER_BYTES,
): AsyncGenerator<TarMember> {
  let fh: FileHandle;
  let fileSize: number;
  try {
    ({ fh, size: fileSize } = await openRegularFile(path, { what: 'tar', maxBytes: Number.MAX_SAFE_INTEGER }));
  } catch (err) {
    throw new Error(`tar: ${(err as Error).message}`);
  }
  try {
    const reader = new ChunkedReader(fh);
    let longName: string | undefined;
    let pax: Record<string, string> = {};
    for (;;) {
      const header = await reader.read(BLOCK);
      if (header.length === 0) return; // ended without the two zero blocks: tolerated, as GNU tar does
      if (header.length < BLOCK) {
        damage('truncated_tar', `${path}: ends inside a header`);
        return;
      }
      if (header.every((x) => x === 0)) return; // end-of-archive marker
      if (!checksumOk(header)) {
        damage('corrupt_tar_header', `${path}: header checksum mismatch`);
        return;
      }
      const type = String.fromCharCode(header[156] || 0x30);
      const size = pax.size !== undefined ? paxSize(pax.size) : numberField(header, 124, 12);
      let name = cString(header, 0, 100);
      if (cString(header, 257, 5) === 'ustar') {
        const prefix = cString(header, 345, 155);
        if (prefix) name = `${prefix}/${name}`;
      }
      if (!Number.isSafeInteger(size) || size < 0) {
        damage('corrupt_tar_header', `${path}: member '${name}' has an invalid size field`);
        return;
      }
      // Sizes are bounded before anything is allocated: by what is left of the file, then per member.
      const remaining = fileSize - reader.offset;
      if (size > remaining) {
        damage('truncated_tar', `${path}: member '${name}' claims ${size} bytes but only ${remaining} remain in the file`);
        return;
      }
      if (size > maxMemberBytes) {
        damage('corrupt_tar_header', `${path}: member '${name}' claims ${size} bytes, more than the per-member limit of ${maxMemberBytes}`);
        return;
      }
      const padded = Math.ceil(size / BLOCK) * BLOCK;
      const body = await reader.read(padded);
      if (body.length < padded) {
        damage('truncated_tar', `${path}: member '${name}' is cut short (${body.length} of ${padded} bytes)`);
        return;
      }
      const data = body.subarray(0, size);
      if (type === 'L') {
        longName = cString(data, 0, data.length);
        continue;
      }
      if (type === 'x') {
        pax = parsePax(data);
        continue;
      }
      if (type === 'g' || type === 'K') continue;
      const finalName = pax.path ?? longName ?? name;
      longName = undefined;
      pax = {};
      if (type !== '0' && type !== '7') continue; // directories, links, devices
      // Copy: the reader's chunk is reused, and callers may keep members past the next read.
      yield { name: finalName, data: Buffer.from(data) };
    }
  } finally {
    await fh.close();
  }
}
