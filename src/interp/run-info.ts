// What the inspect tools need to know about a run folder besides its weights: which corpus it trained on, its
// sequence length, and the TopK α at the checkpoint (from run.json, written by `monet train`); and which engine runs
// the analysis (the float32 WASM backend by default, the float64 reference on request).

import { existsSync } from 'node:fs';
import { createWasmDevice } from '../backend/wasm/node.ts';
import { TRAIN_DEFAULTS, type TrainOptions } from '../train/options.ts';
import { readRunJson } from '../train/run.ts';
import { topkAlpha } from '../train/schedule.ts';
import { loadInterpModel, makeInterpModel, type InterpModel } from './model.ts';
import type { Params } from '../../reference/common.ts';
import type { TokenVocab } from './data.ts';
import { isHfDir, DirSource } from '../hf/dir-source.ts';
import { loadHfModel, planHfModel, readHfTensors, tooLargeForWasm, type HfPlan } from '../hf/folder.ts';
import { loadHfTokenizer } from '../hf/tokenizer.ts';
import { loadSentencePiece } from '../hf/tokenizer-spm.ts';
import { wasmForward, wasmForwardStreamed } from './wasm-forward.ts';
import { availableMemory } from '../train/memory.ts';

/** 'wasm': float32 WASM backend (fast); 'reference': the float64 reference LM (exact, slow). */
export type InspectBackend = 'wasm' | 'reference';
export const INSPECT_BACKENDS: readonly InspectBackend[] = ['wasm', 'reference'];

export interface RunInfo {
  dir: string;
  name: string;
  data: string[] | null; // null = Brown
  /** How its token ids read: absent for our runs (bytes), the folder's tokenizer for a MonetLLM folder. */
  vocab?: TokenVocab;
  seqLen: number;
  step: number;
  alpha: number;
  model: InterpModel;
}

/** run.json's options and step, checked (defaults when a run folder has none, e.g. one written by a test). */
export function readRunOptions(dir: string): { options: TrainOptions; step: number } {
  const saved = readRunJson(dir);
  return saved ?? { options: { ...TRAIN_DEFAULTS, name: dir }, step: 0 };
}

/** Open a checkpoint folder (a run folder, or a snapshot inside one) for inspection on the chosen engine. */
export async function openCheckpoint(
  dir: string,
  options: TrainOptions,
  step: number,
  backend: InspectBackend,
  threads = 1,
): Promise<InterpModel> {
  const alpha = topkAlpha(options.topkAnneal, options.steps, step);
  const model = loadInterpModel(dir, alpha);
  if (backend === 'wasm') model.fast = wasmForward(await createWasmDevice({ threads }), model);
  return model;
}

/** Overrides for tests: the memory the float64 reference may use (default: the machine's, availableMemory). */
export interface OpenOptions {
  memoryBytes?: number;
  /** Threads of the wasm backend (default 1; the same numbers on any number). */
  threads?: number;
}

const gb = (b: number) => `${(b / 1e9).toFixed(1)} GB`;

/**
 * The float64 reference holds a MonetLLM folder's weights twice while it loads: float32 as read (4 B per parameter)
 * and their float64 copy (8 B) — 12 B per parameter at least. Refuse before reading any weight when that exceeds the
 * machine's memory.
 */
function checkReferenceFits(plan: HfPlan, o: OpenOptions): void {
  const need = 12 * plan.parameters;
  const have = o.memoryBytes ?? availableMemory().values;
  if (need <= have) return;
  throw new Error(
    `${plan.src.label}: --backend reference holds the weights in float64 (${(plan.parameters / 1e9).toFixed(2)}B ` +
      `parameters: at least ${gb(need)} while loading) but this machine has ${gb(have)}; nothing was read. ` +
      'Use --backend wasm (the default): it keeps the 16-bit weights packed on the device ' +
      `(${gb(plan.bytes)} for this folder)`,
  );
}

/**
 * A MonetLLM folder (src/hf/), routers in eval mode, the folder's tokenizer as the vocabulary. On WASM (the
 * default) its tensors are streamed onto the device with the 16-bit matrices kept packed, as `monet sample` holds
 * them, and the host keeps no copy of the weights (wasm-forward.ts reads back what a view needs); on the reference
 * the weights are read into float64, when the machine can hold them. Its text comes from --data / --label (Brown
 * when neither is given), in windows of 128 tokens.
 */
async function openHfForInspect(dir: string, backend: InspectBackend, o: OpenOptions): Promise<RunInfo> {
  const src = new DirSource(dir);
  const plan = await planHfModel(src, { keep16: backend === 'wasm' });
  let model: InterpModel;
  if (backend === 'wasm') {
    const tooLarge = tooLargeForWasm(plan);
    if (tooLarge) throw new Error(tooLarge);
    model = makeInterpModel(dir, plan.config, {}, {}, 1);
    const dev = await createWasmDevice({ threads: o.threads });
    model.fast = await wasmForwardStreamed(dev, model, readHfTensors(plan));
  } else {
    checkReferenceFits(plan, o);
    const m = await loadHfModel(src);
    const p: Params = {};
    for (const [k, v] of m.params) p[k] = Float64Array.from(v);
    const s: Params = {};
    for (const [k, v] of m.state) s[k.replace(/^state\./, '')] = Float64Array.from(v);
    model = makeInterpModel(dir, m.config, p, s, 1);
  }
  const tok = await loadHfTokenizer(src, { sentencePiece: loadSentencePiece });
  const vocab: TokenVocab = {
    kind: 'pieces',
    encode: (text) => tok.encodePlain(text),
    show: (id) => tok.piece(id),
    decode: (ids) => tok.decode(ids),
  };
  const name = dir.replace(/\/+$/, '').split('/').pop() ?? dir;
  return { dir, name, data: null, vocab, seqLen: Math.min(128, model.lm.maxPos), step: 0, alpha: 1, model };
}

export async function openRunForInspect(
  dir: string,
  backend: InspectBackend = 'wasm',
  o: OpenOptions = {},
): Promise<RunInfo> {
  if (await isHfDir(dir)) return openHfForInspect(dir, backend, o);
  if (!existsSync(dir))
    throw new Error(`run folder ${dir} does not exist (expected a folder written by monet train, e.g. runs/<name>)`);
  const { options, step } = readRunOptions(dir);
  const model = await openCheckpoint(dir, options, step, backend, o.threads);
  const seqLen = Math.min(options.seqLen, model.lm.maxPos);
  const name = dir.replace(/\/+$/, '').split('/').pop() ?? dir;
  return { dir, name, data: options.data, seqLen, step, alpha: model.alpha, model };
}
