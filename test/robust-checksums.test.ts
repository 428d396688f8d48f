// Every byte that determines a resumed run is covered by a checksum, and a forged file (checksum recomputed) is
// caught by the values it holds:
//   - a flipped digit in the trainer state's metadata (step, an option, the sampler's RNG), in config.json or in
//     run.json is refused, naming the file; a renamed checksum key is refused for our own files; a folder written
//     by another tool (no format marker, no checksums) loads with a warning;
//   - NaN / ±Infinity weights are refused at load naming the tensor and index; finite weights so large that the
//     outputs overflow make `monet sample` and `monet eval` fail (exit 1) instead of printing NUL bytes or "CE NaN";
//   - run.json is validated like the flags (`"batchSize": "lots"`, `"seqLen": -5`), and a missing run.json is named;
//   - config.json: unknown format versions, a non-string tokenizer, a number that overflows (`1e400`).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runMonet } from './cli-run.ts';
import { parseSafetensors, serializeSafetensors } from '../src/safetensors.ts';
import { parseFlags } from '../src/train/flags.ts';
import { resolveModel, resolveTrainOptions, TRAIN_FLAGS } from '../src/train/options.ts';
import { train } from '../src/train/trainer.ts';
import { CHECKSUM_KEY, sealedJson, sealText, serializeSealed } from '../src/validate.ts';

const root = mkdtempSync(join(tmpdir(), 'monet-checksums-'));
const textFile = join(root, 'text.txt');
writeFileSync(textFile, Array.from({ length: 300 }, (_, i) => `a b c d e ${i % 5}.`).join('\n'));
const quiet = { write: () => true, isTTY: false };

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
    '--name',
    name,
    '--batch-size',
    '2',
    '--seq-len',
    '16',
    '--steps',
    '4',
    '--eval-batches',
    '1',
    '--sample-tokens',
    '0',
    ...extra,
  ]);
  const { preset, config } = resolveModel(f);
  return { o: resolveTrainOptions(f, preset, name), config };
}

const good = join(root, 'good');
test.before(async () => {
  const { o, config } = setup('good');
  await train(o, config, false, { out: quiet });
});

/** A copy of the good run; `edit` gets the folder. */
function copy(name: string, edit: (d: string) => void): string {
  const d = join(root, name);
  cpSync(good, d, { recursive: true });
  edit(d);
  return d;
}

/** Replace `from` by `to` (the same length) in a file's bytes: the container stays well-formed. */
function replaceBytes(path: string, from: string, to: string): void {
  assert.is(from.length, to.length);
  const b = readFileSync(path);
  const at = b.indexOf(from);
  assert.ok(at >= 0, `'${from}' not in ${path}`);
  b.write(to, at, 'latin1');
  writeFileSync(path, b);
}

async function resumeError(name: string): Promise<string> {
  const { o, config } = setup(name, ['--steps', '6']);
  try {
    await train(o, config, true, { out: quiet });
  } catch (e) {
    return (e as Error).message;
  }
  return 'resumed';
}

const monet = (...args: string[]) => runMonet(args);

test('a flipped digit in the trainer state metadata (step, lr, sampler RNG) is refused on --resume', async () => {
  const meta = parseSafetensors(readFileSync(join(good, 'trainer_state.safetensors'))).metadata;
  assert.is(meta.step, '4');
  const rng0 = String(JSON.parse(meta.sampler).rng[0]);
  const flips: [string, string, string][] = [
    ['step', '"step":"4"', '"step":"2"'],
    ['lr', 'lr\\":0.003', 'lr\\":0.002'], // inside the info string: quotes are escaped
    ['rng', rng0, `${(Number(rng0[0]) + 1) % 10}${rng0.slice(1)}`],
  ];
  for (const [what, from, to] of flips) {
    const d = copy(`meta-${what}`, (x) => replaceBytes(join(x, 'trainer_state.safetensors'), from, to));
    const msg = await resumeError(`meta-${what}`);
    assert.match(msg, new RegExp(`${d}/trainer_state\\.safetensors: checksum mismatch`), what);
  }
});

