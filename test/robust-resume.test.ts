// Exact resume after SIGKILL: `monet train` on the WASM backend is killed twice mid-run (the first time as soon as a
// checkpoint file appears, which can land inside a checkpoint write), resumed each time with --resume, and its
// per-step losses, CE and gradient norms (log.jsonl) must equal those of an uninterrupted run bit for bit: the data
// order, the sampler RNG, the AdamW moments and the BatchNorm statistics all come back from the checkpoint.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..');
const STEPS = 600;
const SAVE_EVERY = 20;

function args(runsDir: string, name: string, extra: string[] = []): string[] {
  return [
    join(ROOT, 'bin/monet.mjs'),
    'train',
    '--preset',
    'tiny',
    '--backend',
    'wasm',
    '--steps',
    String(STEPS),
    '--batch-size',
    '4',
    '--seq-len',
    '16',
    '--eval-every',
    '100',
    '--eval-batches',
    '1',
    '--log-every',
    '1',
    '--save-every',
    String(SAVE_EVERY),
    '--sample-tokens',
    '0',
    '--runs-dir',
    runsDir,
    '--name',
    name,
    '--seed',
    '7',
    ...extra,
  ];
}

interface Done {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
}

/** Run the CLI; if `killWhen` is given, it is polled every 5 ms and the process gets SIGKILL when it returns true. */
function run(argv: string[], killWhen?: () => boolean): Promise<Done> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, argv, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    let timer: NodeJS.Timeout | undefined;
    if (killWhen) {
      timer = setInterval(() => {
        if (killWhen()) {
          clearInterval(timer);
          p.kill('SIGKILL');
        }
      }, 5);
    }
    p.on('close', (code, signal) => {
      if (timer) clearInterval(timer);
      resolve({ code, signal, out });
    });
  });
}

interface Rec {
  step: number;
  loss?: number;
  ce?: number;
  grad_norm?: number;
  val_loss?: number;
  event?: string;
}
const log = (dir: string): Rec[] =>
  readFileSync(join(dir, 'log.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Rec);
const lastLoggedStep = (dir: string): number => {
  try {
    // The last line may be mid-write; count only complete lines.
    const lines = readFileSync(join(dir, 'log.jsonl'), 'utf8').split('\n').slice(0, -1);
    let s = 0;
    for (const l of lines) s = Math.max(s, (JSON.parse(l) as Rec).step);
    return s;
  } catch {
    return 0;
  }
};

test('SIGKILL twice mid-training, resume twice: per-step losses equal an uninterrupted run (wasm)', async () => {
  const runs = mkdtempSync(join(tmpdir(), 'monet-kill-'));
  try {
    const part = join(runs, 'part');
    const [full, killed1] = await Promise.all([
      run(args(runs, 'full')),
      // Kill 1: the moment the first trainer_state file appears — often inside the checkpoint's commit.
      run(args(runs, 'part'), () => existsSync(join(part, 'trainer_state.safetensors'))),
    ]);
    assert.is(full.code, 0, full.out);
    assert.is(killed1.signal, 'SIGKILL', `the run ended before it could be killed:\n${killed1.out}`);
    const at1 = lastLoggedStep(part);
    if (process.env.ROBUST_DEBUG) console.log(`kill 1 at logged step ${at1}; files: ${readdirSync(part).join(' ')}`);
    assert.ok(at1 < STEPS, `killed at step ${at1}`);

    // Resume, and kill 2 a few steps after the third checkpoint, i.e. between checkpoints.
    const killed2 = await run(args(runs, 'part', ['--resume']), () => lastLoggedStep(part) >= 3 * SAVE_EVERY + 7);
    assert.is(killed2.signal, 'SIGKILL', `the resumed run ended before it could be killed:\n${killed2.out}`);
    assert.match(killed2.out, /resuming .* at step (\d+)/);
    if (process.env.ROBUST_DEBUG)
      console.log(
        killed2.out
          .split('\n')
          .filter((l) => /resuming|finished|removed/.test(l))
          .join('\n'),
      );
    const at2 = lastLoggedStep(part);
    assert.ok(at2 < STEPS && at2 > 3 * SAVE_EVERY, `second kill at step ${at2}`);

    const resumed = await run(args(runs, 'part', ['--resume']));
    assert.is(resumed.code, 0, resumed.out);
    const from = Number(/resuming .* at step (\d+)/.exec(resumed.out)?.[1]);
    assert.ok(
      from >= 3 * SAVE_EVERY && from % SAVE_EVERY === 0,
      `resumed from step ${from}, expected a checkpoint step`,
    );

    const a = log(join(runs, 'full')).filter((r) => r.loss !== undefined);
    const b = log(part).filter((r) => r.loss !== undefined);
    assert.is(a.length, STEPS, 'the uninterrupted run logged every step');
    assert.equal(
      b.map((r) => r.step),
      a.map((r) => r.step),
      'the resumed run logged every step exactly once',
    );
    for (let i = 0; i < a.length; i++) {
      const x = a[i];
      const y = b[i];
      if (x.loss !== y.loss || x.ce !== y.ce || x.grad_norm !== y.grad_norm) {
        assert.unreachable(
          `step ${x.step}: uninterrupted loss ${x.loss} ce ${x.ce} |g| ${x.grad_norm}, killed+resumed loss ` +
            `${y.loss} ce ${y.ce} |g| ${y.grad_norm}`,
        );
      }
    }
    const va = log(join(runs, 'full'))
      .filter((r) => r.val_loss !== undefined)
      .map((r) => [r.step, r.val_loss]);
    const vb = log(part)
      .filter((r) => r.val_loss !== undefined)
      .map((r) => [r.step, r.val_loss]);
    assert.equal(vb, va, 'validation losses equal too');
    // Both runs end with the same model, and the killed run left no temp or pending files behind.
    assert.equal(readFileSync(join(part, 'model.safetensors')), readFileSync(join(runs, 'full', 'model.safetensors')));
    assert.equal(
      readdirSync(part).filter((n) => n.startsWith('.')),
      [],
      'no hidden temp/pending files left',
    );
  } finally {
    rmSync(runs, { recursive: true, force: true });
  }
});

test.run();
