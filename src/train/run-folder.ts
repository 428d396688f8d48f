// The run folder as a thing `monet train` owns: which files are its own (so that `--force` replaces those and never
// anything else), whether a folder holds a run at all, and the lock that keeps two trainers out of one folder.
//
//   <run>/run.json, config.json, model.safetensors, trainer_state.safetensors, log.jsonl, loss.svg
//   <run>/train.lock                       held while a trainer runs (PID, host, start time)
//   <run>/.model.safetensors.pending, …    a checkpoint commit in flight (src/train/checkpoint.ts)
//   <run>/.<name>.<pid>.tmp                an atomic write in flight (src/train/atomic.ts)
//   <run>/inspect-*.html, inspect-*.json, report.html   reports `monet inspect` writes beside the run
//   <run>/snapshots/step-NNNNNN/           model snapshots of `monet train --keep-every` (config.json,
//                                          model.safetensors)
//   <run>/site/                            the unit site of `monet inspect site` (index.html, assets/, u/: HTML,
//                                          CSS and JS only)
//
// A folder is a run folder when it carries one of the run's marked files: run.json (written when the folder is
// created), trainer_state.safetensors, or a config.json with our `monet_ts_format` marker. A Hugging Face model
// folder also holds config.json and model.safetensors; without the marker it is not ours to replace.

import * as fs from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

export const LOCK_FILE = 'train.lock';

/** Every file `monet train` (and `monet inspect`) writes into a run folder: what `--force` may remove. */
const RUN_FILES: readonly (string | RegExp)[] = [
  'run.json',
  'config.json',
  'model.safetensors',
  'trainer_state.safetensors',
  'log.jsonl',
  'loss.svg',
  LOCK_FILE,
  /^\.(model|trainer_state)\.safetensors\.pending$/,
  /^\..+\.\d+\.tmp$/,
  /^inspect-[a-z0-9-]+\.(html|json)$/,
  'report.html',
];

/** Names of the entries under `dir` (files and folders), or null when it cannot be read. */
function entriesOf(dir: string): fs.Dirent[] | null {
  try {
    return fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return null;
  }
}

/** snapshots/: only step-NNNNNN folders, each holding only a snapshot's files (or a write in flight). */
function isSnapshotsDir(dir: string): boolean {
  const steps = entriesOf(dir);
  if (!steps) return false;
  return steps.every((e) => {
    if (!e.isDirectory() || !/^step-\d{6,}$/.test(e.name)) return false;
    const files = entriesOf(join(dir, e.name));
    const own = (n: string) => n === 'config.json' || n === 'model.safetensors' || /^\..+\.\d+\.tmp$/.test(n);
    return files?.every((f) => f.isFile() && own(f.name)) ?? false;
  });
}

/** site/: index.html and assets/site.js present, and nothing but HTML, CSS and JS files in it (any depth). */
function isSiteDir(dir: string): boolean {
  if (!fs.existsSync(join(dir, 'index.html')) || !fs.existsSync(join(dir, 'assets', 'site.js'))) return false;
  const walk = (d: string): boolean =>
    (entriesOf(d) ?? []).every((e) =>
      e.isDirectory() ? walk(join(d, e.name)) : e.isFile() && /\.(html|css|js)$/.test(e.name),
    );
  return walk(dir);
}

/** Folders `monet train` / `monet inspect` write into a run folder, recognised by what they hold. */
const RUN_DIRS: Record<string, (dir: string) => boolean> = { snapshots: isSnapshotsDir, site: isSiteDir };

const isRunDir = (runDir: string, name: string) => RUN_DIRS[name]?.(join(runDir, name)) ?? false;

const isRunFile = (name: string) => RUN_FILES.some((p) => (typeof p === 'string' ? p === name : p.test(name)));

/** Files that only exist while something is in flight: removable even before the folder carries its marker. */
const isTransient = (name: string) => name === LOCK_FILE || /^\..+\.(pending|tmp)$/.test(name);

/** What a folder holds, as far as starting a fresh run in it is concerned. */
export type FolderContents =
  | { kind: 'absent' }
  | { kind: 'empty' }
  /** A run written by monet train: only the run's own files (listed). */
  | { kind: 'run'; files: string[] }
  /** Something else (or a run with files monet did not write): `other` would be lost by replacing it. */
  | { kind: 'other'; isRun: boolean; other: string[] };

function hasRunMarker(dir: string, names: Set<string>): boolean {
  if (names.has('run.json') || names.has('trainer_state.safetensors')) return true;
  if (!names.has('config.json')) return false;
  try {
    return /"monet_ts_format"\s*:/.test(fs.readFileSync(join(dir, 'config.json'), 'utf8').slice(0, 1 << 20));
  } catch {
    return false;
  }
}

/** What `dir` holds; `lockHeld`: the caller holds the folder's lock, so train.lock is not counted. */
export function folderContents(dir: string, lockHeld = false): FolderContents {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true }).filter((e) => !(lockHeld && e.name === LOCK_FILE));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'absent' };
    throw new Error(`cannot read the run folder ${dir} (${(e as Error).message})`);
  }
  if (entries.length === 0) return { kind: 'empty' };
  const isRun = hasRunMarker(dir, new Set(entries.map((e) => e.name)));
  const own = (e: fs.Dirent) =>
    e.isFile()
      ? isRunFile(e.name) && (isRun || isTransient(e.name))
      : isRun && e.isDirectory() && isRunDir(dir, e.name);
  const other = entries.filter((e) => !own(e)).map((e) => describe(e));
  return other.length === 0 ? { kind: 'run', files: entries.map((e) => e.name) } : { kind: 'other', isRun, other };
}