test('config.json and run.json edits are refused, naming the file; so is a renamed checksum key', async () => {
  const cfg = copy('cfg-edit', (d) =>
    replaceBytes(join(d, 'config.json'), '"rms_norm_eps": 0.000001', '"rms_norm_eps": 0.000002'),
  );
  for (const cmd of ['sample', 'eval']) {
    const r = await monet(
      cmd,
      '--checkpoint',
      cfg,
      '--backend',
      'reference',
      ...(cmd === 'sample' ? ['--tokens', '2'] : []),
    );
    assert.is(r.code, 1, r.err);
    assert.match(r.err, new RegExp(`${cfg}/config\\.json: checksum mismatch: ${CHECKSUM_KEY} says crc32:`));
  }
  assert.match(await resumeError('cfg-edit'), /cfg-edit\/config\.json: checksum mismatch/);
  const run = copy('run-edit', (d) => replaceBytes(join(d, 'run.json'), '"batchSize": 2', '"batchSize": 3'));
  const r = await monet('eval', '--checkpoint', run, '--backend', 'reference');
  assert.is(r.code, 1);
  assert.match(r.err, /run-edit\/run\.json: checksum mismatch/);
  for (const file of ['model.safetensors', 'trainer_state.safetensors', 'config.json', 'run.json']) {
    const name = `renamed-${file.split('.')[0]}`;
    const d = copy(name, (x) => replaceBytes(join(x, file), CHECKSUM_KEY, `${CHECKSUM_KEY.slice(0, -1)}X`));
    const msg = file === 'run.json' ? (await monet('eval', '--checkpoint', d)).err : await resumeError(name);
    assert.match(
      msg,
      new RegExp(`${name}/${file.replace('.', '\\.')}: no ${CHECKSUM_KEY}: every file monet-ts writes carries one`),
      file,
    );
  }
});

test('a folder written by another tool (no format marker, no checksums) loads with a warning', async () => {
  const d = copy('foreign', (x) => {
    const {
      [CHECKSUM_KEY]: _c,
      monet_ts_format: _f,
      ...cfg
    } = JSON.parse(readFileSync(join(x, 'config.json'), 'utf8'));
    writeFileSync(join(x, 'config.json'), JSON.stringify(cfg));
    const { tensors } = parseSafetensors(readFileSync(join(x, 'model.safetensors')));
    writeFileSync(join(x, 'model.safetensors'), serializeSafetensors(tensors, { format: 'pt' }));
    rmSync(join(x, 'run.json'));
  });
  const r = await monet('sample', '--checkpoint', d, '--backend', 'reference', '--tokens', '3');
  assert.is(r.code, 0, r.err);
  assert.match(r.err, /warning: \S+foreign\/config\.json: no monet_ts_checksum: written by another tool/);
  assert.match(r.err, /warning: \S+foreign\/model\.safetensors: no monet_ts_checksum/);
});

/** Rewrite model.safetensors with `change` applied to its tensors and a recomputed checksum: a forged file. */
function forgeModel(d: string, change: (t: Map<string, Float32Array | Float64Array>) => void): void {
  const p = join(d, 'model.safetensors');
  const { tensors, metadata } = parseSafetensors(readFileSync(p));
  const { [CHECKSUM_KEY]: _old, ...meta } = metadata;
  const data = new Map([...tensors].map(([k, t]) => [k, t.data as Float32Array | Float64Array]));
  change(data);
  writeFileSync(p, serializeSealed(tensors, meta).bytes);
}

/** Rewrite a JSON file of the run with `change` applied and a recomputed checksum: a forged file. */
function forgeJson(path: string, change: (v: Record<string, unknown>) => void): void {
  const { [CHECKSUM_KEY]: _old, ...v } = JSON.parse(readFileSync(path, 'utf8'));
  change(v);
  writeFileSync(path, sealedJson(v));
}

