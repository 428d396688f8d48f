// `monet inspect <subcommand> --run runs/<name>`: look inside a trained model (docs/interpretability.md).
//
//   units     the most specialised units of every layer (lowest entropy), with top contexts
//   unit      one unit (--layer, --unit): firing frequency, entropies, top contexts with the token marked
//   compare   entropy distributions of several runs (--run A --run B …), e.g. Monet / TopK / SMoE / dense
//   mask      domain (Brown genres) or language (code corpus) masking table, Monet §5.1–5.2
//   steer     add δ to low-entropy neurons while sampling (TopK LM paper); dense and TopK models
//   report    units + mask (+ steer for neuron models) into one HTML report in the run folder
//   code-corpus   write the node_modules source-code corpus (js, ts, json, md) for language masking
//
// Every subcommand prints tables to the terminal and writes a self-contained HTML file (inline SVG) to the run folder.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { collect, summarizeLayer, summarizeUnit, type Collected, type UnitSummary } from '../interp/collect.ts';
import { buildCodeCorpus } from '../interp/code-corpus.ts';
import { runWindows, type AnalysisText } from '../interp/data.ts';
import { maskExperiment, type MaskResult } from '../interp/mask.ts';
import { parseUnit, unitName } from '../interp/model.ts';
import {
  contextsText,
  entropyTable,
  esc,
  leanText,
  ratioText,
  htmlContexts,
  htmlPage,
  htmlTable,
  maskTable,
  svgGroupedBars,
  svgHeatmap,
  svgHistograms,
  unitsTable,
  type EntropyRow,
} from '../interp/report.ts';
import { openRunForInspect, type RunInfo } from '../interp/run-info.ts';
import { neuronName, pickSteerTargets, sampleSteered, topTokenShare, type SteerTarget } from '../interp/steer.ts';
import { FlagError, formatHelp, parseFlags, type FlagSpec, type FlagValues } from '../train/flags.ts';

const SUBCOMMANDS = ['units', 'unit', 'compare', 'mask', 'steer', 'report', 'code-corpus'] as const;
type Sub = (typeof SUBCOMMANDS)[number];

const FLAGS: FlagSpec[] = [
  { name: 'run', type: 'list', help: 'run folder(s) written by monet train (compare takes several)' },
  {
    name: 'windows',
    type: 'int',
    positive: true,
    help: "analysis windows per label (genre / language) of the run's sequence length",
    default: '⌊192 / labels⌋, at least 8',
  },
  {
    name: 'top-m',
    type: 'int',
    positive: true,
    help: 'highest-scoring positions kept per unit (contexts, entropies)',
    default: '100',
  },
  {
    name: 'min-fires',
    type: 'int',
    positive: true,
    help: 'units that fired fewer times are not measured',
    default: '20',
  },
  { name: 'layer', type: 'int', min: 0, help: 'layer (unit, steer)' },
  { name: 'unit', type: 'string', help: 'unit id: 17 / n17 / e3, or i,j for a Monet composite expert (unit)' },
  { name: 'neuron', type: 'int', min: 0, help: 'neuron to steer (steer; default: picked automatically)' },
  { name: 'top', type: 'int', positive: true, help: 'units listed per layer (units, report)', default: '8' },
  {
    name: 'contexts',
    type: 'int',
    positive: true,
    help: 'top contexts shown per unit',
    default: '10 (unit), 3 (units)',
  },
  {
    name: 'sort',
    type: 'string',
    choices: ['token', 'pos', 'label'],
    help: 'specialisation measure for listings',
    default: 'token',
  },
  {
    name: 'factor',
    type: 'float',
    positive: true,
    help: "masking: a unit is specific to a label if its mean score there is ≥ factor × every other label's",
    default: '2',
  },
  { name: 'count', type: 'int', positive: true, help: 'steer: neurons picked automatically', default: '2' },
  {
    name: 'delta',
    type: 'float',
    help: 'steer: δ added to the neuron (default: --delta-scale × its largest observed activation)',
  },
  {
    name: 'delta-scale',
    type: 'float',
    positive: true,
    help: "steer: automatic δ as a multiple of the neuron's largest activation",
    default: '3',
  },
  { name: 'prompt', type: 'string', help: 'steer: prompt', default: '"The "' },
  { name: 'tokens', type: 'int', positive: true, help: 'steer: tokens to sample', default: '200' },
  { name: 'temperature', type: 'float', min: 0, help: 'steer: sampling temperature', default: '0.8' },
  {
    name: 'seed',
    type: 'int',
    min: 0,
    help: 'steer: sampling seed (the same for unsteered and steered)',
    default: '1',
  },
  {
    name: 'out',
    type: 'string',
    help: 'HTML file (default: in the (first) run folder); code-corpus: output folder',
    default: 'inspect-<subcommand>.html / runs/code-corpus',
  },
  { name: 'bytes', type: 'int', positive: true, help: 'code-corpus: bytes per language', default: '150000' },
  { name: 'node-modules', type: 'string', help: 'code-corpus: where the packages are', default: 'node_modules' },
  {
    name: 'manifest',
    type: 'string',
    help: 'code-corpus: rebuild exactly the files listed in a sources.txt written earlier',
  },
];

