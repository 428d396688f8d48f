// `monet inspect <subcommand> --run runs/<name>`: look inside a trained model (docs/interpretability.md).
//
//   units     the most specialised units of every unit group (lowest entropy), with top contexts
//   unit      one unit (--group or --layer, --unit): density, entropies, top contexts with the token marked
//   compare   entropy distributions of several runs (--run A --run B …), per layer, e.g. Monet / TopK / SMoE / dense
//   mask      domain (Brown genres) or language (code corpus) masking with random-mask noise floors, Monet §5.1–5.2
//   steer     add δ to a neuron while sampling (TopK LM paper); refuses neurons that never fired; --sweep
//   report    units + mask (+ steer for neuron models) + entropy charts into one HTML report in the run folder
//   site      a static browsable site: an index per unit group and one page per unit (src/interp/site.ts)
//   formation how units form over training, across the snapshots of `monet train --keep-every`
//   code-corpus   write the node_modules source-code corpus (js, ts, json, md) for language masking
//
// Units are reported per unit group (src/interp/units.ts): one group per layer, except Monet, whose experts are
// grouped by router — a router shared by moe_groups layers gives its experts the same scores in all of them.
//
// Every subcommand prints tables to the terminal and writes a self-contained HTML file (inline SVG) to the run folder.
// Analysis runs on the float32 WASM backend by default (--backend reference: the float64 reference LM, slow).

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { svgGroupedBars, svgHeatmap, svgHistogramPanels } from '../interp/charts.ts';
import { buildCodeCorpus } from '../interp/code-corpus.ts';
import { collect, summarizeGroup, summarizeUnit, type Collected, type UnitSummary } from '../interp/collect.ts';
import { runWindows, showTokenOf, type AnalysisText } from '../interp/data.ts';
import { unitEffects } from '../interp/attribution.ts';
import { maskExperiment, type MaskResult, type MaskSelect, type MaskVerdict, type NullResult } from '../interp/mask.ts';
import {
  table,
  contextsText,
  deltaText,
  entropyTable,
  esc,
  htmlContexts,
  htmlPage,
  htmlTable,
  leanText,
  maskTable,
  medianIqr,
  nullText,
  othersText,
  shareText,
  unitsTable,
  verdictText,
  type EntropyRow,
} from '../interp/report.ts';
import {
  INSPECT_BACKENDS,
  openRunForInspect,
  readRunOptions,
  type InspectBackend,
  type RunInfo,
} from '../interp/run-info.ts';
import { readConfig } from '../train/checkpoint.ts';
import {
  firstDivergence,
  neuronName,
  pickSteerTargets,
  sampleSteered,
  steerDelta,
  topTokenShare,
  type SteerTarget,
} from '../interp/steer.ts';
import { quantile } from '../interp/stats.ts';
import {
  groupName,
  groupOfLayer,
  isNeuronKind,
  parseUnit,
  unitName,
  unitNoun,
  type UnitGroup,
} from '../interp/units.ts';
import { writeSite } from '../interp/site.ts';
import { formation, formationGroupNames, listSnapshots, type FormationResult } from '../interp/formation.ts';
import { createWasmDevice } from '../backend/wasm/node.ts';
import { svgLines } from '../interp/charts.ts';
import { FlagError, formatHelp, parseFlags, type FlagSpec, type FlagValues } from '../train/flags.ts';
import { SEED_MAX } from '../train/rng.ts';
import { THREADS_FLAG, threadsOf } from '../train/options.ts';

const SUBCOMMANDS = [
  'units',
  'unit',
  'compare',
  'mask',
  'steer',
  'report',
  'site',
  'formation',
  'code-corpus',
] as const;
type Sub = (typeof SUBCOMMANDS)[number];

