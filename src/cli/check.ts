// `monet check <files or folders…>`: run golden fixtures through a backend and compare with the one checker.
//
// Exit codes: 0 every compared tensor passes; 1 some tensor fails (or a backend throws on a case); 2 something cannot
// be used — a file that is not a usable fixture (not safetensors, truncated, wrong format version, unknown kind,
// config that does not match the tensors), a path that does not exist, or a named backend that cannot run here.
// When both happen, 2 wins: a broken file must not hide behind a failed tensor, nor the other way round (both are
// printed).

import { readdirSync, statSync, type Stats } from 'node:fs';
import { join, relative } from 'node:path';
import { getBackendEntry, backendNames, BackendUnavailable, type BackendEntry } from '../backend/registry.ts';
import type { CaseBackend } from '../backend/case.ts';
import { formatReports, PRESET_NAMES, runFixture, type CaseReport, type PresetName } from '../fixtures/checker.ts';
import { isFileError, loadFixture, type Fixture } from '../fixtures/format.ts';

const HELP = `Usage: monet check <files or folders…> [options]

Runs each fixture (*.safetensors; folders are searched recursively) forward and backward on a backend and compares
every out.*, grad.*, idx.* and next.* tensor: |a − e| ≤ atol + rtol·|e|, idx.* exactly.

Options:
  --backend <name>   ${backendNames().join(' | ')} | all   (default: reference)
  --preset <name>    ${PRESET_NAMES.join(' | ')}: tolerance for real tensors
                     (default: the backend's own, f64 for the reference)
  --json             print the reports as JSON instead of a table
  --failures         print only failing rows (the summary still counts everything)
  --strict           a kind the backend does not support counts as a failure
  -h, --help         this text

Exit: 0 all pass, 1 a tensor fails, 2 a file or backend cannot be used. Format: docs/fixtures.md`;

