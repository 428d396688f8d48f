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
// A downloaded MonetLLM folder comes in a second way (wasmForwardStreamed): its tensors are streamed onto the device
// one at a time with the 16-bit matrices kept packed (as `monet sample` holds them), and the host keeps no copy of
// the weights. Whatever a view needs on the host (a layer's expert matrices to remove a unit's contribution, the
// head for a logit lens) is then read back from the device when it is first used, and dropped with the view.
//
// Sizes: B sequences, S positions, T = B·S tokens, d model dim, k top-k (SMoE), P = T·k routed rows.

import { Scope, type HostMemoryDevice } from '../backend/device.ts';
import type { F32, I32 } from '../backend/kernels.ts';
import { parseLm } from '../kinds/lm.ts';
import { lmForward, type LmHooks, type LmModel } from '../layers/lm.ts';
import type { AnyDeviceFfnPass, MonetDevicePass } from '../layers/lm-ffn.ts';
import { monetHdOutput } from '../layers/monet-hd.ts';
import { monetVdOutput } from '../layers/monet-vd.ts';
import { WideningParams } from '../layers/packed-weights.ts';
import type { PackedBf16 } from '../layers/common.ts';
import { bf16ToF32 } from '../hf/shard.ts';
import { stateCheckpointName } from '../train/checkpoint.ts';
import type { StreamedTensor } from '../train/engine.ts';
import { paramSpecs, stateSpecs } from '../train/presets.ts';
import { groupAt, monetExperts, nextTokenLoss, type FastForward, type InterpModel, type UnitHooks } from './model.ts';
import { removedMixes } from './monet-removal.ts';
import {
  hiddenView,
  monetView,
  neuronView,
  peerView,
  smoeView,
  type MonetUnitView,
  type SiteInfo,
  type UnitView,
} from './views.ts';

/** Reads a parameter onto the host as float64 (from the model's float64 copy, or back from the device). */
type ParamReader = (name: string) => Float64Array;

/**
 * The parameters of one layer under `prefix` (e.g. `mlp.`), by their short names, read on first use: a view that
 * never touches a layer's expert matrices (scores only) costs nothing, one that removes units reads those it needs.
 */
