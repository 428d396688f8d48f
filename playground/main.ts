// The playground page: wires the package's code (trainer engine, devices, interpretability, fixture checker) to the
// controls of index.html. Everything runs in this tab; the only requests go to files of the page's own folder
// (kernels.wasm, corpus.json, fixtures/).
//
// Sections: 1 train (DeviceEngine on WebGPU or WASM, the same step the CLI trainer runs) or load a checkpoint;
// 2 look inside (float64 reference forward with interpretability hooks: Monet routing, TopK neurons, steering);
// 3 fixture check (every committed fixture on WebGPU and on WASM through src/fixtures/checker.ts runFixture).
//
// window.playground exposes the page's numbers (losses, check results) for test/playground.test.ts and for the curious.

import type { CaseBackend } from '../src/backend/case.ts';
import type { Device } from '../src/backend/device.ts';
import { getBackendEntry } from '../src/backend/registry.ts';
import { deviceCaseBackend } from '../src/backend/run-case.ts';
import { createWasmDeviceFromBytes, type WasmModuleBytes } from '../src/backend/wasm/device.ts';
import { sharedMemorySupported } from '../src/backend/wasm/threads.ts';
import { createWebGpuDevice } from '../src/backend/webgpu/device.ts';
import { runFixture, type CaseReport } from '../src/fixtures/checker.ts';
import { parseFixture, type Fixture } from '../src/fixtures/format.ts';
import { DeviceEngine } from '../src/train/engine-device.ts';
import type { StepResult } from '../src/train/engine.ts';
import { initParams } from '../src/train/init.ts';
import { BatchSampler, tokenizeDocs } from '../src/train/data.ts';
import { paramBreakdown, type ModelConfig } from '../src/train/presets.ts';
import { learningRate } from '../src/train/schedule.ts';
import { ByteTokenizer } from '../src/train/tokenizer.ts';
import { showToken } from '../src/interp/data.ts';
import type { InterpModel } from '../src/interp/model.ts';
import { groupName, isNeuronKind, isRouterGroup, unitName, unitNoun, type UnitGroup } from '../src/interp/units.ts';
import {
  analysisText,
  collectContexts,
  compositeGrid,
  generate,
  interpModelOf,
  modelFromFiles,
  monetRouting,
  neuronActivations,
  topComposite,
  unitsOfLayer,
  type Contexts,
  type CorpusSlice,
  type LayerRouting,
  type LoadedModel,
} from './inspect.ts';
import { playgroundConfig, TRAIN, type PlaygroundModel } from './models.ts';
import { $, el, fmtCount, heatColor, yieldToPage } from './dom.ts';
import { initHfSection, type HfState } from './hf.ts';

type BackendName = 'webgpu' | 'wasm';

/** State the tests (and a curious reader in the console) can look at. */
const pg = {
  webgpu: null as null | { ok: true; adapter: string; fallback: boolean } | { ok: false; why: string },
  losses: [] as number[],
  trainBackend: '',
  check: null as null | Record<
    string,
    { passed: number; failed: number; unsupported: number; unavailable?: string; failures: string[] }
  >,
  /** The WASM device's threads: how many the last one ran on, and why fewer than the machine's cores if so. */
  wasm: null as null | { threads: number; note: string | null },
  routingRendered: false,
  generation: null as null | { plain: string; steered: string | null },
  /** The model the "Look inside" section shows, by name. */
  model: '',
  /** Per layer: units, how many never fire and how many fire on more than half of the held-out characters. */
  usage: null as null | Array<{ layer: number; units: number; dead: number; overloaded: number }>,
  /** Section 4: the MonetLLM folder opened here, its last generation and routing (playground/hf.ts). */
  hf: null as null | HfState,
  errors: [] as string[],
};
(window as unknown as { playground: typeof pg }).playground = pg;

function showError(target: HTMLElement, e: unknown): void {
  const msg = e instanceof Error ? e.message : String(e);
  target.textContent = msg;
  target.dataset.state = 'error';
  pg.errors.push(msg);
  console.error(e);
}

// =================================================================================================================
// Backends

async function probeWebGpu(): Promise<NonNullable<typeof pg.webgpu>> {
  const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
  if (!gpu) return { ok: false, why: 'this browser exposes no navigator.gpu (WebGPU is off or unsupported)' };
  try {
    const a = await gpu.requestAdapter();
    if (!a) return { ok: false, why: 'navigator.gpu.requestAdapter() returned no adapter' };
    const i = a.info;
    const name = [i.vendor, i.architecture, i.device, i.description].filter((s) => s).join(' ') || 'unnamed adapter';
    return { ok: true, adapter: name, fallback: !!i.isFallbackAdapter };
  } catch (e) {
    return { ok: false, why: `requestAdapter failed: ${(e as Error).message}` };
  }
}

let wasmBytes: Promise<WasmModuleBytes> | null = null;
/** The kernel builds; the shared-memory ones (threads) only where this page may share memory. */
function loadWasmBytes(): Promise<WasmModuleBytes> {
  const get = async (f: string) => {
    const r = await fetch(f);
    if (!r.ok)
      throw new Error(
        `could not load ${f} from the page's folder (HTTP ${r.status}); rebuild with npm run playground:build`,
      );
    return r.arrayBuffer();
  };
  const files = ['kernels.wasm', 'kernels-relaxed.wasm'];
  if (sharedMemorySupported().ok) files.push('kernels-threads.wasm', 'kernels-threads-relaxed.wasm');
  wasmBytes ??= Promise.all(files.map(get)).then(([plain, relaxed, threads, threadsRelaxed]) => ({
    plain,
    relaxed,
    threads,
    threadsRelaxed,
  }));
  return wasmBytes;
}

/** The threads line under the backend status: how many threads WASM runs on here, or why only one. */
function showThreads(threads: number, note: string | null): void {
  pg.wasm = { threads, note };
  const p = $('threads-note');
  p.textContent =
    threads > 1
      ? `WASM runs its kernels on ${threads} threads (this page is cross-origin isolated, so it may share memory).`
      : note
        ? `WASM kernels: ${note}. npm run playground serves the page with those headers.`
        : 'WASM runs on one thread (this browser reports one core).';
  p.dataset.threads = String(threads);
}

