// `--threads` end to end: `monet train --backend wasm --threads 2` says so in the run header, records it in
// run.json and logs the same losses, bit for bit, as the same run on one thread; `monet eval` and `monet sample`
// take --threads too (the backend they print names the count) and give the same loss and text on 1 and 2 threads.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../src/cli/main.ts';
import { parseFlags } from '../src/train/flags.ts';
import { resolveModel, resolveTrainOptions, TRAIN_FLAGS } from '../src/train/options.ts';
import { train } from '../src/train/trainer.ts';

const dir = mkdtempSync(join(tmpdir(), 'monet-threads-'));
const textFile = join(dir, 'text.txt');
writeFileSync(textFile, Array.from({ length: 400 }, (_, i) => `the cat sat on the mat ${i % 7}.`).join('\n'));

/** `monet train` on the wasm backend with `threads`, its printed lines, and the losses of its log. */
async function trainRun(name: string, threads: number) {
  const argv = ['--preset', 'tiny', '--data', textFile, '--runs-dir', dir, '--name', name, '--backend', 'wasm'];
  argv.push('--threads', String(threads), '--steps', '6', '--batch-size', '4', '--seq-len', '16');
  argv.push('--eval-every', '3', '--eval-batches', '2', '--log-every', '1', '--sample-tokens', '4');
  const f = parseFlags('train', TRAIN_FLAGS, argv);
  const { preset, config } = resolveModel(f);
  const lines: string[] = [];
  await train(resolveTrainOptions(f, preset, 'wasm'), config, false, {
    out: { write: (s: string) => void lines.push(s), isTTY: false },
  });
  const log = readFileSync(join(dir, name, 'log.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const losses = log.filter((r) => typeof r.loss === 'number' || typeof r.val_loss === 'number');
  const runJson = JSON.parse(readFileSync(join(dir, name, 'run.json'), 'utf8')) as { options: { threads: number } };
  const values = losses.map((r) => [r.step, r.loss, r.ce, r.val_loss, r.val_total, r.grad_norm]);
  return { text: lines.join(''), losses: values, runJson };
}

/** What `monet <argv>` printed on stdout (console.log), after it exited 0. */
async function cli(argv: string[]): Promise<string> {
  const out: string[] = [];
  const log = console.log;
  console.log = (s: unknown) => void out.push(String(s));
  try {
    assert.is(await main(argv), 0, `monet ${argv.join(' ')} exit code`);
  } finally {
    console.log = log;
  }
  return out.join('\n');
}

test('monet train --threads 2: header and run.json say so; its losses equal one thread’s bit for bit', async () => {
  const one = await trainRun('one', 1);
  const two = await trainRun('two', 2);
  assert.match(two.text, /backend: wasm \([^)]*, 2 threads\)/, 'run header');
  assert.match(one.text, /backend: wasm \([^)]*, 1 thread\)/, 'run header');
  assert.is(two.runJson.options.threads, 2, 'run.json options.threads');
  assert.is(one.runJson.options.threads, 1, 'run.json options.threads');
  assert.ok(one.losses.length >= 8, `expected 6 steps and 2+ validations logged, found ${one.losses.length} records`);
  assert.equal(two.losses, one.losses, 'logged losses, validation losses and gradient norms');
});

test('monet eval and sample --threads 2 name the count and give what one thread gives', async () => {
  const run = join(dir, 'one');
  const evalOf = async (t: number) =>
    JSON.parse(await cli(['eval', '--checkpoint', run, '--backend', 'wasm', '--threads', String(t), '--json'])) as {
      backend: string;
    };
  const sampleOf = async (t: number) =>
    JSON.parse(
      await cli(
        ['sample', '--checkpoint', run, '--backend', 'wasm', '--threads', String(t), '--tokens', '12'].concat([
          '--json',
        ]),
      ),
    ) as { backend: string; text: string };
  const [e1, e2] = [await evalOf(1), await evalOf(2)];
  assert.match(e2.backend, /, 2 threads\)$/);
  assert.match(e1.backend, /, 1 thread\)$/);
  assert.equal({ ...e2, backend: '' }, { ...e1, backend: '' }, 'eval results');
  const [s1, s2] = [await sampleOf(1), await sampleOf(2)];
  assert.match(s2.backend, /, 2 threads\)$/);
  assert.is(s2.text, s1.text, 'sampled text');
});

test.after(() => rmSync(dir, { recursive: true, force: true }));

test.run();
