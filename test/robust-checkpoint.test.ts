// Safe checkpoints: checksums verified on load, a failed write (disk full, permission denied — injected through
// src/train/atomic.ts fsOps, since a read-only folder refuses nothing to root) leaves the previous checkpoint intact
// and no partial file, a crash between the two renames of a commit is finished or rolled back on resume, and an
// inconsistent or damaged checkpoint is refused with a message that names the file.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fsOps, readJsonl } from '../src/train/atomic.ts';
import {
  CheckpointWriteError,
  loadModel,
  loadTrainerState,
  recoverCheckpoint,
  saveCheckpoint,
  type HostParams,
} from '../src/train/checkpoint.ts';
import { initParams } from '../src/train/init.ts';
import { getPreset } from '../src/train/presets.ts';
import { SafetensorsError } from '../src/safetensors.ts';
import { parseFlags } from '../src/train/flags.ts';
import { resolveModel, resolveTrainOptions, TRAIN_FLAGS } from '../src/train/options.ts';
import { train } from '../src/train/trainer.ts';

const root = mkdtempSync(join(tmpdir(), 'monet-ckpt-'));
const config = getPreset('tiny').config;
const ORIGINAL = { ...fsOps };

function restoreFs(): void {
  Object.assign(fsOps, ORIGINAL);
}

/** A checkpoint of the tiny model at `step` whose values depend on the step (so two steps differ). */
function save(dir: string, step: number): void {
  const { params, state } = initParams(config, step);
  const m: HostParams = new Map([...params].map(([k, v]) => [k, v.map((x) => x * 0.1)]));
  const v: HostParams = new Map([...params].map(([k, a]) => [k, a.map((x) => x * x)]));
  saveCheckpoint(dir, config, 'bytes', params, state, {
    step,
    sampler: { rng: [1, 2, 3, step], batches: step },
    info: {},
    m,
    v,
  });
}

function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of readdirSync(dir).sort()) out[n] = readFileSync(join(dir, n)).toString('base64');
  return out;
}

function fresh(name: string): string {
  const d = join(root, name);
  mkdirSync(d, { recursive: true });
  return d;
}

const errno = (code: string, msg: string) => Object.assign(new Error(`${code}: ${msg}`), { code });

test('checksums: a flipped bit in either file is found on load, naming the file', () => {
  const d = fresh('crc');
  save(d, 1);
  const ck = loadModel(d);
  assert.match(ck.checksum!, /^crc32:[0-9a-f]{8}$/);
  assert.is(loadTrainerState(d, config).modelChecksum, ck.checksum, 'the trainer state names its model');
  for (const file of ['model.safetensors', 'trainer_state.safetensors']) {
    const p = join(d, file);
    const good = readFileSync(p);
    const bad = Buffer.from(good);
    bad[bad.length - 3] ^= 0x10; // a bit in the last tensor's bytes: the container is still well-formed
    writeFileSync(p, bad);
    const load = () => (file === 'model.safetensors' ? loadModel(d) : loadTrainerState(d, config));
    assert.throws(
      load,
      (e: Error) =>
        e instanceof SafetensorsError &&
        e.message.startsWith(p) &&
        /checksum mismatch/.test(e.message) &&
        /damaged/.test(e.message),
    );
    writeFileSync(p, good);
    load();
  }
});

test('a truncated checkpoint is refused with a clear error naming the file', () => {
  const d = fresh('cut');
  save(d, 1);
  const p = join(d, 'model.safetensors');
  const good = readFileSync(p);
  for (const n of [0, 5, 100, good.length - 1]) {
    writeFileSync(p, good.subarray(0, n));
    assert.throws(
      () => loadModel(d),
      (e: Error) => e instanceof SafetensorsError && e.message.startsWith(p) && /truncated|expected/.test(e.message),
      `cut to ${n}`,
    );
  }
});

test('disk full while writing: CheckpointWriteError, the previous checkpoint byte-identical, no partial file', () => {
  const d = fresh('enospc');
  save(d, 1);
  const before = snapshot(d);
  // Fail the third write call: the new config.json and part of the model get through, then the disk is full.
  let calls = 0;
  fsOps.writeSync = (fd, buf, off, len) => {
    if (++calls === 3) throw errno('ENOSPC', 'no space left on device, write');
    return ORIGINAL.writeSync(fd, buf, off, Math.min(len, 4096));
  };
  try {
    assert.throws(
      () => save(d, 2),
      (e: Error) =>
        e instanceof CheckpointWriteError &&
        /checkpoint of step 2 not written/.test(e.message) &&
        /the disk is full/.test(e.message) &&
        /previous checkpoint in .* is intact/.test(e.message),
    );
  } finally {
    restoreFs();
  }
  assert.equal(snapshot(d), before, 'every file of the previous checkpoint unchanged, nothing added');
  assert.is(loadTrainerState(d, config).step, 1);
});

