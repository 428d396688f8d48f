// The run folder is the user's: `--force` replaces a run's own files and nothing else, two trainers never share a
// folder (a lock naming the holder's PID; a dead holder's lock is taken over), a full disk is reported with the
// file it hit and never claims a checkpoint that does not exist, and numeric flags are read in decimal only.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../src/cli/main.ts';
import { fsOps } from '../src/train/atomic.ts';
import { loadTrainerState } from '../src/train/checkpoint.ts';
import { parseFlags } from '../src/train/flags.ts';
import { resolveModel, resolveTrainOptions, TRAIN_FLAGS } from '../src/train/options.ts';
import { getPreset } from '../src/train/presets.ts';
import { train } from '../src/train/trainer.ts';

const ROOT = join(import.meta.dirname, '..');
const runs = mkdtempSync(join(tmpdir(), 'monet-folder-'));
const textFile = join(runs, 'text.txt');
writeFileSync(textFile, Array.from({ length: 300 }, (_, i) => `one two three ${i % 6}.`).join('\n'));
const quiet = { write: () => true, isTTY: false };
const ORIGINAL = { ...fsOps };

const TINY = [
  '--preset',
  'tiny',
  '--backend',
  'reference',
  '--data',
  textFile,
  '--runs-dir',
  runs,
  '--batch-size',
  '2',
  '--seq-len',
  '16',
  '--steps',
  '2',
  '--eval-batches',
  '1',
  '--sample-tokens',
  '0',
];

function setup(name: string, extra: string[] = []) {
  const f = parseFlags('train', TRAIN_FLAGS, [...TINY, '--name', name, ...extra]);
  const { preset, config } = resolveModel(f);
  return { o: resolveTrainOptions(f, preset, name), config };
}

async function trainError(name: string, opts: { resume?: boolean; force?: boolean; extra?: string[] } = {}) {
  const { o, config } = setup(name, opts.extra);
  try {
    await train(o, config, opts.resume ?? false, { out: quiet }, opts.force ?? false);
  } catch (e) {
    return (e as Error).message;
  }
  return null;
}

/** Every entry under `d` (recursively) with its content: to show nothing was touched. */
function snapshot(d: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (p: string, rel: string) => {
    for (const e of readdirSync(p, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(p, e.name), `${rel}${e.name}/`);
      else out[rel + e.name] = readFileSync(join(p, e.name), 'base64');
    }
  };
  walk(d, '');
  return out;
}

test('--force on a folder that never held a run: refused, naming what would be lost; nothing deleted', async () => {
  const d = join(runs, 'important');
  mkdirSync(join(d, 'sub'), { recursive: true });
  writeFileSync(join(d, 'thesis.txt'), 'three years of work');
  writeFileSync(join(d, 'sub', 'data.csv'), '1,2,3');
  const before = snapshot(d);
  for (const force of [true, false]) {
    const msg = await trainError('important', { force });
    assert.ok(msg, `force=${force}: the run went ahead`);
    assert.match(msg!, /important exists and is not a run folder/);
    assert.match(msg!, /it holds (sub\/, thesis\.txt|thesis\.txt, sub\/)/);
    assert.match(msg!, force ? /which --force would delete/ : /must not mix with or overwrite/);
  }
  assert.equal(snapshot(d), before);
});

test('--force on a Hugging Face style folder (config.json + model.safetensors, no monet marker): refused', async () => {
  const d = join(runs, 'hf');
  mkdirSync(d);
  writeFileSync(join(d, 'config.json'), '{"model_type": "llama"}');
  writeFileSync(join(d, 'model.safetensors'), 'weights');
  const before = snapshot(d);
  const msg = await trainError('hf', { force: true });
  assert.match(msg ?? '', /hf exists and is not a run folder .* it holds (config\.json, model\.safetensors|model)/);
  assert.equal(snapshot(d), before);
});