const USAGE = `Usage: monet inspect <${SUBCOMMANDS.join('|')}> --run runs/<name> [options]

Examples:
  monet inspect units --run runs/interp-monet
  monet inspect unit --run runs/interp-monet --layer 0 --unit 3,17
  monet inspect compare --run runs/interp-monet --run runs/interp-topk --run runs/interp-smoe --run runs/interp-dense
  monet inspect mask --run runs/interp-monet
  monet inspect steer --run runs/interp-topk
  monet inspect report --run runs/interp-monet
  monet inspect code-corpus --out runs/code-corpus`;

const err = (s: string) => process.stderr.write(`${s}\n`);

function num(f: FlagValues, k: string, d: number): number {
  return (f[k] as number | undefined) ?? d;
}

function oneRun(f: FlagValues, sub: string): RunInfo {
  const runs = f.run as string[] | undefined;
  if (runs?.length !== 1)
    throw new FlagError(`monet inspect ${sub}: expected exactly one --run <run folder>, found ${runs?.length ?? 0}`);
  return openRunForInspect(runs[0]);
}

function windowsFor(r: RunInfo, f: FlagValues, split: 'validation' | 'train'): AnalysisText {
  const probe = runWindows(r.data, split, r.seqLen, 1);
  const per = num(f, 'windows', Math.max(8, Math.floor(192 / probe.labels.length)));
  return runWindows(r.data, split, r.seqLen, per);
}

function collectRun(r: RunInfo, f: FlagValues): Collected {
  const text = windowsFor(r, f, 'validation');
  err(`${r.name}: ${text.windows} validation windows × ${text.S} tokens over ${text.labels.length} labels …`);
  return collect(r.model, text, num(f, 'top-m', 100));
}

const sortKey = (how: string) => (s: UnitSummary) =>
  how === 'pos' ? (s.tagEntropy ?? s.tokenEntropy) : how === 'label' ? s.labelEntropy : s.tokenEntropy;

function writeHtml(path: string, title: string, body: string): void {
  writeFileSync(path, htmlPage(title, body));
  console.log(`\nHTML report: ${path}`);
}

// ---------------------------------------------------------------------------------------------------------------

interface Section {
  text: string;
  html: string;
}

