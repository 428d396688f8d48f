// Section 4 of the playground: a MonetLLM folder from the user's disk (drag and drop, or the folder picker), run in
// this tab — generation with the sampling options, streamed as it comes, and the routing of every token per router
// group. Nothing is uploaded: the folder's files are read locally, a slice at a time (src/hf/source.ts BlobSource),
// and the weights go onto the device tensor by tensor (bfloat16 matrices stay 16-bit there: a 1.4B model takes about
// 3 GB).
//
// window.playground.hf exposes what the section did (test/playground-hf.test.ts reads it).

import type { Device } from '../src/backend/device.ts';
import { planHfModel, readHfTensors, tooLargeForWasm, type HfPlan } from '../src/hf/folder.ts';
import { BlobSource, type BlobLike } from '../src/hf/source.ts';
import { loadHfTokenizer, type HfTokenizer } from '../src/hf/tokenizer.ts';
import { DeviceEngine } from '../src/train/engine-device.ts';
import type { GroupRouting } from '../src/train/engine.ts';
import { generateIds, TextStream, type SamplingOptions } from '../src/train/sample.ts';
import { $, el, fmtCount, heatColor, yieldToPage } from './dom.ts';
import { headChoices, headSum, topComposite } from './hf-routing.ts';

type BackendName = 'webgpu' | 'wasm';

/** What main.ts lends this section: its devices (threads, adapters) and the page's state object. */
export interface HfDeps {
  openDevice(name: BackendName): Promise<Device>;
  resolveBackend(choice: string): { name: BackendName; why: string };
  showError(target: HTMLElement, e: unknown): void;
}

/** The section's state for the tests and the curious. */
export interface HfState {
  /** The model loaded: folder, parameters, backend, seconds, whether it has a tokenizer. */
  loaded: null | { folder: string; parameters: number; backend: string; seconds: number; tokenizer: boolean };
  /** The last generation: prompt ids, generated ids, text (with a tokenizer), tokens per second. */
  generation: null | { prompt: number[]; ids: number[]; text: string | null; tokensPerS: number };
  /** The routing shown: router groups, tokens, and per group the top composite expert of the chosen token. */
  routing: null | { groups: number; tokens: number; chosen: number; top: Array<{ i: number; j: number } | null> };
}

interface Loaded {
  plan: HfPlan;
  engine: DeviceEngine;
  tok: HfTokenizer | null;
  label: string;
}

