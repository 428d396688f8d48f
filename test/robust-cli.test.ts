// The CLI tried as a new user would: wrong flags, impossible models, missing files, corrupt checkpoints and fixtures.
// Every case must answer with a message that says what was expected, what was found and where, exit non-zero
// (2 = usage / unusable input, 1 = the command failed), and leave nothing half-written: no empty run folder, no
// temp file, no change to an existing run.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { runMonet } from './cli-run.ts';
import { parseFlags } from '../src/train/flags.ts';
import { resolveModel, resolveTrainOptions, TRAIN_FLAGS } from '../src/train/options.ts';
import { train } from '../src/train/trainer.ts';
import { sealedJson } from '../src/validate.ts';

const ROOT = join(import.meta.dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'monet-cli-'));
const runs = join(dir, 'runs');
const textFile = join(dir, 'text.txt');
writeFileSync(textFile, Array.from({ length: 200 }, (_, i) => `red green blue ${i % 4}.`).join('\n'));

/** Run `monet …` in-process, capturing everything it prints (cli-run.ts). */
const monet = (...args: string[]) => runMonet(args);

/** Every file under `d` with its size and mtime: to show that a failed command changed nothing. */
function tree(d: string): string[] {
  const out: string[] = [];
  const walk = (p: string) => {
    for (const n of readdirSync(p).sort()) {
      const q = join(p, n);
      const st = statSync(q);
      if (st.isDirectory()) walk(q);
      else out.push(`${q} ${st.size} ${st.mtimeMs}`);
    }
    out.push(p);
  };
  walk(d);
  return out;
}

// A finished tiny run that the corrupt-input cases copy from.
const good = join(runs, 'good');
test.before(async () => {
  const f = parseFlags('train', TRAIN_FLAGS, [
    '--preset',
    'tiny',
    '--backend',
    'reference',
    '--data',
    textFile,
    '--runs-dir',
    runs,
    '--name',
    'good',
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
    '--log-every',
    '1',
  ]);
  const { preset, config } = resolveModel(f);
  await train(resolveTrainOptions(f, preset, 'good'), config, false, { out: { write: () => true } });
});

const TINY = [
  '--preset',
  'tiny',
  '--backend',
  'reference',
  '--data',
  textFile,
  '--seq-len',
  '16',
  '--batch-size',
  '2',
  '--sample-tokens',
  '0',
  '--runs-dir',
  runs,
];

test(
  'wrong flags and impossible models: exit 2, naming the flag or config key, expected and found; nothing ' + 'written',
  async () => {
    const before = tree(runs);
    const cases: [string[], RegExp][] = [
      [['train', '--ffn', 'nope'], /--ffn expects one of dense, smoe, peer, monet, topk, found 'nope'/],
      [['train', '--steps', '-1'], /--steps expects a positive integer, found '-1'/],
      [['train', '--steps', '1.5'], /--steps expects a positive integer, found '1\.5'/],
      [['train', '--lr'], /--lr needs a value \(a positive number\)/],
      [['train', '--lr', 'fast'], /--lr expects a positive number, found 'fast'/],
      [['train', '--stesp', '5'], /unknown option --stesp; did you mean --steps\?/],
      [['train', 'data.txt'], /unexpected argument 'data\.txt'/],
      [['train', '--preset', 'nope'], /--preset: unknown preset 'nope'; expected one of .*tiny/],
      [['train', '--preset', 'monet-vd-1.4b'], /listed for parameter accounting and is far too large to train here/],
      [['train', '--ffn', 'dense', '--moe-experts', '8'], /--moe-experts applies to --ffn monet; this model is dense/],
      [['train', '--ffn', 'peer', '--num-experts', '10'], /config\.num_experts: expected a perfect square.*found 10/],
      [['train', '--ffn', 'peer', '--top-k', '65'], /config\.top_k: expected at most √num_experts = 64.*found 65/],
      [['train', '--ffn', 'smoe', '--top-k', '9'], /config\.top_k: expected at most num_experts = 8, found 9/],
      [['train', '--ffn', 'monet', '--moe-dim', '3'], /config\.moe_dim: expected an even number.*found 3/],
      [
        ['train', '--ffn', 'monet', '--moe-topk', '32'],
        /config\.moe_topk: expected less than moe_experts = 32.*found 32/,
      ],
      [
        ['train', '--hidden-size', '100', '--heads', '3'],
        /config\.hidden_size: expected a multiple of num_attention_heads = 3, found 100/,
      ],
      [
        ['train', '--heads', '4', '--kv-heads', '3'],
        /config\.num_attention_heads: expected a multiple of num_key_value_heads = 3, found 4/,
      ],
      [['train', '--beta2', '1'], /--beta2 must be below 1, found 1/],
      [['train', '--min-lr', '1', '--lr', '0.1'], /--min-lr 1 exceeds --lr 0\.1/],
      [['train', '--name', '../escape'], /--name must be a plain folder name/],
      // --resume keeps the run's settings: a flag that would change one is refused (repeating the same value is fine)
      [
        ['train', '--name', 'good', '--resume', '--steps', '4', '--lr', '0.1'],
        /--resume: .*cannot change them: --lr \(run has 0\.003, flag gives 0\.1\)/,
      ],
      [
        ['train', '--name', 'good', '--resume', '--steps', '4', '--batch-size', '2', '--seq-len', '32'],
        /--seq-len \(run has 16, flag gives 32\)/,
      ],
      [
        ['train', '--name', 'good', '--resume', '--steps', '4', '--preset', 'tiny', '--hidden-size', '32'],
        /--hidden-size \(config hidden_size: run has 16, flags give 32\)/,
      ],
      [['sample'], /--checkpoint <run folder> is required/],
      [['sample', '--checkpoint', good, '--tokens', '0'], /--tokens expects an integer ≥ 1, found '0'/],
      [
        ['eval', '--checkpoint', good, '--backend', 'gpu'],
        /--backend expects one of auto, webgpu, wasm, reference, js, found 'gpu'/,
      ],
      [['check'], /expected at least one fixture file or folder/],
      [['check', 'fixtures', '--backend', 'cuda'], /unknown backend 'cuda'/],
      [['nope'], /unknown command 'nope'\. Expected one of: .*train/],
    ];
    for (const [argv, want] of cases) {
      const r = await monet(...argv, ...(argv[0] === 'train' ? ['--runs-dir', runs] : []));
      assert.is(r.code, 2, `monet ${argv.join(' ')} → exit ${r.code}\n${r.err}`);
      assert.match(r.err, want, `monet ${argv.join(' ')}`);
    }
    assert.equal(tree(runs), before, 'no folder or file created, nothing changed');
  },
);

