// Hostile and damaged fixtures through `monet check` (issue 19, items 4, 6, 7 and 11): each case is the reproduction
// of a failure seen before the fix, on an edited copy of a committed fixture in a temporary folder.
//   4   configs claiming more than the file holds (10⁷ experts, 2³¹, 10⁶ layers) hung, ran out of memory or ended
//       in a RangeError stack trace: now exit 2 at once, naming the key or the first missing tensor;
//   6   an I64 token id ≥ 2³¹ aborted the whole batch (uncaught, exit 1): now that file's exit-2 line, the rest run;
//   7   a renamed or dropped result passed with that tensor unchecked; duplicate JSON keys were accepted (last won):
//       now exit 2; a damaged value (one flipped low bit of an expected value, a loosened min_margin) passed: now
//       files carry a content checksum (src/fixtures/checksum.ts) and a damaged one is exit 2;
//   11  alpha 1.5 failed in the runner (exit 1), negative bn_eps passed, min_margin "" read as 0, format
//       monet-ts-fixture/01 was accepted, a misspelled config or metadata key was ignored: now exit 2, naming it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../src/cli/main.ts';
import { fixtureChecksum } from '../src/fixtures/checksum.ts';
import { parseFixture } from '../src/fixtures/format.ts';
import { parseSafetensors, serializeSafetensors } from '../src/safetensors.ts';
import type { TensorMap } from '../src/tensor.ts';

const ROOT = join(import.meta.dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'monet-hostile-'));

/** Run `monet check --backend reference …` in-process, capturing what it prints. */
async function check(...paths: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = console.log;
  const error = console.error;
  console.log = (...a: unknown[]) => void out.push(a.join(' '));
  console.error = (...a: unknown[]) => void err.push(a.join(' '));
  try {
    const code = await main(['check', '--backend', 'reference', ...paths]);
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    console.log = log;
    console.error = error;
  }
}

/**
 * A copy of fixtures/<src> with its metadata, config or tensors edited, written as <name>. The edited copy has no
 * checksum (as from a tool that writes none) unless `keepChecksum`: then it is a damaged file.
 */
function variant(
  src: string,
  name: string,
  edit: (meta: Record<string, string>, tensors: TensorMap, config: Record<string, unknown>) => void,
  keepChecksum = false,
): string {
  const path = join(ROOT, 'fixtures', src);
  const { metadata, tensors } = parseSafetensors(readFileSync(path), path);
  if (!keepChecksum) delete metadata.checksum;
  const before = metadata.config;
  const config = JSON.parse(before);
  edit(metadata, tensors, config);
  // an edit of the parsed config is written back; an edit of the raw text (duplicate keys) is kept as it is
  if (JSON.stringify(config) !== JSON.stringify(JSON.parse(before))) metadata.config = JSON.stringify(config);
  const out = join(dir, name);
  writeFileSync(out, serializeSafetensors(tensors, metadata));
  return out;
}

/** Expect exit 2 with a message for `path` matching `want`. */
async function refused(path: string, want: RegExp): Promise<void> {
  const r = await check(path);
  assert.is(r.code, 2, `${path}: exit ${r.code}\n${r.out}\n${r.err}`);
  assert.match(r.err, want);
  assert.not.match(r.err + r.out, /\n\s+at /, 'no stack trace');
}

test('item 4: a config claiming more experts or layers than the file holds is refused at once, exit 2', async () => {
  const smoe = (n: number) =>
    variant('smoe/swiglu_e4k2.safetensors', `smoe-${n}.safetensors`, (_m, _t, c) => {
      c.num_experts = n;
    });
  await refused(smoe(1e7), /config\.num_experts: expected an integer in \[1, 65536\], found 10000000/);
  await refused(smoe(2 ** 31), /config\.num_experts: expected an integer in \[1, 65536\], found 2147483648/);
  // within the bound, but the file holds 4 experts: the first expert it lacks is named, nothing is allocated
  await refused(smoe(65536), /tensor 'param\.experts\.4\.w1\.weight' is missing/);
  const lm = (L: number) =>
    variant('lm/dense_swiglu.safetensors', `lm-${L}.safetensors`, (_m, _t, c) => {
      c.num_hidden_layers = L;
    });
  await refused(lm(1e6), /config\.num_hidden_layers: expected an integer in \[1, 4096\], found 1000000/);
  await refused(lm(4096), /tensor 'param\.model\.layers\.3\.input_layernorm\.weight' is missing/);
  const peer = variant('peer/train_relu.safetensors', 'peer-2-30.safetensors', (_m, _t, c) => {
    c.num_experts = 2 ** 30; // a perfect square (32768²): the tensors' shapes say otherwise
  });
  await refused(peer, /tensor 'param\.sub_keys': shape \[2,8,4\] does not match the config: expected \[2,32768,4\]/);
});

