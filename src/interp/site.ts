// `monet inspect site`: a static, browsable site of every unit of a run, opened straight from disk (file://), with
// nothing fetched from the network.
//
//   index.html                  run facts; per unit group a summary (units, measured, never fired, densities,
//                               entropies with interquartile ranges, chance lean) and a table of every unit that
//                               fired, with search and sortable columns (density, token / POS / label entropy, lean)
//   u/<group>/<unit>.html       one page per unit that fired: density, activation histogram, entropies, label
//                               distribution against the base rate with its lean and the chance lean, the next bytes
//                               it promotes and suppresses (direct logit attribution, unit-detail.ts), its top
//                               contexts with every byte of ±radius shaded by the unit's score, prev / next, and a box
//                               that runs the unit on typed text in the page (WASM)
//   assets/site.css, site.js    style; sorting, search and the box's glue (plain script, no modules: file:// pages)
//   assets/box.js               src/interp/site-box.ts bundled for browsers (esbuild)
//   assets/model.js             the checkpoint and the WASM kernels as base64, loaded only when the box is used
//
// Sizes: G labels, S window length, U units of a group, V vocabulary.

import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WASM_BUILD_DIR } from '../backend/wasm/node.ts';
import { nodeStubPlugin } from '../browser-bundle.ts';
import { paramBreakdown, formatCount } from '../train/presets.ts';
import { esc, svgHistogram, svgShareBars } from './charts.ts';
import { lossByLabel, meanScores, summarizeUnit, type Collected, type UnitSummary } from './collect.ts';
import { showToken } from './data.ts';
import { chanceLean } from './mask.ts';
import { medianIqr } from './report.ts';
import type { RunInfo } from './run-info.ts';
import type { SiteModelData } from './site-box.ts';
import { SITE_CSS, SITE_JS } from './site-assets.ts';
import { quantile, unitLeans } from './stats.ts';
import { neuronName } from './steer.ts';
import { topEffects, unitDetails, type UnitContext, type UnitDetail } from './unit-detail.ts';
import { groupName, groupSlug, unitName, unitNoun, type UnitGroup } from './units.ts';

export interface SiteOptions {
  out: string;
  contexts: number; // top contexts per unit page
  minFires: number; // units that fired fewer times are "too rare" (entropies over few positions)
  radius: number; // bytes of context on each side of a top position
  box: boolean; // embed the model and the WASM test box
  command: string; // the command line that made the site, printed on the index
  log?: (line: string) => void;
}

export interface SiteResult {
  out: string;
  pages: number;
  bytes: number;
}

const pct = (x: number) => `${(100 * x).toFixed(x < 0.001 ? 3 : x < 0.1 ? 2 : 1)}%`;
const percentIqr = (v: number[]) => {
  const q = (p: number) => `${(100 * quantile(v, p)).toFixed(2)}%`;
  return `${q(0.5)} (${q(0.25)}–${q(0.75)})`;
};
const leanText = (v: number) => (v === Infinity ? 'only' : v > 0 ? `${v.toFixed(2)}×` : '—');

