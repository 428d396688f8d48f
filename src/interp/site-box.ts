// The test box of a unit page (`monet inspect site`): runs the model on text typed into the page, on the WASM backend
// in the browser, and returns the unit's score at every byte. site.ts bundles this file into assets/box.js.
//
// A page opened from disk (file://) may not fetch files, so assets/model.js carries the checkpoint and the WASM
// kernels as base64 strings in a global (MONET_SITE_MODEL); the page loads it with a <script> tag when the box is
// first used. Nothing is fetched from the network.

import { createWasmDeviceFromBytes } from '../backend/wasm/device.ts';
import { modelFromFiles } from './load-bytes.ts';
import { interpForward, makeInterpModel, type InterpModel } from './model.ts';
import { wasmForward } from './wasm-forward.ts';

/** What assets/model.js sets. */
export interface SiteModelData {
  name: string;
  config: string; // config.json text
  model: string; // model.safetensors, base64
  wasm: string; // asm/build/kernels.wasm, base64
  alpha: number; // TopK α at the checkpoint
}

export interface BoxResult {
  bytes: number[];
  scores: number[]; // (bytes) the unit's score at each byte (0 where it did not score)
  engine: string;
  truncated: boolean; // the text was longer than the model's context
}

const g: typeof globalThis & { MONET_SITE_MODEL?: SiteModelData; monetSiteBox?: unknown } = globalThis;

function fromBase64(s: string): Uint8Array<ArrayBuffer> {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

async function load(): Promise<InterpModel> {
  const data = g.MONET_SITE_MODEL;
  if (!data) throw new Error('assets/model.js did not load (the site folder must keep its assets/ next to u/)');
  const m = modelFromFiles(data.config, 'config.json', fromBase64(data.model), 'model.safetensors');
  const model = makeInterpModel(data.name, m.config, m.params, m.state, data.alpha);
  model.fast = wasmForward(await createWasmDeviceFromBytes({ plain: fromBase64(data.wasm) }), model);
  return model;
}

let ready: Promise<InterpModel> | null = null;

/** The score of unit `unit` of unit group `group` at every byte of `text` (cut to the model's context). */
export async function unitScores(text: string, group: number, unit: number): Promise<BoxResult> {
  if (!ready) ready = load();
  const model = await ready;
  const all = Array.from(new TextEncoder().encode(text));
  const max = model.lm.maxPos;
  const bytes = all.slice(0, max);
  if (bytes.length < 2) throw new Error('type at least two characters (the model reads a sequence of bytes)');
  const scores = new Array<number>(bytes.length).fill(0);
  interpForward(model, Int32Array.from(bytes), 1, bytes.length, {
    atSite(view) {
      if (!view.first || view.group.group !== group) return;
      view.visitScores((t, u, s) => {
        if (u === unit) scores[t] = s;
      });
    },
  });
  return { bytes, scores, engine: `${model.fast!.name}, in this page`, truncated: all.length > max };
}

g.monetSiteBox = { unitScores };