test('item 6: an I64 token id ≥ 2³¹ is that file’s exit-2 line; the other files of the batch still run', async () => {
  const big = variant('lm/dense_swiglu.safetensors', 'big-id.safetensors', (_m, t) => {
    const tok = t.get('in.tokens')!;
    const ids = BigInt64Array.from(tok.data as Int32Array, (v) => BigInt(v));
    ids[3] = 2n ** 31n;
    t.set('in.tokens', { dtype: 'I64', shape: tok.shape, data: ids });
  });
  const good = join(ROOT, 'fixtures', 'dense-ffn', 'relu.safetensors');
  const r = await check(big, good);
  assert.is(r.code, 2, r.out + r.err);
  assert.match(r.err, /big-id\.safetensors: tensor 'in\.tokens': token id 2147483648 at flat index 3 is outside/);
  assert.match(r.out, /reference: 1 fixtures, 1 passed, 0 failed/);
  assert.match(r.out, /1 file\(s\) could not be used/);
});

test('item 7: a renamed or lost result, an unknown tensor, duplicate JSON keys: exit 2', async () => {
  const dense = 'dense-ffn/swiglu.safetensors';
  await refused(
    variant(dense, 'renamed.safetensors', (_m, t) => {
      t.set('out.yy', t.get('out.y')!);
      t.delete('out.y');
    }),
    /tensor 'out\.yy': is not a result a 'dense-ffn' case with this config produces; expected out\.y/,
  );
  await refused(
    variant(dense, 'lost-grad.safetensors', (_m, t) => {
      t.delete('grad.param.up_proj.weight');
    }),
    /results missing: grad\.param\.up_proj\.weight; a 'dense-ffn' case with this config must hold every output/,
  );
  await refused(
    variant(dense, 'lost-out.safetensors', (_m, t) => {
      t.delete('out.y');
    }),
    /results missing: out\.y/,
  );
  await refused(
    variant('monet-router/train.safetensors', 'lost-next.safetensors', (_m, t) => {
      t.delete('next.norm2.running_var');
    }),
    /results missing: next\.norm2\.running_var/,
  );
  // duplicate keys in the config JSON string
  await refused(
    variant(dense, 'dup-config.safetensors', (m) => {
      m.config = m.config.replace(/^\{/, '{"hidden_size":3,');
    }),
    /__metadata__\.config: key "hidden_size" appears twice; expected each key once/,
  );
  // duplicate keys in the safetensors header itself: the same tensor declared twice (the second one would win)
  const bytes = readFileSync(join(ROOT, 'fixtures', dense));
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString());
  const text = JSON.stringify(header).replace(/^\{/, `{"out.y":${JSON.stringify(header['out.y'])},`);
  const head = Buffer.from(text.padEnd(Math.ceil(text.length / 8) * 8, ' '));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(head.length));
  const dupPath = join(dir, 'dup-header.safetensors');
  writeFileSync(dupPath, Buffer.concat([len, head, bytes.subarray(8 + n)]));
  await refused(dupPath, /header: key "out\.y" appears twice in \$/);
});