test(
  'missing files, unusable data, a model too big for memory: exit non-zero naming the cause, no run folder ' +
    'created',
  async () => {
    const before = tree(runs);
    const cases: [string[], number, RegExp][] = [
      [
        ['train', ...TINY, '--name', 'd1', '--data', join(dir, 'missing.txt')],
        1,
        /--data file '.*missing\.txt' does not exist/,
      ],
      [
        ['train', ...TINY, '--name', 'd2', '--data', dir],
        1,
        /--data file '.*' is a folder; expected a regular UTF-8 text file/,
      ],
      // tiny has max_position_embeddings 16; the default --seq-len is 128 (an explicit --seq-len raises the limit)
      [
        ['train', '--preset', 'tiny', '--backend', 'reference', '--data', textFile, '--runs-dir', runs, '--name', 'd3'],
        1,
        /--seq-len 128 exceeds the model's max_position_embeddings 16/,
      ],
      // A typo-sized model (17 billion parameters): a sentence before any allocation, not an out-of-memory abort.
      [
        ['train', '--preset', 'dense-small', '--hidden-size', '32768', '--runs-dir', runs, '--name', 'big'],
        1,
        /the model has 17,332\.2M parameters; training it needs at least [\d.]+ GiB .* but this machine has [\d.]+ GiB/,
      ],
      [['train', ...TINY, '--name', 'nothing', '--resume'], 1, /--resume: run folder .*nothing does not exist/],
      [
        ['train', '--runs-dir', join(dir, 'no-runs'), '--resume'],
        2,
        /--resume: no run folder with a checkpoint in .*no-runs/,
      ],
      [
        ['train', ...TINY, '--name', 'good', '--steps', '3'],
        1,
        /already holds a run; pass --resume to continue it, --force to replace it/,
      ],
      [['sample', '--checkpoint', join(dir, 'missing')], 1, /run folder .*missing does not exist/],
      [
        ['eval', '--checkpoint', dir],
        1,
        /config\.json does not exist \(expected a run folder written by monet train\)/,
      ],
      [['check', join(dir, 'nothing.safetensors')], 2, /cannot use .*nothing\.safetensors: no such file or folder/],
    ];
    for (const [argv, code, want] of cases) {
      const r = await monet(...argv);
      assert.is(r.code, code, `monet ${argv.join(' ')} → exit ${r.code}\n${r.err}`);
      assert.match(r.err, want, `monet ${argv.join(' ')}`);
    }
    assert.equal(tree(runs), before, 'no empty run folder left behind, the existing run untouched');
  },
);

/**
 * A config.json edited with its checksum recomputed (a forged file: the checksum alone would refuse a plain edit),
 * so that the config's own checks are what must catch the change.
 */
function forgedConfig(b: Buffer, change: Record<string, unknown>): string {
  const { monet_ts_checksum, ...cfg } = JSON.parse(b.toString());
  void monet_ts_checksum;
  return sealedJson({ ...cfg, ...change });
}

/** A copy of the good run with one file damaged. */
function damaged(name: string, file: string, edit: (b: Buffer) => Buffer | string): string {
  const d = join(dir, name);
  cpSync(good, d, { recursive: true });
  writeFileSync(join(d, file), edit(readFileSync(join(d, file))));
  return d;
}