const describe = (e: fs.Dirent) => (e.isDirectory() ? `${e.name}/` : e.name);

/** At most `n` names, then a count. */
function listSome(names: string[], n = 8): string {
  return names.length <= n ? names.join(', ') : `${names.slice(0, n).join(', ')} and ${names.length - n} more`;
}

/**
 * Where a fresh run may go: an absent or empty folder, or (with --force) a folder that holds only a run's own
 * files. Anything else is refused, naming what would be overwritten or lost.
 */
export function checkFreshRunFolder(dir: string, force: boolean, lockHeld = false): FolderContents {
  const c = folderContents(dir, lockHeld);
  if (c.kind === 'other') {
    const files = listSome(c.other);
    if (c.isRun) {
      const why = force
        ? '--force replaces only a run’s own files and would delete them'
        : 'a new run would mix with them';
      throw new Error(
        `run folder ${dir} holds files that monet train did not write (${files}); ${why}: ` +
          'move them elsewhere, or pick another --name / --runs-dir',
      );
    }
    const why = force ? '--force would delete' : 'a run must not mix with or overwrite';
    throw new Error(
      `${dir} exists and is not a run folder (no run.json, trainer_state.safetensors or monet config.json); ` +
        `it holds ${files}, which ${why}: pick another --name / --runs-dir`,
    );
  }
  if (c.kind === 'run' && !force)
    throw new Error(
      `run folder ${dir} already holds a run; pass --resume to continue it, --force to replace it, ` +
        'or --name for a new one',
    );
  return c;
}

/**
 * Under the folder's lock: check the folder again (another trainer may have written there since the first look)
 * and remove an old run's own files when `force` allows it: never a file it did not write, and no folder but the
 * snapshots and the unit site, recognised by their contents.
 */
export function clearRunFolder(dir: string, force: boolean): void {
  const c = checkFreshRunFolder(dir, force, true);
  if (c.kind !== 'run') return;
  for (const name of c.files) {
    const path = join(dir, name);
    if (fs.statSync(path).isDirectory()) fs.rmSync(path, { recursive: true });
    else fs.unlinkSync(path);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The lock

/** Who holds a run folder's lock. */
export interface LockHolder {
  pid: number;
  host: string;
  started: string; // ISO time
}

export interface RunLock {
  /** A stale lock of a dead process that this lock replaced (for the log), or null. */
  readonly replaced: LockHolder | null;
  release(): void;
}

/** Whether a process with this PID runs on this host (EPERM: it exists but belongs to another user). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readHolder(path: string): LockHolder | null {
  try {
    const h = JSON.parse(fs.readFileSync(path, 'utf8')) as LockHolder;
    return Number.isSafeInteger(h.pid) && h.pid > 0 && typeof h.host === 'string' ? h : null;
  } catch {
    return null;
  }
}

/**
 * Take the folder's lock, or refuse naming the trainer that holds it. The lock file appears with its content in
 * one step (written to a temp file, then hard-linked into place, which fails if a lock exists), so a reader never
 * sees an empty lock. A lock left by a process that no longer runs on this host (a SIGKILL, a power cut) is
 * replaced; one held by a live process, by a process on another host, or that cannot be read is respected.
 * The lock is released by release() and, failing that, when the process exits.
 */
export function lockRunFolder(dir: string): RunLock {
  const path = join(dir, LOCK_FILE);
  const me: LockHolder = { pid: process.pid, host: hostname(), started: new Date().toISOString() };
  const tmp = join(dir, `.${LOCK_FILE}.${process.pid}.tmp`);
  fs.writeFileSync(tmp, `${JSON.stringify(me)}\n`);
  let replaced: LockHolder | null = null;
  try {
    for (;;) {
      try {
        fs.linkSync(tmp, path);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const holder = readHolder(path);
      const stale = holder !== null && holder.host === me.host && holder.pid !== me.pid && !processAlive(holder.pid);
      if (!stale || replaced !== null) {
        const who = holder
          ? `PID ${holder.pid}${holder.host !== me.host ? ` on ${holder.host}` : ''}, since ${holder.started}`
          : `${path} cannot be read`;
        throw new Error(
          `run folder ${dir} is in use by another monet train (${who}); two trainers in one folder would ` +
            "overwrite each other's checkpoints. Wait for it to finish or stop it; " +
            `if it no longer runs, delete ${path}`,
        );
      }
      fs.unlinkSync(path);
      replaced = holder;
    }
  } finally {
    fs.unlinkSync(tmp);
  }
  let held = true;
  const release = () => {
    if (!held) return;
    held = false;
    process.off('exit', release);
    try {
      if (readHolder(path)?.pid === me.pid) fs.unlinkSync(path);
    } catch {
      // the folder is gone or unwritable: nothing left to release
    }
  };
  process.on('exit', release);
  return { replaced, release };
}