test('--force replaces a run: its own files only; a file monet did not write stops it, named', async () => {
  const { o, config } = setup('mine');
  await train(o, config, false, { out: quiet });
  const d = join(runs, 'mine');
  writeFileSync(join(d, 'inspect-units.html'), '<p>report of the old model</p>');
  writeFileSync(join(d, 'notes.txt'), 'my notes on this run');
  mkdirSync(join(d, 'plots'));
  const before = snapshot(d);
  const msg = await trainError('mine', { force: true });
  assert.match(msg ?? '', /run folder \S+mine holds files that monet train did not write \((notes\.txt|plots\/)/);
  assert.match(msg!, /notes\.txt/);
  assert.match(msg!, /plots\//);
  assert.match(msg!, /--force replaces only a run’s own files and would delete them/);
  assert.equal(snapshot(d), before, 'nothing changed');
  rmSync(join(d, 'notes.txt'));
  rmSync(join(d, 'plots'), { recursive: true });
  const oldModel = readFileSync(join(d, 'model.safetensors'));
  // the replacement differs from the old run (another seed), and the old run's report is gone with it
  const again = setup('mine', ['--seed', '99']);
  await train(again.o, again.config, false, { out: quiet }, true);
  assert.not.ok(existsSync(join(d, 'inspect-units.html')));
  assert.not.equal(readFileSync(join(d, 'model.safetensors')), oldModel);
  assert.equal(readdirSync(d).sort(), [
    'config.json',
    'log.jsonl',
    'loss.svg',
    'model.safetensors',
    'run.json',
    'trainer_state.safetensors',
  ]);
});

test('two trainers, one folder: the second names the first one’s PID; a dead holder’s lock is taken over', async () => {
  const name = 'locked';
  const child = spawn(
    process.execPath,
    [join(ROOT, 'bin/monet.mjs'), 'train', ...TINY, '--name', name, '--backend', 'wasm', '--steps', '100000'],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout.on('data', (x) => (out += x));
  child.stderr.on('data', (x) => (out += x));
  const closed = new Promise((r) => child.on('close', r));
  const watchdog = setTimeout(() => child.kill('SIGKILL'), 60_000);
  try {
    await new Promise<void>((resolve, reject) => {
      const t = setInterval(() => {
        if (/step \d+\/100000/.test(out)) resolve();
        else if (child.exitCode !== null) reject(new Error(out));
        else return;
        clearInterval(t);
      }, 20);
    });
    const lock = JSON.parse(readFileSync(join(runs, name, 'train.lock'), 'utf8'));
    assert.is(lock.pid, child.pid);
    for (const mode of [{ resume: true }, { force: true }]) {
      const msg = await trainError(name, mode);
      assert.match(
        msg ?? '',
        new RegExp(`run folder \\S+locked is in use by another monet train \\(PID ${child.pid}, since `),
        JSON.stringify(mode),
      );
    }
    child.kill('SIGKILL'); // no chance to release the lock
    await closed;
  } finally {
    clearTimeout(watchdog);
    child.kill('SIGKILL');
  }
  assert.ok(existsSync(join(runs, name, 'train.lock')), 'the killed trainer left its lock');
  // --force may replace the dead trainer's run (its own files and its stale lock)
  const { o, config } = setup(name);
  await train(o, config, false, { out: quiet }, true);
  assert.not.ok(existsSync(join(runs, name, 'train.lock')), 'released at the end');
  assert.is(await trainError(name, { resume: true, extra: ['--steps', '3'] }), null, 'a resume takes the lock again');
});

test('a stale lock of a dead process is replaced, and said so; an unreadable lock is respected', async () => {
  const { o, config } = setup('stale');
  await train(o, config, false, { out: quiet });
  const d = join(runs, 'stale');
  const dead = spawnSync(process.execPath, ['-e', '']).pid; // a process that has exited
  writeFileSync(join(d, 'train.lock'), JSON.stringify({ pid: dead, host: hostname(), started: 'earlier' }));
  const lines: string[] = [];
  await train({ ...o, steps: 3 }, config, true, { out: { write: (s: string) => void lines.push(s), isTTY: false } });
  assert.match(lines.join(''), new RegExp(`removed the stale lock of PID ${dead}, which no longer runs`));
  writeFileSync(join(d, 'train.lock'), 'garbage');
  const msg = await trainError('stale', { resume: true, extra: ['--steps', '4'] });
  assert.match(msg ?? '', /is in use by another monet train \(\S+train\.lock cannot be read\).*delete \S+train\.lock/);
});

test('disk full before step 1: the error names log.jsonl and does not claim a checkpoint', async () => {
  fsOps.appendFileSync = (p: string) => {
    throw Object.assign(new Error(`ENOSPC: no space left on device, write`), { code: 'ENOSPC', path: p });
  };
  let msg: string | null;
  try {
    msg = await trainError('full-log');
  } finally {
    Object.assign(fsOps, ORIGINAL);
  }
  assert.match(msg ?? '', /cannot append to \S+full-log\/log\.jsonl \(the disk is full\)/);
  assert.match(msg!, /no checkpoint had been written yet/);
  assert.not.match(msg!, /intact/);
});

test('disk full at the first checkpoint: no claim of an intact previous checkpoint', async () => {
  fsOps.openSync = ((p: string, flags: string) => {
    if (String(p).includes('.model.safetensors.pending'))
      throw Object.assign(new Error(`ENOSPC: no space left on device, open '${p}'`), { code: 'ENOSPC' });
    return ORIGINAL.openSync(p, flags);
  }) as typeof fsOps.openSync;
  let msg: string | null;
  try {
    msg = await trainError('full-first');
  } finally {
    Object.assign(fsOps, ORIGINAL);
  }
  assert.match(msg ?? '', /checkpoint of step 2 not written: cannot write \S+ \(the disk is full\)/);
  assert.match(msg!, /There is no earlier checkpoint in \S+full-first to resume from/);
  assert.not.match(msg!, /intact/);
});

test('numeric flags: decimal notation only, seeds up to 2^32 − 1 work end to end', async () => {
  const trainFlag = (...argv: string[]) => {
    try {
      parseFlags('train', TRAIN_FLAGS, argv);
    } catch (e) {
      return (e as Error).message;
    }
    return `accepted ${argv.join(' ')}`;
  };
  assert.match(trainFlag('--lr', '0x10'), /--lr expects a positive number, found '0x10' \(numbers are read in decimal/);
  assert.match(trainFlag('--steps', '1e3'), /--steps expects a positive integer, found '1e3' \(an integer is written/);
  assert.match(trainFlag('--clip', 'Infinity'), /--clip expects a number ≥ 0, found 'Infinity'/);
  assert.match(trainFlag('--lr', ' 3'), /--lr expects a positive number, found ' 3'/);
  assert.match(trainFlag('--seed', '4294967296'), /--seed expects an integer in \[0, 4294967295\], found '4294967296'/);
  assert.is(
    trainFlag('--lr', '3e-4', '--warmup', '+5', '--min-lr', '.0001'),
    'accepted --lr 3e-4 --warmup +5 --min-lr .0001',
  );
  const errs: string[] = [];
  const error = console.error;
  console.error = (...a: unknown[]) => void errs.push(a.join(' '));
  try {
    assert.is(await main(['sample', '--checkpoint', 'x', '--temperature', '0b1']), 2);
    assert.is(await main(['demo', '--seed', '0x10']), 2);
  } finally {
    console.error = error;
  }
  assert.match(errs[0], /--temperature expects a number ≥ 0, found '0b1'/);
  assert.match(errs[1], /--seed expects an integer in \[0, 4294967295\] in decimal digits, found '0x10'/);
  const { o, config } = setup('max-seed', ['--seed', '4294967295']);
  const r = await train(o, config, false, { out: quiet });
  assert.is(r.steps, 2);
  assert.is(loadTrainerState(join(runs, 'max-seed'), getPreset('tiny').config).step, 2);
});

test.after(() => rmSync(runs, { recursive: true, force: true }));

test.run();
