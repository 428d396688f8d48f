// The kind declarations (src/kinds/) are the one home of every rule about a kind's config and tensors: both LMs read
// exactly the parameters and state the `lm` declaration lists, the committed fixtures hold exactly the tensors each
// layer kind's layout names, and the reference (the educator's files) imports nothing from src/.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { zerosLike, type Params } from '../reference/common.ts';
import { lmBackward, lmForward } from '../reference/lm.ts';
import { Rng } from '../reference/rng.ts';
import { Scope } from '../src/backend/device.ts';
import { createJsDevice } from '../src/backend/js/device.ts';
import type { F32 } from '../src/backend/kernels.ts';
import { lmExampleConfigs } from '../src/kinds/examples.ts';
import { initLm, lmParams, lmState, parseLm } from '../src/kinds/lm.ts';
import { lmBackward as deviceBackward, lmForward as deviceForward } from '../src/layers/lm.ts';

const ROOT = join(import.meta.dirname, '..');
const [B, S] = [2, 4];

/** A record whose property reads are recorded (enumerating its keys is not a read). */
function tracked(rec: Params, read: Set<string>): Params {
  return new Proxy(rec, {
    get(target, key, receiver) {
      if (typeof key === 'string' && Object.hasOwn(target, key)) read.add(key);
      return Reflect.get(target, key, receiver);
    },
  });
}

/** A Map whose get() calls are recorded. */
class TrackedMap extends Map<string, F32> {
  readonly read = new Set<string>();
  override get(key: string): F32 | undefined {
    this.read.add(key);
    return super.get(key);
  }
}

const examples = [
  ...lmExampleConfigs(),
  ...lmExampleConfigs()
    .filter((e) => e.ffn === 'peer' || e.ffn === 'monet')
    .map((e) => ({ ...e, label: `${e.label}, eval`, config: { ...e.config, mode: 'eval' } })),
];

for (const ex of examples) {
  test(`lm ${ex.label}: the reference and the device LM read exactly the declared parameters and state`, async () => {
    const cfg = parseLm(ex.config, ex.label);
    const declared = [...lmParams(cfg)].map((s) => s.name).sort();
    const declaredState = [...lmState(cfg)].map((s) => s.name).sort();
    const rng = new Rng(7);
    const { params, state } = initLm(cfg, rng, 0.5);
    const tokens = rng.ints(B * S, cfg.V);

    // reference: forward and backward
    const readP = new Set<string>();
    const readS = new Set<string>();
    const readG = new Set<string>();
    const fwd = lmForward(cfg, tracked(params, readP), tokens, B, S, tracked(state, readS));
    lmBackward(cfg, tracked(params, readP), fwd, tracked(zerosLike(params), readG));
    assert.equal([...readP].sort(), declared, 'reference: parameters read');
    assert.equal([...readG].sort(), declared, 'reference: gradient buffers written');
    assert.equal([...readS].sort(), declaredState, 'reference: state read');

    // device (the plain-JS kernels): forward and backward
    const dev = createJsDevice();
    const sc = new Scope(dev);
    try {
      const p = new TrackedMap();
      const g = new TrackedMap();
      const st = new TrackedMap();
      for (const [n, v] of Object.entries(params)) {
        p.set(n, sc.upload(Float32Array.from(v)));
        g.set(n, sc.f32(v.length));
      }
      for (const [n, v] of Object.entries(state)) st.set(n, sc.upload(Float32Array.from(v)));
      const model = { cfg, params: p, grads: g, state: st };
      deviceBackward(sc, model, deviceForward(sc, model, sc.upload(tokens), B, S));
      assert.equal([...p.read].sort(), declared, 'device: parameters read');
      assert.equal([...g.read].sort(), declared, 'device: gradient buffers written');
      assert.equal([...st.read].sort(), declaredState, 'device: state read');
    } finally {
      sc.release();
    }
  });
}

test('no file in reference/ imports from src/ (the reference is math only)', () => {
  const offenders: string[] = [];
  for (const f of readdirSync(join(ROOT, 'reference'))) {
    if (!f.endsWith('.ts')) continue;
    const text = readFileSync(join(ROOT, 'reference', f), 'utf8');
    for (const m of text.matchAll(/from\s+'([^']+)'/g)) if (!m[1].startsWith('./')) offenders.push(`${f}: ${m[1]}`);
  }
  assert.equal(offenders, []);
});

test.run();