test(
  'corrupt run folders: truncated, bit-flipped, bad or deeply nested config.json, broken run.json — clear errors ' +
    'naming the file, exit 1, nothing rewritten',
  async () => {
    const cases: [string, string, (b: Buffer) => Buffer | string, string[], RegExp][] = [
      [
        'trunc',
        'model.safetensors',
        (b) => b.subarray(0, b.length - 100),
        ['sample'],
        /model\.safetensors: the tensors cover \d+ bytes|model\.safetensors: .*run past the data area.*truncated/,
      ],
      [
        'empty',
        'model.safetensors',
        () => Buffer.alloc(0),
        ['eval'],
        /model\.safetensors: expected at least 8 bytes .* found a file of 0 bytes/,
      ],
      [
        'flip',
        'model.safetensors',
        (b) => {
          const c = Buffer.from(b);
          c[c.length - 5] ^= 4;
          return c;
        },
        ['sample'],
        /model\.safetensors: checksum mismatch/,
      ],
      ['notjson', 'config.json', () => '{"hidden_size": 16,', ['sample'], /config\.json is not valid JSON/],
      [
        'badcfg',
        'config.json',
        (b) => forgedConfig(b, { moe_dim: 3 }),
        ['eval'],
        /config\.json: model config: config\.moe_dim: expected an even number/,
      ],
      [
        'badact',
        'config.json',
        (b) => forgedConfig(b, { moe_experts: 'many' }),
        ['sample'],
        /config\.json: model config: config\.moe_experts: expected an integer ≥ 2, found "many"/,
      ],
      [
        'deep',
        'config.json',
        () => `{"hidden_size":${'['.repeat(100000)}${']'.repeat(100000)}}`,
        ['sample'],
        /config\.json nests values more than 3 levels deep; expected a flat model config/,
      ],
      [
        'runjson',
        'run.json',
        () => '{"options":',
        ['eval'],
        /run\.json is not valid JSON .*expected the run summary monet train writes/,
      ],
      [
        'shape',
        'config.json',
        (b) => forgedConfig(b, { vocab_size: 300 }),
        ['sample'],
        /tensor 'model\.embed_tokens\.weight' has shape \[256,16\], config\.json implies \[300,16\]/,
      ],
    ];
    for (const [name, file, edit, cmd, want] of cases) {
      const d = damaged(name, file, edit);
      const before = tree(d);
      const r = await monet(
        ...cmd,
        '--checkpoint',
        d,
        '--backend',
        'reference',
        ...(cmd[0] === 'sample' ? ['--tokens', '2'] : []),
      );
      assert.is(r.code, 1, `${name}: monet ${cmd[0]} → exit ${r.code}\n${r.err}`);
      assert.match(r.err, new RegExp(`^monet ${cmd[0]}: `), name);
      assert.match(r.err, want, name);
      assert.equal(tree(d), before, `${name}: the run folder is unchanged`);
    }
    // --resume of a damaged trainer state: refused before anything in the folder is touched.
    const d = damaged('resume-flip', 'trainer_state.safetensors', (b) => {
      const c = Buffer.from(b);
      c[c.length - 1] ^= 1;
      return c;
    });
    const before = tree(d);
    const r = await monet(
      'train',
      '--runs-dir',
      dir,
      '--name',
      'resume-flip',
      '--resume',
      '--steps',
      '4',
      '--backend',
      'reference',
    );
    assert.is(r.code, 1, r.err);
    assert.match(r.err, /trainer_state\.safetensors: checksum mismatch/);
    assert.equal(tree(d), before);
  },
);

test('a hostile fixture (JSON nested 100k deep, header length 2^63): monet check refuses it, exit 2', async () => {
  const deep = `{"a":${'['.repeat(100000)}${']'.repeat(100000)}}`;
  const hb = Buffer.from(deep);
  const f1 = Buffer.alloc(8 + hb.length);
  f1.writeBigUInt64LE(BigInt(hb.length));
  hb.copy(f1, 8);
  writeFileSync(join(dir, 'deep.safetensors'), f1);
  const f2 = Buffer.alloc(16);
  f2.writeBigUInt64LE(2n ** 63n);
  writeFileSync(join(dir, 'huge.safetensors'), f2);
  for (const [file, want] of [
    ['deep.safetensors', /deep\.safetensors: (tensor 'a': expected \{dtype, shape, data_offsets\}|.*expected)/],
    ['huge.safetensors', /header length .* says 9223372036854775808 bytes; expected at most/],
  ] as const) {
    const r = await monet('check', join(dir, file));
    assert.is(r.code, 2, r.err);
    assert.match(r.err, want);
  }
});

test('the real process exits non-zero (bin/monet.mjs): a wrong flag and a missing checkpoint', () => {
  const a = spawnSync(process.execPath, [join(ROOT, 'bin/monet.mjs'), 'train', '--ffn', 'nope'], { encoding: 'utf8' });
  assert.is(a.status, 2);
  assert.match(a.stderr, /--ffn expects one of/);
  const b = spawnSync(process.execPath, [join(ROOT, 'bin/monet.mjs'), 'sample', '--checkpoint', join(dir, 'missing')], {
    encoding: 'utf8',
  });
  assert.is(b.status, 1);
  assert.match(b.stderr, /run folder .*missing does not exist/);
});

test.after(() => rmSync(dir, { recursive: true, force: true }));

test.run();