function layerParams(
  model: InterpModel,
  read: ParamReader,
  layer: number,
  prefix: string,
): Record<string, Float64Array> {
  const pre = `model.layers.${layer}.${prefix}`;
  const out: Record<string, Float64Array> = {};
  for (const s of paramSpecs(model.config)) {
    if (!s.name.startsWith(pre)) continue;
    const key = s.name.slice(pre.length);
    Object.defineProperty(out, key, {
      enumerable: true,
      configurable: true,
      get() {
        const v = read(s.name);
        Object.defineProperty(out, key, { value: v, enumerable: true });
        return v;
      },
    });
  }
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

function ffnView(
  dev: HostMemoryDevice,
  model: InterpModel,
  read: ParamReader,
  site: SiteInfo,
  pass: AnyDeviceFfnPass,
): UnitView {
  const { layer, T, d } = site;
  const c = model.config;
  const rd = (t: F32) => dev.readSync(t);
  const ri = (t: I32) => dev.readSync(t);
  switch (pass.kind) {
    case 'dense':
      return neuronView(site, rd(pass.saved[layer].h), layerParams(model, read, layer, 'mlp.')['down_proj.weight']);
    case 'topk':
      return neuronView(site, rd(pass.saved[layer].s.h), layerParams(model, read, layer, 'mlp.')['down_proj.weight']);
    case 'smoe': {
      const { s } = pass.saved[layer];
      const k = pass.c.k;
      return smoeView(site, k, ri(s.idx), rd(s.w), pairOutputs(rd(s.ys), ri(s.pos), T, k, d));
    }
    case 'peer': {
      const saved = pass.saved[layer];
      const p = layerParams(model, read, layer, 'mlp.');
      if (!saved.peer) return neuronView(site, rd(saved.s.h), p['down_proj.weight']);
      const { s } = saved;
      return peerView(site, c.heads!, c.top_k!, pass.c.activation, ri(s.ids), rd(s.w), rd(s.hpre), p.w_up);
    }
    case 'monet': {
      const { g1, g2 } = pass.router(layer).saved; // the routing of this layer's group
      const experts = monetExperts(c, layerParams(model, read, layer, 'moe.'));
      const view = monetView(site, f64(rd(g1)), f64(rd(g2)), site.input!, experts, c.moe_dim!);
      return { ...view, removeUnits: (out, remove) => removeOnDevice(dev, pass, site, view, out, remove) };
    }
  }
}

/**
 * Removes a Monet layer's composite experts on the device: the removed pairs' mixes (monet-removal.ts
 * removedMixes, from the activations the layer's forward saved) through the layer's own output stage, with its
 * weights as the forward read them (16-bit matrices in place), then out −= that. The expert matrices never come to
 * the host, and the work is one more output stage per layer (the float64 view's removeUnits evaluates each
 * removed pair's expert halves on the host instead; test/interp-wasm.test.ts compares the two).
 */
function removeOnDevice(
  dev: HostMemoryDevice,
  pass: MonetDevicePass,
  site: SiteInfo,
  view: MonetUnitView,
  out: Float64Array,
  remove: ReadonlySet<number>,
): void {
  if (remove.size === 0) return;
  const { layer, T, d } = site;
  const { H, E, m } = pass.c;
  const pairs = Array.from({ length: T }, (_, t) => view.removedPairs(t, remove));
  if (pairs.every((p) => p.length === 0)) return;
  const dims = { T, d, H, E, m };
  const entry = pass.saved[layer];
  const sc = new Scope(dev);
  try {
    const up = (a: Float32Array) => sc.upload(a);
    const removed = sc.f32(T * d);
    if (entry.hd) {
      const x = removedMixes('horizontal', T, E, m, (t) => pairs[t], dev.readSync(entry.s.a), null);
      monetHdOutput(sc, removed, up(x.y), up(x.G2), entry.w, dims);
    } else {
      const x = removedMixes('vertical', T, E, m, (t) => pairs[t], dev.readSync(entry.s.a1), dev.readSync(entry.s.a2));
      const mixes = { h11: up(x.h11), h12: up(x.h12), h21: up(x.h21), h22: up(x.h22), G1: up(x.G1), G2: up(x.G2) };
      monetVdOutput(sc, removed, mixes, entry.w, dims);
    }
    const r = dev.readSync(removed);
    for (let i = 0; i < T * d; i++) out[i] -= r[i];
  } finally {
    sc.release();
  }
}

/** The model's weights on the device, as the device LM reads them. */
interface DeviceWeights {
  params: Map<string, F32>;
  state: Map<string, F32>;
  /** Matrices kept as bfloat16 (a streamed 16-bit folder), read in place by the forward. */
  packed?: ReadonlyMap<string, PackedBf16>;
}

/** The WASM forward of `model` on a host-memory device (Node: createWasmDevice; a page: createWasmDeviceFromBytes). */
export function wasmForward(dev: HostMemoryDevice, model: InterpModel): FastForward {
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
  return deviceForward(dev, model, { params, state });
}

/**
 * The WASM forward of a model whose weights arrive as a stream of tensors (a MonetLLM folder: src/hf/folder.ts
 * readHfTensors), each uploaded and let go: 16-bit matrices stay packed on the device, and `model.params` /
 * `model.state` stay empty — the host never holds the weights. Every parameter and state tensor the config implies
 * must arrive once, with its size.
 */
export async function wasmForwardStreamed(
  dev: HostMemoryDevice,
  model: InterpModel,
  stream: AsyncIterable<StreamedTensor>,
): Promise<FastForward> {
  const where = 'inspect (wasm)';
  const params = new WideningParams(dev);
  const state = new Map<string, F32>();
  const sizes = new Map<string, number>();
  const count = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
  for (const s of paramSpecs(model.config)) sizes.set(s.name, count(s.shape));
  for (const s of stateSpecs(model.config)) sizes.set(s.name, count(s.shape));
  try {
    for await (const t of stream) {
      const n = sizes.get(t.name);
      if (n === undefined)
        throw new Error(`${where}: streamed tensor '${t.name}' is not part of the model, or came twice`);
      const length = t.into === 'packed' ? t.length : t.data.length;
      if (length !== n) throw new Error(`${where}: streamed tensor '${t.name}' has ${length} values, expected ${n}`);
      sizes.delete(t.name);
      if (t.into === 'packed') await params.setPackedPieces(t.name, t.length, t.pieces);
      else if (t.into === 'params') params.set(t.name, dev.upload(t.data));
      else state.set(stateCheckpointName(t.name), dev.upload(t.data));
    }
    if (sizes.size > 0) throw new Error(`${where}: the stream ended without '${[...sizes.keys()][0]}'`);
  } catch (e) {
    for (const t of [...params.values(), ...state.values()]) dev.free(t);
    for (const p of params.packed.values()) dev.free(p.bits);
    throw e;
  }
  return deviceForward(dev, model, { params, state, packed: params.packed });
}

/** The forward with the inspection hooks over weights already on the device. */
function deviceForward(dev: HostMemoryDevice, model: InterpModel, w: DeviceWeights): FastForward {
  const raw: Record<string, unknown> = { ...model.config, mode: 'eval' };
  if (model.config.ffn === 'topk') raw.alpha = model.alpha;
  const cfg = parseLm(raw, `${model.dir}/config.json`);
  const { params, state, packed } = w;
  // A parameter on the host: the float64 copy when the model has one, else read back from the device (a packed
  // matrix as its bfloat16 words, widened here: no float32 copy on the device).
  const read: ParamReader = (name) => {
    const host = model.params[name];
    if (host) return host;
    const p = packed?.get(name);
    if (p) {
      const words = dev.readSync(p.bits);
      return f64(bf16ToF32(new Uint16Array(words.buffer, words.byteOffset, p.length)));
    }
    const t = params.get(name);
    if (!t) throw new Error(`inspect (wasm): the model has no parameter '${name}'`);
    return f64(dev.readSync(t));
  };
  const d = cfg.d;
  const tapHooks = (hooks: UnitHooks, T: number): LmHooks => ({
    afterFfn(_sc, layer, io) {
      const group = groupAt(model.groups, layer, 'ffn');
      if (!group) return;
      const out = f64(dev.readSync(io.out));
      const site = { group, layer, T, d, input: f64(dev.readSync(io.u)) };
      hooks.atSite(ffnView(dev, model, read, site, io.ffn), out);
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
      if (params instanceof WideningParams) params.settle(); // a new forward: 16-bit weight slots are free again
      const sc = new Scope(dev);
      try {
        const lm: LmModel = {
          cfg,
          params,
          grads: null,
          state,
          packed,
          hooks: hooks ? tapHooks(hooks, B * S) : undefined,
        };
        // no backward follows: each layer's temporaries are released as the forward goes
        const saved = lmForward(sc, lm, sc.upload(Int32Array.from(tokens)), B, S, { keepLayers: false });
        const logits = dev.readSync(saved.logits);
        return { logits, nll: nextTokenLoss(logits, tokens, B, S, cfg.V) };
      } finally {
        sc.release();
      }
    },
    param: read,
    dispose() {
      for (const t of [...params.values(), ...state.values()]) dev.free(t);
      for (const p of packed?.values() ?? []) dev.free(p.bits);
    },
  };
}