/** Every *.safetensors under the given paths, sorted, deduplicated. Missing paths are returned as errors. */
export function collectFixtureFiles(paths: readonly string[]): { files: string[]; errors: string[] } {
  const files = new Set<string>();
  const errors: string[] = [];
  const walk = (p: string) => {
    for (const e of readdirSync(p, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const q = join(p, e.name);
      if (e.isDirectory()) walk(q);
      else if (e.name.endsWith('.safetensors')) files.add(q);
    }
  };
  for (const p of paths) {
    let st: Stats;
    try {
      st = statSync(p);
    } catch {
      errors.push(`${p}: no such file or folder`);
      continue;
    }
    if (st.isDirectory()) {
      const before = files.size;
      walk(p);
      if (files.size === before) errors.push(`${p}: folder holds no *.safetensors files`);
    } else files.add(p);
  }
  return { files: [...files], errors };
}

interface Options {
  paths: string[];
  backend: string;
  preset?: PresetName;
  json: boolean;
  failures: boolean;
  strict: boolean;
}

function parseArgs(args: string[]): Options | string {
  const o: Options = { paths: [], backend: 'reference', json: false, failures: false, strict: false };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const value = (): string => {
      const v = args[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--backend') o.backend = value();
    else if (a.startsWith('--backend=')) o.backend = a.slice(10);
    else if (a === '--preset' || a.startsWith('--preset=')) {
      const v = a === '--preset' ? value() : a.slice(9);
      if (!(PRESET_NAMES as readonly string[]).includes(v))
        return `--preset: expected one of ${PRESET_NAMES.join(', ')}, found '${v}'`;
      o.preset = v as PresetName;
    } else if (a === '--json') o.json = true;
    else if (a === '--failures') o.failures = true;
    else if (a === '--strict') o.strict = true;
    else if (a.startsWith('-')) return `unknown option '${a}'`;
    else o.paths.push(a);
  }
  if (o.paths.length === 0) return 'expected at least one fixture file or folder';
  if (o.backend !== 'all' && !backendNames().includes(o.backend)) {
    return `--backend: unknown backend '${o.backend}'; expected one of ${backendNames().join(', ')}, all`;
  }
  return o;
}

export async function check(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    console.log(HELP);
    return 0;
  }
  let parsed: Options | string;
  try {
    parsed = parseArgs(args);
  } catch (e) {
    parsed = (e as Error).message;
  }
  if (typeof parsed === 'string') {
    console.error(`monet check: ${parsed}\n\n${HELP}`);
    return 2;
  }
  const o = parsed;

  const { files, errors: pathErrors } = collectFixtureFiles(o.paths);
  const fileErrors: { source: string; message: string }[] = pathErrors.map((m) => ({
    source: m.split(':')[0],
    message: m,
  }));
  const fixtures: Fixture[] = [];
  // One file's problem is that file's line (exit 2); the batch goes on with the others.
  for (const f of files) {
    try {
      fixtures.push(loadFixture(f));
    } catch (e) {
      const message = isFileError(e)
        ? (e as Error).message
        : `${f}: the loader failed on this file (${(e as Error)?.name}: ${(e as Error)?.message})`;
      fileErrors.push({ source: f, message });
    }
  }

  const names = o.backend === 'all' ? backendNames() : [o.backend];
  const reports: CaseReport[] = [];
  const unavailable: { backend: string; reason: string }[] = [];
  const cwd = process.cwd();
  for (const name of names) {
    const entry: BackendEntry = getBackendEntry(name);
    let backend: CaseBackend;
    try {
      backend = await entry.create();
    } catch (e) {
      const reason = e instanceof BackendUnavailable ? e.message : `failed to start: ${(e as Error).stack ?? e}`;
      unavailable.push({ backend: name, reason });
      continue;
    }
    try {
      for (const f of fixtures) {
        const r = await runFixture(f, backend, { preset: o.preset ?? entry.preset, overrides: entry.overrides });
        r.source = relative(cwd, f.source) || f.source;
        reports.push(r);
      }
    } finally {
      await backend.dispose?.();
    }
  }

  const failed = reports.filter((r) => !r.pass && (!r.unsupported || o.strict));
  const unsupported = reports.filter((r) => r.unsupported);
  // A single named backend that cannot run is a "cannot be used" error; under --backend all it is reported.
  const backendError = o.backend !== 'all' && unavailable.length > 0;
  const exitCode = fileErrors.length > 0 || backendError ? 2 : failed.length > 0 ? 1 : 0;

  if (o.json) {
    console.log(
      JSON.stringify({ exitCode, fileErrors, unavailable, reports }, (_k, v) => (v === Infinity ? 'Infinity' : v), 2),
    );
    return exitCode;
  }
  if (reports.length > 0) console.log(formatReports(reports, { failuresOnly: o.failures }));
  for (const e of fileErrors) console.error(`monet check: cannot use ${e.message}`);
  for (const u of unavailable) console.error(`monet check: backend '${u.backend}' unavailable: ${u.reason}`);
  for (const name of names) {
    const rs = reports.filter((r) => r.backend === name);
    if (!rs.length) continue;
    const pass = rs.filter((r) => r.pass).length;
    const fails = rs.filter((r) => !r.pass && !r.unsupported);
    const uns = rs.filter((r) => r.unsupported).length;
    let line = `${name}: ${rs.length} fixtures, ${pass} passed, ${fails.length} failed, ${uns} unsupported`;
    if (fails.length) {
      const what = fails.map(
        (r) =>
          `${r.source} (${
            r.error
              ? 'backend threw'
              : r.tensors
                  .filter((t) => t.status === 'fail')
                  .map((t) => t.name)
                  .join(', ')
          })`,
      );
      line += `\n  failed: ${what.join('\n          ')}`;
    }
    console.log(line);
  }
  if (unsupported.length && o.strict)
    console.log(`--strict: ${unsupported.length} unsupported cases count as failures`);
  if (fileErrors.length) console.log(`${fileErrors.length} file(s) could not be used (see above)`);
  console.log(exitCode === 0 ? 'check: PASS' : `check: FAIL (exit ${exitCode})`);
  return exitCode;
}

export default check;
