// Validation at every public entry: the model config (the `lm` kind's declaration, which the reference LM, the
// device LM and the trainer presets all read), the fixture-case runners of both backends called directly (bypassing
// the fixture loader), the fixture loader, and the checkpoint loader. Each refuses non-square N, top-k above the
// experts, odd moe_dim for VD, d not divisible by the
// heads, token ids out of range, and shape/dtype mismatches — with a message that names the key or tensor, what was
// expected and what was found, and where (file or case).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createReferenceBackend } from '../src/fixtures/reference-cases.ts';
import { parseLm } from '../src/kinds/lm.ts';
import { deviceCaseBackend } from '../src/backend/run-case.ts';
import { createJsDevice } from '../src/backend/js/device.ts';
import type { CaseBackend, FixtureCase } from '../src/backend/case.ts';
import { getPreset, validateConfig, type ModelConfig } from '../src/train/presets.ts';
import { loadFixture, parseFixture } from '../src/fixtures/format.ts';
import { parseSafetensors, serializeSafetensors } from '../src/safetensors.ts';
import { CHECKPOINT_FORMAT, loadModel, saveModel } from '../src/train/checkpoint.ts';
import { initParams } from '../src/train/init.ts';
import { checkTokenIds, serializeSealed } from '../src/validate.ts';

const cfg = (name: string, o: Record<string, unknown>) => ({ ...getPreset(name).config, ...o }) as ModelConfig;

/**
 * Bad model configs: the one reader (the `lm` declaration, src/kinds/lm.ts) names the key, what it expected and what
 * it found; the trainer's validateConfig and the engines read the config through it, so they say the same.
 */
const BAD_CONFIGS: [string, ModelConfig, RegExp][] = [
  [
    'PEER N not a perfect square',
    cfg('peer-small', { num_experts: 10 }),
    /config\.num_experts: expected a perfect square.*found 10/,
  ],
  [
    'PEER top_k above √N',
    cfg('peer-small', { top_k: 65 }),
    /config\.top_k: expected at most √num_experts = 64.*found 65/,
  ],
  [
    'SMoE top_k above num_experts',
    cfg('smoe-small', { top_k: 9 }),
    /config\.top_k: expected at most num_experts = 8, found 9/,
  ],
  [
    'Monet moe_topk not below moe_experts',
    cfg('tiny', { moe_topk: 4 }),
    /config\.moe_topk: expected less than moe_experts = 4.*found 4/,
  ],
  ['odd moe_dim for VD', cfg('tiny', { moe_dim: 3 }), /config\.moe_dim: expected an even number.*found 3/],
  [
    'd not divisible by heads',
    cfg('tiny', { hidden_size: 18, num_attention_heads: 4 }),
    /config\.hidden_size: expected a multiple of num_attention_heads = 4, found 18/,
  ],
  [
    'odd RoPE head dim',
    cfg('tiny', { hidden_size: 6, num_attention_heads: 2, num_key_value_heads: 2 }),
    /config\.hidden_size: expected an even head dim hidden_size \/ num_attention_heads .*6 \/ 2 = 3, found 6/,
  ],
  [
    'unknown activation',
    cfg('dense-small', { activation: 'tanh' }),
    /config\.activation: expected one of 'swiglu', 'relu2', 'relu', 'gelu', found "tanh"/,
  ],
];

test('model configs: the lm declaration refuses bad configs naming the key; presets validation says the same', () => {
  for (const [what, c, want] of BAD_CONFIGS) {
    assert.throws(
      () => parseLm({ ...c }, 'my/config.json'),
      (e: Error) => e.message.startsWith('my/config.json: ') && want.test(e.message),
      `lm declaration: ${what}`,
    );
    assert.throws(() => validateConfig(c), want, `presets: ${what}`);
  }
});

/** Both case backends, called directly with a case (as a library user would, without the fixture loader). */
async function backends(): Promise<CaseBackend[]> {
  return [await createReferenceBackend(), deviceCaseBackend(createJsDevice())];
}

function caseFrom(path: string, edit: (c: FixtureCase) => void): FixtureCase {
  const f = loadFixture(path);
  const c: FixtureCase = { ...f.case, config: structuredClone(f.case.config), tensors: new Map(f.case.tensors) };
  edit(c);
  return c;
}

async function rejects(p: () => Promise<unknown>, want: RegExp, what: string): Promise<void> {
  try {
    await p();
  } catch (e) {
    assert.match((e as Error).message, want, what);
    return;
  }
  assert.unreachable(`${what}: accepted`);
}