function unitsSection(r: RunInfo, c: Collected, f: FlagValues): Section {
  const minFires = num(f, 'min-fires', 20);
  const top = num(f, 'top', 8);
  const nCtx = num(f, 'contexts', 3);
  const how = (f.sort as string | undefined) ?? 'token';
  const key = sortKey(how);
  const hasTags = c.text.tagSet !== null;
  let text = `\n== ${r.name}: most specialised units per layer (lowest ${how} entropy over each unit's top ${c.M} positions; ≥ ${minFires} firings) ==\n`;
  let html = `<h2>Most specialised units per layer</h2><p>${c.text.windows} validation windows of ${c.text.S} tokens (${c.positions} positions) over ${c.text.labels.length} labels. Entropies in bits over each unit's top ${c.M} firing positions; units that fired fewer than ${minFires} times are not measured. Sorted by ${how} entropy.</p>`;
  for (const st of c.layers) {
    const lu = st.units;
    const { measured, tooRare, dead } = summarizeLayer(c, lu.layer, minFires);
    // ties (many byte-level units have token entropy exactly 0) go to the lower POS entropy, then the more frequent
    const best = [...measured]
      .sort((a, b) => key(a) - key(b) || (a.tagEntropy ?? 0) - (b.tagEntropy ?? 0) || b.fires - a.fires)
      .slice(0, top);
    text += `\nlayer ${lu.layer} (${lu.kind}, ${lu.count} units): ${measured.length} measured, ${tooRare} too rare, ${dead} never fired\n`;
    text += `${unitsTable(lu, best, hasTags)}\n`;
    for (const s of best.slice(0, Math.min(best.length, 3)))
      text += `${unitName(lu, s.unit)}:\n${contextsText(c, s, nCtx)}\n`;
    html += `<h3>Layer ${lu.layer} — ${lu.kind}, ${lu.count} units (${measured.length} measured, ${tooRare} too rare, ${dead} never fired)</h3>`;
    html += htmlTable(
      [
        'unit',
        'fires',
        'token H',
        ...(hasTags ? ['POS H'] : []),
        'label H',
        'top tokens',
        'top words',
        ...(hasTags ? ['top POS'] : []),
        'top labels',
      ],
      best.map((s) => [
        esc(unitName(lu, s.unit)),
        `${(100 * s.freq).toFixed(2)}%`,
        s.tokenEntropy.toFixed(2),
        ...(hasTags ? [s.tagEntropy!.toFixed(2)] : []),
        s.labelEntropy.toFixed(2),
        esc(neuronName({ ...s, topWords: [], topTags: [] })),
        esc(
          s.topWords
            .slice(0, 4)
            .map(([w, n]) => `${w} (${n})`)
            .join(', '),
        ),
        ...(hasTags ? [esc(s.topTags.map(([t, n]) => `${t} (${n})`).join(', '))] : []),
        esc(s.topLabels.map(([t, n]) => `${t} (${n})`).join(', ')),
      ]),
    );
    for (const s of best)
      html += `<details><summary>${esc(unitName(lu, s.unit))}: top contexts</summary>${htmlContexts(c, s, 12)}</details>`;
  }
  return { text, html };
}

function unitSection(r: RunInfo, c: Collected, f: FlagValues): Section {
  if (f.layer === undefined || f.unit === undefined)
    throw new FlagError('monet inspect unit: --layer <l> and --unit <id> are required');
  const l = f.layer as number;
  if (l >= c.layers.length)
    throw new FlagError(`monet inspect unit: --layer ${l} out of range; the model has ${c.layers.length} layers`);
  const lu = c.layers[l].units;
  const u = parseUnit(lu, f.unit as string);
  const s = summarizeUnit(c, l, u);
  const hasTags = c.text.tagSet !== null;
  const lines = [
    `\n== ${r.name}: layer ${l} ${lu.kind} unit ${unitName(lu, u)} ==`,
    `fires at ${s.fires} of ${c.positions} positions (${(100 * s.freq).toFixed(3)}%); largest score ${s.maxScore.toFixed(4)}, mean of top ${s.kept} ${s.meanTop.toFixed(4)}`,
    `entropy over its top ${s.kept} positions: token ${s.tokenEntropy.toFixed(2)} bits${hasTags ? `, POS ${s.tagEntropy!.toFixed(2)} bits` : ''}, label ${s.labelEntropy.toFixed(2)} bits`,
    `name: ${neuronName(s)}`,
    `top labels: ${s.topLabels.map(([t, n]) => `${t} ${n}`).join(', ')}`,
    `top contexts (score, …before[token]after…, label):`,
    contextsText(c, s, num(f, 'contexts', 10)),
  ];
  const html = `<h2>Layer ${l} ${esc(lu.kind)} unit ${esc(unitName(lu, u))}</h2><pre>${esc(lines.slice(1, 6).join('\n'))}</pre>${htmlContexts(c, s, num(f, 'contexts', 10) * 2)}`;
  return { text: lines.join('\n'), html };
}

