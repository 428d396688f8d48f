// MonetLLM folders (Hugging Face layout): the small checkpoints tools/pytorch/write_hf_checkpoint.py wrote from an
// independent PyTorch model (bf16, two shards + index, BatchNorm buffers) load, generate the same greedy ids and give
// the same cross-entropy on wasm and webgpu; damaged folders fail naming the file and the key.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DirSource } from '../src/hf/dir-source.ts';
import { loadHfModel, planHfModel, readHfTensors, type LoadedTensor, type LoadOptions } from '../src/hf/folder.ts';
import { bf16ToF32, f16ToF32, f32ToBf16 } from '../src/hf/shard.ts';
import { badBf16Value, badValue, MAX_WEIGHT } from '../src/validate.ts';
import { createEngine } from '../src/train/engines.ts';
import { generateIds, GREEDY } from '../src/train/sample.ts';
import { runMonet } from './cli-run.ts';
import { createJsDevice } from '../src/backend/js/device.ts';
import type { Device } from '../src/backend/device.ts';
import { type KernelName, wrapKernels } from '../src/backend/kernels.ts';
import { DeviceEngine } from '../src/train/engine-device.ts';
import { lmForward as refLmForward } from '../reference/lm.ts';
import { parseLm } from '../src/kinds/lm.ts';
import type { HostParams } from '../src/train/checkpoint.ts';
import type { ModelConfig } from '../src/train/presets.ts';
import { backendTest } from './webgpu-setup.ts';

const DATA = 'test/data/hf';
const FOLDERS = ['monet-vd-tiny', 'monet-hd-tiny'];

interface Expected {
  prompt_ids: number[];
  greedy_ids: number[];
  ce_ids: number[];
  ce: number;
}
const expectedOf = (f: string): Expected => JSON.parse(readFileSync(join(DATA, f, 'expected.json'), 'utf8'));

test('16-bit formats widen exactly: bf16 is the upper half of a float32, f16 by its fields', () => {
  const bf = new Uint16Array([0x3f80, 0xc000, 0x0000, 0x8000, 0x7f80, 0xff80, 0x0001, 0x4049]);
  assert.equal(Array.from(bf16ToF32(bf)), [1, -2, 0, -0, Infinity, -Infinity, 2 ** -133, 3.140625]);
  const h = new Uint16Array([0x3c00, 0xc000, 0x0001, 0x03ff, 0x7bff, 0x7c00, 0xfc00, 0x3555]);
  assert.equal(Array.from(f16ToF32(h)), [1, -2, 2 ** -24, 1023 * 2 ** -24, 65504, Infinity, -Infinity, 0.333251953125]);
  assert.ok(Number.isNaN(f16ToF32(new Uint16Array([0x7e00]))[0]));
  // round to nearest even: 1 + 2^-8 is a tie between 1 and 1 + 2^-7 → 1; 1 + 3·2^-8 → 1 + 2^-6
  assert.equal(
    Array.from(f32ToBf16(new Float32Array([1 + 2 ** -8, 1 + 3 * 2 ** -8, -3.140625]))),
    [0x3f80, 0x3f82, 0xc049],
  );
});

test('badBf16Value refuses exactly what badValue refuses after widening, with the same message', () => {
  // around the bound √(float32 max) ≈ 2^64 (0x5f80), Infinity (0x7f80), NaN, negative values, ordinary weights
  const patterns = [0x3f80, 0x5f7f, 0x5f80, 0xdf80, 0xdf7f, 0x7f80, 0xff80, 0x7fc0, 0x0001, 0x8000, 0x5f00];
  for (const p of patterns) {
    const bits = Uint16Array.of(0x3c00, 0xbc00, p, 0x4000);
    assert.equal(badBf16Value(bits, MAX_WEIGHT), badValue(bf16ToF32(bits), MAX_WEIGHT), `pattern ${p.toString(16)}`);
    assert.equal(badBf16Value(bits), badValue(bf16ToF32(bits)), `pattern ${p.toString(16)}, no bound`);
  }
  assert.match(
    badBf16Value(Uint16Array.of(0, 0x5f80), MAX_WEIGHT) ?? '',
    /value 18446744073709552000 at index 1 is beyond/,
  );
  assert.is(badBf16Value(Uint16Array.of(0x5f7f, 0xdf7f), MAX_WEIGHT), null);
});