test('item 7: every committed fixture carries a checksum; a damaged value or margin is exit 2', async () => {
  const files = readdirSync(join(ROOT, 'fixtures'), { recursive: true, encoding: 'utf8' }).filter((f) =>
    f.endsWith('.safetensors'),
  );
  assert.ok(files.length >= 65, `${files.length} fixture files`);
  for (const f of files) {
    const path = join(ROOT, 'fixtures', f);
    const { metadata, tensors } = parseSafetensors(readFileSync(path), path);
    assert.match(metadata.checksum ?? '', /^crc32:[0-9a-f]{8}$/, `${f} has a checksum`);
    assert.is(fixtureChecksum(metadata, tensors), metadata.checksum, f);
  }
  // the lowest bit of one expected value: well inside tolerance, so without the checksum the file still passes
  const flip = (_m: Record<string, string>, t: TensorMap) => {
    const y = t.get('out.y')!.data as Float64Array;
    new Uint8Array(y.buffer, y.byteOffset, 8)[0] ^= 1;
  };
  const unsealed = variant('dense-ffn/swiglu.safetensors', 'flip-unsealed.safetensors', flip);
  assert.is((await check(unsealed)).code, 0, 'an unsealed file with a one-ulp change passes: the checksum is optional');
  const damaged = variant('dense-ffn/swiglu.safetensors', 'flip.safetensors', flip, true);
  await refused(damaged, /checksum mismatch: __metadata__\.checksum says crc32:[0-9a-f]{8}, the file's metadata/);
  const loosened = variant(
    'smoe/swiglu_e4k2.safetensors',
    'loose.safetensors',
    (m) => {
      m.min_margin = '0.5';
    },
    true,
  );
  await refused(loosened, /checksum mismatch/);
  const malformed = variant(
    'dense-ffn/relu.safetensors',
    'bad-sum.safetensors',
    (m) => {
      m.checksum = 'CRC32:1234';
    },
    true,
  );
  await refused(malformed, /__metadata__\.checksum is "CRC32:1234"; expected crc32: and 8 lowercase hex digits/);
  // where the writer put header entries, data blocks and __metadata__ does not matter (scrambled PyTorch files)
  const path = join(ROOT, 'fixtures', 'dense-ffn', 'relu.safetensors');
  const { metadata, tensors } = parseSafetensors(readFileSync(path), path);
  const reversed = new Map([...tensors].reverse());
  const meta2 = Object.fromEntries(Object.entries(metadata).reverse());
  assert.is(fixtureChecksum(meta2, reversed), metadata.checksum);
  assert.ok(parseFixture(serializeSafetensors(reversed, meta2), 'reversed'));
});

test('item 11: alpha 1.5, bn_eps < 0, min_margin "", format /01, misspelled keys: exit 2 naming them', async () => {
  await refused(
    variant('topk-ffn/alpha0.4.safetensors', 'alpha.safetensors', (_m, _t, c) => {
      c.alpha = 1.5;
    }),
    /config\.alpha: expected a number in \[0, 1\], found 1\.5/,
  );
  await refused(
    variant('peer/train_relu.safetensors', 'bn-eps.safetensors', (_m, _t, c) => {
      c.bn_eps = -1e-5;
    }),
    /config\.bn_eps: expected a finite number > 0, found -0\.00001/,
  );
  await refused(
    variant('smoe/swiglu_e4k2.safetensors', 'margin.safetensors', (m) => {
      m.min_margin = '';
    }),
    /__metadata__\.min_margin is ""; expected a decimal number ≥ 0/,
  );
  await refused(
    variant('dense-ffn/relu.safetensors', 'format01.safetensors', (m) => {
      m.format = 'monet-ts-fixture/01';
    }),
    /__metadata__\.format is 'monet-ts-fixture\/01'; expected 'monet-ts-fixture\/1'/,
  );
  // a misspelled metadata key would be ignored: a lost margin, or a checksum nobody verifies (one flipped bit in the
  // key's name turned a damaged file into an ordinary failure in the fixture fuzz)
  await refused(
    variant('smoe/swiglu_e4k2.safetensors', 'margn.safetensors', (m) => {
      m.min_margn = m.min_margin;
      delete m.min_margin;
    }),
    /__metadata__ key "min_margn" is not a key of the format; did you mean 'min_margin'\?/,
  );
  await refused(
    variant(
      'dense-ffn/relu.safetensors',
      'checksun.safetensors',
      (m, t) => {
        m.checksun = m.checksum;
        delete m.checksum;
        (t.get('out.y')!.data as Float64Array)[0] += 1;
      },
      true,
    ),
    /__metadata__ key "checksun" is not a key of the format; did you mean 'checksum'\?/,
  );
  await refused(
    variant('monet-router/train.safetensors', 'typo.safetensors', (_m, _t, c) => {
      c.moe_topkk = c.moe_topk;
    }),
    /config\.moe_topkk: unexpected key \(not a key of kind 'monet-router'; did you mean 'moe_topk'\?\)/,
  );
});

test.after(() => rmSync(dir, { recursive: true, force: true }));

test.run();