test('permission denied: the same, for a refused open', () => {
  const d = fresh('eacces');
  save(d, 1);
  const before = snapshot(d);
  fsOps.openSync = ((p: string, flags: string) => {
    if (String(p).includes('model.safetensors')) throw errno('EACCES', `permission denied, open '${p}'`);
    return ORIGINAL.openSync(p, flags);
  }) as typeof fsOps.openSync;
  try {
    assert.throws(
      () => save(d, 2),
      (e: Error) =>
        e instanceof CheckpointWriteError && /no permission to write there/.test(e.message) && /intact/.test(e.message),
    );
  } finally {
    restoreFs();
  }
  assert.equal(snapshot(d), before);
});

test('crash between the two renames of a commit: resume finishes it (roll forward)', () => {
  const d = fresh('rollforward');
  save(d, 1);
  fsOps.renameSync = (a, b) => {
    if (String(a).endsWith('.model.safetensors.pending') && String(b).endsWith('model.safetensors'))
      throw errno('EIO', 'simulated crash');
    return ORIGINAL.renameSync(a, b);
  };
  try {
    assert.throws(() => save(d, 2), /trainer state is committed and a --resume completes the model file/);
  } finally {
    restoreFs();
  }
  // Now trainer_state is step 2 and model.safetensors still step 1: inconsistent until recovered.
  assert.is(loadTrainerState(d, config).step, 2);
  assert.is.not(loadModel(d).checksum, loadTrainerState(d, config).modelChecksum);
  assert.match(recoverCheckpoint(d)!, /finished an interrupted checkpoint commit/);
  assert.is(loadModel(d).checksum, loadTrainerState(d, config).modelChecksum);
  assert.is(loadModel(d).step, 2);
  assert.equal(
    readdirSync(d).filter((n) => n.startsWith('.')),
    [],
  );
  assert.is(recoverCheckpoint(d), null, 'nothing left to do');
});

test('the very first commit interrupted between its renames: sample/eval say so, resume finishes it', () => {
  const d = fresh('first');
  fsOps.renameSync = (a, b) => {
    if (String(a).endsWith('.model.safetensors.pending')) throw errno('EIO', 'simulated crash');
    return ORIGINAL.renameSync(a, b);
  };
  try {
    assert.throws(() => save(d, 1));
  } finally {
    restoreFs();
  }
  assert.throws(
    () => loadModel(d),
    new RegExp(
      String.raw`model\.safetensors does not exist yet: the commit of the run's first checkpoint was interrupted; ` +
        'monet train --resume finishes it',
    ),
  );
  assert.match(recoverCheckpoint(d)!, /finished an interrupted checkpoint commit/);
  assert.is(loadModel(d).step, 1);
});

test('a refused commit rename removes both pending files; a kill before the commit point rolls back', () => {
  const d = fresh('rollback');
  save(d, 1);
  const before = snapshot(d);
  fsOps.renameSync = (a, b) => {
    if (String(a).endsWith('.trainer_state.safetensors.pending')) throw errno('EACCES', 'permission denied, rename');
    return ORIGINAL.renameSync(a, b);
  };
  try {
    assert.throws(() => save(d, 2), /checkpoint of step 2 not committed: .*The previous checkpoint in .* is intact/);
  } finally {
    restoreFs();
  }
  assert.equal(snapshot(d), before, 'nothing left behind');
  // What a SIGKILL before the commit point leaves: both pending files (the model one half written) and a temp file.
  const other = fresh('rollback-src');
  save(other, 2);
  writeFileSync(join(d, '.model.safetensors.pending'), readFileSync(join(other, 'model.safetensors')).subarray(0, 999));
  writeFileSync(join(d, '.trainer_state.safetensors.pending'), readFileSync(join(other, 'trainer_state.safetensors')));
  writeFileSync(join(d, '.run.json.99999.tmp'), '{"half');
  const did = recoverCheckpoint(d)!;
  assert.match(did, /removed an uncommitted pending model file/);
  assert.match(did, /removed \.trainer_state\.safetensors\.pending/);
  assert.match(did, /removed \.run\.json\.99999\.tmp/);
  assert.equal(snapshot(d), before);
  assert.is(loadModel(d).checksum, loadTrainerState(d, config).modelChecksum);
});

