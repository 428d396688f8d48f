// `monet inspect` end to end on tiny run folders (random weights, two-label text corpus): every subcommand runs,
// prints its table and writes its HTML; bad input is refused with the reason.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../src/cli/main.ts';
import { saveModel } from '../src/train/checkpoint.ts';
import { initParams } from '../src/train/init.ts';
import { TRAIN_DEFAULTS } from '../src/train/options.ts';
import type { ModelConfig } from '../src/train/presets.ts';
import { writeRunJson } from '../src/train/run.ts';

const root = mkdtempSync(join(tmpdir(), 'interp-cli-'));
const BASE = {
  vocab_size: 256,
  hidden_size: 16,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  max_position_embeddings: 16,
  tie_word_embeddings: false,
  mode: 'train' as const,
};

// Two "languages": prose and numbers, 3 kB each (the last 10 % of each file is validation).
const alpha = join(root, 'alpha.txt');
const beta = join(root, 'beta.txt');
writeFileSync(alpha, Array.from({ length: 80 }, (_, i) => `the cat ${i % 2 ? 'sat' : 'ran'} on the mat. `).join(''));
writeFileSync(beta, Array.from({ length: 300 }, (_, i) => `${(i * 7919) % 1000}, `).join(''));

function makeRun(name: string, config: ModelConfig): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  const { params, state } = initParams(config, 3);
  // a larger init than 0.02 so that routing and activations are not all alike
  for (const [k, v] of params) if (!/norm/.test(k)) for (let i = 0; i < v.length; i++) v[i] *= 15;
  saveModel(dir, config, 'bytes', params, state);
  writeRunJson(dir, { options: { ...TRAIN_DEFAULTS, name, seqLen: 16, data: [alpha, beta] }, config, step: 10 });
  return dir;
}

const monetRun = makeRun('tiny-monet', {
  ...BASE,
  ffn: 'monet',
  moe_experts: 4,
  moe_heads: 2,
  moe_topk: 2,
  moe_dim: 4,
  moe_groups: 1,
  moe_decompose: 'vertical',
  hidden_act: 'relu2',
  aux: { unif: 1e-3, amb: 1e-3 },
  unif_eps: 1e-10,
  bn_eps: 1e-5,
  bn_momentum: 0.1,
});
const denseRun = makeRun('tiny-dense', { ...BASE, ffn: 'dense', intermediate_size: 24, activation: 'relu' });
const peerRun = makeRun('tiny-peer', {
  ...BASE,
  ffn: 'peer',
  intermediate_size: 24,
  activation: 'relu',
  peer_layers: [1],
  num_experts: 16,
  heads: 2,
  top_k: 2,
  key_dim: 4,
  bn_eps: 1e-5,
  bn_momentum: 0.1,
});
const smoeRun = makeRun('tiny-smoe', {
  ...BASE,
  ffn: 'smoe',
  intermediate_size: 8,
  num_experts: 4,
  top_k: 2,
  activation: 'swiglu',
  aux: { balance: 0.01, z: 0.001 },
});

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = console.log;
  const error = console.error;
  const write = process.stderr.write;
  console.log = (s: unknown) => void out.push(String(s));
  console.error = (s: unknown) => void err.push(String(s));
  process.stderr.write = ((s: string) => {
    err.push(String(s));
    return true;
  }) as typeof process.stderr.write;
  try {
    const code = await main(['inspect', ...args]);
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    console.log = log;
    console.error = error;
    process.stderr.write = write;
  }
}

test('inspect units / unit on a Monet run: tables and HTML', async () => {
  const r = await run(['units', '--run', monetRun, '--windows', '4', '--min-fires', '2', '--top', '3']);
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /layer 0 — 16 monet composite experts/);
  assert.match(r.out, /tok H/);
  const html = readFileSync(join(monetRun, 'inspect-units.html'), 'utf8');
  assert.match(html, /<mark>/);
  assert.not.match(html, /https?:\/\/(?!www\.w3\.org\/2000\/svg)/, 'no network references');
  const u = await run(['unit', '--run', monetRun, '--layer', '1', '--unit', '2,3', '--windows', '4']);
  assert.is(u.code, 0, u.err);
  assert.match(u.out, /layer 1 monet unit \(2,3\)/);
  assert.match(u.out, /density: fires at \d+ of 128 positions/);
});

