// Crash-safe file writes: write a temp file in the same folder, fsync it, rename it over the target, fsync the
// folder. A reader (or a `--resume` after a crash or Ctrl-C) then sees either the old file or the new one, never a
// half-written checkpoint.

import { openSync, writeSync, fsyncSync, closeSync, renameSync, unlinkSync, appendFileSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';

export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.tmp`);
  const fd = openSync(tmp, 'w');
  try {
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {
      // the temp file may not exist; the original error is the one to report
    }
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, path);
  // Make the rename itself durable. Some platforms (Windows) cannot open a directory; the rename is still atomic there.
  try {
    const dfd = openSync(dir, 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    // see above
  }
}

/** Append one JSON line (a log record). Appends of one short line are atomic enough for a log; no rename needed. */
export function appendJsonl(path: string, record: Record<string, unknown>): void {
  appendFileSync(path, JSON.stringify(record) + '\n');
}