// ---- through the training loop

const textFile = join(root, 'text.txt');
writeFileSync(textFile, Array.from({ length: 200 }, (_, i) => `one two three ${i % 3}.`).join('\n'));
function setup(name: string, extra: string[] = []) {
  const f = parseFlags('train', TRAIN_FLAGS, [
    '--preset',
    'tiny',
    '--backend',
    'reference',
    '--data',
    textFile,
    '--runs-dir',
    root,
    '--batch-size',
    '2',
    '--seq-len',
    '16',
    '--eval-every',
    '100',
    '--eval-batches',
    '1',
    '--log-every',
    '1',
    '--sample-tokens',
    '0',
    '--steps',
    '6',
    '--save-every',
    '2',
    '--name',
    name,
    ...extra,
  ]);
  const { preset, config: c } = resolveModel(f);
  return { o: resolveTrainOptions(f, preset, name), config: c };
}
const quiet = { write: () => true, isTTY: false };

test("disk full at a run's second checkpoint: it stops naming the intact one; --resume completes it", async () => {
  const { o, config: c } = setup('full-disk');
  let models = 0;
  fsOps.openSync = ((p: string, flags: string) => {
    if (String(p).includes('.model.safetensors.pending') && ++models === 2)
      throw errno('ENOSPC', `no space left on device, open '${p}'`);
    return ORIGINAL.openSync(p, flags);
  }) as typeof fsOps.openSync;
  let err: Error | null = null;
  try {
    await train(o, c, false, { out: quiet });
  } catch (e) {
    err = e as Error;
  } finally {
    restoreFs();
  }
  assert.ok(err);
  assert.match(err!.message, /checkpoint of step 4 not written: cannot write .*\(the disk is full\)/);
  assert.match(err!.message, /The previous checkpoint in .* is intact/);
  const d = join(root, 'full-disk');
  assert.equal(
    readdirSync(d).filter((n) => n.startsWith('.')),
    [],
    'no partial file left',
  );
  assert.is(loadTrainerState(d, c).step, 2);
  await train(o, c, true, { out: quiet });
  const steps = readJsonl<{ step: number; loss?: number }>(join(d, 'log.jsonl'))
    .records.filter((r) => typeof r.loss === 'number')
    .map((r) => r.step);
  assert.equal(steps, [1, 2, 3, 4, 5, 6]);
});

test('resume refuses a checkpoint whose model and trainer state are from different steps', async () => {
  const { o, config: c } = setup('mixed');
  await train(o, c, false, { out: quiet });
  const d = join(root, 'mixed');
  const other = fresh('mixed-copy');
  cpSync(d, other, { recursive: true });
  // Overwrite the model with another valid model file (step 1 of a different checkpoint).
  save(other, 1);
  cpSync(join(other, 'model.safetensors'), join(d, 'model.safetensors'));
  let msg = '';
  await train({ ...o, steps: 8 }, c, true, { out: quiet }).catch((e: Error) => (msg = e.message));
  assert.match(
    msg,
    new RegExp(
      String.raw`trainer_state\.safetensors \(step 6\) was saved with model crc32:[0-9a-f]{8}, ` +
        String.raw`but model\.safetensors is crc32:[0-9a-f]{8} \(step 1\); the checkpoint is inconsistent`,
    ),
  );
});

test('a log cut off mid-line by a kill: the partial last line is dropped, a damaged middle line is an error', () => {
  const p = join(root, 'log.jsonl');
  writeFileSync(p, '{"step":1,"loss":2}\n{"step":2,"loss":1.5}\n{"step":3,"lo');
  const r = readJsonl<{ step: number }>(p);
  assert.equal(
    r.records.map((x) => x.step),
    [1, 2],
  );
  assert.ok(r.droppedPartialLine);
  writeFileSync(p, '{"step":1}\n{"st\n{"step":3}\n');
  assert.throws(() => readJsonl(p), /log\.jsonl: line 2 is not valid JSON/);
  assert.ok(existsSync(p));
});

test.after(() => {
  restoreFs();
  rmSync(root, { recursive: true, force: true });
});

test.run();
