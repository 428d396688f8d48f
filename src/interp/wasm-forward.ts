// The interpretability forward on the float32 WASM backend: the device LM (src/layers/lm.ts) in eval mode, with the
// SAME hooks as the float64 reference (model.ts). At every unit site the layer's tensors are copied to the host
// (the WASM device keeps them in host memory, so this is a synchronous copy), a view over them is handed to the
// hooks (views.ts), and the possibly changed output is written back before the forward continues.
//
// Why: the float64 reference LM is written to be read, not to be fast. One pass of the default model (4 × 128,
// 192 windows of 128 bytes) takes about a minute on it and a few seconds here; masking with random-mask noise
// floors needs dozens of passes. The numbers differ from the reference only by float32 rounding (test:
// interp-wasm.test.ts compares scores, losses and masked losses of both on every unit kind).
//
// Sizes: B sequences, S positions, T = B·S tokens, d model dim, k top-k (SMoE), P = T·k routed rows.

import { Scope, type HostMemoryDevice } from '../backend/device.ts';
import type { F32, I32 } from '../backend/kernels.ts';
import { parseLm } from '../kinds/lm.ts';
import { lmForward, type LmHooks, type LmModel } from '../layers/lm.ts';
import type { AnyDeviceFfnPass } from '../layers/lm-ffn.ts';
import { stateCheckpointName } from '../train/checkpoint.ts';
import { paramSpecs, stateSpecs } from '../train/presets.ts';
import { groupAt, monetExperts, nextTokenLoss, type FastForward, type InterpModel, type UnitHooks } from './model.ts';
import { hiddenView, monetView, neuronView, peerView, smoeView, type SiteInfo, type UnitView } from './views.ts';

/** The parameters a layer's views read on the host, as float64 (the checkpoint's float32 values, widened). */
function layerParams(model: InterpModel, layer: number, prefix: string): Record<string, Float64Array> {
  const pre = `model.layers.${layer}.${prefix}`;
  const out: Record<string, Float64Array> = {};
  for (const [k, v] of Object.entries(model.params)) if (k.startsWith(pre)) out[k.slice(pre.length)] = v;
  return out;
}

const f64 = (a: Float32Array) => Float64Array.from(a);

/** SMoE slot outputs (T·k, d) from the device's expert-sorted rows ys (P, d) and pos (pair → sorted row). */
function pairOutputs(ys: Float32Array, pos: Int32Array, T: number, k: number, d: number): Float64Array {
  const out = new Float64Array(T * k * d); // (T·k, d)
  for (let pair = 0; pair < T * k; pair++) {
    const r = pos[pair];
    for (let o = 0; o < d; o++) out[pair * d + o] = ys[r * d + o];
  }
  return out;
}

function ffnView(dev: HostMemoryDevice, model: InterpModel, site: SiteInfo, pass: AnyDeviceFfnPass): UnitView {
  const { layer, T, d } = site;
  const c = model.config;
  const rd = (t: F32) => dev.readSync(t);
  const ri = (t: I32) => dev.readSync(t);
  switch (pass.kind) {
    case 'dense':
      return neuronView(site, rd(pass.saved[layer].h), layerParams(model, layer, 'mlp.')['down_proj.weight']);
    case 'topk':
      return neuronView(site, rd(pass.saved[layer].s.h), layerParams(model, layer, 'mlp.')['down_proj.weight']);
    case 'smoe': {
      const { s } = pass.saved[layer];
      const k = pass.c.k;
      return smoeView(site, k, ri(s.idx), rd(s.w), pairOutputs(rd(s.ys), ri(s.pos), T, k, d));
    }
    case 'peer': {
      const saved = pass.saved[layer];
      const p = layerParams(model, layer, 'mlp.');
      if (!saved.peer) return neuronView(site, rd(saved.s.h), p['down_proj.weight']);
      const { s } = saved;
      return peerView(site, c.heads!, c.top_k!, pass.c.activation, ri(s.ids), rd(s.w), rd(s.hpre), p.w_up);
    }
    case 'monet': {
      const { g1, g2 } = pass.router(layer).saved; // the routing of this layer's group
      const experts = monetExperts(c, layerParams(model, layer, 'moe.'));
      return monetView(site, f64(rd(g1)), f64(rd(g2)), site.input!, experts, c.moe_dim!);
    }
  }
}

/** The WASM forward of `model` on a host-memory device (Node: createWasmDevice; a page: createWasmDeviceFromBytes). */
export function wasmForward(dev: HostMemoryDevice, model: InterpModel): FastForward {
  const raw: Record<string, unknown> = { ...model.config, mode: 'eval' };
  if (model.config.ffn === 'topk') raw.alpha = model.alpha;
  const cfg = parseLm(raw, `${model.dir}/config.json`);
  const params = new Map<string, F32>();
  for (const s of paramSpecs(model.config)) {
    const p = model.params[s.name];
    if (!p) throw new Error(`inspect (wasm): the model has no parameter '${s.name}', which its config implies`);
    params.set(s.name, dev.upload(Float32Array.from(p)));
  }
  const state = new Map<string, F32>();
  for (const s of stateSpecs(model.config)) {
    const name = stateCheckpointName(s.name);
    const v = model.state[name];
    if (!v) throw new Error(`inspect (wasm): the model has no state tensor '${name}', which its config implies`);
    state.set(name, dev.upload(Float32Array.from(v)));
  }
  const d = cfg.d;
  const tapHooks = (hooks: UnitHooks, T: number): LmHooks => ({
    afterFfn(_sc, layer, io) {
      const group = groupAt(model.groups, layer, 'ffn');
      if (!group) return;
      const out = f64(dev.readSync(io.out));
      const site = { group, layer, T, d, input: f64(dev.readSync(io.u)) };
      hooks.atSite(ffnView(dev, model, site, io.ffn), out);
      dev.writeSync(io.out, Float32Array.from(out));
    },
    afterHidden(_sc, layer, stream) {
      const group = groupAt(model.groups, layer, 'hidden');
      if (!group) return;
      const x = f64(dev.readSync(stream));
      hooks.atSite(hiddenView({ group, layer, T, d, input: null }, x), x);
      dev.writeSync(stream, Float32Array.from(x));
    },
  });
  return {
    name: dev.name,
    forward(tokens, B, S, hooks) {
      const sc = new Scope(dev);
      try {
        const lm: LmModel = { cfg, params, grads: null, state, hooks: hooks ? tapHooks(hooks, B * S) : undefined };
        const saved = lmForward(sc, lm, sc.upload(Int32Array.from(tokens)), B, S);
        const logits = dev.readSync(saved.logits);
        return { logits, nll: nextTokenLoss(logits, tokens, B, S, cfg.V) };
      } finally {
        sc.release();
      }
    },
    dispose() {
      for (const t of [...params.values(), ...state.values()]) dev.free(t);
    },
  };
}
