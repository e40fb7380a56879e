// Atomic file replacement: write a temporary file in the target's directory, fsync it, rename it
// over the target, then fsync the directory so the rename itself survives a crash. A reader sees the
// old file or the new one, never a torn one.
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import * as path from 'node:path';

/** Temporary files are named `.<target>.tmp-<pid>-<random>` beside the target. */
export const ATOMIC_TEMP_INFIX = '.tmp-';

export function isAtomicTempName(fileName: string): boolean {
  return fileName.startsWith('.') && fileName.includes(ATOMIC_TEMP_INFIX);
}

/** Writes all of `bytes` at `position`, looping over short writes. */
export async function writeFully(fh: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  const CHUNK = 1 << 30; // a single write call takes at most 2 GiB
  let done = 0;
  while (done < bytes.byteLength) {
    const length = Math.min(CHUNK, bytes.byteLength - done);
    const { bytesWritten } = await fh.write(bytes, done, length, position + done);
    if (bytesWritten <= 0) throw new Error(`write returned ${bytesWritten} bytes`);
    done += bytesWritten;
  }
}

/** fsync a directory so a rename in it is durable; a no-op where the platform cannot (Windows). */
export async function syncDirectory(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EINVAL' && code !== 'EPERM' && code !== 'EBADF') throw err;
  } finally {
    await fh?.close();
  }
}

/**
 * Replaces `target` atomically with what `write` puts into the temporary file handle (written from
 * position 0). On any error the temporary file is removed and the target is left as it was.
 */
export async function writeFileAtomic(target: string, write: (fh: FileHandle) => Promise<void>): Promise<void> {
  const dir = path.dirname(target);
  const tmp = tempNameFor(target);
  let fh: FileHandle;
  try {
    fh = await open(tmp, 'wx', 0o644);
  } catch (err) {
    throw namedWriteError(target, err);
  }
  let ok = false;
  try {
    await write(fh);
    await fh.sync();
    await fh.close();
    await rename(tmp, target);
    ok = true;
  } catch (err) {
    throw namedWriteError(target, err);
  } finally {
    if (!ok) {
      await fh.close().catch(() => {});
      await unlink(tmp).catch(() => {});
    }
  }
  await syncDirectory(dir);
}

function tempNameFor(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}${ATOMIC_TEMP_INFIX}${process.pid}-${randomBytes(6).toString('hex')}`);
}

/** ENOSPC, EROFS, EIO … name no file by themselves: say which file could not be written (the code is kept). */
export function namedWriteError(target: string, err: unknown): Error {
  const e = err as NodeJS.ErrnoException;
  if (typeof e?.message === 'string' && e.message.includes(target)) return e;
  const out = new Error(`cannot write '${target}': ${e?.message ?? String(err)}`) as NodeJS.ErrnoException;
  if (e?.code) out.code = e.code;
  return out;
}

/** The synchronous twin of writeBytesAtomic, for command-line outputs written in one go. */
export function writeBytesAtomicSync(target: string, content: string | Uint8Array): void {
  const bytes = typeof content === 'string' ? new TextEncoder().encode(content) : content;
  const tmp = tempNameFor(target);
  let fd: number | undefined;
  let ok = false;
  try {
    fd = openSync(tmp, 'wx', 0o644);
    let done = 0;
    while (done < bytes.byteLength) {
      const n = writeSync(fd, bytes, done, Math.min(1 << 30, bytes.byteLength - done));
      if (n <= 0) throw new Error(`write returned ${n} bytes`);
      done += n;
    }
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, target);
    ok = true;
  } catch (err) {
    throw namedWriteError(target, err);
  } finally {
    if (fd !== undefined) {
      try {
        closeSync(fd);
      } catch {
        // already failing
      }
    }
    if (!ok) rmSync(tmp, { force: true });
  }
}

/** Atomically replaces `target` with the given text (UTF-8) or bytes. */
export async function writeBytesAtomic(target: string, content: string | Uint8Array): Promise<void> {
  const bytes = typeof content === 'string' ? new TextEncoder().encode(content) : content;
  await writeFileAtomic(target, (fh) => writeFully(fh, bytes, 0));
}