test('inspect mask: one row per label with the ratio column', async () => {
  const r = await run(['mask', '--run', monetRun, '--windows', '4']);
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /language masking/);
  assert.match(r.out, /alpha/);
  assert.match(r.out, /beta/);
  assert.match(r.out, /floor/);
  const res = JSON.parse(readFileSync(join(monetRun, 'inspect-mask.json'), 'utf8'));
  assert.equal(res.labels, ['alpha', 'beta']);
  assert.is(res.rows.length, 2);
  for (const row of res.rows) {
    // every label with selected units gets its random masks under both nulls; each verdict follows its floor
    if (row.unitsPerGroup.every((n: number) => n === 0)) continue;
    for (const n of [row.uniform, row.matched]) {
      assert.is(n.draws.length, 5);
      assert.is(n.floor, Math.max(...n.draws.map(Math.abs)));
      assert.is(n.verdict === 'no-effect', !(row.deltaTarget > n.floor));
    }
  }
  assert.ok(existsSync(join(monetRun, 'inspect-mask.html')));
});

test('inspect mask --select effect: one table per --units value, the rule named, JSON with every size', async () => {
  const r = await run([
    'mask',
    '--run',
    monetRun,
    '--windows',
    '4',
    '--select',
    'effect',
    '--units',
    '2,3',
    '--draws',
    '2',
  ]);
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /language masking, --select effect --units 2 ==/);
  assert.match(r.out, /language masking, --select effect --units 3 ==/);
  assert.match(r.out, /per unit group the 2 \/ 2 composite experts whose removal raises/);
  const res = JSON.parse(readFileSync(join(monetRun, 'inspect-mask.json'), 'utf8'));
  assert.equal(res.units, [2, 3]);
  assert.equal(
    res.results.map((x: { select: string; perGroup: number[] }) => [x.select, x.perGroup]),
    [
      ['effect', [2, 2]],
      ['effect', [3, 3]],
    ],
  );
  for (const [i, K] of [2, 3].entries())
    for (const row of res.results[i].rows) for (const n of row.unitsPerGroup) assert.ok(n <= K, `${n} > ${K}`);
  let bad = await run(['mask', '--run', monetRun, '--windows', '4', '--units', '2']);
  assert.is(bad.code, 2);
  assert.match(bad.err, /--units sets the size of --select effect masks; add --select effect/);
  bad = await run(['mask', '--run', monetRun, '--windows', '4', '--select', 'effect', '--units', '2,x']);
  assert.is(bad.code, 2);
  assert.match(bad.err, /--units expects positive integers \(units per group\), found 'x'/);
});

test('inspect steer (dense run) and compare', async () => {
  const s = await run([
    'steer',
    '--run',
    denseRun,
    '--windows',
    '4',
    '--min-fires',
    '2',
    '--tokens',
    '8',
    '--count',
    '2',
  ]);
  assert.is(s.code, 0, s.err);
  assert.match(s.out, /unsteered:/);
  assert.match(s.out, /neuron n\d+/);
  assert.match(s.out, /diverges (at character \d+|never \(identical\))/);
  const c = await run([
    'compare',
    '--run',
    monetRun,
    '--run',
    denseRun,
    '--windows',
    '4',
    '--min-fires',
    '2',
    '--out',
    join(root, 'cmp.html'),
  ]);
  assert.is(c.code, 0, c.err);
  assert.match(c.out, /tiny-monet/);
  assert.match(c.out, /tiny-dense/);
  assert.match(readFileSync(join(root, 'cmp.html'), 'utf8'), /<svg/);
});

test('inspect units on PEER (layer 1 experts, layer 0 dense neurons) and SMoE runs', async () => {
  const p = await run(['units', '--run', peerRun, '--windows', '4', '--min-fires', '2', '--top', '2']);
  assert.is(p.code, 0, p.err);
  assert.match(p.out, /layer 0 — 24 dense neurons/);
  assert.match(p.out, /layer 1 — 16 peer experts/);
  assert.match(p.out, /\be\d+\b/);
  const s = await run(['units', '--run', smoeRun, '--windows', '4', '--min-fires', '2', '--top', '2']);
  assert.is(s.code, 0, s.err);
  assert.match(s.out, /layer 1 — 4 smoe experts/);
});

test('inspect refuses bad input with the reason', async () => {
  let r = await run(['steer', '--run', monetRun, '--windows', '4', '--layer', '0', '--neuron', '1']);
  assert.is(r.code, 2);
  assert.match(r.err, /steering needs neurons/);
  r = await run(['unit', '--run', monetRun, '--layer', '0', '--unit', '4,0', '--windows', '4']);
  assert.is(r.code, 1);
  assert.match(r.err, /must be < 4/);
  r = await run(['frob', '--run', monetRun]);
  assert.is(r.code, 2);
  assert.match(r.err, /unknown subcommand 'frob'/);
  r = await run(['units', '--run', join(root, 'nope')]);
  assert.is(r.code, 1);
  assert.match(r.err, /does not exist/);
});

test.after(() => rmSync(root, { recursive: true, force: true }));

test.run();