async function openDevice(name: BackendName): Promise<Device> {
  if (name === 'webgpu') return createWebGpuDevice();
  // the page's own thread cannot sleep in Atomics.wait: it spins while the workers finish their parts
  const dev = await createWasmDeviceFromBytes(await loadWasmBytes(), {
    threads: navigator.hardwareConcurrency || 1,
    canBlock: false,
  });
  showThreads(dev.threads, dev.threadsNote);
  return dev;
}

/**
 * auto: WebGPU when navigator.gpu gives a hardware adapter, WASM otherwise. A software fallback adapter (Chromium's
 * SwiftShader when there is no usable GPU) runs the same WGSL on the CPU, far slower than the WASM kernels, so auto
 * passes it by, as `monet train --backend auto` does with Mesa's llvmpipe; choosing WebGPU in the menu still uses it.
 */
function resolveBackend(choice: string): { name: BackendName; why: string } {
  if (choice === 'wasm') return { name: 'wasm', why: 'chosen in the menu' };
  if (choice === 'webgpu') return { name: 'webgpu', why: 'chosen in the menu' };
  const w = pg.webgpu;
  if (w?.ok && !w.fallback) return { name: 'webgpu', why: 'auto: a WebGPU adapter is available' };
  if (w?.ok)
    return {
      name: 'wasm',
      why: `auto: the only WebGPU adapter (${w.adapter}) is a software fallback, slower than WASM`,
    };
  return { name: 'wasm', why: `auto: no WebGPU (${w?.why ?? 'not probed'})` };
}

// =================================================================================================================
// Corpus

let corpusP: Promise<CorpusSlice> | null = null;
function loadCorpus(): Promise<CorpusSlice> {
  corpusP ??= fetch('corpus.json').then((r) => {
    if (!r.ok) throw new Error(`could not load corpus.json (HTTP ${r.status})`);
    return r.json() as Promise<CorpusSlice>;
  });
  return corpusP;
}

// =================================================================================================================
// 1 · Training

const trainStatus = $('train-status');
let stopRequested = false;
let training = false;

function describeConfig(c: ModelConfig): string {
  const b = paramBreakdown(c);
  const ffn =
    c.ffn === 'monet'
      ? `Monet-${c.moe_decompose === 'vertical' ? 'VD' : 'HD'}: N = ${c.moe_experts}² = ${c.moe_experts! ** 2} ` +
        `composite experts per layer, ${c.moe_heads} heads, top-${c.moe_topk} per router`
      : c.ffn === 'topk'
        ? `TopK: ${c.intermediate_size} ReLU neurons, ${c.k} active per token in layer 0 (layer 1 dense)`
        : c.ffn === 'dense'
          ? `dense SwiGLU, ${c.intermediate_size} hidden units`
          : c.ffn;
  return `${c.num_hidden_layers} layers of width ${c.hidden_size}, ${fmtCount(b.total)} parameters; ${ffn}.`;
}