function maskSection(r: RunInfo, f: FlagValues): { sec: Section; result: MaskResult } {
  const sel = windowsFor(r, f, 'train');
  const ev = windowsFor(r, f, 'validation');
  const factor = num(f, 'factor', 2);
  const res = maskExperiment(r.model, sel, ev, factor, err);
  writeFileSync(join(r.dir, 'inspect-mask.json'), `${JSON.stringify(res, null, 1)}\n`);
  const what = r.data ? 'language' : 'genre';
  const valid = res.rows.filter((x) => x.ratio !== null);
  const above1 = valid.filter((x) => x.ratio! > 1).length;
  const summary =
    `${valid.length} of ${res.rows.length} ${what}s had specific units and a positive mean ΔL elsewhere; for ${above1} of them masking hurt the target ${what} more than the others` +
    (valid.length ? ` (median ratio ${median(valid.map((x) => x.ratio!)).toFixed(2)})` : '');
  const text = `\n== ${r.name}: ${what} masking (units with mean score on the ${what} ≥ ${factor}× every other ${what}, chosen on ${res.selectionWindows} training windows; loss on ${res.evalWindows} validation windows) ==\n${maskTable(res)}\n${summary}\n`;
  let html = `<h2>${what === 'genre' ? 'Domain' : 'Language'} masking</h2><p>For each ${what}: the units (${res.kind === 'monet' ? 'composite experts' : res.kind === 'smoe' ? 'experts' : 'neurons'}, every layer) whose mean routing score on that ${what} is ≥ ${factor}× their mean score on every other ${what}, selected on ${res.selectionWindows} windows of the training split; 'max lean' is the largest ratio (mean score on the ${what}) / (largest mean score on another ${what}) of any unit; their contributions are removed exactly and the next-token loss (nats/token) is measured on ${res.evalWindows} validation windows. ${esc(summary)}.</p>`;
  html += htmlTable(
    [what, 'max lean', 'masked units (per layer)', 'base loss', 'ΔL target', 'mean ΔL others', 'ratio'],
    res.rows.map((x, g) => [
      esc(x.label),
      leanText(x.maxLean),
      `${x.unitsPerLayer.reduce((a, b) => a + b, 0)} (${x.unitsPerLayer.join(' + ')})`,
      res.baseLoss[g].toFixed(4),
      x.deltaTarget.toFixed(5),
      x.deltaOthers.toFixed(5),
      esc(ratioText(x)),
    ]),
  );
  html += svgGroupedBars(
    res.labels,
    [
      { name: `ΔL on the masked ${what}`, values: res.rows.map((x) => x.deltaTarget) },
      { name: `mean ΔL on the others`, values: res.rows.map((x) => x.deltaOthers) },
    ],
    `Loss increase after masking each ${what}'s units`,
    'ΔL (nats/token)',
  );
  html += svgHeatmap(
    res.labels,
    res.rows.map((x) => x.deltas),
    `ΔL matrix: row = masked ${what}, column = evaluated ${what} (diagonal outlined)`,
  );
  return { sec: { text, html }, result: res };
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function steerSection(r: RunInfo, c: Collected, f: FlagValues): Section {
  const minFires = num(f, 'min-fires', 20);
  let targets: SteerTarget[];
  if (f.neuron !== undefined) {
    if (f.layer === undefined) throw new FlagError('monet inspect steer: --neuron needs --layer');
    const l = f.layer as number;
    if (l >= c.layers.length)
      throw new FlagError(`monet inspect steer: --layer ${l} out of range; the model has ${c.layers.length} layers`);
    const lu = c.layers[l].units;
    if (lu.kind !== 'dense' && lu.kind !== 'topk')
      throw new FlagError(
        `monet inspect steer: layer ${l} has ${lu.kind} units; steering needs neurons (dense or TopK layers)`,
      );
    const n = f.neuron as number;
    if (n >= lu.count)
      throw new FlagError(`monet inspect steer: --neuron ${n} out of range; layer ${l} has ${lu.count} neurons`);
    const s = summarizeUnit(c, l, n);
    targets = [{ layer: l, neuron: n, name: neuronName(s), why: 'given on the command line', summary: s }];
  } else {
    targets = pickSteerTargets(c, num(f, 'count', 2), minFires);
  }
  const o = {
    prompt: (f.prompt as string | undefined) ?? 'The ',
    tokens: num(f, 'tokens', 200),
    temperature: num(f, 'temperature', 0.8),
    seed: num(f, 'seed', 1),
  };
  err(`sampling ${o.tokens} tokens per sample …`);
  const base = sampleSteered(r.model, 0, 0, 0, o);
  const flat = (s: string) => s.replace(/\n/g, '⏎');
  let text = `\n== ${r.name}: neuron steering (prompt ${JSON.stringify(o.prompt)}, ${o.tokens} tokens, temperature ${o.temperature}, seed ${o.seed}) ==\n`;
  let html = `<h2>Neuron steering</h2><p>δ is added to the neuron's activation at every position (after TopK, before down_proj) while sampling; unsteered and steered samples use the same seed. Prompt ${esc(JSON.stringify(o.prompt))}, ${o.tokens} tokens, temperature ${o.temperature}, seed ${o.seed}.</p>`;
  text += `unsteered:\n  ${flat(o.prompt + base)}\n`;
  html += `<h3>Unsteered</h3><pre>${esc(o.prompt + base)}</pre>`;
  for (const t of targets) {
    const delta = (f.delta as number | undefined) ?? num(f, 'delta-scale', 3) * t.summary.maxScore;
    const steered = sampleSteered(r.model, t.layer, t.neuron, delta, o);
    const shareBase = topTokenShare(base, t.summary);
    const shareSteer = topTokenShare(steered, t.summary);
    text += `\nlayer ${t.layer} neuron n${t.neuron} — ${t.name}\n  picked by ${t.why}; fires at ${(100 * t.summary.freq).toFixed(2)}% of positions, largest activation ${t.summary.maxScore.toFixed(3)}; δ = ${delta.toFixed(3)}\n`;
    text += `  steered:\n  ${flat(o.prompt + steered)}\n  share of its top-3 tokens in the sample: unsteered ${(100 * shareBase).toFixed(1)}% → steered ${(100 * shareSteer).toFixed(1)}%\n`;
    html += `<h3>Layer ${t.layer}, neuron n${t.neuron}</h3><p>${esc(t.name)}<br>Picked by ${esc(t.why)}; fires at ${(100 * t.summary.freq).toFixed(2)}% of positions; largest activation ${t.summary.maxScore.toFixed(3)}; δ = ${delta.toFixed(3)}. Share of its top-3 tokens in the sample: unsteered ${(100 * shareBase).toFixed(1)}% → steered ${(100 * shareSteer).toFixed(1)}%.</p><pre>${esc(o.prompt + steered)}</pre><details><summary>its top contexts</summary>${htmlContexts(c, t.summary, 12)}</details>`;
  }
  return { text, html };
}

function entropyRows(r: RunInfo, c: Collected, minFires: number): EntropyRow[] {
  return c.layers.map((st) => {
    const { measured } = summarizeLayer(c, st.units.layer, minFires);
    return {
      model: r.name,
      kind: r.model.config.ffn,
      layer: st.units.layer,
      unitKind: st.units.kind,
      units: st.units.count,
      measured: measured.length,
      tok: measured.map((s) => s.tokenEntropy),
      tag: c.text.tagSet ? measured.map((s) => s.tagEntropy!) : null,
      label: measured.map((s) => s.labelEntropy),
    };
  });
}

function compareSection(runs: RunInfo[], f: FlagValues): Section {
  const minFires = num(f, 'min-fires', 20);
  const rows: EntropyRow[] = [];
  let M = 0;
  for (const r of runs) {
    const c = collectRun(r, f);
    M = c.M;
    rows.push(...entropyRows(r, c, minFires));
  }
  const text = `\n== entropy of each unit's top ${M} positions (bits; median and interquartile range over the units that fired ≥ ${minFires} times) ==\n${entropyTable(rows)}\n`;
  const pooled = (pick: (r: EntropyRow) => number[] | null) =>
    runs.map((r) => ({
      name: `${r.name} (${r.model.config.ffn})`,
      values: rows.filter((x) => x.model === r.name).flatMap((x) => pick(x) ?? []),
    }));
  let html = `<h2>Specialisation: entropy distributions</h2><p>For every unit, the entropy (bits) of the byte tokens, POS tags and genres at its top ${M} firing positions on the validation windows; lower = more specialised. Units that fired fewer than ${minFires} times are not measured. All layers pooled in the charts.</p>`;
  const q = (v: number[]) => (v.length ? `${median(v).toFixed(2)} (${v.length})` : '—');
  html += htmlTable(
    ['model', 'layer', 'units', 'measured', 'median token H', 'median POS H', 'median label H'],
    rows.map((x) => [
      esc(x.model),
      `${x.layer} ${x.unitKind}`,
      String(x.units),
      String(x.measured),
      q(x.tok),
      x.tag ? q(x.tag) : '—',
      q(x.label),
    ]),
  );
  html += svgHistograms(
    pooled((x) => x.tok),
    'Token entropy of units (all layers)',
    'bits',
  );
  html += svgHistograms(
    pooled((x) => x.tag),
    'POS-tag entropy of units (all layers)',
    'bits',
  );
  html += svgHistograms(
    pooled((x) => x.label),
    'Genre entropy of units (all layers)',
    'bits',
  );
  return { text, html };
}

// ---------------------------------------------------------------------------------------------------------------

export async function inspectCommand(args: string[]): Promise<number> {
  const first = args[0];
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
    console.log(formatHelp(USAGE, FLAGS));
    return 0;
  }
  const sub = first as Sub;
  try {
    if (!SUBCOMMANDS.includes(sub))
      throw new FlagError(`monet inspect: unknown subcommand '${sub}'; expected one of ${SUBCOMMANDS.join(', ')}`);
    if (args.includes('--help') || args.includes('-h')) {
      console.log(formatHelp(USAGE, FLAGS));
      return 0;
    }
    const f = parseFlags(`inspect ${sub}`, FLAGS, args.slice(1));
    if (sub === 'code-corpus') {
      const out = (f.out as string | undefined) ?? 'runs/code-corpus';
      const files = buildCodeCorpus(
        (f['node-modules'] as string | undefined) ?? 'node_modules',
        out,
        num(f, 'bytes', 150000),
        f.manifest as string | undefined,
      );
      for (const x of files) console.log(`${x.language.padEnd(5)} ${x.path}  ${x.bytes} bytes from ${x.sources} files`);
      console.log(`sources: ${join(out, 'sources.txt')} (rebuild the same files later with --manifest)`);
      console.log(`\ntrain on it with: monet train --data ${files.map((x) => x.path).join(' ')} …`);
      return 0;
    }
    if (sub === 'compare') {
      const dirs = f.run as string[] | undefined;
      if (!dirs || dirs.length < 2) throw new FlagError('monet inspect compare: give at least two --run folders');
      const runs = dirs.map(openRunForInspect);
      const sec = compareSection(runs, f);
      console.log(sec.text);
      writeHtml(
        (f.out as string | undefined) ?? join(runs[0].dir, 'inspect-compare.html'),
        `Specialisation: ${runs.map((r) => r.name).join(' vs ')}`,
        sec.html,
      );
      return 0;
    }
    const r = oneRun(f, sub);
    const out = (f.out as string | undefined) ?? join(r.dir, `inspect-${sub}.html`);
    const title = `monet inspect ${sub}: ${r.name} (${r.model.config.ffn}, step ${r.step})`;
    if (sub === 'mask') {
      const { sec } = maskSection(r, f);
      console.log(sec.text);
      writeHtml(out, title, sec.html);
      return 0;
    }
    const c = collectRun(r, f);
    const secs: Section[] = [];
    if (sub === 'units' || sub === 'report') secs.push(unitsSection(r, c, f));
    if (sub === 'unit') secs.push(unitSection(r, c, f));
    if (sub === 'steer') secs.push(steerSection(r, c, f));
    if (sub === 'report') {
      secs.push(maskSection(r, f).sec);
      if (c.layers.some((s) => s.units.kind === 'dense' || s.units.kind === 'topk')) secs.push(steerSection(r, c, f));
      secs.push(compareSectionSingle(r, c, num(f, 'min-fires', 20)));
    }
    for (const s of secs) console.log(s.text);
    writeHtml(
      sub === 'report' && f.out === undefined ? join(r.dir, 'report.html') : out,
      title,
      secs.map((s) => s.html).join('\n'),
    );
    return 0;
  } catch (e) {
    if (e instanceof FlagError) {
      console.error(e.message);
      return 2;
    }
    console.error(`monet inspect ${sub ?? ''}: ${(e as Error).message}`);
    return 1;
  }
}

/** The entropy distribution of one run (the report's version of compare). */
function compareSectionSingle(r: RunInfo, c: Collected, minFires: number): Section {
  const rows = entropyRows(r, c, minFires);
  const text = `\n== ${r.name}: entropy of each unit's top ${c.M} positions ==\n${entropyTable(rows)}\n`;
  const html =
    `<h2>Entropy distributions</h2>` +
    svgHistograms(
      rows.map((x) => ({ name: `layer ${x.layer} ${x.unitKind}`, values: x.tok })),
      'Token entropy per layer',
      'bits',
    ) +
    (c.text.tagSet
      ? svgHistograms(
          rows.map((x) => ({ name: `layer ${x.layer} ${x.unitKind}`, values: x.tag ?? [] })),
          'POS-tag entropy per layer',
          'bits',
        )
      : '');
  return { text, html };
}