test('a MonetLLM folder loads: config translated, both shards, BN buffers in, num_batches_tracked noted', async () => {
  const m = await loadHfModel(new DirSource(join(DATA, 'monet-vd-tiny')));
  assert.is(m.config.ffn, 'monet');
  assert.is(m.config.mode, 'eval');
  assert.is(m.config.moe_decompose, 'vertical');
  assert.is(m.config.num_key_value_heads, 2);
  assert.equal(m.eos, [2]);
  assert.equal(Object.keys(m.dtypes).sort(), ['BF16', 'I64']);
  assert.is(m.state.size, 8); // 2 routers × 2 norms × (mean, var)
  assert.ok(m.params.has('model.layers.2.router.w1.weight'));
  assert.ok(m.notes.some((n) => /4 BatchNorm num_batches_tracked buffers \(I64\) read and ignored/.test(n)));
  assert.ok(m.notes.some((n) => /00002\.safetensors: no monet_ts_checksum: written by another tool/.test(n)));
  const hd = await loadHfModel(new DirSource(join(DATA, 'monet-hd-tiny')));
  assert.ok(hd.params.has('model.layers.3.moe.b'));
});

// 'f32': every weight widened at load; 'bf16': matrices kept 16-bit on the device and widened by the widenBf16 kernel
// inside the forward (what monet sample does). Widening is exact, so both give the same float32 logits.
const VARIANTS = [
  ['wasm', 'f32'],
  ['wasm', 'bf16'],
  ['webgpu', 'bf16'],
] as const;
const wasmF32Ce = new Map<string, number>();

for (const [backend, weights] of VARIANTS) {
  for (const folder of FOLDERS) {
    backendTest(backend)(
      `${folder} on ${backend}, ${weights} weights: greedy ids = PyTorch's, CE within 1e-3 relative`,
      async () => {
        const exp = expectedOf(folder);
        const m = await loadHfModel(new DirSource(join(DATA, folder)), { keep16: weights === 'bf16' });
        assert.is(m.packed.size > 0, weights === 'bf16');
        const { engine } = await createEngine(backend, {
          config: m.config,
          params: m.params,
          state: m.state,
          packed: m.packed,
          inferenceOnly: true,
        });
        try {
          const ids = await generateIds(engine, exp.prompt_ids, {
            tokens: exp.greedy_ids.length,
            sampling: GREEDY,
            seed: 1,
            stop: [],
            alpha: 1,
            maxContext: m.config.max_position_embeddings,
          });
          assert.equal(ids, exp.greedy_ids);
          const r = await engine.evalLoss(Int32Array.from(exp.ce_ids), 1, exp.ce_ids.length, 1);
          const rel = Math.abs(r.ce - exp.ce) / exp.ce;
          assert.ok(rel < 1e-3, `CE ${r.ce} vs PyTorch ${exp.ce}: relative error ${rel}`);
          if (backend === 'wasm' && weights === 'f32') wasmF32Ce.set(folder, r.ce);
          if (backend === 'wasm' && weights === 'bf16') assert.is(r.ce, wasmF32Ce.get(folder));
          let refused = '';
          try {
            await engine.trainStep([Int32Array.from(exp.ce_ids)], 1, exp.ce_ids.length, {} as never, true);
          } catch (e) {
            refused = (e as Error).message;
          }
          assert.match(refused, /inference only/);
        } finally {
          await engine.dispose();
        }
      },
    );
  }
}

test('widenBf16 on the plain-JS device (oracle of the wasm/webgpu kernel tests) is the exact widening', async () => {
  const dev = createJsDevice();
  const bits = new Uint16Array([0x3f80, 0xc000, 0x0001, 0x4049, 0x8000]);
  const padded = new Uint16Array(6);
  padded.set(bits);
  const out = dev.alloc('f32', 5);
  dev.kernels.widenBf16(out, dev.upload(new Int32Array(padded.buffer)), { n: 5 });
  assert.equal(Array.from(await dev.read(out)), Array.from(bf16ToF32(bits)));
});

/** The plain-JS device with every kernel call recorded (name and sizes) before it runs. */
function recordingDevice(): { dev: Device; calls: Array<[KernelName, Record<string, unknown>]> } {
  const base = createJsDevice();
  const calls: Array<[KernelName, Record<string, unknown>]> = [];
  const kernels = wrapKernels(base.kernels, (k, call) => (...a: unknown[]) => {
    calls.push([k, a[a.length - 1] as Record<string, unknown>]);
    call(...a);
  });
  return { dev: Object.assign(Object.create(base) as Device, { kernels }), calls };
}

