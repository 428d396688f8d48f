// Divergence with finite numbers: `--lr 30 --clip 0` drives the training loss to hundreds of thousands without a
// single NaN. The loop warns at each reading far above the start (twice max(ln V, step-0 CE)), stops after
// DIVERGENCE_STREAK of them in a row with a message (exit 1), writes no checkpoint while the loss is up there, and a
// run whose final validation CE is far above fails instead of reporting "ratio 29,000" with exit 0.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../src/cli/main.ts';
import { loadTrainerState } from '../src/train/checkpoint.ts';
import { parseFlags } from '../src/train/flags.ts';
import { resolveModel, resolveTrainOptions, TRAIN_FLAGS } from '../src/train/options.ts';
import { DIVERGENCE_STREAK, train } from '../src/train/trainer.ts';

const root = mkdtempSync(join(tmpdir(), 'monet-diverge-'));
const textFile = join(root, 'text.txt');
writeFileSync(textFile, Array.from({ length: 300 }, (_, i) => `the sun is hot ${i % 3}.`).join('\n'));

const base = (name: string, extra: string[]) => [
  ...['--preset', 'tiny', '--backend', 'wasm', '--threads', '1', '--data', textFile, '--runs-dir', root],
  ...['--name', name, '--batch-size', '8', '--seq-len', '16', '--eval-batches', '1', '--sample-tokens', '0'],
  ...extra,
];

function setup(name: string, extra: string[]) {
  const f = parseFlags('train', TRAIN_FLAGS, base(name, extra));
  const { preset, config } = resolveModel(f);
  return { o: resolveTrainOptions(f, preset, name), config };
}

const records = (name: string) =>
  readFileSync(join(root, name, 'log.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { step: number; event?: string; ce?: number; limit?: number });

test('--lr 30 --clip 0: warnings at each diverging reading, the run stops after a streak, exit 1', async () => {
  const errs: string[] = [];
  const outs: string[] = [];
  const [error, write] = [console.error, process.stdout.write.bind(process.stdout)];
  console.error = (...a: unknown[]) => void errs.push(a.join(' '));
  process.stdout.write = ((s: string) => {
    outs.push(String(s));
    return true;
  }) as typeof process.stdout.write;
  let code: number;
  try {
    code = await main(['train', ...base('lr30', ['--steps', '200', '--lr', '30', '--clip', '0', '--log-every', '5'])]);
  } finally {
    [console.error, process.stdout.write] = [error, write];
  }
  assert.is(code, 1, errs.join('\n'));
  const err = errs.join('\n');
  assert.match(err, /training stopped at step \d+: the training loss diverged — 3 readings in a row \(steps \d+–\d+\)/);
  assert.match(err, /above 11\.\d\d \(twice the larger of the uniform entropy ln 256 and the start\)/);
  assert.match(err, /try a lower --lr, a gradient clip \(--clip\) or a longer --warmup/);
  assert.match(outs.join(''), /warning: step \d+: training CE [\d.e+]+ is far above 11\.\d\d/);
  const log = records('lr30');
  const diverging = log.filter((r) => r.event === 'diverging');
  assert.is(diverging.length, DIVERGENCE_STREAK);
  for (const r of diverging) assert.ok(r.ce! > r.limit!, JSON.stringify(r));
});

test('no checkpoint while the loss is far above; a run ending diverged fails without its last checkpoint', async () => {
  // A streak that never stops the run (divergenceStreak 1000), a checkpoint every step: the last checkpoint is the
  // last step before the loss left the limit, and the end fails on the final validation CE.
  const { o, config } = setup('end', ['--steps', '12', '--lr', '30', '--clip', '0', '--log-every', '1']);
  const lines: string[] = [];
  const out = { write: (s: string) => void lines.push(s), isTTY: false };
  let msg = '';
  await train({ ...o, saveEvery: 1 }, config, false, { out, divergenceStreak: 1000 }).catch((e: Error) => {
    msg = e.message;
  });
  assert.match(msg, /training ended at step 12 with validation CE [\d.e+]+, far above 11\.\d\d/);
  assert.match(msg, /the run diverged, and its final checkpoint was not written/);
  const log = records('end');
  const firstHigh = log.find((r) => r.event === 'diverging')!.step;
  const checkpointed = existsSync(join(root, 'end', 'trainer_state.safetensors'))
    ? loadTrainerState(join(root, 'end'), config).step
    : 0;
  assert.ok(checkpointed < firstHigh, `checkpoint of step ${checkpointed}, loss far above from step ${firstHigh}`);
});

test('a sane run warns about nothing', async () => {
  const { o, config } = setup('sane', ['--steps', '20', '--log-every', '1']);
  const lines: string[] = [];
  await train(o, config, false, { out: { write: (s: string) => void lines.push(s), isTTY: false } });
  assert.not.match(lines.join(''), /warning/);
  assert.is(records('sane').filter((r) => r.event === 'diverging').length, 0);
});

test.after(() => rmSync(root, { recursive: true, force: true }));

test.run();