export function initHfSection(deps: HfDeps): HfState {
  const state: HfState = { loaded: null, generation: null, routing: null };
  let cur: Loaded | null = null;
  let busy = false;
  let stop = false;
  const status = $('hf-status');

  const setBusy = (b: boolean) => {
    busy = b;
    $<HTMLButtonElement>('hf-gen-btn').disabled = b || !cur;
    $<HTMLButtonElement>('hf-stop-btn').disabled = !b;
    $<HTMLInputElement>('hf-folder').disabled = b;
  };

  async function open(files: BlobLike[], folder: string): Promise<void> {
    if (busy) return;
    setBusy(true);
    status.dataset.state = 'running';
    try {
      if (files.length === 0) throw new Error('no files: choose or drop the model folder itself');
      const t0 = performance.now();
      const src = new BlobSource(files, `the folder ${folder}`);
      status.textContent = `Reading ${src.label}: config and shard headers…`;
      const plan = await planHfModel(src, { keep16: true });
      const { name, why } = deps.resolveBackend($<HTMLSelectElement>('hf-backend').value);
      if (name === 'wasm') {
        const tooLarge = tooLargeForWasm(plan);
        if (tooLarge) throw new Error(`${tooLarge}: choose WebGPU in the menu`);
      }
      await cur?.engine.dispose();
      cur = null;
      state.loaded = null;
      clearOutput();
      const dev = await deps.openDevice(name);
      const { config } = plan;
      const gb = (plan.bytes / 1e9).toFixed(2);
      const progress = (done: number, total: number) => {
        status.textContent = `Loading ${folder} onto ${dev.name} (${why}): tensor ${done} of ${total} (${gb} GB)…`;
      };
      const init = { config, params: new Map(), state: new Map(), inferenceOnly: true };
      const stream = () => readHfTensors(plan, { onProgress: progress });
      const engine = new DeviceEngine(dev, config, { ...init, stream });
      try {
        await engine.receive(stream());
        const tok = src.has('tokenizer.json') ? await loadHfTokenizer(src) : null;
        if (tok && tok.vocabSize > config.vocab_size)
          throw new Error(
            `${src.where('tokenizer.json')}: the tokenizer has ${tok.vocabSize} tokens but config.json vocab_size ` +
              `is ${config.vocab_size}`,
          );
        cur = { plan, engine, tok, label: folder };
      } catch (e) {
        await engine.dispose();
        throw e;
      }
      const seconds = (performance.now() - t0) / 1000;
      state.loaded = { folder, parameters: plan.parameters, backend: engine.name, seconds, tokenizer: !!cur.tok };
      showModel(cur, seconds);
      status.dataset.state = 'done';
    } catch (e) {
      deps.showError(status, e);
    } finally {
      setBusy(false);
    }
  }

  function showModel(m: Loaded, seconds: number): void {
    const c = m.plan.config;
    const kind = c.moe_decompose === 'horizontal' ? 'HD' : 'VD';
    status.textContent =
      `Loaded ${m.label} on ${m.engine.name} in ${seconds.toFixed(1)} s: Monet-${kind}, ` +
      `${fmtCount(m.plan.parameters)} parameters, ${c.num_hidden_layers} layers, ${c.moe_experts}² experts per ` +
      `layer in router groups of ${c.moe_groups} layers; ` +
      `${m.tok ? 'tokenizer.json read' : 'no tokenizer.json: prompts are token ids'}.`;
    $('hf-form').hidden = false;
    $('hf-text-field').hidden = !m.tok;
    const ids = $<HTMLInputElement>('hf-prompt-ids');
    if (!m.tok && !ids.value && m.plan.bos !== null) ids.value = String(m.plan.bos);
    $<HTMLInputElement>('hf-stop-eos').title = `ids ${m.plan.eos.join(', ') || '(none in the folder)'}`;
  }

  function clearOutput(): void {
    $('hf-output').replaceChildren();
    $('hf-speed').textContent = '';
    $('hf-routing').hidden = true;
    $('hf-strip').replaceChildren();
    $('hf-groups').replaceChildren();
    state.generation = null;
    state.routing = null;
  }

  /** The prompt's ids: the text through the folder's tokenizer, or the ids field when there is none or it is set. */
  function promptIds(m: Loaded): number[] {
    const raw = $<HTMLInputElement>('hf-prompt-ids').value.trim();
    const V = m.plan.config.vocab_size;
    if (raw || !m.tok) {
      const parts = raw.split(/[\s,]+/).filter(Boolean);
      if (parts.length === 0) throw new Error('Prompt ids: expected token ids separated by commas, found nothing');
      return parts.map((p, k) => {
        const id = Number(p);
        if (!/^\d+$/.test(p) || id >= V)
          throw new Error(`Prompt ids: item ${k + 1} is '${p}'; expected a token id in [0, vocab_size = ${V})`);
        return id;
      });
    }
    const ids = Array.from(m.tok.encode($<HTMLTextAreaElement>('hf-prompt').value));
    if (ids.length === 0) throw new Error('Prompt: the text gives no tokens; type something');
    return ids;
  }

  function number(id: string, what: string, ok: (v: number) => boolean, expect: string): number {
    const raw = $<HTMLInputElement>(id).value;
    const v = Number(raw);
    if (raw.trim() === '' || !ok(v)) throw new Error(`${what}: expected ${expect}, found '${raw}'`);
    return v;
  }

  async function generate(): Promise<void> {
    const m = cur;
    if (!m || busy) return;
    setBusy(true);
    stop = false;
    const out = $('hf-output');
    try {
      clearOutput();
      const prompt = promptIds(m);
      const tokens = number('hf-tokens', 'Tokens', (v) => Number.isInteger(v) && v >= 1 && v <= 1024, '1 to 1024');
      const sampling: SamplingOptions = {
        temperature: number('hf-temperature', 'Temperature', (v) => v >= 0 && v <= 10, 'a number from 0 to 10'),
        topK: number('hf-top-k', 'Top-k', (v) => Number.isInteger(v) && v >= 0, 'a whole number ≥ 0 (0 = off)'),
        topP: number('hf-top-p', 'Top-p', (v) => v > 0 && v <= 1, 'a number in (0, 1] (1 = off)'),
        repetitionPenalty: number('hf-rep', 'Repetition penalty', (v) => v > 0, 'a number > 0 (1 = off)'),
      };
      const seed = number('hf-seed', 'Seed', (v) => Number.isInteger(v) && v >= 0, 'a whole number ≥ 0');
      const maxContext = m.plan.config.max_position_embeddings;
      const stream = m.tok ? new TextStream(m.tok) : null;
      const promptText = m.tok ? m.tok.decode(prompt) : prompt.join(', ');
      const shown = el('span', { className: 'prompt', textContent: promptText });
      const grown = el('span', { textContent: '' });
      out.replaceChildren(shown, grown);
      const ids: number[] = [];
      const t0 = performance.now();
      await generateIds(m.engine, prompt, {
        tokens,
        sampling,
        seed,
        stop: $<HTMLInputElement>('hf-stop-eos').checked ? m.plan.eos : [],
        alpha: 1,
        maxContext,
        shouldStop: () => stop,
        onId: async (id) => {
          ids.push(id);
          grown.textContent += stream ? stream.push(id) : `, ${id}`;
          $('hf-speed').textContent =
            `${ids.length} tokens, ${(ids.length / ((performance.now() - t0) / 1000)).toFixed(2)} tokens/s`;
          await yieldToPage();
        },
      });
      if (stream) grown.textContent += stream.flush();
      const tokensPerS = ids.length / ((performance.now() - t0) / 1000);
      $('hf-speed').textContent =
        `${ids.length} tokens in ${((performance.now() - t0) / 1000).toFixed(1)} s (${tokensPerS.toFixed(2)} ` +
        `tokens/s, prompt of ${prompt.length} included) on ${m.engine.name}` +
        (stop ? '; stopped' : '');
      state.generation = { prompt, ids, text: stream ? m.tok!.decode(ids) : null, tokensPerS };
      status.textContent = 'Routing every token (one more pass over prompt and output)…';
      const seq = [...prompt, ...ids].slice(-maxContext);
      const routing = await m.engine.monetRouting(Int32Array.from(seq));
      showRouting(m, seq, routing, seq.length - 1);
      status.textContent = `Generated ${ids.length} tokens; the routing of each is below.`;
    } catch (e) {
      deps.showError(status, e);
    } finally {
      setBusy(false);
    }
  }

  /** A token as the strip shows it: its tokenizer piece, or its id. */
  const pieceOf = (m: Loaded, id: number) => (m.tok ? m.tok.piece(id) : String(id));

  function showRouting(m: Loaded, seq: number[], groups: GroupRouting[], chosen: number): void {
    const strip = $('hf-strip');
    strip.replaceChildren(
      ...seq.map((id, t) => {
        const b = el('button', { type: 'button', textContent: pieceOf(m, id) });
        b.setAttribute('aria-pressed', String(t === chosen));
        b.title = `token ${t + 1}: id ${id}`;
        b.addEventListener('click', () => showRouting(m, seq, groups, t));
        return b;
      }),
    );
    $('hf-groups').replaceChildren(...groups.map((g) => groupView(m, seq, g, chosen)));
    $('hf-routing').hidden = false;
    state.routing = {
      groups: groups.length,
      tokens: seq.length,
      chosen,
      top: groups.map((g) => {
        const t = topComposite(g, chosen, 1)[0];
        return t ? { i: t.i, j: t.j } : null;
      }),
    };
  }

  /** One router group: heat maps of Σ_h g1 and Σ_h g2 (tokens × experts), then the chosen token's experts. */
  function groupView(m: Loaded, seq: number[], g: GroupRouting, t: number): HTMLElement {
    const T = seq.length;
    const layers =
      g.layers.length > 1 ? `layers ${g.layers[0]}–${g.layers[g.layers.length - 1]}` : `layer ${g.layers[0]}`;
    const maps = ([1, 2] as const).map((r) => {
      const G = headSum(r === 1 ? g.g1 : g.g2, T, g.H, g.E);
      const cv = el('canvas');
      drawTokenMap(cv, G, T, g.E, t);
      cv.setAttribute(
        'aria-label',
        `Router ${r} of group ${g.group}: weight of each expert half ${r === 1 ? 'i' : 'j'} (columns) per token (rows)`,
      );
      return el(
        'figure',
        { className: 'heatmap' },
        el('figcaption', { textContent: `router ${r}: Σ over heads of g${r} (${r === 1 ? 'i' : 'j'} across)` }),
        cv,
      );
    });
    const top = topComposite(g, t, 5);
    const list = el(
      'ol',
      { className: 'unit-list' },
      ...top.map((x) =>
        el('li', {}, `expert (${x.i}, ${x.j}) `, el('span', { className: 'mono', textContent: x.weight.toFixed(3) })),
      ),
    );
    const heads = el(
      'ul',
      { className: 'hint' },
      ...headChoices(g, t).map((c) =>
        el('li', {
          textContent:
            `head ${c.h}: i ∈ {${c.i.map(([e, w]) => `${e} (${w.toFixed(2)})`).join(', ')}}, ` +
            `j ∈ {${c.j.map(([e, w]) => `${e} (${w.toFixed(2)})`).join(', ')}}`,
        }),
      ),
    );
    return el(
      'div',
      { className: 'hf-group' },
      el('h4', { textContent: `group ${g.group} (${layers})` }),
      el('div', { className: 'heatmaps' }, ...maps),
      el('p', {
        className: 'hint',
        textContent: `Token ${t + 1} ('${pieceOf(m, seq[t])}'): top composite experts, g_ij`,
      }),
      list,
      heads,
    );
  }

  $<HTMLInputElement>('hf-folder').addEventListener('change', (ev) => {
    const files = Array.from((ev.target as HTMLInputElement).files ?? []);
    const folder = files[0]?.webkitRelativePath.split('/')[0] || 'chosen';
    void open(files, folder);
  });
  const drop = $('hf-drop');
  drop.addEventListener('dragover', (ev) => {
    ev.preventDefault();
    drop.dataset.over = 'true';
  });
  drop.addEventListener('dragleave', () => delete drop.dataset.over);
  drop.addEventListener('drop', (ev) => {
    ev.preventDefault();
    delete drop.dataset.over;
    if (!ev.dataTransfer) return;
    // the entries must be taken now: the drop's item list is emptied once this handler returns
    const entries = Array.from(ev.dataTransfer.items)
      .map((i) => i.webkitGetAsEntry?.())
      .filter((e): e is FileSystemEntry => !!e);
    const loose = Array.from(ev.dataTransfer.files);
    void droppedFiles(entries, loose).then(({ files, folder }) => open(files, folder));
  });
  $('hf-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    void generate();
  });
  $('hf-stop-btn').addEventListener('click', () => {
    stop = true;
  });
  return state;
}