function drawLossChart(losses: number[], steps: number): void {
  const svg = $('loss-chart') as unknown as SVGSVGElement;
  const W = 640,
    H = 260,
    L = 44,
    R = 10,
    T = 10,
    B = 26;
  const lnV = Math.log(256);
  const hi = Math.max(lnV + 0.3, ...losses.filter(Number.isFinite));
  // whole nats, so the lowest gridline is labelled
  const lo = Math.max(0, Math.floor(Math.min(lnV - 1, ...losses.filter(Number.isFinite)) - 0.2));
  const x = (s: number) => L + ((W - L - R) * s) / Math.max(1, steps);
  const y = (v: number) => T + ((H - T - B) * (hi - v)) / (hi - lo);
  const parts: string[] = [];
  for (let v = Math.ceil(lo); v <= hi; v += 1) {
    parts.push(`<line x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}" stroke="#d0d7de" stroke-width="1"/>`);
    parts.push(`<text x="${L - 6}" y="${y(v) + 4}" text-anchor="end" font-size="11" fill="#57606a">${v}</text>`);
  }
  for (const s of [0, Math.round(steps / 2), steps])
    parts.push(`<text x="${x(s)}" y="${H - 8}" text-anchor="middle" font-size="11" fill="#57606a">${s}</text>`);
  parts.push(`<line x1="${L}" x2="${W - R}" y1="${y(lnV)}" y2="${y(lnV)}" stroke="#8c959f" stroke-dasharray="5 4"/>`);
  if (losses.length) {
    const pts = losses.map((v, i) => `${x(i + 1).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
    parts.push(`<polyline fill="none" stroke="#0b62d6" stroke-width="2" points="${pts}"/>`);
  }
  svg.innerHTML = parts.join('');
  svg.setAttribute(
    'aria-label',
    losses.length
      ? `Training loss: ${losses[0].toFixed(2)} at step 1, ${losses[losses.length - 1].toFixed(2)} at step ` +
          `${losses.length}`
      : 'Training loss: no steps yet',
  );
}

async function train(): Promise<void> {
  if (training) return;
  const kind = $<HTMLSelectElement>('model-kind').value as PlaygroundModel;
  const steps = Number($<HTMLInputElement>('steps').value);
  const lr = Number($<HTMLInputElement>('lr').value);
  if (!Number.isInteger(steps) || steps < 1)
    throw new Error(`Steps: expected a whole number ≥ 1, found '${$<HTMLInputElement>('steps').value}'`);
  if (!(lr > 0 && lr < 1))
    throw new Error(`Learning rate: expected a number between 0 and 1, found '${$<HTMLInputElement>('lr').value}'`);
  const config = playgroundConfig(kind);
  const choice = $<HTMLSelectElement>('backend').value;
  let { name, why } = resolveBackend(choice);
  training = true;
  stopRequested = false;
  $<HTMLButtonElement>('train-btn').disabled = true;
  $<HTMLButtonElement>('stop-btn').disabled = false;
  trainStatus.dataset.state = 'running';
  trainStatus.textContent = `Starting ${name === 'webgpu' ? 'WebGPU' : 'WASM'} (${why})…`;
  pg.losses = [];
  drawLossChart([], steps);
  let engine: DeviceEngine | null = null;
  try {
    const corpus = await loadCorpus();
    const tok = new ByteTokenizer();
    const stream = tokenizeDocs(
      corpus.train.map((d) => ({ ...d, byteTags: new Uint16Array(0) })),
      tok,
    ).tokens;
    const { params, state } = initParams(config, TRAIN.seed);
    const { B, S } = TRAIN;
    const sampler = new BatchSampler(stream, B, S, TRAIN.seed + 1);
    const sched = { lr, minLr: lr / 10, warmup: Math.min(TRAIN.warmup, Math.max(1, Math.floor(steps / 5))), steps };
    const hyper = (step: number) => ({
      lr: learningRate(sched, step),
      beta1: TRAIN.beta1,
      beta2: TRAIN.beta2,
      eps: TRAIN.eps,
      weightDecay: TRAIN.weightDecay,
      clip: TRAIN.clip,
      step: step + 1,
      alpha: 0,
    });
    const first = sampler.next();
    let r0: StepResult | null;
    engine = new DeviceEngine(await openDevice(name), config, { config, params, state });
    try {
      r0 = await engine.trainStep([first], B, S, hyper(0), true);
    } catch (e) {
      // auto: a WebGPU implementation may lack a limit or feature a kernel needs; say so and train on WASM instead.
      if (choice !== 'auto' || name !== 'webgpu') throw e;
      await engine.dispose();
      engine = null;
      why = `auto: WebGPU failed on the first step (${(e as Error).message.split('\n')[0]}), so WASM`;
      name = 'wasm';
      engine = new DeviceEngine(await openDevice(name), config, { config, params, state });
      r0 = await engine.trainStep([first], B, S, hyper(0), true);
    }
    pg.trainBackend = engine.name;
    $('stat-backend').textContent = engine.name;
    trainStatus.textContent =
      `Training on ${engine.name} (${why}); ${fmtCount(stream.length)} bytes of text, ` + `batches of ${B} × ${S}.`;
    const tStart = performance.now();
    let tMark = tStart;
    let tokens = 0;
    let tps = 0;
    let lastDraw = 0;
    for (let step = 0; step < steps && !stopRequested; step++) {
      const r = step === 0 ? r0 : await engine.trainStep([sampler.next()], B, S, hyper(step), true);
      if (!r || !Number.isFinite(r.loss))
        throw new Error(`training diverged at step ${step + 1}: loss ${r?.loss}; try a lower learning rate`);
      pg.losses.push(r.loss);
      tokens += B * S;
      const now = performance.now();
      if (now - tMark > 500) {
        tps = (tokens * 1000) / (now - tMark);
        tokens = 0;
        tMark = now;
      }
      if (now - lastDraw > 100 || step + 1 === steps) {
        lastDraw = now;
        drawLossChart(pg.losses, steps);
        $('stat-step').textContent = `${step + 1} / ${steps}`;
        $('stat-loss').textContent = r.loss.toFixed(3);
        // over the last half second; before the first half second has passed, since the start
        $('stat-tps').textContent = fmtCount(
          Math.round(tps || ((step + 1) * B * S * 1000) / Math.max(1, now - tStart)),
        );
      }
      await yieldToPage();
    }
    drawLossChart(pg.losses, steps);
    $('stat-step').textContent = `${pg.losses.length} / ${steps}`;
    $('stat-loss').textContent = pg.losses.length ? pg.losses[pg.losses.length - 1].toFixed(3) : '–';
    const { params: p, state: s } = await engine.exportModel();
    const toF64 = (m: Map<string, Float32Array | Float64Array>, strip: boolean) => {
      const o: Record<string, Float64Array> = {};
      for (const [k, v] of m) o[strip ? k.replace(/^state\./, '') : k] = Float64Array.from(v);
      return o;
    };
    const l0 = pg.losses[0];
    const l1 = pg.losses[pg.losses.length - 1];
    setModel({
      label:
        `the ${kind} model trained in this tab (${pg.losses.length} steps on ${engine.name}, ` +
        `loss ${l0?.toFixed(2)} → ${l1?.toFixed(2)})`,
      config,
      params: toF64(p, false),
      state: toF64(s, true),
    });
    trainStatus.dataset.state = 'done';
    trainStatus.textContent =
      `${stopRequested ? 'Stopped' : 'Done'} after ${pg.losses.length} steps on ` +
      `${engine.name}: loss ${l0?.toFixed(3)} → ${l1?.toFixed(3)}. Now look inside (section 2).`;
  } catch (e) {
    showError(trainStatus, e);
  } finally {
    await engine?.dispose();
    training = false;
    $<HTMLButtonElement>('train-btn').disabled = false;
    $<HTMLButtonElement>('stop-btn').disabled = true;
  }
}

async function loadCheckpoint(files: FileList): Promise<void> {
  const status = $('ckpt-status');
  status.dataset.state = 'running';
  try {
    const list = Array.from(files);
    const cfg = list.find((f) => f.name.endsWith('.json'));
    const model = list.find((f) => f.name.endsWith('.safetensors'));
    if (!cfg || !model) {
      throw new Error(
        `expected two files, config.json and model.safetensors; found ${list.map((f) => f.name).join(', ') || 'none'}`,
      );
    }
    const m = modelFromFiles(await cfg.text(), cfg.name, new Uint8Array(await model.arrayBuffer()), model.name);
    m.label = await runLabel(
      list.find((f) => f.name === 'run.json'),
      m.label,
    );
    setModel(m);
    status.dataset.state = 'done';
    status.textContent = `Loaded ${m.label}: ${describeConfig(m.config)}`;
  } catch (e) {
    showError(status, e);
  }
}

/** 'run monet-vd-small-… (step 400)' from a run folder's run.json, or the files' names without one. */
async function runLabel(file: File | undefined, fallback: string): Promise<string> {
  if (!file) return `${fallback} (add run.json to name the run)`;
  let r: { options?: { name?: unknown }; step?: unknown };
  try {
    r = JSON.parse(await file.text());
  } catch (e) {
    throw new Error(`run.json is not valid JSON (${(e as Error).message})`);
  }
  const name = typeof r.options?.name === 'string' ? r.options.name : null;
  if (!name) throw new Error('run.json: expected the run summary monet train writes (options.name missing)');
  return `run ${name}${typeof r.step === 'number' ? ` (step ${r.step})` : ''}`;
}

// =================================================================================================================
// 2 · Look inside

interface Current {
  loaded: LoadedModel;
  model: InterpModel;
  contexts: Contexts | null;
  tokens: Int32Array;
  routing: LayerRouting[] | null;
  acts: Array<Float64Array | null> | null;
  selected: number;
}
let cur: Current | null = null;
const inspectStatus = $('inspect-status');

/** How a router group's router is shared: 'router shared by layers 0, 1' or 'its router routes this layer only'. */
function routerNote(g: UnitGroup): string {
  return g.layers.length > 1 ? `router shared by layers ${g.layers.join(', ')}` : 'its router routes this layer only';
}

/** Every layer with the unit group that holds its units. */
function layersOf(model: InterpModel) {
  return Array.from({ length: model.config.num_hidden_layers }, (_, layer) => ({
    layer,
    units: unitsOfLayer(model, layer),
  }));
}

function setModel(m: LoadedModel): void {
  const model = interpModelOf(m);
  cur = { loaded: m, model, contexts: null, tokens: new Int32Array(0), routing: null, acts: null, selected: 0 };
  $('inspect-model').replaceChildren(
    'Looking inside ',
    el('strong', { textContent: m.label }),
    `. ${describeConfig(m.config)}`,
  );
  const layerSel = $<HTMLSelectElement>('layer');
  layerSel.replaceChildren(
    ...layersOf(model).map(({ layer, units: u }) =>
      el('option', {
        value: String(layer),
        textContent:
          `Layer ${layer}: ${u.kind}, ${fmtCount(u.count)} ${unitNoun(u.kind)}s` +
          (isRouterGroup(u) ? ` (${groupName(u)}, ${routerNote(u)})` : ''),
      }),
    ),
  );
  const neuronLayers = layersOf(model).filter((x) => isNeuronKind(x.units.kind));
  const firstNeuron =
    neuronLayers.find((x) => x.units.kind !== 'dense') ?? neuronLayers.find((x) => x.units.kind === 'dense');
  $<HTMLButtonElement>('analyse-btn').disabled = false;
  $('generate-panel').hidden = false;
  const canSteer = !!firstNeuron;
  for (const id of ['steer-layer', 'steer-neuron', 'steer-delta']) $<HTMLInputElement>(id).disabled = !canSteer;
  if (firstNeuron) {
    $<HTMLInputElement>('steer-layer').value = String(firstNeuron.layer);
    $<HTMLInputElement>('steer-layer').max = String(model.config.num_hidden_layers - 1);
  }
  $('steer-hint').textContent = canSteer
    ? 'Generates twice with the same random seed: once as trained, once with the chosen neuron raised by δ at every ' +
      "position (the TopK LM paper's steering). Pick a neuron from the list above with its Steer button."
    : `Generates text from the model. Steering adds δ to a neuron; this model's feed-forward units are ` +
      `${m.config.ffn} experts, not neurons, so train the TopK or dense model to steer.`;
  $('gen-steered-h').textContent = canSteer
    ? 'With the neuron pushed'
    : 'With the neuron pushed (needs a TopK or dense model)';
  clearInspectPanels();
  pg.model = m.label;
  inspectStatus.textContent = 'Type some text and press Analyse.';
  inspectStatus.dataset.state = 'idle';
}

/** Everything the previous model drew (routing, neurons, usage, samples) goes when a new model arrives. */
function clearInspectPanels(): void {
  for (const id of ['routing-view', 'neuron-view', 'usage-view']) $(id).hidden = true;
  const drawn = ['token-strip', 'heatmaps', 'routing-legend', 'composite-legend', 'composite-list', 'neuron-list'];
  for (const id of [...drawn, 'gen-plain', 'gen-steered']) $(id).replaceChildren();
  $('usage-table').querySelector('tbody')!.replaceChildren();
  const cv = $<HTMLCanvasElement>('composite-map');
  cv.getContext('2d')?.clearRect(0, 0, cv.width, cv.height);
  pg.routingRendered = false;
  pg.generation = null;
  pg.usage = null;
}

/** A colour ramp with its end values: what the white-to-blue maps mean. */
function colourLegend(what: string): HTMLDivElement {
  return el(
    'div',
    { className: 'legend' },
    el('span', { textContent: '0' }),
    el('span', { className: 'ramp' }),
    el('span', { textContent: what }),
  );
}

/** Per layer: how many units never fire on the held-out text, and which fire on most of it. */
function renderUsage(c: Current, ctx: Contexts): void {
  const col = ctx.collected;
  const P = col.positions;
  const rows = layersOf(c.model).map(({ layer, units: g }) => {
    const st = col.groups[g.group];
    let dead = 0;
    const busy: Array<[number, number]> = [];
    for (let u = 0; u < g.count; u++) {
      if (st.fires[u] === 0) dead++;
      else busy.push([u, st.fires[u] / P]);
    }
    busy.sort((a, b) => b[1] - a[1] || a[0] - b[0]);
    const overloaded = busy.filter(([, d]) => d > 0.5).length;
    return { layer, g, dead, overloaded, busy: busy.slice(0, 3) };
  });
  pg.usage = rows.map((r) => ({ layer: r.layer, units: r.g.count, dead: r.dead, overloaded: r.overloaded }));
  const body = $('usage-table').querySelector('tbody')!;
  body.replaceChildren(
    ...rows.map((r) => {
      const tr = el(
        'tr',
        {},
        el('td', {
          textContent: `${r.layer}${isRouterGroup(r.g) ? ` (${groupName(r.g)})` : ''}`,
        }),
        el('td', { textContent: `${fmtCount(r.g.count)} ${r.g.kind} ${unitNoun(r.g.kind)}s` }),
        el('td', { textContent: `${fmtCount(r.dead)} (${((100 * r.dead) / r.g.count).toFixed(0)} %)` }),
        el('td', { textContent: fmtCount(r.overloaded) }),
        el('td', {
          textContent: r.busy.map(([u, d]) => `${unitName(r.g, u)} ${(100 * d).toFixed(0)} %`).join(', ') || '—',
        }),
      );
      if (r.overloaded > 0 || r.dead > r.g.count / 2) tr.className = 'warn';
      return tr;
    }),
  );
  $('usage-hint').textContent =
    `On ${fmtCount(P)} held-out characters (${col.text.windows} windows of ${col.text.S} from the validation ` +
    'documents of every genre). ' +
    'A unit fires when its score is above the threshold (Monet: g_ij > 0.01; neurons: > 0). Rows in red: a layer ' +
    'with units that fire on more than half of the characters (overloaded) or with more than half of its units idle.';
  $('usage-view').hidden = false;
}

async function ensureContexts(c: Current): Promise<Contexts> {
  if (c.contexts) return c.contexts;
  inspectStatus.textContent = 'Finding where each unit fires most strongly in held-out text (once per model)…';
  await yieldToPage();
  const corpus = await loadCorpus();
  const S = Math.min(32, c.loaded.config.max_position_embeddings);
  c.contexts = collectContexts(c.model, analysisText(corpus, S, 4), 6);
  return c.contexts;
}

async function analyse(): Promise<void> {
  const c = cur;
  if (!c) return;
  inspectStatus.dataset.state = 'running';
  try {
    const text = $<HTMLInputElement>('inspect-text').value;
    let ids = Array.from(new TextEncoder().encode(text));
    if (ids.length < 2)
      throw new Error('Text to analyse: type at least two characters (the model predicts each next one)');
    const maxPos = c.loaded.config.max_position_embeddings;
    if (ids.length > maxPos) ids = ids.slice(0, maxPos);
    c.tokens = Int32Array.from(ids);
    renderUsage(c, await ensureContexts(c));
    c.routing = c.loaded.config.ffn === 'monet' ? monetRouting(c.model, c.tokens) : null;
    c.acts = c.model.groups.some((u) => isNeuronKind(u.kind)) ? neuronActivations(c.model, c.tokens) : null;
    renderTokens(c);
    selectToken(Math.min(c.selected, c.tokens.length - 1), false);
    inspectStatus.dataset.state = 'done';
    inspectStatus.textContent =
      `${c.tokens.length} characters ` +
      `analysed${ids.length < text.length ? ` (the model sees at most ${maxPos})` : ''}. Choose a character to see ` +
      `its ${c.routing ? 'routing' : 'neurons'}.`;
  } catch (e) {
    showError(inspectStatus, e);
  }
}

function renderTokens(c: Current): void {
  const strip = $('token-strip');
  strip.replaceChildren(
    ...[...c.tokens].map((b, t) => {
      const btn = el('button', { type: 'button', textContent: showToken(b), title: `character ${t}: byte ${b}` });
      btn.setAttribute('aria-pressed', 'false');
      btn.setAttribute('aria-label', `character ${t + 1} of ${c.tokens.length}: ${showToken(b)}`);
      btn.addEventListener('click', () => selectToken(t, false));
      btn.addEventListener('keydown', (ev) => {
        const d = ev.key === 'ArrowRight' ? 1 : ev.key === 'ArrowLeft' ? -1 : 0;
        if (!d) return;
        ev.preventDefault();
        const n = Math.max(0, Math.min(c.tokens.length - 1, t + d));
        selectToken(n, true);
      });
      return btn;
    }),
  );
}

function selectToken(t: number, focus: boolean): void {
  const c = cur;
  if (!c) return;
  c.selected = t;
  const buttons = Array.from($('token-strip').querySelectorAll('button'));
  for (const [i, b] of buttons.entries()) b.setAttribute('aria-pressed', String(i === t));
  if (focus) buttons[t]?.focus();
  const layer = Number($<HTMLSelectElement>('layer').value);
  const kind = unitsOfLayer(c.model, layer).kind;
  $('routing-view').hidden = !(c.routing && kind === 'monet');
  $('neuron-view').hidden = !(c.acts && (kind === 'topk' || kind === 'dense'));
  if (kind === 'smoe' || kind === 'peer') {
    inspectStatus.textContent =
      `Layer ${layer} holds ${kind === 'smoe' ? 'SMoE' : 'PEER'} experts; this page draws ` +
      `Monet routing and TopK/dense neurons (monet inspect on the command line reads every kind).`;
  }
  if (c.routing && kind === 'monet') renderRouting(c, c.routing[layer], t);
  if (c.acts?.[layer]) renderNeurons(c, layer, c.acts[layer]!, t);
}

/** White → blue by value / max; 0 is white. */
function drawRouterMap(
  canvas: HTMLCanvasElement,
  g: Float64Array,
  h: number,
  r: LayerRouting,
  tokens: Int32Array,
  sel: number,
): void {
  // rows: experts 0..E−1 of this router; columns: characters
  const { T, H, E } = r;
  const cw = 16,
    chh = 14,
    left = 26,
    bottom = 18;
  canvas.width = left + T * cw + 2;
  canvas.height = E * chh + bottom + 2;
  const ctx = canvas.getContext('2d')!;
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  let max = 0;
  for (let t = 0; t < T; t++) for (let e = 0; e < E; e++) max = Math.max(max, g[(t * H + h) * E + e]);
  for (let t = 0; t < T; t++) {
    for (let e = 0; e < E; e++) {
      ctx.fillStyle = heatColor(g[(t * H + h) * E + e], max);
      ctx.fillRect(left + t * cw, e * chh, cw - 1, chh - 1);
    }
  }
  ctx.fillStyle = '#57606a';
  ctx.font = '10px "DejaVu Sans Mono", monospace';
  ctx.textAlign = 'right';
  for (let e = 0; e < E; e++) ctx.fillText(String(e), left - 4, e * chh + 10);
  ctx.textAlign = 'center';
  ctx.fillStyle = '#1b1f24';
  ctx.font = '11px "DejaVu Sans Mono", monospace';
  for (let t = 0; t < T; t++) ctx.fillText(showToken(tokens[t]).slice(0, 2), left + t * cw + cw / 2, E * chh + 13);
  ctx.strokeStyle = '#ff9f1a';
  ctx.lineWidth = 2;
  ctx.strokeRect(left + sel * cw - 1, 0, cw + 1, E * chh + bottom);
}

function renderRouting(c: Current, r: LayerRouting, t: number): void {
  const box = $('heatmaps');
  box.replaceChildren();
  for (let h = 0; h < r.H; h++) {
    for (const [name, g, what] of [
      ['g1', r.g1, 'router 1, bottom halves i'],
      ['g2', r.g2, 'router 2, top halves j'],
    ] as const) {
      const canvas = el('canvas');
      canvas.dataset.router = name;
      canvas.dataset.head = String(h);
      drawRouterMap(canvas, g, h, r, c.tokens, t);
      const active = [...Array(r.E).keys()].filter((e) => g[(t * r.H + h) * r.E + e] > 0);
      canvas.setAttribute('role', 'img');
      canvas.setAttribute(
        'aria-label',
        `${name} of head ${h}: rows are experts 0 to ${r.E - 1}, columns are characters. The chosen character uses ` +
          `experts ${active.join(', ') || 'none'}.`,
      );
      canvas.addEventListener('click', (ev) => {
        const rect = canvas.getBoundingClientRect();
        const x = ((ev.clientX - rect.left) * canvas.width) / rect.width;
        const col = Math.floor((x - 26) / 16);
        if (col >= 0 && col < r.T) selectToken(col, false);
      });
      box.append(
        el(
          'figure',
          { className: 'heatmap' },
          el('figcaption', { textContent: `Head ${h} · ${name} (${what})` }),
          canvas,
        ),
      );
    }
  }
  // composite weights of the chosen character
  const { E } = r;
  const grid = compositeGrid(r, t);
  const cv = $<HTMLCanvasElement>('composite-map');
  const cell = 20,
    left = 22,
    top = 18;
  cv.width = left + E * cell + 2;
  cv.height = top + E * cell + 2;
  const ctx = cv.getContext('2d')!;
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, cv.width, cv.height);
  const max = Math.max(...grid);
  ctx.font = '10px "DejaVu Sans Mono", monospace';
  ctx.fillStyle = '#57606a';
  ctx.textAlign = 'center';
  for (let j = 0; j < E; j++) ctx.fillText(String(j), left + j * cell + cell / 2, 12);
  ctx.textAlign = 'right';
  for (let i = 0; i < E; i++) ctx.fillText(String(i), left - 4, top + i * cell + 14);
  for (let i = 0; i < E; i++) {
    for (let j = 0; j < E; j++) {
      ctx.fillStyle = heatColor(grid[i * E + j], max);
      ctx.fillRect(left + j * cell, top + i * cell, cell - 1, cell - 1);
    }
  }
  $('routing-legend').replaceChildren(colourLegend('the largest weight of each map (maps are scaled one by one)'));
  $('composite-legend').replaceChildren(colourLegend(`${max.toFixed(3)}, its largest g_ij`));
  const top5 = topComposite(grid, E, 5);
  cv.setAttribute(
    'aria-label',
    `Composite expert weights g_ij of the chosen character: rows i (router 1), columns j (router 2). Largest: ` +
      `${top5.map((x) => `(${x.i},${x.j}) ${x.score.toFixed(2)}`).join(', ')}.`,
  );
  $('composite-h').textContent =
    `Top composite experts of character ${t + 1} ('${showToken(c.tokens[t])}') in layer ${r.layer}`;
  const list = $('composite-list');
  list.replaceChildren(...top5.map((x) => unitItem(c, r.layer, x.id, `expert (${x.i}, ${x.j})`, x.score, max, null)));
  if (!top5.length) list.append(el('li', { textContent: 'No composite expert has a non-zero weight here.' }));
  pg.routingRendered = true;
}

/** A horizontal bar 0–120 px long for |score| / max. */
function bar(score: number, max: number): HTMLSpanElement {
  const b = el('span', { className: 'bar' });
  b.style.width = `${Math.max(2, Math.round((120 * Math.abs(score)) / Math.max(1e-12, max)))}px`;
  return b;
}

/** One expert or neuron: name, weight bar, how often it fires on held-out text, its strongest contexts. */
function unitItem(
  c: Current,
  layer: number,
  unit: number,
  name: string,
  score: number,
  max: number,
  steer: null | (() => void),
): HTMLLIElement {
  const head = el(
    'div',
    { className: 'unit-head' },
    el('strong', { textContent: name }),
    bar(score, max),
    el('span', { className: 'mono', textContent: score.toFixed(3) }),
  );
  if (steer) {
    const b = el('button', { type: 'button', textContent: 'Steer' });
    b.setAttribute('aria-label', `Steer with ${name} of layer ${layer}`);
    b.addEventListener('click', steer);
    head.append(b);
  }
  const li = el('li', {}, head);
  const s = c.contexts?.summary(layer, unit);
  const ctxs = c.contexts?.contexts(layer, unit, 14).slice(0, 3) ?? [];
  if (s)
    li.append(
      el('div', {
        className: 'hint',
        textContent:
          `fires on ${(100 * s.freq).toFixed(1)} % of ${fmtCount(c.contexts!.collected.positions)} ` +
          `held-out characters; strongest contexts:`,
      }),
    );
  else li.append(el('div', { className: 'hint', textContent: 'never fires on the held-out text' }));
  for (const x of ctxs) {
    li.append(
      el(
        'div',
        { className: 'ctx' },
        `…${x.parts[0]}`,
        el('mark', { textContent: x.parts[1] }),
        `${x.parts[2]}…  `,
        el('span', { textContent: `(${x.label}, ${x.score.toFixed(2)})` }),
      ),
    );
  }
  return li;
}

function renderNeurons(c: Current, layer: number, a: Float64Array, t: number): void {
  const F = unitsOfLayer(c.model, layer).count;
  const row = a.subarray(t * F, (t + 1) * F);
  const ids = [...row.keys()]
    .filter((n) => row[n] !== 0)
    .sort((x, y) => Math.abs(row[y]) - Math.abs(row[x]) || x - y)
    .slice(0, 8);
  const max = ids.length ? Math.abs(row[ids[0]]) : 1;
  $('neuron-h').textContent =
    `Active neurons of character ${t + 1} ('${showToken(c.tokens[t])}') in layer ${layer} ` +
    `(${unitsOfLayer(c.model, layer).kind}: ${[...row].filter((v) => v !== 0).length} of ${F} non-zero)`;
  $('neuron-list').replaceChildren(
    ...ids.map((n) =>
      unitItem(c, layer, n, `neuron ${n}`, row[n], max, () => {
        $<HTMLInputElement>('steer-layer').value = String(layer);
        $<HTMLInputElement>('steer-neuron').value = String(n);
        $<HTMLInputElement>('steer-delta').value = String(Math.round(4 * Math.max(1, Math.abs(row[n]))));
        $('steer-delta').focus();
      }),
    ),
  );
}

let generating = false;
async function runGenerate(): Promise<void> {
  const c = cur;
  if (!c || generating) return;
  generating = true;
  const btn = $<HTMLButtonElement>('gen-btn');
  btn.disabled = true;
  try {
    const prompt = $<HTMLInputElement>('gen-prompt').value;
    const tokens = Number($<HTMLInputElement>('gen-tokens').value);
    if (!Number.isInteger(tokens) || tokens < 1 || tokens > 300)
      throw new Error(
        `Characters: expected a whole number from 1 to 300, found '${$<HTMLInputElement>('gen-tokens').value}'`,
      );
    const base = { prompt, tokens, temperature: 0.8, seed: 7 };
    const plain = $('gen-plain');
    const steered = $('gen-steered');
    steered.textContent = '';
    plain.textContent = '…';
    pg.generation = null;
    const plainText = await generate(c.model, {
      ...base,
      steer: null,
      onText: (s) => (plain.textContent = prompt + s),
    });
    const layer = Number($<HTMLInputElement>('steer-layer').value);
    const neuron = Number($<HTMLInputElement>('steer-neuron').value);
    const delta = Number($<HTMLInputElement>('steer-delta').value);
    const L = c.model.config.num_hidden_layers;
    const u = Number.isInteger(layer) && layer >= 0 && layer < L ? unitsOfLayer(c.model, layer) : null;
    if (!u || !isNeuronKind(u.kind)) {
      steered.textContent = u
        ? `Layer ${layer} has ${u.kind} experts, not neurons: nothing to push.`
        : `Steer layer: expected 0 to ${L - 1}, found ${layer}`;
      pg.generation = { plain: plainText, steered: null };
      return;
    }
    if (!Number.isInteger(neuron) || neuron < 0 || neuron >= u.count)
      throw new Error(
        `Neuron: expected a whole number from 0 to ${u.count - 1}, found ` +
          `'${$<HTMLInputElement>('steer-neuron').value}'`,
      );
    if (!Number.isFinite(delta)) throw new Error('Push δ: expected a number');
    $('gen-steered-h').textContent = `With neuron ${neuron} of layer ${layer} pushed by δ = ${delta}`;
    steered.textContent = '…';
    const steeredText = await generate(c.model, {
      ...base,
      steer: { group: u.group, neuron, delta },
      onText: (s) => (steered.textContent = prompt + s),
    });
    pg.generation = { plain: plainText, steered: steeredText };
  } catch (e) {
    showError($('gen-steered'), e);
  } finally {
    generating = false;
    btn.disabled = false;
  }
}

// =================================================================================================================
// 3 · Fixture check

let fixturesP: Promise<Array<{ path: string; fixture?: Fixture; error?: string }>> | null = null;
function loadFixtures() {
  fixturesP ??= (async () => {
    const r = await fetch('fixtures/index.json');
    if (!r.ok)
      throw new Error(`could not load fixtures/index.json (HTTP ${r.status}); rebuild with npm run playground:build`);
    const { fixtures } = (await r.json()) as { fixtures: string[] };
    return Promise.all(
      fixtures.map(async (path) => {
        try {
          const b = await fetch(`fixtures/${path}`);
          if (!b.ok) throw new Error(`HTTP ${b.status}`);
          return { path, fixture: parseFixture(new Uint8Array(await b.arrayBuffer()), `fixtures/${path}`) };
        } catch (e) {
          return { path, error: (e as Error).message };
        }
      }),
    );
  })();
  return fixturesP;
}

function cellText(r: CaseReport): { text: string; cls: string; title: string } {
  if (r.unsupported) return { text: 'unsupported', cls: 'pending', title: r.unsupported };
  if (r.error) return { text: 'FAIL (threw)', cls: 'fail', title: r.error };
  const worst = Math.max(
    0,
    ...r.tensors.map((x) => (x.budgetShare === undefined || !Number.isFinite(x.budgetShare) ? 0 : x.budgetShare)),
  );
  if (r.pass)
    return {
      text: `pass · ${worst < 0.001 ? '<0.1' : (100 * worst).toFixed(1)} % of budget`,
      cls: 'pass',
      title: `${r.tensors.length} tensors compared; the worst used ${(100 * worst).toFixed(2)} % of its tolerance`,
    };
  const bad = r.tensors.filter((x) => x.status === 'fail');
  return {
    text: `FAIL: ${bad.length > 2 ? `${bad.length} tensors (${bad[0].name}, …)` : bad.map((x) => x.name).join(', ')}`,
    cls: 'fail',
    title: bad.map((x) => `${x.name}: max |a−e| ${x.maxAbsError} at [${x.where}] (${x.note ?? ''})`).join('\n'),
  };
}

let checking = false;
async function runCheck(): Promise<void> {
  if (checking) return;
  checking = true;
  const btn = $<HTMLButtonElement>('check-btn');
  btn.disabled = true;
  const summary = $('check-summary');
  summary.dataset.state = 'running';
  summary.textContent = 'Loading fixtures…';
  const result: NonNullable<typeof pg.check> = {};
  try {
    const fx = await loadFixtures();
    const tbody = $('check-table').querySelector('tbody')!;
    const cells = new Map<string, HTMLTableCellElement[]>();
    tbody.replaceChildren(
      ...fx.map((f) => {
        const c = [
          el('td', { className: 'pending', textContent: 'waiting' }),
          el('td', { className: 'pending', textContent: 'waiting' }),
        ];
        cells.set(f.path, c);
        return el(
          'tr',
          {},
          el('th', { scope: 'row', className: 'mono', textContent: f.path.replace(/\.safetensors$/, '') }),
          el('td', { textContent: f.fixture?.kind ?? 'unreadable' }),
          ...c,
        );
      }),
    );
    for (const [col, name] of (['webgpu', 'wasm'] as const).entries()) {
      const label = name === 'webgpu' ? 'WebGPU' : 'WASM';
      const res: NonNullable<typeof pg.check>[string] = { passed: 0, failed: 0, unsupported: 0, failures: [] };
      result[name] = res;
      const entry = getBackendEntry(name);
      let backend: CaseBackend;
      try {
        backend = deviceCaseBackend(await openDevice(name), name);
      } catch (e) {
        res.unavailable = (e as Error).message;
        for (const c of cells.values())
          Object.assign(c[col], { textContent: 'unavailable', className: 'pending', title: res.unavailable });
        continue;
      }
      try {
        let i = 0;
        for (const f of fx) {
          i++;
          summary.textContent = `${label}: fixture ${i} of ${fx.length} (${f.path})…`;
          const cell = cells.get(f.path)![col];
          if (!f.fixture) {
            res.failed++;
            res.failures.push(`${f.path}: ${f.error}`);
            Object.assign(cell, { textContent: 'FAIL (unreadable)', className: 'fail', title: f.error ?? '' });
            continue;
          }
          const r = await runFixture(f.fixture, backend, { preset: entry.preset, overrides: entry.overrides });
          const ct = cellText(r);
          Object.assign(cell, { textContent: ct.text, className: ct.cls, title: ct.title });
          if (r.unsupported) res.unsupported++;
          else if (r.pass) res.passed++;
          else {
            res.failed++;
            res.failures.push(`${f.path}: ${ct.text} ${ct.title}`);
          }
          await yieldToPage();
        }
      } finally {
        await backend.dispose?.();
      }
    }
    pg.check = result;
    summary.dataset.state = Object.values(result).some((r) => r.failed > 0) ? 'failed' : 'done';
    summary.textContent = Object.entries(result)
      .map(
        ([n, r]) =>
          `${n === 'webgpu' ? 'WebGPU' : 'WASM'}: ${r.unavailable ? `unavailable (${r.unavailable})` : passedLine(r)}`,
      )
      .join(' · ');
  } catch (e) {
    pg.check = result;
    showError(summary, e);
  } finally {
    checking = false;
    btn.disabled = false;
  }
}

/** '12 of 65 passed, 3 FAILED, 1 unsupported' for one backend's check. */
function passedLine(r: { passed: number; failed: number; unsupported: number }): string {
  const failed = r.failed ? `, ${r.failed} FAILED` : '';
  const unsupported = r.unsupported ? `, ${r.unsupported} unsupported` : '';
  return `${r.passed} of ${r.passed + r.failed + r.unsupported} passed${failed}${unsupported}`;
}

// =================================================================================================================
// Wiring

function describeSelectedModel(): void {
  $('model-desc').textContent = describeConfig(
    playgroundConfig($<HTMLSelectElement>('model-kind').value as PlaygroundModel),
  );
}

async function init(): Promise<void> {
  describeSelectedModel();
  drawLossChart([], Number($<HTMLInputElement>('steps').value) || 1);
  $('model-kind').addEventListener('change', describeSelectedModel);
  $('train-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    train().catch((e) => showError(trainStatus, e));
  });
  $('stop-btn').addEventListener('click', () => {
    stopRequested = true;
    trainStatus.textContent = 'Stopping after this step…';
  });
  $<HTMLInputElement>('ckpt-files').addEventListener('change', (ev) => {
    const files = (ev.target as HTMLInputElement).files;
    if (files?.length) void loadCheckpoint(files);
  });
  $('inspect-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    void analyse();
  });
  $('layer').addEventListener('change', () => {
    if (cur?.tokens.length) selectToken(cur.selected, false);
  });
  $('steer-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    void runGenerate();
  });
  $('check-btn').addEventListener('click', () => void runCheck());
  pg.hf = initHfSection({ openDevice, resolveBackend, showError });
  const status = $('backend-status');
  pg.webgpu = await probeWebGpu();
  const w = pg.webgpu;
  status.textContent = w.ok
    ? w.fallback
      ? `WebGPU adapter: ${w.adapter}, a software fallback (no GPU in use). Training uses WASM by default, which is ` +
        `faster here; the fixture check runs both.`
      : `WebGPU adapter: ${w.adapter}. Training uses WebGPU; WASM is one menu choice away.`
    : `No WebGPU here (${w.why}). Training uses WebAssembly on the CPU.`;
  status.dataset.state = 'ready';
  const shared = sharedMemorySupported();
  const cores = navigator.hardwareConcurrency || 1;
  showThreads(shared.ok ? cores : 1, shared.ok ? null : `running on 1 thread instead of ${cores}: ${shared.why}`);
  document.body.dataset.ready = 'true';
}

init().catch((e) => showError($('backend-status'), e));
