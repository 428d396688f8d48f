// Ctrl-C and a closed output, with real child processes and real signals:
//   - SIGINT during `monet train` on the reference, WASM and WebGPU backends (whose synchronous steps never return
//     to the event loop on their own) stops the run after the step: checkpoint written, where it is said, exit 130,
//     and --resume continues from it;
//   - a second SIGINT exits at once (130) without writing the checkpoint of the step in flight;
//   - a reader that goes away (`monet check fixtures | head -1`, `--list-presets | head -1`) ends the command
//     quietly with exit 1 and no stack trace; `monet train` writing into a closed pipe stops like Ctrl-C, with a
//     checkpoint, exit 1.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTrainerState } from '../src/train/checkpoint.ts';
import { getPreset } from '../src/train/presets.ts';
import { testUnless } from './skip.ts';
import { gpuMissing } from './webgpu-setup.ts';

const ROOT = join(import.meta.dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'monet-interrupt-'));
const textFile = join(dir, 'text.txt');
writeFileSync(textFile, Array.from({ length: 400 }, (_, i) => `the owl and the pussycat ${i % 9}.`).join('\n'));
const tiny = getPreset('tiny').config;

interface Child {
  p: ChildProcess;
  out: () => string;
  err: () => string;
  exit: Promise<number | null>;
  /** Resolves once stdout + stderr match `re`. */
  waitFor: (re: RegExp) => Promise<void>;
}

function monet(args: string[], opts: { closeStdout?: boolean } = {}): Child {
  const p = spawn(process.execPath, [join(ROOT, 'bin/monet.mjs'), ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const waiters: { re: RegExp; resolve: () => void }[] = [];
  const check = () => {
    for (const w of [...waiters])
      if (w.re.test(out + err)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
  };
  // Closing our end of the pipe before the child writes anything: its first write fails with EPIPE.
  if (opts.closeStdout) p.stdout.destroy();
  else
    p.stdout.on('data', (d) => {
      out += d;
      check();
    });
  p.stderr.on('data', (d) => {
    err += d;
    check();
  });
  // A child that ignores its signals would run 100,000 steps: it is killed after a minute, and the test fails.
  const watchdog = setTimeout(() => p.kill('SIGKILL'), 60_000);
  const exit = new Promise<number | null>((resolve) =>
    p.on('close', (code) => {
      clearTimeout(watchdog);
      resolve(code);
    }),
  );
  return {
    p,
    out: () => out,
    err: () => err,
    exit,
    waitFor: (re) =>
      new Promise<void>((resolve, reject) => {
        waiters.push({ re, resolve });
        check();
        exit.then(() => reject(new Error(`exited before printing ${re}:\n${out}\n${err}`)));
      }),
  };
}

const trainArgs = (name: string, backend: string, extra: string[] = []) => [
  'train',
  '--preset',
  'tiny',
  '--backend',
  backend,
  '--data',
  textFile,
  '--runs-dir',
  dir,
  '--name',
  name,
  '--steps',
  '100000',
  '--batch-size',
  '4',
  '--seq-len',
  '16',
  '--eval-every',
  '100000',
  '--eval-batches',
  '1',
  '--save-every',
  '100000',
  '--sample-tokens',
  '0',
  ...extra,
];

/**
 * No stack trace: no "    at …" frame and no Node error banner. Dawn's own warnings on stderr (a Vulkan library it
 * cannot load, with the C++ source line) are not ours and are left out.
 */
function assertNoStack(stderr: string, what: string): void {
  const text = stderr
    .split('\n')
    .filter((l) => !/third_party\/dawn|^Warning: /.test(l))
    .join('\n');
  assert.not.match(text, /^\s+at .+[:(]/m, `${what}: stack trace in\n${text}`);
  assert.not.match(text, /node:internal|Error \[ERR_|Unhandled|triggerUncaughtException/, `${what}:\n${text}`);
}

const noGpu = await gpuMissing();
for (const backend of ['reference', 'wasm', 'webgpu']) {
  const register = backend === 'webgpu' ? testUnless(noGpu) : test;
  register(`Ctrl-C on ${backend}: the step finishes, a checkpoint is written and named, exit 130`, async () => {
    const name = `int-${backend}`;
    const c = monet(trainArgs(name, backend, ['--log-every', '1']));
    await c.waitFor(/step [1-9]\d*\/100000/);
    c.p.kill('SIGINT');
    const code = await c.exit;
    assert.is(code, 130, c.out() + c.err());
    assert.match(c.err(), /interrupt: finishing this step and writing a checkpoint/);
    const m = /interrupted at step (\d+) of 100000: checkpoint of step \1 written to (\S+);/.exec(c.out());
    assert.ok(m, c.out());
    assert.is(m![2], join(dir, name));
    assert.match(c.out(), new RegExp(`continue with: monet train --resume --name ${name} --runs-dir`));
    assert.is(loadTrainerState(join(dir, name), tiny).step, Number(m![1]));
    assert.not.ok(existsSync(join(dir, name, 'train.lock')), 'the lock is released');
    assertNoStack(c.err(), backend);
    if (backend === 'wasm') {
      // and the run continues from there
      const r = monet(trainArgs(name, backend, ['--resume', '--steps', String(Number(m![1]) + 2)]));
      assert.is(await r.exit, 0, r.out() + r.err());
      assert.match(r.out(), new RegExp(`resuming \\S+ at step ${m![1]}`));
    }
  });
}

test('a second Ctrl-C exits at once (130), without the checkpoint of the step in flight', async () => {
  // Steps of about a second (reference backend, 64 × 16 tokens × 8 micro-batches) read back only at the start:
  // after the first SIGINT the loop runs one more step to read its result, and the second SIGINT lands in it.
  const c = monet(
    trainArgs('twice', 'reference', ['--batch-size', '64', '--grad-accum', '8', '--log-every', '100000']),
  );
  await c.waitFor(/step 0: validation CE/);
  await new Promise((r) => setTimeout(r, 1500));
  c.p.kill('SIGINT');
  await c.waitFor(/interrupt: finishing this step/);
  c.p.kill('SIGINT');
  assert.is(await c.exit, 130, c.out() + c.err());
  assert.match(c.err(), /interrupt again: quitting at once/);
  assert.not.match(c.out(), /checkpoint of step \d+ written/);
  assert.not.ok(existsSync(join(dir, 'twice', 'trainer_state.safetensors')), 'no checkpoint was written');
  assert.not.ok(existsSync(join(dir, 'twice', 'train.lock')), 'the lock is released on exit');
  assertNoStack(c.err(), 'second Ctrl-C');
});

test('a closed output (EPIPE): check and --list-presets stop quietly with exit 1, no stack trace', async () => {
  for (const args of [['check', 'fixtures'], ['train', '--list-presets'], ['help']]) {
    const c = monet(args, { closeStdout: true });
    assert.is(await c.exit, 1, `${args.join(' ')}: ${c.err()}`);
    assert.is(c.err(), '', `${args.join(' ')} printed to stderr`);
  }
});

test('monet train into a closed output stops like Ctrl-C: checkpoint written, exit 1', async () => {
  const c = monet(trainArgs('epipe', 'wasm', ['--log-every', '1']), { closeStdout: true });
  assert.is(await c.exit, 1, c.err());
  assertNoStack(c.err(), 'train EPIPE');
  const st = loadTrainerState(join(dir, 'epipe'), tiny);
  assert.ok(st.step >= 1 && st.step < 100000, `checkpoint at step ${st.step}`);
});

test.after(() => rmSync(dir, { recursive: true, force: true }));

test.run();