/** The files of a dropped folder (its top level: a model folder is flat), or the files dropped themselves. */
async function droppedFiles(entries: FileSystemEntry[], loose: File[]): Promise<{ files: File[]; folder: string }> {
  const dir = entries.find((e) => e.isDirectory) as FileSystemDirectoryEntry | undefined;
  if (!dir) return { files: loose, folder: 'dropped' };
  const reader = dir.createReader();
  const files: File[] = [];
  for (;;) {
    const batch = await new Promise<FileSystemEntry[]>((res, rej) => reader.readEntries(res, rej));
    if (batch.length === 0) break;
    for (const e of batch)
      if (e.isFile) files.push(await new Promise<File>((res, rej) => (e as FileSystemFileEntry).file(res, rej)));
  }
  return { files, folder: dir.name };
}

/** Rows = tokens, columns = experts: G (T, E) white → blue, per map scaled to its largest value; row `t` outlined. */
function drawTokenMap(cv: HTMLCanvasElement, G: Float32Array, T: number, E: number, t: number): void {
  const cw = Math.max(1, Math.min(16, Math.floor(512 / E)));
  const ch = Math.max(3, Math.min(14, Math.floor(320 / T)));
  cv.width = E * cw;
  cv.height = T * ch;
  const ctx = cv.getContext('2d');
  if (!ctx) return;
  let max = 0;
  for (const v of G) max = Math.max(max, v);
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, cv.width, cv.height);
  for (let r = 0; r < T; r++)
    for (let e = 0; e < E; e++) {
      const v = G[r * E + e];
      if (v === 0) continue;
      ctx.fillStyle = heatColor(v, max);
      ctx.fillRect(e * cw, r * ch, cw, ch);
    }
  ctx.strokeStyle = '#ff9f1a';
  ctx.lineWidth = 2;
  ctx.strokeRect(1, t * ch + 1, cv.width - 2, ch - 2);
}
