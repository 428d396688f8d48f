// KV cache (src/layers/lm-decode.ts): a prompt prefilled once and tokens appended one at a time give the logits of
// the full training forward over the same context, on wasm and webgpu, for every feed-forward kind, with grouped
// KV heads; and generation with the cache gives the same ids as without.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { createEngine } from '../src/train/engines.ts';
import type { Engine, EngineInit } from '../src/train/engine.ts';
import { initParams } from '../src/train/init.ts';
import { getPreset, type ModelConfig } from '../src/train/presets.ts';
import { generateIds, GREEDY } from '../src/train/sample.ts';
import { DirSource } from '../src/hf/dir-source.ts';
import { loadHfModel } from '../src/hf/folder.ts';
import { backendTest } from './webgpu-setup.ts';

/** An inference engine on `backend` (the webgpu tests are registered with backendTest: skipped without an adapter). */
async function open(backend: 'wasm' | 'webgpu', init: EngineInit): Promise<Engine> {
  return (await createEngine(backend, { ...init, inferenceOnly: true })).engine;
}

/** Largest |a − b| relative to the largest |b|. */
function relDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / scale;
}

/**
 * Prefill `ids[0..4)` (as pieces of 2, 1, 1 with `pieces`), then append the rest one by one; every step's logits
 * against nextLogits of the context.
 */
async function compareSteps(engine: Engine, ids: number[], tol: number, pieces = false): Promise<void> {
  const dec = engine.openDecoder!(ids.length, 1);
  try {
    let got = await dec.append(Int32Array.from(ids.slice(0, pieces ? 2 : 4)));
    if (pieces) {
      got = await dec.append(Int32Array.from(ids.slice(2, 3)));
      got = await dec.append(Int32Array.from(ids.slice(3, 4)));
    }
    for (let n = 4; n <= ids.length; n++) {
      const want = await engine.nextLogits(Int32Array.from(ids.slice(0, n)), 1);
      const r = relDiff(got, want);
      assert.ok(r < tol, `after ${n} tokens: decoder logits differ from the full forward by ${r} (relative)`);
      if (n < ids.length) got = await dec.append(Int32Array.of(ids[n]));
    }
    assert.is(dec.length, ids.length);
  } finally {
    dec.dispose();
  }
}

/**
 * A prompt in pieces of several tokens (a long prompt in PROMPT_PIECE pieces): after each piece, the logits against
 * nextLogits of the context so far.
 */
async function comparePieces(engine: Engine, ids: number[], pieces: number[], tol: number): Promise<void> {
  const dec = engine.openDecoder!(ids.length + 2, 1); // a capacity beyond the prompt, as generation has
  try {
    let at = 0;
    for (const n of pieces) {
      const got = await dec.append(Int32Array.from(ids.slice(at, at + n)));
      at += n;
      const r = relDiff(got, await engine.nextLogits(Int32Array.from(ids.slice(0, at)), 1));
      assert.ok(r < tol, `a prompt in pieces ${pieces.join(' + ')}: after ${at} tokens the logits differ by ${r}`);
    }
  } finally {
    dec.dispose();
  }
}

const small = (name: string, patch: Partial<ModelConfig> = {}): ModelConfig => ({
  ...getPreset(name).config,
  hidden_size: 32,
  num_hidden_layers: 3,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 32,
  ...patch,
});

for (const backend of ['wasm', 'webgpu'] as const) {
  backendTest(backend)(
    `KV cache on ${backend}: MonetLLM tiny folder, bf16, greedy ids with and without the cache`,
    async () => {
      const m = await loadHfModel(new DirSource(join('test/data/hf/monet-vd-tiny')), { keep16: true });
      const engine = await open(backend, { config: m.config, params: m.params, state: m.state, packed: m.packed });
      try {
        const ids = [1, 385, 361, 98, 407, 154, 362, 55, 69, 94, 341, 355];
        await compareSteps(engine, ids, 1e-5);
        await compareSteps(engine, ids, 1e-5, true);
        await comparePieces(engine, ids, [5, 4, 3], 1e-5);
        const o = { tokens: 8, sampling: GREEDY, seed: 1, stop: [], alpha: 1, maxContext: 64 };
        const withCache = await generateIds(engine, [1], o);
        const without = await generateIds(engine, [1, 1], { ...o, kvCache: false });
        const cachedTwo = await generateIds(engine, [1, 1], o);
        assert.equal(cachedTwo, without);
        assert.is(withCache.length, 8); // a one-token prompt works with the cache
      } finally {
        await engine.dispose();
      }
    },
  );
}

for (const preset of ['monet-hd-small', 'dense-small', 'smoe-small', 'peer-small', 'topk-small']) {
  test(`KV cache on wasm: ${preset} (GQA, 4 query over 2 KV heads) = the full forward at each step`, async () => {
    const config = small(preset);
    const { params, state } = initParams(config, 11);
    for (const a of params.values()) for (let i = 0; i < a.length; i++) a[i] += 0.05 * Math.cos(i * 0.37 + a.length);
    const engine = await open('wasm', { config, params, state });
    try {
      await compareSteps(engine, [5, 17, 3, 99, 42, 7, 7, 120, 64, 1], 1e-5);
      await comparePieces(engine, [5, 17, 3, 99, 42, 7, 7, 120, 64, 1], [3, 4, 3], 1e-5);
    } finally {
      await engine.dispose();
    }
  });
}

test.run();