function page(title: string, depth: number, body: string, scripts = ''): string {
  const up = '../'.repeat(depth);
  return (
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>` +
    `<link rel="icon" href="data:,"><link rel="stylesheet" href="${up}assets/site.css"></head>` +
    `<body>${body}<script src="${up}assets/site.js"></script>${scripts}</body></html>\n`
  );
}

/** Printable pieces of a byte string: one per UTF-8 character (a valid multi-byte sequence stays together). */
export function byteRuns(bytes: ArrayLike<number>): Array<{ text: string; from: number; to: number }> {
  const out: Array<{ text: string; from: number; to: number }> = [];
  const dec = new TextDecoder('utf-8', { fatal: true });
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i];
    const len = b >= 0xf0 && b < 0xf8 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    let text: string | null = null;
    if (len > 1 && i + len <= bytes.length) {
      try {
        text = dec.decode(Uint8Array.from(Array.from({ length: len }, (_, k) => bytes[i + k])));
      } catch {
        text = null;
      }
    }
    if (text !== null) {
      out.push({ text, from: i, to: i + len });
      i += len;
    } else {
      out.push({ text: b === 32 ? ' ' : b === 10 ? '⏎' : b === 9 ? '⇥' : showToken(b), from: i, to: i + 1 });
      i++;
    }
  }
  return out;
}

/** Shading class of a score relative to the unit's largest |score|: s1…s9 (positive), n1…n9 (negative). */
function shade(v: number, max: number): string {
  if (v === 0 || !(max > 0)) return '';
  const k = Math.max(1, Math.min(9, Math.round((9 * Math.abs(v)) / max)));
  return `${v > 0 ? 's' : 'n'}${k}`;
}

/** One top context: the window's bytes within ±radius of the position, each shaded by the unit's score there. */
function contextHtml(c: Collected, ctx: UnitContext, radius: number, max: number): string {
  const { S } = c.text;
  const s = ctx.pos % S;
  const a = Math.max(0, s - radius);
  const b = Math.min(S, s + radius + 1);
  const bytes = c.text.tokens.subarray(ctx.window * S + a, ctx.window * S + b);
  let html = a > 0 ? '…' : '';
  for (const run of byteRuns(bytes)) {
    let v = 0;
    for (let k = run.from; k < run.to; k++) if (Math.abs(ctx.scores[a + k]) > Math.abs(v)) v = ctx.scores[a + k];
    const cls = [shade(v, max), a + run.from === s ? 'at' : ''].filter(Boolean).join(' ');
    const title = v !== 0 ? ` title="${v.toPrecision(3)}"` : '';
    html += cls || title ? `<b class="${cls}"${title}>${esc(run.text)}</b>` : esc(run.text);
  }
  if (b < S) html += '…';
  const label = c.text.labels[c.text.windowLabel[ctx.window]];
  const sc = `<span class="sc">${ctx.score.toFixed(3)}</span>`;
  return `<div class="ctx">${sc}<code>${html}</code><span class="lab">${esc(label)}</span></div>`;
}

interface GroupInfo {
  group: UnitGroup;
  slug: string;
  pages: number[]; // units with a page (fired at least once), ascending
  lean: Float64Array; // (U) lean towards the best label
  leanLabel: Int32Array; // (U)
  chance: number; // largest lean of a measured unit under label shuffles
  summaries: Map<number, UnitSummary>;
}

function groupInfos(c: Collected, minFires: number): GroupInfo[] {
  const G = c.text.labels.length;
  const chance = G > 1 ? chanceLean(c, minFires, 20) : c.groups.map(() => [0]);
  return c.groups.map((st, gi) => {
    const pages: number[] = [];
    const summaries = new Map<number, UnitSummary>();
    for (let u = 0; u < st.group.count; u++) {
      if (!st.top[u]) continue;
      pages.push(u);
      summaries.set(u, summarizeUnit(c, gi, u));
    }
    const { lean, label } = unitLeans(meanScores(c, gi), st.group.count, G);
    return {
      group: st.group,
      slug: groupSlug(st.group),
      pages,
      lean,
      leanLabel: label,
      chance: Math.max(0, ...chance[gi]),
      summaries,
    };
  });
}

function unitHref(g: GroupInfo, u: number, depth: number): string {
  return `${'../'.repeat(depth)}u/${g.slug}/${u}.html`;
}

function runFacts(r: RunInfo, c: Collected, o: SiteOptions): string {
  const cfg = r.model.config;
  const b = paramBreakdown(cfg);
  const loss = lossByLabel(c.text, c.nll);
  const meanLoss = loss.reduce((a, x) => a + x, 0) / loss.length;
  const rows: Array<[string, string]> = [
    ['run folder', r.dir],
    ['model', `${cfg.ffn}, ${cfg.num_hidden_layers} layers × ${cfg.hidden_size}, ${formatCount(b.total)} parameters`],
    ['checkpoint', `step ${r.step}${cfg.ffn === 'topk' ? `, TopK α = ${r.alpha}` : ''}`],
    [
      'analysis text',
      `${c.text.windows} validation windows of ${c.text.S} bytes (${c.positions.toLocaleString('en-US')} positions), ` +
        `${c.text.windows / c.text.labels.length} per label, ${c.text.labels.length} labels`,
    ],
    ['validation loss on these windows', `${meanLoss.toFixed(4)} nats/byte (mean over labels)`],
    ['engine', c.engine],
    ['per unit', `top ${c.M} positions kept; entropies measured for units that fired ≥ ${o.minFires} times`],
    ['made by', o.command],
  ];
  return factsTable(rows);
}

function factsTable(rows: Array<[string, string]>): string {
  const tr = ([k, v]: [string, string]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`;
  return `<table class="facts">${rows.map(tr).join('')}</table>`;
}

function groupSummaryTable(c: Collected, infos: GroupInfo[], minFires: number): string {
  const head = [
    'unit group',
    'units',
    'fired',
    `measured (≥ ${minFires})`,
    'never fired',
    'density median (IQR)',
    'fires at > 50%',
    'token H',
    'POS H',
    'label H',
    'chance lean',
  ];
  const rows = infos.map((g) => {
    const st = c.groups[g.group.group];
    const dens = g.pages.map((u) => st.fires[u] / c.positions);
    const measured = [...g.summaries.values()].filter((s) => s.fires >= minFires);
    const pick = (f: (s: UnitSummary) => number | null) => medianIqr(measured.map(f).filter((x) => x !== null));
    return [
      `<a href="#${g.slug}">${esc(groupName(g.group))}</a>`,
      `${g.group.count.toLocaleString('en-US')} ${esc(g.group.kind)} ${esc(unitNoun(g.group.kind))}s`,
      String(g.pages.length),
      String(measured.length),
      String(g.group.count - g.pages.length),
      dens.length ? percentIqr(dens) : '—',
      String(dens.filter((x) => x > 0.5).length),
      pick((s) => s.tokenEntropy),
      c.text.tagSet ? pick((s) => s.tagEntropy) : '—',
      pick((s) => s.labelEntropy),
      leanText(g.chance),
    ];
  });
  return (
    `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead>` +
    `<tbody>${rows.map((r) => `<tr>${r.map((x) => `<td>${x}</td>`).join('')}</tr>`).join('')}</tbody></table>`
  );
}

const tokens = (s: UnitSummary) =>
  s.topTokens
    .slice(0, 3)
    .map(([b, n]) => `${showToken(b)} ${Math.round((100 * n) / Math.max(1, s.kept))}%`)
    .join(', ');

function unitsTable(c: Collected, g: GroupInfo, minFires: number): string {
  const hasTags = c.text.tagSet !== null;
  const cols: Array<[string, 'num' | 'text']> = [
    ['unit', 'num'],
    ['density', 'num'],
    ['max score', 'num'],
    ['token H', 'num'],
    ...(hasTags ? ([['POS H', 'num']] as Array<[string, 'num']>) : []),
    ['label H', 'num'],
    ['lean', 'num'],
    ['towards', 'text'],
    [`top tokens (of top ${c.M})`, 'text'],
    ['top words', 'text'],
  ];
  const head = cols.map(([h, t], i) => `<th data-col="${i}" data-type="${t}" title="sort">${esc(h)}</th>`).join('');
  const td = (sort: number | string, html: string) => `<td data-s="${esc(String(sort))}">${html}</td>`;
  const f2 = (x: number | null, rare: boolean) => (x === null ? '—' : `${x.toFixed(2)}${rare ? '*' : ''}`);
  const rows = g.pages.map((u) => {
    const s = g.summaries.get(u)!;
    const rare = s.fires < minFires;
    const lean = g.lean[u];
    return (
      `<tr>${td(u, `<a href="${unitHref(g, u, 0)}">${esc(unitName(g.group, u))}</a>`)}` +
      td(s.freq, pct(s.freq)) +
      td(s.maxScore, s.maxScore.toPrecision(3)) +
      td(s.tokenEntropy, f2(s.tokenEntropy, rare)) +
      (hasTags ? td(s.tagEntropy ?? 0, f2(s.tagEntropy, rare)) : '') +
      td(s.labelEntropy, f2(s.labelEntropy, rare)) +
      td(lean === Infinity ? 1e9 : lean, leanText(lean)) +
      td(
        g.leanLabel[u] >= 0 ? c.text.labels[g.leanLabel[u]] : '',
        esc(g.leanLabel[u] >= 0 ? c.text.labels[g.leanLabel[u]] : '—'),
      ) +
      td(tokens(s), esc(tokens(s))) +
      td(
        s.topWords.map(([w]) => w).join(' '),
        esc(
          s.topWords
            .slice(0, 3)
            .map(([w]) => w)
            .join(', '),
        ),
      ) +
      '</tr>'
    );
  });
  return (
    `<p><input type="search" class="filter" data-table="t-${g.slug}" size="48" ` +
    `placeholder="search units of ${esc(groupName(g.group))} (token, word, label…)"> ` +
    `<span class="count" id="n-${g.slug}">${g.pages.length} units</span></p>` +
    `<table class="units" id="t-${g.slug}"><thead><tr>${head}</tr></thead><tbody>${rows.join('')}</tbody></table>`
  );
}

function indexPage(r: RunInfo, c: Collected, infos: GroupInfo[], o: SiteOptions): string {
  let body = `<h1>${esc(r.name)}: every unit</h1>${runFacts(r, c, o)}`;
  body +=
    '<p class="note">Density is the share of <i>all</i> analysed positions where a unit fires; its top tokens, ' +
    `words and entropies describe its top ${c.M} positions only. <b>Lean</b>: the unit's mean score on its best ` +
    'label ÷ its largest mean score on any other label; <b>chance lean</b>: the largest lean any measured unit of ' +
    'the group ' +
    "reaches when the windows' labels are shuffled (20 shuffles) — leans at or below it are what chance gives with " +
    `this much text. * = fired fewer than ${o.minFires} times: entropies over few positions. Click a column to ` +
    'sort.</p>';
  body += `<h2>Unit groups</h2>${groupSummaryTable(c, infos, o.minFires)}`;
  for (const g of infos) {
    const count = g.group.count.toLocaleString('en-US');
    const what = `${groupName(g.group)}: ${count} ${g.group.kind} ${unitNoun(g.group.kind)}s`;
    body += `<h2 id="${g.slug}">${esc(what)}</h2>`;
    const dead = g.group.count - g.pages.length;
    body += `<p>Chance lean ${leanText(g.chance)}; ${dead} units never fired on these windows and have no page.</p>`;
    body += unitsTable(c, g, o.minFires);
  }
  return page(`${r.name}: units`, 0, body);
}

function effectTable(effect: Float64Array, k: number, seen: Set<number>): string {
  const { promoted, suppressed } = topEffects(effect, k, seen);
  const row = ([b, v]: [number, number]) =>
    `<tr><td><code>${esc(showToken(b))}</code></td><td>${v >= 0 ? '+' : ''}${v.toFixed(3)}</td></tr>`;
  const t = (title: string, list: Array<[number, number]>) =>
    `<table class="eff"><thead><tr><th colspan="2">${title}</th></tr></thead>` +
    `<tbody>${list.map(row).join('')}</tbody></table>`;
  return `<div class="effects">${t('promoted next bytes', promoted)}${t('suppressed next bytes', suppressed)}</div>`;
}

function unitPage(r: RunInfo, c: Collected, g: GroupInfo, u: number, det: UnitDetail, o: SiteOptions): string {
  const st = c.groups[g.group.group];
  const s = g.summaries.get(u)!;
  const name = unitName(g.group, u);
  const at = g.pages.indexOf(u);
  const prev = at > 0 ? g.pages[at - 1] : null;
  const next = at < g.pages.length - 1 ? g.pages[at + 1] : null;
  const link = (v: number | null, rel: string, text: string) =>
    v === null ? `<span class="off">${text}</span>` : `<a rel="${rel}" href="${v}.html">${text}</a>`;
  const other = (v: number | null) => (v === null ? '' : esc(unitName(g.group, v)));
  const pn = `${link(prev, 'prev', `← ${other(prev)}`)} · ${link(next, 'next', `${other(next)} →`)}`;
  const nav =
    `<nav><a href="../../index.html">index</a> › ` +
    `<a href="../../index.html#${g.slug}">${esc(groupName(g.group))}</a> › ${esc(name)} ` +
    `<span class="pn">${pn}</span></nav>`;
  const rare = s.fires < o.minFires;
  let body = `${nav}<h1>${esc(r.name)} · ${esc(groupName(g.group))} · ${esc(unitNoun(g.group.kind))} ${esc(name)}</h1>`;
  const facts: Array<[string, string]> = [
    [
      'density',
      `fires at ${s.fires.toLocaleString('en-US')} of ${c.positions.toLocaleString('en-US')} positions ` +
        `(${pct(s.freq)})`,
    ],
    ['largest score', `${s.maxScore.toPrecision(4)} (mean of its top ${s.kept}: ${s.meanTop.toPrecision(4)})`],
    [
      `entropy of its top ${s.kept} positions`,
      `token ${s.tokenEntropy.toFixed(2)} bits` +
        (s.tagEntropy !== null ? `, POS ${s.tagEntropy.toFixed(2)} bits` : '') +
        `, label ${s.labelEntropy.toFixed(2)} bits` +
        (rare ? ` (fired fewer than ${o.minFires} times: few positions)` : ''),
    ],
    ['what it fires on', neuronName(s)],
    [
      'lean',
      g.leanLabel[u] >= 0
        ? `${leanText(g.lean[u])} towards ${c.text.labels[g.leanLabel[u]]} ` +
          `(chance lean in this group: ${leanText(g.chance)})`
        : '—',
    ],
  ];
  body += factsTable(facts);
  body += '<div class="charts">';
  body += svgHistogram(Array.from(det.hist.counts), det.hist.lo, det.hist.hi, 'Scores where it fires', {
    x: 'score',
    y: 'positions',
  });
  const G = c.text.labels.length;
  const fired = Array.from({ length: G }, (_, k) => st.firesByLabel[u * G + k] / Math.max(1, s.fires));
  const base = Array.from(c.labelPositions, (n) => n / c.positions);
  body += svgShareBars(c.text.labels, fired, base, 'Where it fires, by label', {
    observed: 'share of its firings',
    base: 'share of all positions',
  });
  body += '</div>';
  if (det.logitEffect) {
    body +=
      '<h2>Next bytes it promotes and suppresses</h2><p class="note">Direct logit attribution: the unit\'s mean ' +
      `contribution to the residual stream at its top ${s.kept} positions (summed over the layers of its group), ` +
      "through the final RMSNorm's weights and the unembedding, minus its mean over all bytes. The layers after " +
      "the unit and the norm's 1/rms factor are left out: this is its direct path to the logits only. Ranked among " +
      'the byte values that occur in the analysis text.</p>';
    body += effectTable(det.logitEffect, 10, new Set(c.text.tokens));
  }
  body +=
    `<h2>Top ${det.contexts.length} contexts</h2><p class="note">±${o.radius} bytes of the analysis window around ` +
    "each top position (outlined); every byte shaded by the unit's score there (orange positive, blue negative, " +
    'relative to its largest score; hover for the value).</p>';
  const max = Math.max(...det.contexts.flatMap((x) => Array.from(x.scores, Math.abs)), s.maxScore);
  body += det.contexts.map((x) => contextHtml(c, x, o.radius, max)).join('');
  if (o.box) {
    const first = det.contexts[0];
    const sample = first
      ? new TextDecoder().decode(
          Uint8Array.from(c.text.tokens.subarray(first.window * c.text.S, (first.window + 1) * c.text.S)),
        )
      : '';
    body +=
      '<h2>Test it on your own text</h2>' +
      `<form id="box" data-group="${g.group.group}" data-unit="${u}" data-max="${s.maxScore}">` +
      `<textarea id="box-text" rows="3" cols="90">${esc(sample)}</textarea><br>` +
      '<button type="submit">Run the model on this text</button> <span id="box-status" class="note">runs in this ' +
      `page on WASM; the first run loads the model (${r.model.lm.maxPos} bytes of context)</span></form>` +
      '<div id="box-out" class="ctx"></div>';
  }
  body += `<p class="foot">${nav}</p>`;
  return page(`${r.name} · ${groupName(g.group)} · ${name}`, 2, body);
}

/**
 * The test box's script: site-box.ts bundled for browsers. The installed package ships it prebuilt
 * (site-box.iife.js beside this file, made by scripts/build-dist.mjs); a source checkout bundles it with esbuild.
 */
async function bundleBox(): Promise<string> {
  const prebuilt = new URL('./site-box.iife.js', import.meta.url);
  if (existsSync(prebuilt)) return readFileSync(prebuilt, 'utf8');
  const { build } = await import('esbuild');
  const entry = new URL('./site-box.ts', import.meta.url).pathname;
  const res = await build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    format: 'iife',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    logLevel: 'silent',
    plugins: [nodeStubPlugin()],
    external: ['webgpu'],
  });
  return res.outputFiles[0].text;
}

