// The checkpoint half of the reliability fuzz (docs/robustness.md): a seeded run of mutated run-folder files —
// model.safetensors, trainer_state.safetensors, config.json, run.json — through every reader a user reaches them
// with, checking that
//   - no damaged file still loads: a file whose bytes changed is refused (loaded only if its bytes are unchanged);
//   - nothing crashes: every refusal is an Error naming the damaged file, never a RangeError / TypeError or a stack;
//   - nothing hangs: each case's time is recorded (the longest is reported; over 10 s is a failure);
//   - through the CLI (a sample of the cases as child processes: monet eval, monet train --resume): every exit code
//     is 0, 1 or 2, stderr holds no stack trace, and exit 0 only when the file was not damaged or is one the
//     command does not read (eval does not read the trainer state).
//
//   node --import tsx --import ./src/backend/webgpu/register-wgsl.mjs bench/fuzz-checkpoints.ts \
//     [--cases 10000] [--cli-every 50] [--seed 1]
//
// Not part of npm test (about a minute per 10,000 in-process cases plus ~1.5 s per CLI case on 2 cores); it prints
// the counts and exits 1 on any failure.

import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel, loadTrainerState, recoverCheckpoint } from '../src/train/checkpoint.ts';
import { parseFlags } from '../src/train/flags.ts';
import { resolveModel, resolveTrainOptions, TRAIN_FLAGS, type TrainOptions } from '../src/train/options.ts';
import { readRunJson } from '../src/train/run.ts';
import { openResume, train } from '../src/train/trainer.ts';

const ROOT = join(import.meta.dirname, '..');
const FILES = ['model.safetensors', 'trainer_state.safetensors', 'config.json', 'run.json'] as const;

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return def;
  const v = Number(process.argv[i + 1]);
  if (!Number.isSafeInteger(v) || v < 0) throw new Error(`--${name} expects an integer ≥ 0`);
  return v;
}

/** xorshift32: small, seeded, enough for picking mutations. */
function rng(seed: number) {
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
  return {
    int: (n: number) => Math.floor(next() * n),
    pick: <T>(a: readonly T[]): T => a[Math.floor(next() * a.length)],
    next,
  };
}
type Rng = ReturnType<typeof rng>;

/** One mutation of a file's bytes, and what it was. JSON-aware ones keep the file parseable (a forged edit). */
function mutate(r: Rng, b: Uint8Array, json: boolean): { out: Uint8Array; what: string } {
  const out = Uint8Array.from(b);
  const headerEnd = json
    ? b.length
    : Math.min(b.length, 8 + Number(new DataView(b.buffer, b.byteOffset).getBigUint64(0, true)));
  const kinds = ['flip', 'byte', 'truncate', 'insert', 'delete', 'header-byte', 'swap', 'digit', 'text'];
  const kind = r.pick(kinds);
  const at = r.int(b.length);
  switch (kind) {
    case 'flip':
      out[at] ^= 1 << r.int(8);
      return { out, what: `bit flip at ${at}` };
    case 'byte':
      out[at] = r.int(256);
      return { out, what: `byte ${at} set to ${out[at]}` };
    case 'truncate':
      return { out: b.subarray(0, at), what: `cut to ${at} bytes` };
    case 'insert': {
      const n = 1 + r.int(16);
      const ins = Uint8Array.from({ length: n }, () => r.int(256));
      return {
        out: Uint8Array.from([...b.subarray(0, at), ...ins, ...b.subarray(at)]),
        what: `${n} bytes inserted at ${at}`,
      };
    }
    case 'delete': {
      const n = 1 + r.int(16);
      return {
        out: Uint8Array.from([...b.subarray(0, at), ...b.subarray(at + n)]),
        what: `${n} bytes deleted at ${at}`,
      };
    }
    case 'header-byte': {
      const h = r.int(headerEnd);
      out[h] = r.pick([0x20, 0x22, 0x2c, 0x30, 0x31, 0x39, 0x3a, 0x5b, 0x5d, 0x7b, 0x7d, 0x2d, 0x65, 0x2e]);
      return { out, what: `header byte ${h} set to '${String.fromCharCode(out[h])}'` };
    }
    case 'swap': {
      const a = r.int(b.length);
      const c = r.int(b.length);
      [out[a], out[c]] = [out[c], out[a]];
      return { out, what: `bytes ${a} and ${c} swapped` };
    }
    case 'digit': {
      // a digit in the text part (a step, a size, an option, a checksum digit) changed to another digit
      const digits: number[] = [];
      for (let i = 0; i < headerEnd; i++) if (b[i] >= 0x30 && b[i] <= 0x39) digits.push(i);
      if (digits.length === 0) return { out, what: 'no digit to change' };
      const d = r.pick(digits);
      out[d] = 0x30 + ((b[d] - 0x30 + 1 + r.int(9)) % 10);
      return { out, what: `digit at ${d} changed to ${String.fromCharCode(out[d])}` };
    }
    default: {
      // a letter in the text part (a key, a name, a format string) changed
      const letters: number[] = [];
      for (let i = 0; i < headerEnd; i++) if (b[i] >= 0x61 && b[i] <= 0x7a) letters.push(i);
      if (letters.length === 0) return { out, what: 'no letter to change' };
      const l = r.pick(letters);
      out[l] = 0x61 + ((b[l] - 0x61 + 1 + r.int(25)) % 26);
      return { out, what: `letter at ${l} changed to ${String.fromCharCode(out[l])}` };
    }
  }
}

const sameBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && Buffer.from(a).equals(Buffer.from(b));

/** Everything a resume and sample/eval read, without training: the readers `monet train --resume` and openRun use. */
function readAll(dir: string, o: TrainOptions): void {
  recoverCheckpoint(dir);
  const ck = loadModel(dir);
  loadTrainerState(dir, ck.config);
  readRunJson(dir);
  openResume({ ...o, steps: o.steps + 10 }, () => {});
}

