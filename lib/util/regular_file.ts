// Inputs are regular files, sized before they are read. A FIFO would block the open (or the
// read) forever and /dev/zero never ends, so both are refused by type; a file larger than the
// reader's limit is refused by size before any memory is allocated for it. Files are opened
// with O_NONBLOCK, which keeps a FIFO's open from waiting for a writer, then checked with
// fstat on the open descriptor (no window between the check and the read).
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

/** The default limit on a whole-file read: 2 GiB less one byte, the most one Buffer read can take. */
export const DEFAULT_MAX_FILE_BYTES = 2 ** 31 - 1;

const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0);

function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

export interface ReadLimits {
  /** What the file is, for messages ("--vocab", "image"); the path is always named too. */
  what?: string;
  /** Refuse files larger than this many bytes (default DEFAULT_MAX_FILE_BYTES). */
  maxBytes?: number;
}

function label(path: string, what?: string): string {
  return what ? `${what} '${path}'` : `'${path}'`;
}

function openError(path: string, what: string | undefined, err: unknown): Error {
  const e = err as NodeJS.ErrnoException;
  const why = e.code === 'ENOENT' ? 'no such file' : e.code === 'EACCES' ? 'permission denied' : e.code === 'EISDIR' ? 'is a directory' : e.message;
  return new Error(`cannot read ${label(path, what)}: ${why}`);
}

function checkStats(path: string, st: Stats, limits: ReadLimits): number {
  if (!st.isFile()) throw new Error(`cannot read ${label(path, limits.what)}: it is ${kindOf(st)}, expected a regular file`);
  const max = limits.maxBytes ?? DEFAULT_MAX_FILE_BYTES;
  if (st.size > max) throw new Error(`cannot read ${label(path, limits.what)}: ${st.size} bytes is more than the limit of ${max} bytes`);
  return st.size;
}

/** Opens `path` for reading without blocking on a FIFO; errors name the path. */
function openForRead(path: string, limits: ReadLimits): number {
  try {
    return openSync(path, OPEN_FLAGS);
  } catch (err) {
    throw openError(path, limits.what, err);
  }
}

/** Throws (naming the path) unless `path` is a regular file within the size limit; returns its size. */
export function regularFileSize(path: string, limits: ReadLimits = {}): number {
  const fd = openForRead(path, limits);
  try {
    return checkStats(path, fstatSync(fd), limits);
  } finally {
    closeSync(fd);
  }
}

/** The whole of a regular file, read synchronously once its type and size are checked. */
export function readRegularFileSync(path: string, limits: ReadLimits = {}): Buffer {
  const fd = openForRead(path, limits);
  try {
    const size = checkStats(path, fstatSync(fd), limits);
    const buf = Buffer.allocUnsafe(size);
    let done = 0;
    while (done < size) {
      let n: number;
      try {
        n = readSync(fd, buf, done, Math.min(size - done, 1 << 30), done);
      } catch (err) {
        throw new Error(`cannot read ${label(path, limits.what)}: ${(err as Error).message}`);
      }
      if (n === 0) break; // shrank while we read: return what is there
      done += n;
    }
    return done === size ? buf : buf.subarray(0, done);
  } finally {
    closeSync(fd);
  }
}

/** A regular file's text (UTF-8), read once its type and size are checked. */
export function readRegularTextSync(path: string, limits: ReadLimits = {}): string {
  return readRegularFileSync(path, limits).toString('utf8');
}

/** Opens a regular file for reading (asynchronously), checking its type and size; the caller closes it. */
export async function openRegularFile(path: string, limits: ReadLimits = {}): Promise<{ fh: FileHandle; size: number }> {
  let fh: FileHandle;
  try {
    fh = await open(path, OPEN_FLAGS);
  } catch (err) {
    throw openError(path, limits.what, err);
  }
  try {
    return { fh, size: checkStats(path, await fh.stat(), limits) };
  } catch (err) {
    await fh.close().catch(() => {});
    throw err;
  }
}

/** The whole of a regular file, read asynchronously once its type and size are checked. */
export async function readRegularFile(path: string, limits: ReadLimits = {}): Promise<Buffer> {
  const { fh, size } = await openRegularFile(path, limits);
  try {
    const buf = Buffer.allocUnsafe(size);
    let done = 0;
    while (done < size) {
      let n: number;
      try {
        ({ bytesRead: n } = await fh.read(buf, done, Math.min(size - done, 1 << 30), done));
      } catch (err) {
        throw new Error(`cannot read ${label(path, limits.what)}: ${(err as Error).message}`);
      }
      if (n === 0) break;
      done += n;
    }
    return done === size ? buf : buf.subarray(0, done);
  } finally {
    await fh.close();
  }
}

/** The largest encoded image file read (256 MiB): far above any real photo, far below a stray disk image. */
export const MAX_IMAGE_FILE_BYTES = 2 ** 28;