function modelScript(r: RunInfo): string {
  const data: SiteModelData = {
    name: r.name,
    config: readFileSync(join(r.dir, 'config.json'), 'utf8'),
    model: readFileSync(join(r.dir, 'model.safetensors')).toString('base64'),
    wasm: readFileSync(join(WASM_BUILD_DIR, 'kernels.wasm')).toString('base64'),
    alpha: r.alpha,
  };
  return `window.MONET_SITE_MODEL = ${JSON.stringify(data)};\n`;
}

/** Write the site for a run whose analysis pass is `c` into o.out (emptied first). */
export async function writeSite(r: RunInfo, c: Collected, o: SiteOptions): Promise<SiteResult> {
  o.log?.('unit pages: second pass (score histograms, context shading, logit effects) …');
  const details = unitDetails(r.model, c, o.contexts);
  const infos = groupInfos(c, o.minFires);
  rmSync(o.out, { recursive: true, force: true });
  mkdirSync(join(o.out, 'assets'), { recursive: true });
  let bytes = 0;
  let pages = 0;
  const write = (rel: string, text: string) => {
    writeFileSync(join(o.out, rel), text);
    bytes += Buffer.byteLength(text);
  };
  write('assets/site.css', SITE_CSS);
  write('assets/site.js', SITE_JS);
  if (o.box) {
    o.log?.('bundling the test box …');
    write('assets/box.js', await bundleBox());
    write('assets/model.js', modelScript(r));
  }
  write('index.html', indexPage(r, c, infos, o));
  pages++;
  for (const g of infos) {
    mkdirSync(join(o.out, 'u', g.slug), { recursive: true });
    for (const u of g.pages) {
      write(`u/${g.slug}/${u}.html`, unitPage(r, c, g, u, details[g.group.group][u]!, o));
      pages++;
    }
  }
  return { out: o.out, pages, bytes };
}