const FLAGS: FlagSpec[] = [
  {
    name: 'run',
    type: 'list',
    help: 'run folder(s) written by monet train (compare takes several), or a MonetLLM folder (docs/monetllm.md)',
  },
  {
    name: 'data',
    type: 'list',
    help: "text files to analyse instead of the run's data, each file a label named by its base name",
  },
  {
    name: 'label',
    type: 'list',
    help: 'labelled text files NAME=FILE (repeat; labels for masking), with or instead of --data',
  },
  {
    name: 'backend',
    type: 'string',
    choices: INSPECT_BACKENDS,
    help: 'engine of the analysis: wasm (float32, fast) or reference (float64 reference LM, slow)',
    default: 'wasm',
  },
  THREADS_FLAG,
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
  { name: 'group', type: 'int', min: 0, help: 'unit group (unit, steer): a Monet router group, or a layer' },
  { name: 'layer', type: 'int', min: 0, help: 'layer (unit, steer): picks the unit group that covers it' },
  { name: 'unit', type: 'string', help: 'unit id: 17 / n17 / e3 / d5, or i,j for a Monet composite expert (unit)' },
  { name: 'neuron', type: 'int', min: 0, help: 'neuron to steer (steer; default: picked automatically)' },
  { name: 'top', type: 'int', positive: true, help: 'units listed per group (units, report)', default: '8' },
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
    name: 'select',
    type: 'string',
    choices: ['ratio', 'effect'],
    help:
      "masking: how a label's units are chosen: ratio = the Monet paper's routing rule (--factor); effect = the " +
      '--units per group whose removal raises its loss most beyond the mean rise on the other labels (first order)',
    default: 'ratio',
  },
  {
    name: 'factor',
    type: 'float',
    positive: true,
    help:
      "masking: a unit leans to a label if its mean score there is ≥ factor × every other label's; --select ratio " +
      'masks those units, --select effect chooses among them',
    default: '2 (ratio), 1.25 (effect)',
  },
  {
    name: 'units',
    type: 'list',
    help: 'masking, --select effect: units masked per unit group and label; several (8,16,32) run one table each',
    default: '⌈units of the group / 16⌉',
  },
  {
    name: 'draws',
    type: 'int',
    positive: true,
    help: 'masking: random masks of the same size per label (the noise floor)',
    default: '5',
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
  {
    name: 'sweep',
    type: 'list',
    help: 'steer: several δ scales (multiples of the largest activation), e.g. --sweep 1,3,10',
  },
  { name: 'prompt', type: 'string', help: 'steer: prompt', default: '"The "' },
  { name: 'tokens', type: 'int', positive: true, help: 'steer: tokens to sample', default: '200' },
  { name: 'temperature', type: 'float', min: 0, help: 'steer: sampling temperature', default: '0.8' },
  {
    name: 'seed',
    type: 'int',
    min: 0,
    max: SEED_MAX,
    help: 'steer: sampling seed (the same for unsteered and steered)',
    default: '1',
  },
  {
    name: 'out',
    type: 'string',
    help: 'HTML file (default: in the (first) run folder); site, code-corpus: output folder',
    default: 'inspect-<subcommand>.html / <run>/site / runs/code-corpus',
  },
  {
    name: 'track',
    type: 'int',
    min: 0,
    help: 'formation: units followed per group (the most specialised at the last snapshot)',
    default: '3',
  },
  {
    name: 'box',
    type: 'bool',
    help: 'site: embed the model and the WASM test box in the unit pages (--no-box leaves them out)',
    default: 'on',
  },
  { name: 'bytes', type: 'int', positive: true, help: 'code-corpus: bytes per language', default: '150000' },
  { name: 'node-modules', type: 'string', help: 'code-corpus: where the packages are', default: 'node_modules' },
  {
    name: 'manifest',
    type: 'string',
    help: 'code-corpus: rebuild exactly the files listed in a sources.txt written earlier',
  },
  {
    name: 'strip-comments',
    type: 'bool',
    help: 'code-corpus: drop the comments of js and ts files, keep their code (default with --manifest: what it says)',
  },
  {
    name: 'languages',
    type: 'list',
    help: 'code-corpus: which of js, ts, json, md (from node_modules), py, wgsl (from this repository at --commit)',
    default: 'js,ts,json,md',
  },
  { name: 'commit', type: 'string', help: 'code-corpus: the commit py and wgsl files are read at', default: 'HEAD' },
];

const USAGE = `Usage: monet inspect <${SUBCOMMANDS.join('|')}> --run runs/<name> [options]

Examples:
  monet inspect units --run runs/interp-monet
  monet inspect unit --run runs/interp-monet --group 0 --unit 3,17
  monet inspect compare --run runs/interp-monet --run runs/interp-topk --run runs/interp-dense
  monet inspect mask --run runs/interp-code-monet
  monet inspect steer --run runs/interp-topk --layer 0 --neuron 13 --sweep 1,3,10
  monet inspect report --run runs/interp-monet
  monet inspect site --run runs/interp-monet          # then open runs/interp-monet/site/index.html
  monet inspect formation --run runs/interp-topk      # across the snapshots of monet train --keep-every
  monet inspect code-corpus --out runs/code-corpus`;

const err = (s: string) => process.stderr.write(`${s}\n`);

function num(f: FlagValues, k: string, d: number): number {
  return (f[k] as number | undefined) ?? d;
}

const backendOf = (f: FlagValues) => ((f.backend as string | undefined) ?? 'wasm') as InspectBackend;

async function oneRun(f: FlagValues, sub: string): Promise<RunInfo> {
  const runs = f.run as string[] | undefined;
  if (runs?.length !== 1)
    throw new FlagError(`monet inspect ${sub}: expected exactly one --run <run folder>, found ${runs?.length ?? 0}`);
  return openRunForInspect(runs[0], backendOf(f), { threads: threadsOf(f) });
}

/** The text files of --data and --label NAME=FILE (null: the run's own data), and each file's label. */
function textFiles(f: FlagValues): { files: string[]; labels: Map<string, string> } | null {
  const files = [...((f.data as string[] | undefined) ?? [])];
  const labels = new Map<string, string>();
  for (const item of (f.label as string[] | undefined) ?? []) {
    const eq = item.indexOf('=');
    if (eq <= 0 || eq === item.length - 1)
      throw new FlagError(`monet inspect: --label expects NAME=FILE, found '${item}'`);
    const file = item.slice(eq + 1);
    labels.set(file, item.slice(0, eq));
    files.push(file);
  }
  return files.length > 0 ? { files, labels } : null;
}