test('16-bit weights are read in place, streamed onto the device: only the Monet biases are ever widened', async () => {
  for (const folder of FOLDERS) {
    const exp = expectedOf(folder);
    const plan = await planHfModel(new DirSource(join(DATA, folder)), { keep16: true });
    const { config } = plan;
    const { dev, calls } = recordingDevice();
    const init = {
      config,
      params: new Map(),
      state: new Map(),
      inferenceOnly: true,
      stream: () => readHfTensors(plan, { pieceElements: 1000 }), // the embedding (16,384) in 17 pieces
    };
    const engine = new DeviceEngine(dev, config, init);
    await engine.receive(init.stream());
    const dec = engine.openDecoder(16, 1);
    await dec.append(Int32Array.from(exp.prompt_ids)); // prefill: the blocked products
    await dec.append(Int32Array.of(exp.greedy_ids[0])); // one token: the matrix–vector products
    const r = await engine.evalLoss(Int32Array.from(exp.ce_ids), 1, exp.ce_ids.length, 1);
    assert.ok(Math.abs(r.ce - exp.ce) / exp.ce < 1e-3, `${folder}: CE ${r.ce} vs PyTorch ${exp.ce}`);
    // what is widened: Monet's 2-D biases only (VD b1, b2 (E, d/2); HD b (E, d)), never a weight matrix
    const { hidden_size: d, moe_experts: E } = config;
    const biasSize = folder === 'monet-vd-tiny' ? (E! * d) / 2 : E! * d;
    const widened = new Set(calls.filter(([k]) => k === 'widenBf16').map(([, s]) => s.n));
    assert.equal([...widened], [biasSize], `${folder}: sizes widened`);
    // per forward: q, k, v, o per layer, the router's w1, w2 per group, the experts' matrices per layer, the head
    const L = config.num_hidden_layers;
    const perForward = 4 * L + 2 * (L / config.moe_groups!) + (folder === 'monet-vd-tiny' ? 6 : 2) * L + 1;
    const products = calls.filter(([k]) => k === 'matmulBf16');
    assert.is(products.length, 3 * perForward, `${folder}: matmulBf16 calls`);
    // the decode step, and the prefill's head (logits of the last position only)
    assert.is(products.filter(([, s]) => s.M === 1).length, perForward + 1, `${folder}: one-token products`);
    assert.is(calls.filter(([k]) => k === 'gatherRowsBf16').length, 3);
    assert.not.ok(calls.some(([k]) => k === 'gatherRows'));
    dec.dispose();
    await engine.dispose();
  }
});

test('monetRouting: g1, g2 of every router group per token on wasm (16-bit weights) = float64 reference', async () => {
  for (const folder of FOLDERS) {
    const plan = await planHfModel(new DirSource(join(DATA, folder)), { keep16: true });
    const m = plan;
    const f32 = await loadHfModel(new DirSource(join(DATA, folder)));
    const exp = expectedOf(folder);
    const ids = Int32Array.from([...exp.prompt_ids, ...exp.greedy_ids]);
    // streamed in pieces of 1000 values, written in place in the WASM memory
    const stream = () => readHfTensors(plan, { pieceElements: 1000 });
    const init = { config: plan.config, params: new Map(), state: new Map(), inferenceOnly: true, stream };
    const { engine } = await createEngine('wasm', init);
    try {
      const groups = await engine.monetRouting!(ids);
      const ref = refMonetRouting(f32.config, f32.params, f32.state, ids);
      const { num_hidden_layers: L, moe_groups: G, moe_heads: H, moe_experts: E } = m.config;
      assert.equal(
        groups.map((g) => g.layers),
        Array.from({ length: L / G! }, (_, g) => Array.from({ length: G! }, (_, j) => g * G! + j)),
      );
      for (const g of groups) {
        assert.is(g.g1.length, ids.length * H! * E!);
        const want = ref[g.layers[0]];
        for (const [got, w] of [
          [g.g1, want.g1],
          [g.g2, want.g2],
        ] as const)
          for (let i = 0; i < got.length; i++)
            assert.ok(Math.abs(got[i] - w[i]) < 1e-5, `${folder} group ${g.group} [${i}]: ${got[i]} vs ${w[i]}`);
      }
    } finally {
      await engine.dispose();
    }
  }
});