test('forged weights: NaN / ±Infinity refused at load (tensor, index); overflowing fail sample/eval', async () => {
  for (const [what, value] of [
    ['nan', Number.NaN],
    ['inf', Number.POSITIVE_INFINITY],
    ['-inf', Number.NEGATIVE_INFINITY],
  ] as const) {
    const d = copy(`forged-${what}`, (x) =>
      forgeModel(x, (t) => {
        t.get('model.norm.weight')![3] = value;
      }),
    );
    for (const cmd of ['sample', 'eval']) {
      const r = await monet(
        cmd,
        '--checkpoint',
        d,
        '--backend',
        'reference',
        ...(cmd === 'sample' ? ['--tokens', '2'] : []),
      );
      assert.is(r.code, 1, `${what} ${cmd}: ${r.err}`);
      assert.match(
        r.err,
        new RegExp(
          `model\\.safetensors: tensor 'model\\.norm\\.weight': value ${String(value)} at index 3; expected finite`,
        ),
      );
    }
  }
  // 3e38 (a float32, but its square is not): refused at load
  const huge = copy('forged-huge', (x) =>
    forgeModel(x, (t) => {
      t.get('model.embed_tokens.weight')![7] = 3e38;
    }),
  );
  const h = await monet('sample', '--checkpoint', huge, '--backend', 'wasm', '--tokens', '5');
  assert.is(h.code, 1, h.out);
  assert.match(h.err, /tensor 'model\.embed_tokens\.weight': value 3e\+38 at index 7 is beyond ±1\.84e\+19/);
  // finite and within that bound, but still absurd: 1e18 everywhere overflows float32 in attention
  const big = copy('forged-big', (x) =>
    forgeModel(x, (t) => {
      for (const [k, a] of t) if (k.endsWith('proj.weight') || k.endsWith('embed_tokens.weight')) a.fill(1e18);
    }),
  );
  const s = await monet('sample', '--checkpoint', big, '--backend', 'wasm', '--tokens', '5');
  assert.is(s.code, 1, s.out);
  assert.match(s.err, /logits are not finite .* overflow float32/);
  assert.not.ok(s.out.includes('\u0000'), 'no NUL bytes printed');
  const e = await monet('eval', '--checkpoint', big, '--backend', 'wasm');
  assert.is(e.code, 1, e.out);
  assert.match(e.err, /the validation cross-entropy is NaN: the model's outputs are not finite numbers/);
});

test('forged trainer state: options, sampler and moments are checked on --resume', async () => {
  const forgeState = (name: string, change: (meta: Record<string, string>, t: Map<string, Float64Array>) => void) =>
    copy(name, (d) => {
      const p = join(d, 'trainer_state.safetensors');
      const { tensors, metadata } = parseSafetensors(readFileSync(p));
      const { [CHECKSUM_KEY]: _old, ...meta } = metadata;
      change(meta, new Map([...tensors].map(([k, x]) => [k, x.data as Float64Array])));
      writeFileSync(p, serializeSealed(tensors, meta).bytes);
    });
  forgeState('state-opts', (meta) => {
    const info = JSON.parse(meta.info);
    info.options.batchSize = -1;
    meta.info = JSON.stringify(info);
  });
  assert.match(
    await resumeError('state-opts'),
    /trainer_state\.safetensors: options: 'batchSize' \(--batch-size\) must/,
  );
  forgeState('state-rng', (meta) => {
    meta.sampler = JSON.stringify({ rng: [0, 0, 0, 0], batches: 4 });
  });
  assert.match(await resumeError('state-rng'), /metadata sampler must be \{rng: \[4 uint32, not all 0\]/);
  forgeState('state-v', (_meta, t) => {
    t.get('exp_avg_sq.model.norm.weight')![2] = -1;
  });
  assert.match(await resumeError('state-v'), /'exp_avg_sq\.model\.norm\.weight' holds -1 at index 2; expected ≥ 0/);
});

test('run.json is validated like the flags; a missing run.json is named by eval', async () => {
  const d = copy('runjson-bad', (x) =>
    forgeJson(join(x, 'run.json'), (v) => {
      const o = v.options as Record<string, unknown>;
      o.batchSize = 'lots';
      o.seqLen = -5;
    }),
  );
  const r = await monet('eval', '--checkpoint', d, '--backend', 'reference');
  assert.is(r.code, 1);
  assert.match(r.err, /run\.json: options: 'batchSize' \(--batch-size\) must be a positive integer, found "lots"/);
  const d2 = copy('runjson-seq', (x) =>
    forgeJson(join(x, 'run.json'), (v) => {
      (v.options as Record<string, unknown>).seqLen = -5;
    }),
  );
  assert.match(
    (await monet('eval', '--checkpoint', d2)).err,
    /'seqLen' \(--seq-len\) must be an integer ≥ 2, found -5/,
  );
  const d3 = copy('runjson-key', (x) =>
    forgeJson(join(x, 'run.json'), (v) => {
      (v.options as Record<string, unknown>).lrr = 1;
    }),
  );
  assert.match((await monet('eval', '--checkpoint', d3)).err, /run\.json: options: unknown option 'lrr'/);
  const gone = copy('runjson-gone', (x) => rmSync(join(x, 'run.json')));
  const g = await monet('eval', '--checkpoint', gone, '--backend', 'reference');
  assert.is(g.code, 1);
  assert.match(
    g.err,
    /runjson-gone\/run\.json does not exist: validation uses the run's batch size and sequence length/,
  );
  assert.not.match(g.err, /max_position_embeddings/);
});

test('config.json: format version, tokenizer, bn_momentum range, misspelled keys, numbers that overflow', async () => {
  const cases: [string, (v: Record<string, unknown>) => void, RegExp][] = [
    [
      'fmt',
      (v) => {
        v.monet_ts_format = 'monet-ts-checkpoint/9';
      },
      /monet_ts_format is "monet-ts-checkpoint\/9"; this version of monet-ts reads 'monet-ts-checkpoint\/2'/,
    ],
    [
      'tok',
      (v) => {
        v.tokenizer = 5;
      },
      /tokenizer must be one of 'bytes', found 5/,
    ],
    [
      'bn2',
      (v) => {
        v.bn_momentum = 2;
      },
      /config\.bn_momentum: expected a number in \[0, 1\], found 2/,
    ],
    [
      'bn-1',
      (v) => {
        v.bn_momentum = -1;
      },
      /config\.bn_momentum: expected a number in \[0, 1\], found -1/,
    ],
    [
      'typo',
      (v) => {
        v.moe_topkk = 2;
      },
      /config\.moe_topkk: unexpected key .*did you mean 'moe_topk'\?/,
    ],
  ];
  for (const [name, change, want] of cases) {
    const d = copy(`cfg-${name}`, (x) => forgeJson(join(x, 'config.json'), change));
    const r = await monet('sample', '--checkpoint', d, '--backend', 'reference', '--tokens', '2');
    assert.is(r.code, 1, name);
    assert.match(r.err, want, name);
  }
  // 1e400 cannot be written by JSON.stringify: put it in the text, then seal the text.
  const d = copy('cfg-inf', (x) => {
    const p = join(x, 'config.json');
    const { [CHECKSUM_KEY]: _old, ...v } = JSON.parse(readFileSync(p, 'utf8'));
    const text = JSON.stringify({ ...v, rope_theta: 12345, [CHECKSUM_KEY]: 'crc32:00000000' }, null, 2);
    writeFileSync(p, sealText(text.replace('"rope_theta": 12345', '"rope_theta": 1e400')));
  });
  const r = await monet('sample', '--checkpoint', d, '--backend', 'reference', '--tokens', '2');
  assert.is(r.code, 1);
  assert.match(r.err, /config\.json: 'rope_theta' is a number too large for a float64 \(it reads as Infinity\)/);
  assert.not.match(r.err, /found null/);
});

test.after(() => rmSync(root, { recursive: true, force: true }));

test.run();