test(
  'case runners (reference and device) refuse bad configs, out-of-range token ids and wrong shapes or ' + 'dtypes',
  async () => {
    for (const b of await backends()) {
      const run = (c: FixtureCase) => b.run(c, {});
      await rejects(
        () => run(caseFrom('fixtures/smoe/swiglu_e4k2.safetensors', (c) => (c.config.top_k = 5))),
        /config\.top_k: expected at most num_experts = 4, found 5/,
        `${b.name} smoe top_k`,
      );
      await rejects(
        () => run(caseFrom('fixtures/peer/train_relu.safetensors', (c) => (c.config.num_experts = 15))),
        /config\.num_experts: expected a perfect square/,
        `${b.name} peer N`,
      );
      await rejects(
        () =>
          run(
            caseFrom(
              'fixtures/monet-vd/train.safetensors',
              (c) => (c.config.moe_dim = (c.config.moe_dim as number) + 1),
            ),
          ),
        /fixtures\/monet-vd\/train\.safetensors \[kind monet-vd\]: config\.moe_dim: expected an even number .*found 5/,
        `${b.name} vd odd m`,
      );
      for (const bad of [-1, 256, 1 << 30]) {
        await rejects(
          () =>
            run(
              caseFrom('fixtures/lm/dense_swiglu.safetensors', (c) => {
                const t = c.tensors.get('in.tokens')!;
                const data = Int32Array.from(t.data as Int32Array);
                data[data.length - 1] = bad;
                c.tensors.set('in.tokens', { ...t, data });
              }),
            ),
          new RegExp(
            `fixtures/lm/dense_swiglu\\.safetensors \\[kind lm\\]: tensor in\\.tokens: token id ${bad} at (row \\d+, ` +
              `)?position \\d+ is outside \\[0, (config\\.vocab_size = )?11\\)`,
          ),
          `${b.name} token ${bad}`,
        );
      }
      await rejects(
        () =>
          run(
            caseFrom('fixtures/dense-ffn/swiglu.safetensors', (c) => {
              const t = c.tensors.get('param.up_proj.weight')!;
              c.tensors.set('param.up_proj.weight', { ...t, shape: [t.shape[1], t.shape[0]] });
            }),
          ),
        /param\.up_proj\.weight: expected shape \[\d+,\d+\], found \[\d+,\d+\]/,
        `${b.name} transposed weight`,
      );
      await rejects(
        () =>
          run(
            caseFrom('fixtures/dense-ffn/swiglu.safetensors', (c) => {
              const t = c.tensors.get('in.x')!;
              c.tensors.set('in.x', { dtype: 'I32', shape: t.shape, data: new Int32Array(t.data.length) });
            }),
          ),
        /in\.x: expected a real tensor \(F64 or F32\), found I32/,
        `${b.name} integer input`,
      );
    }
  },
);

test('fixture loader: token ids, shapes and dtypes are checked against the config, naming file and tensor', () => {
  const src = 'fixtures/lm/dense_swiglu.safetensors';
  const edit = (f: (t: Map<string, { dtype: string; shape: number[]; data: ArrayLike<number> }>) => void) => {
    const { metadata, tensors } = parseSafetensors(readFileSync(src), src);
    delete metadata.checksum; // an edited copy carries no checksum (else the loader reports it damaged)
    f(tensors as never);
    return serializeSafetensors(tensors, metadata);
  };
  const tok = edit((t) => {
    const x = t.get('in.tokens')!;
    const d = Int32Array.from(x.data);
    d[3] = 9999;
    t.set('in.tokens', { ...x, data: d });
  });
  assert.throws(
    () => parseFixture(tok, 'bad.safetensors'),
    /bad\.safetensors: tensor 'in\.tokens': token id 9999 at flat index 3 is outside \[0, config\.vocab_size = \d+\)/,
  );
  const shape = edit((t) => {
    const x = t.get('param.model.norm.weight')!;
    t.set('param.model.norm.weight', {
      dtype: x.dtype,
      shape: [x.shape[0] - 1],
      data: Float64Array.from(x.data).subarray(1),
    });
  });
  assert.throws(
    () => parseFixture(shape, 'bad.safetensors'),
    /bad\.safetensors: tensor 'param\.model\.norm\.weight': shape \[\d+\] does not match the config: expected \[\d+\]/,
  );
  const dtype = edit((t) => {
    const x = t.get('param.model.norm.weight')!;
    t.set('param.model.norm.weight', { dtype: 'I32', shape: x.shape, data: new Int32Array(x.data.length) });
  });
  assert.throws(
    () => parseFixture(dtype, 'bad.safetensors'),
    /bad\.safetensors: tensor 'param\.model\.norm\.weight': expected F32 or F64, found I32/,
  );
});

test('checkpoint loader: a tensor of the wrong dtype or shape is refused naming the file and tensor', () => {
  const dir = mkdtempSync(join(tmpdir(), 'monet-val-'));
  try {
    const config = getPreset('tiny').config;
    const { params, state } = initParams(config, 1);
    saveModel(dir, config, 'bytes', params, state);
    const p = join(dir, 'model.safetensors');
    const { tensors } = parseSafetensors(readFileSync(p), p);
    const w = tensors.get('model.norm.weight')!;
    tensors.set('model.norm.weight', { dtype: 'I32', shape: w.shape, data: new Int32Array(w.data.length) });
    // Forged with a matching checksum (without one, the run folder's own format refuses it at once): the loader's
    // own checks must catch it.
    writeFileSync(p, serializeSealed(tensors, { monet_ts_format: CHECKPOINT_FORMAT }).bytes);
    assert.throws(() => loadModel(dir), /model\.safetensors: tensor 'model\.norm\.weight' is I32; expected F32 or F64/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('checkTokenIds names the first bad id, its row and position, and the vocabulary', () => {
  checkTokenIds(Int32Array.of(0, 255, 7), 256, 'batch', 3);
  assert.throws(
    () => checkTokenIds(Int32Array.of(0, 1, 2, 3, 256, 5), 256, 'training batch', 3),
    /training batch: token id 256 at row 1, position 1 is outside the vocabulary \[0, 256\)/,
  );
  assert.throws(() => checkTokenIds([0, -1], 10, 'ids'), /ids: token id -1 at index 1/);
  assert.throws(() => checkTokenIds([0.5], 10, 'ids'), /token id 0\.5/);
});

test.run();
