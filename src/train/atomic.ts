// Crash-safe file writes: write a temp file in the same folder, fsync it, rename it over the target, fsync the
// folder. A reader (or a `--resume` after a crash or Ctrl-C) then sees either the old file or the new one, never a
// half-written checkpoint. A write that fails (disk full, permission denied, read-only folder) removes its temp file
// and throws AtomicWriteError, which says what failed and that the previous file is unchanged.

import * as fs from 'node:fs';
import { dirname, basename, join } from 'node:path';

/**
 * The file-system calls the writer makes, as a replaceable object: tests swap one for a failing version to simulate
 * a full disk or a refused rename (running as root, a read-only folder does not refuse anything).
 */
export const fsOps = {
  openSync: fs.openSync,
  writeSync: fs.writeSync as (fd: number, buffer: Uint8Array, offset: number, length: number) => number,
  fsyncSync: fs.fsyncSync,
  closeSync: fs.closeSync,
  renameSync: fs.renameSync,
  unlinkSync: fs.unlinkSync,
  appendFileSync: fs.appendFileSync as (path: string, data: string) => void,
};

/** What an errno code means for a write, in words (' (the disk is full)'), or ''. */
function writeErrorHint(code: string | undefined): string {
  if (code === 'ENOSPC') return ' (the disk is full)';
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') return ' (no permission to write there)';
  return '';
}

/** A file could not be written or put in place; the previous version of `path` (if any) is untouched. */
export class AtomicWriteError extends Error {
  constructor(
    readonly path: string,
    readonly code: string | undefined,
    cause: unknown,
  ) {
    const detail = (cause as Error)?.message ?? String(cause);
    const hint = writeErrorHint(code);
    super(
      `cannot write ${path}${hint}: ${detail}; ` +
        `the previous ${basename(path)}, if any, is unchanged and no partial file was left`,
    );
    this.name = 'AtomicWriteError';
  }
}

/** The temp-file name writeFileAtomic uses for `path` (hidden, per process). */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
}

export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
  const dir = dirname(path);
  const tmp = tempPathFor(path);
  let fd: number;
  try {
    fd = fsOps.openSync(tmp, 'w');
  } catch (e) {
    throw new AtomicWriteError(path, (e as NodeJS.ErrnoException).code, e);
  }
  try {
    let off = 0;
    while (off < bytes.length) off += fsOps.writeSync(fd, bytes, off, bytes.length - off);
    fsOps.fsyncSync(fd);
    fsOps.closeSync(fd);
    fd = -1;
    fsOps.renameSync(tmp, path);
  } catch (e) {
    if (fd >= 0) {
      try {
        fsOps.closeSync(fd);
      } catch {
        // already failing; the write error is the one to report
      }
    }
    try {
      fsOps.unlinkSync(tmp);
    } catch {
      // the temp file may not exist; the original error is the one to report
    }
    throw new AtomicWriteError(path, (e as NodeJS.ErrnoException).code, e);
  }
  syncDir(dir);
}

/**
 * Make renames in `dir` durable. Some platforms (Windows) cannot open a directory; the rename is still atomic there.
 */
export function syncDir(dir: string): void {
  try {
    const dfd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(dfd);
    } finally {
      fs.closeSync(dfd);
    }
  } catch {
    // see above
  }
}

/**
 * Append one JSON line (a log record). Appends of one short line are atomic enough for a log; no rename needed.
 * A failure names the file (Node's ENOSPC message does not).
 */
export function appendJsonl(path: string, record: Record<string, unknown>): void {
  try {
    fsOps.appendFileSync(path, `${JSON.stringify(record)}\n`);
  } catch (e) {
    const hint = writeErrorHint((e as NodeJS.ErrnoException).code);
    throw new Error(`cannot append to ${path}${hint}: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * Read a JSONL log that a killed process may have cut off mid-line: a last line that does not parse is dropped
 * (it was never completely written); a bad line anywhere else is damage and an error naming the line.
 */
export function readJsonl<T>(path: string): { records: T[]; droppedPartialLine: boolean } {
  const lines = fs.readFileSync(path, 'utf8').split('\n');
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  const records: T[] = [];
  let dropped = false;
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i].trim()) continue;
    try {
      records.push(JSON.parse(lines[i]) as T);
    } catch (e) {
      if (i === lines.length - 1) {
        dropped = true;
        break;
      }
      throw new Error(
        `${path}: line ${i + 1} is not valid JSON (${(e as Error).message}); expected one JSON record per line`,
      );
    }
  }
  return { records, droppedPartialLine: dropped };
}