function windowsFor(r: RunInfo, f: FlagValues, split: 'validation' | 'train'): AnalysisText {
  const own = textFiles(f);
  const data = own ? own.files : r.data;
  const probe = runWindows(data, split, r.seqLen, 1, r.vocab, own?.labels);
  const per = num(f, 'windows', Math.max(8, Math.floor(192 / probe.labels.length)));
  return runWindows(data, split, r.seqLen, per, r.vocab, own?.labels);
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

const details = (summary: string, body: string) => `<details><summary>${esc(summary)}</summary>${body}</details>`;

const pct = (x: number) => `${(100 * x).toFixed(x < 0.001 ? 3 : 2)}%`;

/** The unit group named by --group, or the one covering --layer. */
function pickGroup(c: Collected, f: FlagValues, sub: string): UnitGroup {
  const groups = c.groups.map((g) => g.group);
  if (f.group !== undefined) {
    const g = f.group as number;
    if (g >= groups.length)
      throw new FlagError(
        `monet inspect ${sub}: --group ${g} out of range; the model has ${groups.length} unit groups ` +
          `(${groups.map(groupName).join(', ')})`,
      );
    return groups[g];
  }
  if (f.layer === undefined) throw new FlagError(`monet inspect ${sub}: give --group <g> or --layer <l>`);
  try {
    return groupOfLayer(groups, f.layer as number);
  } catch (e) {
    throw new FlagError(`monet inspect ${sub}: ${(e as Error).message}`);
  }
}

// ---------------------------------------------------------------------------------------------------------------

interface Section {
  text: string;
  html: string;
}

function groupHeading(g: UnitGroup): string {
  return `${groupName(g)} — ${g.count.toLocaleString('en-US')} ${g.kind} ${unitNoun(g.kind)}s`;
}

function unitsSection(r: RunInfo, c: Collected, f: FlagValues): Section {
  const minFires = num(f, 'min-fires', 20);
  const top = num(f, 'top', 8);
  const nCtx = num(f, 'contexts', 3);
  const how = (f.sort as string | undefined) ?? 'token';
  const key = sortKey(how);
  const hasTags = c.text.tagSet !== null;
  let text =
    `\n== ${r.name}: most specialised units per unit group (lowest ${how} entropy over each unit's top ${c.M} ` +
    `positions; ≥ ${minFires} firings) ==\ndensity = share of all ${c.positions} analysed positions where the unit ` +
    `fires; the top tokens describe its top ${c.M} positions only\n`;
  let html =
    `<h2>Most specialised units per unit group</h2><p>${c.text.windows} validation windows of ${c.text.S} tokens ` +
    `(${c.positions} positions) over ${c.text.labels.length} labels; engine: ${esc(c.engine)}. Entropies in bits ` +
    `over each unit's top ${c.M} firing positions; <b>density</b> is the share of <i>all</i> positions where the ` +
    `unit fires (the top tokens describe the top ${c.M} positions only). Units that fired fewer than ${minFires} ` +
    `times are not measured. Sorted by ${how} entropy.</p>`;
  for (const st of c.groups) {
    const g = st.group;
    const { measured, tooRare, dead } = summarizeGroup(c, g.group, minFires);
    // ties (many byte-level units have token entropy exactly 0) go to the lower POS entropy, then the more frequent
    const best = [...measured]
      .sort((a, b) => key(a) - key(b) || (a.tagEntropy ?? 0) - (b.tagEntropy ?? 0) || b.fires - a.fires)
      .slice(0, top);
    const counts = `${measured.length} measured, ${tooRare} too rare, ${dead} never fired`;
    text += `\n${groupHeading(g)}: ${counts}\n${unitsTable(g, best, hasTags, c.text)}\n`;
    for (const s of best.slice(0, Math.min(best.length, 3)))
      text += `${unitName(g, s.unit)}:\n${contextsText(c, s, nCtx)}\n`;
    html += `<h3>${esc(groupHeading(g))} (${counts})</h3>`;
    html += htmlTable(
      [
        'unit',
        'density',
        'token H',
        ...(hasTags ? ['POS H'] : []),
        'label H',
        `top tokens (of top ${c.M})`,
        'top words',
        ...(hasTags ? ['top POS'] : []),
        'top labels',
      ],
      best.map((s) => [
        esc(unitName(g, s.unit)),
        pct(s.freq),
        s.tokenEntropy.toFixed(2),
        ...(hasTags ? [s.tagEntropy!.toFixed(2)] : []),
        s.labelEntropy.toFixed(2),
        esc(s.topTokens.map(([b, n]) => `'${showTokenOf(c.text, b)}' ${n}`).join(', ')),
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
    for (const s of best) html += details(`${unitName(g, s.unit)}: top contexts`, htmlContexts(c, s, 12));
  }
  return { text, html };
}

function unitSection(r: RunInfo, c: Collected, f: FlagValues): Section {
  if (f.unit === undefined)
    throw new FlagError('monet inspect unit: --unit <id> is required (with --group or --layer)');
  const g = pickGroup(c, f, 'unit');
  const u = parseUnit(g, f.unit as string);
  const s = summarizeUnit(c, g.group, u);
  const hasTags = c.text.tagSet !== null;
  const lines = [
    `\n== ${r.name}: ${groupName(g)} ${g.kind} unit ${unitName(g, u)} ==`,
    `density: fires at ${s.fires} of ${c.positions} positions (${pct(s.freq)}); largest score ` +
      `${s.maxScore.toFixed(4)}, mean of its top ${s.kept} ${s.meanTop.toFixed(4)}`,
    `entropy over its top ${s.kept} positions: token ${s.tokenEntropy.toFixed(2)} bits` +
      `${hasTags ? `, POS ${s.tagEntropy!.toFixed(2)} bits` : ''}, label ${s.labelEntropy.toFixed(2)} bits`,
    `name: ${neuronName(s, c.text)}`,
    `top labels: ${s.topLabels.map(([t, n]) => `${t} ${n}`).join(', ')}`,
    `top contexts (score, …before[token]after…, label):`,
    contextsText(c, s, num(f, 'contexts', 10)),
  ];
  const html =
    `<h2>${esc(`${groupName(g)} ${g.kind} unit ${unitName(g, u)}`)}</h2>` +
    `<pre>${esc(lines.slice(1, 6).join('\n'))}</pre>${htmlContexts(c, s, num(f, 'contexts', 10) * 2)}`;
  return { text: lines.join('\n'), html };
}

/** --units: one mask size or several (a sweep), each a positive integer. */
function parseUnits(f: FlagValues): number[] | null {
  const raw = f.units as string[] | undefined;
  if (!raw) return null;
  return raw.map((x) => {
    const v = Number(x);
    if (!Number.isInteger(v) || v <= 0 || x.trim() === '')
      throw new FlagError(`monet inspect mask: --units expects positive integers (units per group), found '${x}'`);
    return v;
  });
}

/**
 * Masking, one table per mask size: the ratio rule once, the effect rule once per --units value (the unit effects
 * are computed once and shared). inspect-mask.json holds the result, or {units, results} for several sizes.
 */
function maskSection(r: RunInfo, f: FlagValues): { sec: Section; results: MaskResult[] } {
  const sel = windowsFor(r, f, 'train');
  const ev = windowsFor(r, f, 'validation');
  const select = (f.select as MaskSelect | undefined) ?? 'ratio';
  const sizes = parseUnits(f);
  if (select !== 'effect' && sizes)
    throw new FlagError('monet inspect mask: --units sets the size of --select effect masks; add --select effect');
  const factor = num(f, 'factor', select === 'effect' ? 1.25 : 2);
  const opts = { select, factor, draws: num(f, 'draws', 5), minFires: num(f, 'min-fires', 20) };
  const effects = select === 'effect' ? unitEffects(r.model, sel, err) : undefined;
  const results = (sizes ?? [undefined]).map((units) =>
    maskExperiment(r.model, sel, ev, { ...opts, units, effects, log: err }),
  );
  const json = results.length === 1 ? results[0] : { units: sizes, results };
  writeFileSync(join(r.dir, 'inspect-mask.json'), `${JSON.stringify(json, null, 1)}\n`);
  const secs = results.map((res) => maskResultSection(r, f, res));
  return { sec: { text: secs.map((x) => x.text).join(''), html: secs.map((x) => x.html).join('') }, results };
}

/** The table, summary and charts of one masking result. */
function maskResultSection(r: RunInfo, f: FlagValues, res: MaskResult): Section {
  const what = textFiles(f) ? 'label' : r.data ? 'language' : 'genre';
  const groups = res.groups.join(' + ');
  const count = (k: 'uniform' | 'matched', v: MaskVerdict) => res.rows.filter((x) => x[k].verdict === v).length;
  const summary = (['uniform', 'matched'] as const)
    .map(
      (k) =>
        `${k} random masks: ${count(k, 'specific')} of ${res.rows.length} ${what}s specific (ΔL above the floor and ` +
        `≥ 3× both the other ${what}s' mean ΔL and the ${k} masks' mean ΔL), ${count(k, 'weak')} above the floor ` +
        `with a smaller ratio, ${count(k, 'no-effect')} no effect, ${count(k, 'none')} with no unit selected`,
    )
    .join('; ');
  const units = res.kind === 'monet' ? 'composite experts' : res.kind === 'smoe' ? 'experts' : 'neurons';
  const rule =
    res.select === 'effect'
      ? `--select effect: per unit group the ${res.perGroup!.join(' / ')} ${units} whose removal raises the ` +
        `${what}'s loss most beyond their mean effect on the other ${what}s (first-order attribution ` +
        `score × ∂L/∂score on the float64 reference; only units with a positive difference), among the units ` +
        `whose mean score on the ${what} is ≥ ${res.factor}× their mean score on every other ${what}`
      : `--select ratio (the Monet paper's rule): ${units} whose mean score on the ${what} is ≥ ${res.factor}× ` +
        `their mean score on every other ${what}`;
  const head =
    `${rule}, chosen on ${res.selectionWindows} training windows; loss on ${res.evalWindows} validation windows; ` +
    `${res.draws} random masks of the same size per group under each null (uniform: drawn from the units that ` +
    `scored; matched: each unit replaced by one as busy), floor = their largest |ΔL on the ${what}|; counts per ` +
    `unit group (${groups}); engine ${res.engine}`;
  const size = res.select === 'effect' ? `, --select effect --units ${res.perGroup![0]}` : '';
  const text = `\n== ${r.name}: ${what} masking${size} ==\n${head}\n${maskTable(res)}\n${summary}\n`;
  let html =
    `<h2>${what === 'genre' ? 'Domain' : 'Language'} masking${esc(size)}</h2><p>${esc(head)}. 'max lean' is the ` +
    `largest ` +
    `(mean score on the ${what}) / (largest mean score on another ${what}) of any unit; 'chance lean' is the ` +
    `largest lean a measured unit reaches when the windows' labels are shuffled (20 shuffles): leans at or below ` +
    `it are what chance gives. 'Weight share': the share of the ${what}'s routing weight (the sum over all units ` +
    'of their mean score on it) that the masked units carry, then the same for the uniform and the matched random ' +
    `masks. ΔL in nats/token. ${esc(summary)}.</p>`;
  html += htmlTable(
    [
      what,
      'max lean',
      'chance lean',
      'masked units (per group)',
      'weight share: masked / uniform / matched',
      'base loss',
      'ΔL target',
      'mean ΔL others',
      '÷ others',
      'uniform random masks: ΔL each draw → floor, ÷',
      'matched random masks: ΔL each draw → floor, ÷',
      'verdict (uniform; matched)',
    ],
    res.rows.map((x, g) => [
      esc(x.label),
      leanText(x.maxLean),
      leanText(res.chanceLean[g]),
      `${x.unitsPerGroup.reduce((a, b) => a + b, 0)} (${x.unitsPerGroup.join(' + ')})`,
      shareText(x),
      res.baseLoss[g].toFixed(4),
      deltaText(x.deltaTarget),
      deltaText(x.deltaOthers),
      esc(othersText(x)),
      esc(nullCell(x.uniform)),
      esc(nullCell(x.matched)),
      esc(`${verdictText(x.uniform.verdict)}; ${verdictText(x.matched.verdict)}`),
    ]),
  );
  html += svgGroupedBars(
    res.labels,
    [
      { name: `ΔL on the masked ${what}`, values: res.rows.map((x) => x.deltaTarget) },
      { name: `mean ΔL on the other ${what}s`, values: res.rows.map((x) => x.deltaOthers) },
      { name: `uniform random masks: mean ΔL on the ${what}`, values: res.rows.map((x) => x.uniform.mean) },
      { name: `matched random masks: mean ΔL on the ${what}`, values: res.rows.map((x) => x.matched.mean) },
    ],
    `Loss change after masking each ${what}'s units`,
    'ΔL (nats/token)',
    { name: `noise floor of the uniform masks (±, ${res.draws} draws)`, values: res.rows.map((x) => x.uniform.floor) },
  );
  html += svgHeatmap(
    res.labels,
    res.rows.map((x) => x.deltas),
    `ΔL after masking each ${what}'s units, on every ${what}`,
    'ΔL (nats/token)',
  );
  return { text, html };
}

/** A null's draws, floor and ratio for the HTML table. */
function nullCell(n: NullResult): string {
  if (n.verdict === 'none') return '—';
  return `${n.draws.map(deltaText).join(' ')} → ${nullText(n)}`;
}

function parseSweep(f: FlagValues): number[] | null {
  const raw = f.sweep as string[] | undefined;
  if (!raw) return null;
  return raw.map((x) => {
    const v = Number(x);
    if (!Number.isFinite(v) || v <= 0 || x.trim() === '')
      throw new FlagError(`monet inspect steer: --sweep expects positive numbers (δ scales), found '${x}'`);
    return v;
  });
}

/** Steered text with the part after the first difference from the unsteered sample marked. */
function divergenceText(base: string, steered: string): { text: string; html: string; at: number | null } {
  const at = firstDivergence(base, steered);
  const flat = (s: string) => s.replace(/\n/g, '⏎');
  if (at === null) return { text: `${flat(steered)}  (identical to the unsteered sample)`, html: esc(steered), at };
  const chars = [...steered];
  const pre = chars.slice(0, at).join('');
  const post = chars.slice(at).join('');
  return { text: `${flat(pre)}▶${flat(post)}`, html: `${esc(pre)}<span class="dv">${esc(post)}</span>`, at };
}

function steerSection(r: RunInfo, c: Collected, f: FlagValues): Section {
  const minFires = num(f, 'min-fires', 20);
  let targets: SteerTarget[];
  if (f.neuron !== undefined) {
    const g = pickGroup(c, f, 'steer');
    if (!isNeuronKind(g.kind))
      throw new FlagError(
        `monet inspect steer: ${groupName(g)} has ${g.kind} units; steering needs neurons (dense or TopK layers)`,
      );
    const n = f.neuron as number;
    if (n >= g.count)
      throw new FlagError(`monet inspect steer: --neuron ${n} out of range; ${groupName(g)} has ${g.count} neurons`);
    const s = summarizeUnit(c, g.group, n);
    targets = [{ group: g.group, neuron: n, name: neuronName(s), why: 'given on the command line', summary: s }];
  } else {
    targets = pickSteerTargets(c, num(f, 'count', 2), minFires);
  }
  const o = {
    prompt: (f.prompt as string | undefined) ?? 'The ',
    tokens: num(f, 'tokens', 200),
    temperature: num(f, 'temperature', 0.8),
    seed: num(f, 'seed', 1),
  };
  const sweep = parseSweep(f);
  // δ for every target and scale first: a refused target stops the command before any sampling
  const plans = targets.map((t) => {
    const g = c.groups[t.group].group;
    const scales = f.delta !== undefined ? [null] : (sweep ?? [num(f, 'delta-scale', 3)]);
    const runs = scales.map((scale) => ({
      scale,
      ...steerDelta(t, groupName(g), c.positions, {
        delta: f.delta as number | undefined,
        scale: scale ?? num(f, 'delta-scale', 3),
      }),
    }));
    return { t, g, runs };
  });
  err(`sampling ${o.tokens} tokens per sample …`);
  const base = sampleSteered(r.model, null, o);
  const flat = (s: string) => s.replace(/\n/g, '⏎');
  const how = `prompt ${JSON.stringify(o.prompt)}, ${o.tokens} tokens, temperature ${o.temperature}, seed ${o.seed}`;
  let text = `\n== ${r.name}: neuron steering (${how}) ==\n`;
  let html =
    `<h2>Neuron steering</h2><p>δ is added to the neuron's activation at every position (after TopK, before ` +
    `down_proj; for a TopK 'hidden' dimension, to the residual stream) while sampling; unsteered and steered ` +
    `samples use the same seed, and the part of a steered sample after its first difference from the unsteered ` +
    `one is <span class="dv">highlighted</span> (▶ in the terminal). ${esc(how)}.</p>`;
  text += `unsteered:\n  ${flat(o.prompt + base)}\n`;
  html += `<h3>Unsteered</h3><pre>${esc(o.prompt + base)}</pre>`;
  for (const { t, g, runs } of plans) {
    const picked = `picked by ${t.why}; largest activation ${t.summary.maxScore.toFixed(3)}`;
    text += `\n${groupName(g)} neuron ${unitName(g, t.neuron)} — ${t.name}\n  ${picked}\n`;
    html += `<h3>${esc(`${groupName(g)}, neuron ${unitName(g, t.neuron)}`)}</h3>`;
    html += `<p>${esc(t.name)}<br>${esc(picked)}.</p>`;
    const rows: string[][] = [];
    for (const run of runs) {
      if (run.warning) {
        err(run.warning);
        text += `  ${run.warning}\n`;
        html += `<p class="warn">${esc(run.warning)}</p>`;
      }
      const steered = sampleSteered(r.model, { group: t.group, neuron: t.neuron, delta: run.delta }, o);
      const dv = divergenceText(o.prompt + base, o.prompt + steered);
      const sh = (x: string) => `${(100 * topTokenShare(x, t.summary)).toFixed(1)}%`;
      const share = `${sh(base)} → ${sh(steered)}`;
      const where = dv.at === null ? 'never (identical)' : `at character ${dv.at}`;
      const label =
        run.scale === null
          ? `δ = ${run.delta.toFixed(3)}`
          : `δ = ${run.scale} × ${t.summary.maxScore.toFixed(3)} = ${run.delta.toFixed(3)}`;
      text += `  ${label}: diverges ${where}; share of its top-3 tokens ${share}\n  ${dv.text}\n`;
      rows.push([esc(label), esc(where), esc(share), `<pre>${dv.html}</pre>`]);
    }
    html += htmlTable(['δ', 'diverges from the unsteered sample', 'share of its top-3 tokens', 'steered sample'], rows);
    html += details('its top contexts', htmlContexts(c, t.summary, 12));
  }
  return { text, html };
}

function entropyRows(r: RunInfo, c: Collected, minFires: number): EntropyRow[] {
  return c.groups.map((st) => {
    const { measured } = summarizeGroup(c, st.group.group, minFires);
    return {
      model: r.name,
      kind: r.model.config.ffn,
      group: groupName(st.group),
      layers: st.group.layers,
      unitKind: st.group.kind,
      units: st.group.count,
      measured: measured.length,
      tok: measured.map((s) => s.tokenEntropy),
      tag: c.text.tagSet ? measured.map((s) => s.tagEntropy!) : null,
      label: measured.map((s) => s.labelEntropy),
    };
  });
}

/** Entropy table in HTML with medians and interquartile ranges. */
function entropyHtmlTable(rows: EntropyRow[]): string {
  return htmlTable(
    ['model', 'units of', 'units', 'measured', 'token H median (IQR)', 'POS H median (IQR)', 'label H median (IQR)'],
    rows.map((x) => [
      esc(x.model),
      esc(`${x.group} ${x.unitKind}`),
      String(x.units),
      String(x.measured),
      medianIqr(x.tok),
      x.tag ? medianIqr(x.tag) : '—',
      medianIqr(x.label),
    ]),
  );
}

/** Per layer: which models' units have a lower median token entropy than the dense neurons at that layer. */
function denseComparison(rows: EntropyRow[]): string {
  const L = Math.max(...rows.flatMap((r) => r.layers)) + 1;
  const lines: string[] = [];
  for (let l = 0; l < L; l++) {
    const at = rows.filter((r) => r.layers.includes(l) && r.tok.length > 0);
    const dense = at.filter((r) => r.kind === 'dense');
    if (dense.length !== 1) continue;
    const dm = quantile(dense[0].tok, 0.5);
    const others = at.filter((r) => r.kind !== 'dense');
    if (!others.length) continue;
    const parts = others.map((r) => {
      const m = quantile(r.tok, 0.5);
      const lower = m < dm;
      const rel = lower ? '< dense' : '≥ dense';
      return `${r.model} ${m.toFixed(2)} ${rel} ${dm.toFixed(2)} ${lower ? '(lower)' : '(NOT lower)'}`;
    });
    lines.push(`layer ${l}: ${parts.join('; ')}`);
  }
  return lines.length ? `median token entropy vs the dense model, per layer:\n${lines.join('\n')}\n` : '';
}

/** Histogram panels, one per layer; the series are the runs' unit groups that cover that layer. */
function perLayerPanels(
  rows: EntropyRow[],
  pick: (r: EntropyRow) => number[] | null,
): Array<{ title: string; series: Array<{ name: string; values: number[] }> }> {
  const L = Math.max(...rows.flatMap((r) => r.layers)) + 1;
  const panels = [];
  for (let l = 0; l < L; l++) {
    const series = rows
      .filter((r) => r.layers.includes(l) && pick(r))
      .map((r) => ({ name: `${r.model} (${r.unitKind})`, values: pick(r)! }));
    if (series.length) panels.push({ title: `layer ${l}`, series });
  }
  return panels;
}

/** Histogram panels, one per unit group of a single run. */
function perGroupPanels(rows: EntropyRow[], pick: (r: EntropyRow) => number[] | null) {
  return rows
    .filter((r) => pick(r))
    .map((r) => ({ title: r.group, series: [{ name: `${r.model} (${r.unitKind})`, values: pick(r)! }] }));
}

/** Entropy histograms: per layer when comparing runs, per unit group for one run. */
function entropyCharts(rows: EntropyRow[], hasTags: boolean, by: 'layer' | 'group'): string {
  const panels = by === 'layer' ? perLayerPanels : perGroupPanels;
  const per = by === 'layer' ? 'per layer' : 'per unit group';
  let html = svgHistogramPanels(
    panels(rows, (x) => x.tok),
    `Token entropy of units, ${per}`,
    'bits',
  );
  if (hasTags)
    html += svgHistogramPanels(
      panels(rows, (x) => x.tag),
      `POS-tag entropy of units, ${per}`,
      'bits',
    );
  html += svgHistogramPanels(
    panels(rows, (x) => x.label),
    `Label entropy of units, ${per}`,
    'bits',
  );
  return html;
}

function compareSection(runs: RunInfo[], f: FlagValues): Section {
  const minFires = num(f, 'min-fires', 20);
  const rows: EntropyRow[] = [];
  let M = 0;
  let hasTags = false;
  for (const r of runs) {
    const c = collectRun(r, f);
    M = c.M;
    hasTags = c.text.tagSet !== null;
    rows.push(...entropyRows(r, c, minFires));
  }
  const verdict = denseComparison(rows);
  const text =
    `\n== entropy of each unit's top ${M} positions (bits; median and interquartile range over the units that ` +
    `fired ≥ ${minFires} times) ==\n${entropyTable(rows)}\n${verdict}`;
  let html =
    `<h2>Specialisation: entropy distributions</h2><p>For every unit, the entropy (bits) of the byte tokens, POS ` +
    `tags and labels at its top ${M} firing positions on the validation windows; lower = more specialised. Units ` +
    `that fired fewer than ${minFires} times are not measured. Median (interquartile range) per unit group; one ` +
    `chart panel per layer (a Monet router group appears in each layer it covers).</p>`;
  html += entropyHtmlTable(rows);
  if (verdict) html += `<pre>${esc(verdict)}</pre>`;
  html += entropyCharts(rows, hasTags, 'layer');
  return { text, html };
}

/** The entropy distribution of one run (the report's version of compare). */
function entropySectionSingle(r: RunInfo, c: Collected, minFires: number): Section {
  const rows = entropyRows(r, c, minFires);
  const text = `\n== ${r.name}: entropy of each unit's top ${c.M} positions ==\n${entropyTable(rows)}\n`;
  const charts = entropyCharts(rows, c.text.tagSet !== null, 'group');
  const html = `<h2>Entropy distributions</h2>${entropyHtmlTable(rows)}${charts}`;
  return { text, html };
}

function formationText(r: FormationResult): Section {
  const names = formationGroupNames(r);
  const iqr = (x: [number, number, number]) =>
    Number.isNaN(x[1]) ? '—' : `${x[1].toFixed(2)} (${x[0].toFixed(2)}–${x[2].toFixed(2)})`;
  const rows = r.steps.map((step, k) => [
    String(step),
    r.loss[k].toFixed(4),
    ...r.perStep[k].flatMap((g) => [`${g.measured}`, iqr(g.token)]),
  ]);
  const head = ['step', 'val loss', ...names.flatMap((n) => [`${n}: measured`, 'token H median (IQR)'])];
  let text =
    `\n== formation: ${r.steps.length} snapshots, units measured if they fired ≥ ${r.minFires} times, entropies ` +
    `over each unit's top ${r.M} positions; engine ${r.engine} ==\n${table(head, rows)}\n`;
  for (const [gi, list] of r.tracked.entries()) {
    if (!list.length) continue;
    text += `\n${names[gi]}: token entropy of its most specialised units at the last step, at every snapshot\n`;
    for (const t of list) {
      const path = t.token.map((v) => (v === null ? '—' : v.toFixed(2))).join(' → ');
      text += `  ${unitName(r.groups[gi], t.unit)} ('${t.top}'): ${path}\n`;
    }
  }
  let html =
    `<h2>Formation over training</h2><p>The same ${r.M === 0 ? '' : ''}validation windows through every snapshot ` +
    `of the run (monet train --keep-every); per unit group, the median token entropy (bits) of the units that fired ` +
    `≥ ${r.minFires} times, over each unit's top ${r.M} positions; engine ${esc(r.engine)}.</p>`;
  html += htmlTable(
    head,
    rows.map((row) => row.map(esc)),
  );
  html += svgLines(
    r.steps,
    names.map((n, gi) => ({ name: `${n} (median)`, values: r.perStep.map((s) => s[gi].token[1]) })),
    'Median token entropy of the measured units, per unit group',
    { x: 'training step', y: 'bits' },
  );
  html += svgLines(
    r.steps,
    names.map((n, gi) => ({ name: n, values: r.perStep.map((s) => s[gi].measured) })),
    'Units that fired at least min-fires times',
    { x: 'training step', y: 'units' },
  );
  const series = r.tracked.flatMap((list, gi) =>
    list.map((t) => ({ name: `${names[gi]} ${unitName(r.groups[gi], t.unit)} '${t.top}'`, values: t.token })),
  );
  if (series.length)
    html += svgLines(r.steps, series, 'Token entropy of the most specialised units at the end', {
      x: 'training step',
      y: 'bits',
    });
  html += svgLines(r.steps, [{ name: 'validation loss', values: r.loss }], 'Loss on the analysis windows', {
    x: 'training step',
    y: 'nats/token',
  });
  return { text, html };
}

async function formationCommand(f: FlagValues, args: string[]): Promise<number> {
  const runs = f.run as string[] | undefined;
  if (runs?.length !== 1)
    throw new FlagError(`monet inspect formation: expected exactly one --run <run folder>, found ${runs?.length ?? 0}`);
  const dir = runs[0];
  const snapshots = listSnapshots(dir);
  const { options } = readRunOptions(dir);
  const probe = readConfig(snapshots[snapshots.length - 1].dir).config;
  const seqLen = Math.min(options.seqLen, probe.max_position_embeddings);
  const probeText = runWindows(options.data, 'validation', seqLen, 1);
  const per = num(f, 'windows', Math.max(8, Math.floor(192 / probeText.labels.length)));
  const text = runWindows(options.data, 'validation', seqLen, per);
  err(
    `${dir}: ${snapshots.length} snapshots (steps ${snapshots.map((s) => s.step).join(', ')}); ` +
      `${text.windows} windows …`,
  );
  const dev = backendOf(f) === 'wasm' ? await createWasmDevice() : null;
  const res = formation(snapshots, options, text, dev, {
    M: num(f, 'top-m', 100),
    minFires: num(f, 'min-fires', 20),
    track: num(f, 'track', 3),
    log: err,
  });
  const sec = formationText(res);
  console.log(sec.text);
  const name = dir.replace(/\/+$/, '').split('/').pop() ?? dir;
  const made = `<p class="note">made by: ${esc(['monet', 'inspect', ...args].join(' '))}</p>`;
  writeHtml(
    (f.out as string | undefined) ?? join(dir, 'inspect-formation.html'),
    `monet inspect formation: ${name}`,
    sec.html + made,
  );
  return 0;
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
        {
          stripComments: f['strip-comments'] as boolean | undefined,
          languages: f.languages as string[] | undefined,
          commit: f.commit as string | undefined,
        },
      );
      for (const x of files) console.log(`${x.language.padEnd(5)} ${x.path}  ${x.bytes} bytes from ${x.sources} files`);
      console.log(`sources: ${join(out, 'sources.txt')} (rebuild the same files later with --manifest)`);
      console.log(`\ntrain on it with: monet train --data ${files.map((x) => x.path).join(' ')} …`);
      return 0;
    }
    if (sub === 'compare') {
      const dirs = f.run as string[] | undefined;
      if (!dirs || dirs.length < 2) throw new FlagError('monet inspect compare: give at least two --run folders');
      const runs: RunInfo[] = [];
      for (const d of dirs) runs.push(await openRunForInspect(d, backendOf(f), { threads: threadsOf(f) }));
      const sec = compareSection(runs, f);
      console.log(sec.text);
      writeHtml(
        (f.out as string | undefined) ?? join(runs[0].dir, 'inspect-compare.html'),
        `Specialisation: ${runs.map((r) => r.name).join(' vs ')}`,
        sec.html,
      );
      return 0;
    }
    if (sub === 'formation') return await formationCommand(f, args);
    const r = await oneRun(f, sub);
    const out = (f.out as string | undefined) ?? join(r.dir, `inspect-${sub}.html`);
    const title = `monet inspect ${sub}: ${r.name} (${r.model.config.ffn}, step ${r.step})`;
    if (sub === 'mask') {
      const { sec } = maskSection(r, f);
      console.log(sec.text);
      writeHtml(out, title, sec.html);
      return 0;
    }
    const c = collectRun(r, f);
    if (sub === 'site') {
      const dir = (f.out as string | undefined) ?? join(r.dir, 'site');
      const res = await writeSite(r, c, {
        out: dir,
        contexts: num(f, 'contexts', 12),
        minFires: num(f, 'min-fires', 20),
        radius: 64,
        box: (f.box as boolean | undefined) ?? true,
        command: ['monet', 'inspect', ...args].join(' '),
        log: err,
      });
      console.log(`site: ${res.pages} pages (${(res.bytes / 1e6).toFixed(1)} MB) in ${res.out}`);
      console.log(`open ${join(res.out, 'index.html')} in a browser (no server needed)`);
      return 0;
    }
    const secs: Section[] = [];
    if (sub === 'units' || sub === 'report') secs.push(unitsSection(r, c, f));
    if (sub === 'unit') secs.push(unitSection(r, c, f));
    if (sub === 'steer') secs.push(steerSection(r, c, f));
    if (sub === 'report') {
      secs.push(maskSection(r, f).sec);
      if (c.groups.some((s) => isNeuronKind(s.group.kind))) secs.push(steerSection(r, c, f));
      secs.push(entropySectionSingle(r, c, num(f, 'min-fires', 20)));
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