async function main(): Promise<number> {
  const cases = arg('cases', 10000);
  const cliEvery = arg('cli-every', 50);
  const seed = arg('seed', 1);
  const t0 = performance.now();
  const root = mkdtempSync(join(tmpdir(), 'monet-fuzz-ckpt-'));
  try {
    const text = join(root, 'text.txt');
    writeFileSync(text, Array.from({ length: 300 }, (_, i) => `fuzz the folder ${i % 11}.`).join('\n'));
    const argv = [
      ...['--preset', 'tiny', '--backend', 'reference', '--data', text, '--runs-dir', root, '--name', 'base'],
      ...['--batch-size', '2', '--seq-len', '16', '--steps', '2', '--eval-batches', '1', '--sample-tokens', '0'],
    ];
    const f = parseFlags('train', TRAIN_FLAGS, argv);
    const { preset, config } = resolveModel(f);
    const o = resolveTrainOptions(f, preset, 'base');
    await train(o, config, false, { out: { write: () => true } });
    const base = join(root, 'base');
    const work = join(root, 'work');
    cpSync(base, work, { recursive: true });
    const original = new Map(FILES.map((n) => [n, new Uint8Array(readFileSync(join(base, n)))]));
    const r = rng(seed);
    const tally = {
      cases: 0,
      unchanged: 0,
      refused: 0,
      damagedButLoaded: 0,
      crashes: 0,
      unnamed: 0,
      cli: 0,
      cliBadExit: 0,
      cliStack: 0,
      cliDamagedExit0: 0,
    };
    const perFile = Object.fromEntries(FILES.map((n) => [n, 0]));
    const failures: string[] = [];
    const fail = (what: string) => {
      failures.push(what);
      console.log(`FAIL ${what}`);
    };
    let slowest = { ms: 0, what: '' };
    const wo = { ...o, runsDir: root, name: 'work' };
    for (let i = 0; i < cases; i++) {
      const file = r.pick(FILES);
      const bytes = original.get(file)!;
      const m = mutate(r, bytes, file.endsWith('.json'));
      tally.cases++;
      perFile[file]++;
      // the folder back to the original, then one damaged file (the resume reader rewrites log.jsonl)
      rmSync(work, { recursive: true, force: true });
      cpSync(base, work, { recursive: true });
      writeFileSync(join(work, file), m.out);
      const changed = !sameBytes(m.out, bytes);
      if (!changed) tally.unchanged++;
      const label = `case ${i} (${file}: ${m.what})`;
      const t = performance.now();
      try {
        readAll(work, wo);
        if (changed) {
          tally.damagedButLoaded++;
          fail(`${label}: the damaged file loaded`);
        }
      } catch (e) {
        const err = e as Error;
        if (!(err instanceof Error) || err.name === 'RangeError' || err.name === 'TypeError') {
          tally.crashes++;
          fail(`${label}: ${err?.name}: ${String(err?.message).slice(0, 200)}`);
        } else if (!err.message.includes(file)) {
          tally.unnamed++;
          fail(`${label}: the error does not name ${file}: ${err.message.slice(0, 200)}`);
        } else tally.refused++;
        if (!changed) fail(`${label}: an undamaged folder was refused: ${err.message.slice(0, 200)}`);
      }
      const ms = performance.now() - t;
      if (ms > slowest.ms) slowest = { ms, what: label };
      if (ms > 10_000) fail(`${label}: took ${(ms / 1000).toFixed(1)} s`);
      if (cliEvery > 0 && i % cliEvery === 0) {
        tally.cli++;
        const cmd =
          i % (2 * cliEvery) === 0
            ? ['eval', '--checkpoint', work, '--backend', 'reference']
            : ['train', '--runs-dir', root, '--name', 'work', '--resume', '--steps', '3', '--backend', 'reference'];
        const c = spawnSync(process.execPath, [join(ROOT, 'bin/monet.mjs'), ...cmd], {
          cwd: ROOT,
          encoding: 'utf8',
          timeout: 120_000,
        });
        if (c.status === null || ![0, 1, 2].includes(c.status)) {
          tally.cliBadExit++;
          fail(`${label}: monet ${cmd[0]} exited ${c.status} (signal ${c.signal})`);
        }
        if (/^\s+at .+[:(]/m.test(c.stderr)) {
          tally.cliStack++;
          fail(`${label}: monet ${cmd[0]} printed a stack trace:\n${c.stderr.slice(0, 400)}`);
        }
        // monet eval reads config.json, model.safetensors and run.json; the trainer state only matters to a resume
        const reads = cmd[0] === 'train' || file !== 'trainer_state.safetensors';
        if (c.status === 0 && changed && reads) {
          tally.cliDamagedExit0++;
          fail(`${label}: monet ${cmd[0]} exited 0 on a damaged file`);
        }
      }
      if ((i + 1) % 1000 === 0) console.log(`${i + 1} cases, ${failures.length} failures`);
    }
    const seconds = (performance.now() - t0) / 1000;
    console.log(JSON.stringify({ seed, ...tally, perFile, slowestMs: Math.round(slowest.ms), seconds }, null, 1));
    console.log(`slowest: ${slowest.what} (${slowest.ms.toFixed(0)} ms)`);
    console.log(
      failures.length === 0
        ? `PASS: ${tally.cases} mutated files (${tally.cases - tally.unchanged} damaged), every damaged one refused ` +
            `naming the file; ${tally.cli} through the CLI with exit codes in {0, 1, 2} and no stack trace`
        : `FAIL: ${failures.length} problems`,
    );
    return failures.length === 0 ? 0 : 1;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

process.exitCode = await main();