/** The float64 reference LM's routing weights per layer (its group's router) for one sequence, eval mode. */
function refMonetRouting(
  config: ModelConfig,
  params: HostParams,
  state: HostParams,
  ids: Int32Array,
): Array<{ g1: Float64Array; g2: Float64Array }> {
  const f64 = (m: HostParams, strip: boolean) =>
    Object.fromEntries([...m].map(([k, v]) => [strip ? k.replace(/^state\./, '') : k, Float64Array.from(v)]));
  const cfg = parseLm({ ...config, mode: 'eval' }, 'monetRouting test');
  const pass = refLmForward(cfg, f64(params, false), ids, 1, ids.length, f64(state, true)).saved.ffn;
  if (pass.kind !== 'monet') throw new Error('expected a Monet pass');
  return Array.from({ length: cfg.L }, (_, l) => pass.router(l));
}

test('a streamed model must bring every tensor once, with its size', async () => {
  const plan = await planHfModel(new DirSource(join(DATA, 'monet-vd-tiny')), { keep16: true });
  const { config } = plan;
  const fail = async (edit: (ts: LoadedTensor[]) => LoadedTensor[]): Promise<string> => {
    const all: LoadedTensor[] = [];
    for await (const t of readHfTensors(plan)) all.push(t);
    const init = { config, params: new Map(), state: new Map(), inferenceOnly: true };
    const engine = new DeviceEngine(createJsDevice(), config, { ...init, stream: () => readHfTensors(plan) });
    try {
      await engine.receive(
        (async function* () {
          yield* edit(all);
        })(),
      );
    } catch (e) {
      return (e as Error).message;
    }
    throw new Error('the stream was accepted');
  };
  assert.match(await fail((ts) => ts.slice(0, -1)), /the stream ended without 'state\.model\.layers\.2\.router/);
  assert.match(
    await fail((ts) => [...ts, ts[0]]),
    /'model\.embed_tokens\.weight' is not part of the model, or came twice/,
  );
  assert.match(
    await fail((ts) => ts.map((t) => (t.into === 'packed' ? { ...t, length: t.length - 1 } : t))),
    /'model\.embed_tokens\.weight' has 16383 values, expected 16384/,
  );
  const short = (pieces: AsyncIterable<Uint16Array>) =>
    (async function* () {
      for await (const p of pieces) yield p.subarray(1);
    })();
  assert.match(
    await fail((ts) => ts.map((t) => (t.into === 'packed' ? { ...t, pieces: short(t.pieces) } : t))),
    /16-bit weight 'model\.embed_tokens\.weight': the pieces end after 16383 of its 16384 values/,
  );
});

/** A copy of the VD folder with `edit` applied, loaded; returns the error message (or fails if it loads). */
async function loadError(edit: (dir: string) => void, o: LoadOptions = {}): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'monet-hf-'));
  try {
    cpSync(join(DATA, 'monet-vd-tiny'), dir, { recursive: true });
    edit(dir);
    try {
      await loadHfModel(new DirSource(dir), o);
    } catch (e) {
      return (e as Error).message;
    }
    throw new Error('the damaged folder loaded');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const editJson = (dir: string, name: string, f: (o: Record<string, unknown>) => void) => {
  const o = JSON.parse(readFileSync(join(dir, name), 'utf8'));
  f(o);
  writeFileSync(join(dir, name), JSON.stringify(o));
};

test('damaged folders fail naming the file and the key or tensor', async () => {
  let msg = await loadError((d) => editJson(d, 'config.json', (c) => (c.rope_scaling = { type: 'linear', factor: 2 })));
  assert.match(msg, /config\.json: 'rope_scaling' is \{"type":"linear","factor":2\}; only null/);
  msg = await loadError((d) => editJson(d, 'config.json', (c) => (c.model_type = 'llama')));
  assert.match(msg, /config\.json: 'model_type' is "llama"; expected "monet"/);
  msg = await loadError((d) => editJson(d, 'config.json', (c) => (c.hidden_act = 'silu')));
  assert.match(msg, /'hidden_act' is "silu"; only "relu2"/);
  msg = await loadError((d) => editJson(d, 'config.json', (c) => (c.num_hidden_layers = 6)));
  assert.match(msg, /tensor 'model\.layers\.4\.input_layernorm\.weight' is missing/);
  msg = await loadError((d) => editJson(d, 'config.json', (c) => (c.num_hidden_layers = 3)));
  assert.match(
    msg,
    /model-0000\d-of-00002\.safetensors: tensor 'model\.layers\.3\.[a-z_.0-9]+' is not part of a Monet model/,
  );
  msg = await loadError((d) => editJson(d, 'config.json', (c) => (c.moe_dim = 6)));
  assert.match(msg, /tensor 'model\.layers\.0\.moe\.u1\.weight' has shape \[16,32\], config\.json implies \[24,32\]/);
  msg = await loadError((d) =>
    editJson(d, 'model.safetensors.index.json', (c) => {
      (c.weight_map as Record<string, string>)['model.norm.weight'] = 'model-00001-of-00002.safetensors';
    }),
  );
  assert.match(
    msg,
    /weight_map puts 'model\.norm\.weight' in model-00001-of-00002\.safetensors, which has no such tensor/,
  );
  msg = await loadError((d) => rmSync(join(d, 'model-00002-of-00002.safetensors')));
  assert.match(msg, /model-00002-of-00002\.safetensors, which is not in/);
  msg = await loadError((d) => {
    const p = join(d, 'model-00001-of-00002.safetensors');
    const b = readFileSync(p);
    writeFileSync(p, b.subarray(0, b.length - 10));
  });
  assert.match(msg, /model-00001-of-00002\.safetensors.*(run past|cover)/);
  const nanInShard = (at: number) => (d: string) => {
    // the first tensor of shard 1 (the embedding) gets a bf16 NaN (0x7fc0) as its element `at`
    const p = join(d, 'model-00001-of-00002.safetensors');
    const b = readFileSync(p);
    const start = 8 + Number(b.readBigUInt64LE(0));
    b.writeUInt16LE(0x7fc0, start + 2 * at);
    writeFileSync(p, b);
  };
  // widened at load; kept 16-bit (read in pieces of 1000: the index counts from the tensor's start)
  for (const [at, o] of [
    [1, {}],
    [1, { keep16: true }],
    [1500, { keep16: true, pieceElements: 1000 }],
  ] as const) {
    msg = await loadError(nanInShard(at), o);
    const want = `model-00001-of-00002.safetensors: tensor 'model.embed_tokens.weight': value NaN at index ${at};`;
    assert.ok(msg.includes(want), msg);
  }
  msg = await loadError((d) => rmSync(join(d, 'model.safetensors.index.json')));
  assert.match(msg, /neither model\.safetensors nor model\.safetensors\.index\.json/);
});

const cli = runMonet;

test('monet sample --prompt-ids --json and monet eval --ids --json on a MonetLLM folder', async () => {
  const exp = expectedOf('monet-hd-tiny');
  const dir = join(DATA, 'monet-hd-tiny');
  const s = await cli([
    'sample',
    '--checkpoint',
    dir,
    '--prompt-ids',
    exp.prompt_ids.join(','),
    '--tokens',
    '4',
    '--temperature',
    '0',
    '--json',
    '--backend',
    'wasm',
  ]);
  assert.is(s.code, 0, s.err);
  const r = JSON.parse(s.out);
  assert.equal(r.ids, exp.greedy_ids.slice(0, 4));
  assert.ok(r.tokens_per_s > 0);
  const e = await cli(['eval', '--checkpoint', dir, '--ids', exp.ce_ids.join(','), '--json', '--backend', 'wasm']);
  assert.is(e.code, 0, e.err);
  assert.ok(Math.abs(JSON.parse(e.out).loss - exp.ce) / exp.ce < 1e-3);
  const bad = await cli(['eval', '--checkpoint', dir, '--ids', '1,2,512', '--backend', 'wasm']);
  assert.is(bad.code, 2);
  assert.match(bad.err, /--ids: item 3 is '512'; expected a token id in \[0, vocab_size = 512\)/);
  const noTok = await cli(['sample', '--checkpoint', dir, '--prompt', 'Hello', '--backend', 'wasm']);
  assert.is(noTok.code, 1);
  assert.match(noTok.err, /tokenizer\.json is missing/);
});

test.run();
