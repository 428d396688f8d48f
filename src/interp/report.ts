// Terminal tables and a self-contained HTML report (inline SVG charts, inline CSS, no scripts, no network).

import { contextOf, showToken } from './data.ts';
import type { Collected, UnitSummary } from './collect.ts';
import type { MaskResult } from './mask.ts';
import { unitName, type LayerUnits } from './model.ts';
import { quantile } from './stats.ts';

// ---------------------------------------------------------------------------------------------------------------
// Terminal

export function table(head: string[], rows: string[][], align: Array<'l' | 'r'> = []): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => [...r[i]].length)));
  const cell = (s: string, i: number) =>
    align[i] === 'r' ? s.padStart(w[i] + s.length - [...s].length) : s.padEnd(w[i] + s.length - [...s].length);
  const line = (r: string[]) => r.map(cell).join('  ').trimEnd();
  return [line(head), w.map((n) => '─'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}

const pct = (x: number) => `${(100 * x).toFixed(x < 0.001 ? 3 : 1)}%`;
const f2 = (x: number | null) => (x === null || Number.isNaN(x) ? '—' : x.toFixed(2));
const f4 = (x: number) => (x >= 0 ? '+' : '') + x.toFixed(5);
const tokList = (s: UnitSummary) =>
  s.topTokens
    .slice(0, 3)
    .map(([b, n]) => `${showToken(b)}:${n}`)
    .join(' ');

export function unitsTable(lu: LayerUnits, list: UnitSummary[], hasTags: boolean): string {
  const head = [
    'unit',
    'fires',
    'tok H',
    ...(hasTags ? ['POS H'] : []),
    'label H',
    'top tokens (of kept)',
    'top words',
    ...(hasTags ? ['top POS'] : []),
  ];
  const rows = list.map((s) => [
    unitName(lu, s.unit),
    pct(s.freq),
    f2(s.tokenEntropy),
    ...(hasTags ? [f2(s.tagEntropy)] : []),
    f2(s.labelEntropy),
    tokList(s),
    s.topWords
      .slice(0, 3)
      .map(([w]) => w)
      .join(' '),
    ...(hasTags
      ? [
          s.topTags
            .slice(0, 2)
            .map(([t]) => t)
            .join(' '),
        ]
      : []),
  ]);
  return table(head, rows, ['l', 'r', 'r', 'r', 'r']);
}

export function contextsText(c: Collected, s: UnitSummary, n: number, radius = 24): string {
  const heap = c.layers[s.layer].top[s.unit];
  if (!heap) return '  (never fired)';
  const S = c.text.S;
  return heap
    .sorted()
    .slice(0, n)
    .map(({ score, pos }) => {
      const w = Math.floor(pos / S);
      const [a, t, b] = contextOf(c.text, w, pos % S, radius);
      return `  ${score.toFixed(3).padStart(8)}  …${a}[${t}]${b}…  (${c.text.labels[c.text.windowLabel[w]]})`;
    })
    .join('\n');
}

export interface EntropyRow {
  model: string;
  kind: string;
  layer: number;
  unitKind: string;
  units: number;
  measured: number;
  tok: number[];
  tag: number[] | null;
  label: number[];
}

const qs = (v: number[]) =>
  v.length ? `${f2(quantile(v, 0.5))} (${f2(quantile(v, 0.25))}–${f2(quantile(v, 0.75))})` : '—';

export function entropyTable(rows: EntropyRow[]): string {
  return table(
    ['model', 'layer', 'units', 'measured', 'token H median (IQR)', 'POS H median (IQR)', 'label H median (IQR)'],
    rows.map((r) => [
      r.model,
      `${r.layer} ${r.unitKind}`,
      String(r.units),
      String(r.measured),
      qs(r.tok),
      r.tag ? qs(r.tag) : '—',
      qs(r.label),
    ]),
    ['l', 'l', 'r', 'r', 'r', 'r', 'r'],
  );
}

/** The ratio column: '—' when nothing was masked; 'others ≤ 0' when the target got worse and the others did not. */
export function ratioText(x: MaskResult['rows'][number]): string {
  if (x.ratio !== null) return x.ratio.toFixed(2);
  if (x.unitsPerLayer.every((n) => n === 0)) return '— (none)';
  return x.deltaTarget > 0 && x.deltaOthers <= 0 ? 'others ≤ 0' : '—';
}

export function maskTable(r: MaskResult): string {
  return table(
    ['label', 'max lean', 'masked units', 'base loss', 'ΔL target', 'mean ΔL others', 'ratio'],
    r.rows.map((x, g) => [
      x.label,
      leanText(x.maxLean),
      `${x.unitsPerLayer.reduce((a, b) => a + b, 0)} (${x.unitsPerLayer.join('+')})`,
      r.baseLoss[g].toFixed(4),
      f4(x.deltaTarget),
      f4(x.deltaOthers),
      ratioText(x),
    ]),
    ['l', 'r', 'r', 'r', 'r', 'r', 'r'],
  );
}

export const leanText = (v: number) => (v === Infinity ? 'only' : `${v.toFixed(2)}×`);

// ---------------------------------------------------------------------------------------------------------------
// HTML

export const esc = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf'];

/** Overlaid histograms (as step lines) of several series over [lo, hi]; density per series, so sizes may differ. */
export function svgHistograms(
  series: Array<{ name: string; values: number[] }>,
  title: string,
  xLabel: string,
  bins = 20,
): string {
  const all = series.flatMap((s) => s.values);
  const W = 560;
  const H = 220;
  const m = { l: 44, r: 12, t: 24, b: 36 };
  if (all.length === 0) return `<p>${esc(title)}: no data</p>`;
  const lo = 0;
  const hi = Math.max(1e-9, ...all);
  const dens = series.map((s) => {
    const h = new Array<number>(bins).fill(0);
    for (const v of s.values) h[Math.min(bins - 1, Math.floor(((v - lo) / (hi - lo)) * bins))]++;
    return h.map((c) => (s.values.length ? c / s.values.length : 0));
  });
  const ymax = Math.max(1e-9, ...dens.flat());
  const x = (v: number) => m.l + ((v - lo) / (hi - lo)) * (W - m.l - m.r);
  const y = (v: number) => H - m.b - (v / ymax) * (H - m.t - m.b);
  let svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" role="img" aria-label="${esc(title)}">`;
  svg += `<text x="${W / 2}" y="14" text-anchor="middle" font-size="12">${esc(title)}</text>`;
  svg += `<line x1="${m.l}" y1="${H - m.b}" x2="${W - m.r}" y2="${H - m.b}" stroke="#444"/><line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${H - m.b}" stroke="#444"/>`;
  for (let i = 0; i <= 4; i++) {
    const v = lo + ((hi - lo) * i) / 4;
    svg += `<text x="${x(v)}" y="${H - m.b + 14}" text-anchor="middle" font-size="10">${v.toFixed(1)}</text>`;
  }
  svg += `<text x="${W / 2}" y="${H - 4}" text-anchor="middle" font-size="11">${esc(xLabel)}</text>`;
  svg += `<text x="10" y="${H / 2}" font-size="10" transform="rotate(-90 10 ${H / 2})" text-anchor="middle">share of units</text>`;
  dens.forEach((h, si) => {
    let d = `M${x(lo)},${y(0)}`;
    for (let b = 0; b < bins; b++) {
      const x0 = x(lo + ((hi - lo) * b) / bins);
      const x1 = x(lo + ((hi - lo) * (b + 1)) / bins);
      d += ` L${x0.toFixed(1)},${y(h[b]).toFixed(1)} L${x1.toFixed(1)},${y(h[b]).toFixed(1)}`;
    }
    d += ` L${x(hi)},${y(0)}`;
    const col = PALETTE[si % PALETTE.length];
    svg += `<path d="${d}" fill="none" stroke="${col}" stroke-width="1.6"/>`;
    svg += `<rect x="${W - m.r - 150}" y="${m.t + 4 + 14 * si}" width="10" height="10" fill="${col}"/><text x="${W - m.r - 136}" y="${m.t + 13 + 14 * si}" font-size="10">${esc(series[si].name)} (${series[si].values.length})</text>`;
  });
  return `${svg}</svg>`;
}

/** Grouped bars: for each category, one bar per series (values may be negative). */
export function svgGroupedBars(
  categories: string[],
  series: Array<{ name: string; values: number[] }>,
  title: string,
  yLabel: string,
): string {
  const W = Math.max(60 + 230 * series.length, 60 + categories.length * (14 * series.length + 14));
  const H = 260;
  const m = { l: 56, r: 12, t: 24, b: 70 };
  const vals = series.flatMap((s) => s.values).filter((v) => Number.isFinite(v));
  const ymax = Math.max(1e-9, ...vals);
  const ymin = Math.min(0, ...vals);
  const y = (v: number) => m.t + ((ymax - v) / (ymax - ymin)) * (H - m.t - m.b);
  const gw = (W - m.l - m.r) / categories.length;
  const bw = (gw - 8) / series.length;
  let svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" role="img" aria-label="${esc(title)}">`;
  svg += `<text x="${W / 2}" y="14" text-anchor="middle" font-size="12">${esc(title)}</text>`;
  svg += `<line x1="${m.l}" y1="${y(0)}" x2="${W - m.r}" y2="${y(0)}" stroke="#444"/>`;
  for (let i = 0; i <= 4; i++) {
    const v = ymin + ((ymax - ymin) * i) / 4;
    svg += `<text x="${m.l - 4}" y="${y(v) + 3}" text-anchor="end" font-size="10">${v.toFixed(3)}</text>`;
  }
  svg += `<text x="12" y="${(H - m.b) / 2}" font-size="10" transform="rotate(-90 12 ${(H - m.b) / 2})" text-anchor="middle">${esc(yLabel)}</text>`;
  categories.forEach((c, ci) => {
    series.forEach((s, si) => {
      const v = s.values[ci];
      if (!Number.isFinite(v)) return;
      const x0 = m.l + ci * gw + 4 + si * bw;
      const top = Math.min(y(v), y(0));
      svg += `<rect x="${x0.toFixed(1)}" y="${top.toFixed(1)}" width="${(bw - 1).toFixed(1)}" height="${Math.abs(y(v) - y(0)).toFixed(1)}" fill="${PALETTE[si % PALETTE.length]}"><title>${esc(`${c} — ${s.name}: ${v.toFixed(4)}`)}</title></rect>`;
    });
    const cx = m.l + ci * gw + gw / 2;
    svg += `<text x="${cx}" y="${H - m.b + 12}" font-size="10" text-anchor="end" transform="rotate(-40 ${cx} ${H - m.b + 12})">${esc(c)}</text>`;
  });
  series.forEach((s, si) => {
    svg += `<rect x="${m.l + 8 + 230 * si}" y="${H - 14}" width="10" height="10" fill="${PALETTE[si % PALETTE.length]}"/><text x="${m.l + 22 + 230 * si}" y="${H - 5}" font-size="10">${esc(s.name)}</text>`;
  });
  return `${svg}</svg>`;
}

/** Heat map of the (masked label × evaluated label) ΔL matrix. */
export function svgHeatmap(labels: string[], matrix: number[][], title: string): string {
  const n = labels.length;
  const c = Math.max(14, Math.min(28, Math.floor(420 / n)));
  const m = { l: 110, t: 110 };
  const W = Math.max(m.l + n * c + 10, 12 + 7 * title.length);
  const H = m.t + n * c + 10;
  const vmax = Math.max(1e-12, ...matrix.flat().map(Math.abs));
  let svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" role="img" aria-label="${esc(title)}">`;
  svg += `<text x="4" y="14" font-size="12">${esc(title)}</text>`;
  labels.forEach((l, i) => {
    svg += `<text x="${m.l - 4}" y="${m.t + i * c + c * 0.7}" font-size="10" text-anchor="end">${esc(l)}</text>`;
    const x = m.l + i * c + c * 0.6;
    svg += `<text x="${x}" y="${m.t - 4}" font-size="10" transform="rotate(-60 ${x} ${m.t - 4})">${esc(l)}</text>`;
  });
  matrix.forEach((row, i) =>
    row.forEach((v, j) => {
      const a = Math.min(1, Math.abs(v) / vmax);
      const col = v >= 0 ? `rgba(214,39,40,${a.toFixed(3)})` : `rgba(31,119,180,${a.toFixed(3)})`;
      svg += `<rect x="${m.l + j * c}" y="${m.t + i * c}" width="${c - 1}" height="${c - 1}" fill="${col}" stroke="${i === j ? '#000' : 'none'}"><title>${esc(`mask ${labels[i]} → loss on ${labels[j]}: ${v >= 0 ? '+' : ''}${v.toFixed(4)}`)}</title></rect>`;
    }),
  );
  return `${svg}</svg>`;
}

export function htmlTable(head: string[], rows: string[][]): string {
  return `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((x) => `<td>${x}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

export function htmlContexts(c: Collected, s: UnitSummary, n: number, radius = 28): string {
  const heap = c.layers[s.layer].top[s.unit];
  if (!heap) return '<p>never fired</p>';
  const S = c.text.S;
  const lines = heap
    .sorted()
    .slice(0, n)
    .map(({ score, pos }) => {
      const w = Math.floor(pos / S);
      const [a, t, b] = contextOf(c.text, w, pos % S, radius);
      return `<div class="ctx"><span class="sc">${score.toFixed(3)}</span> <code>…${esc(a)}<mark>${esc(t)}</mark>${esc(b)}…</code> <span class="lab">${esc(c.text.labels[c.text.windowLabel[w]])}</span></div>`;
    });
  return lines.join('');
}

export function htmlPage(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title><style>
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:13px}th,td{border:1px solid #ccc;padding:3px 6px;text-align:left}
th{background:#f3f3f3}td.n{text-align:right}code{font-size:12px;white-space:pre}mark{background:#ffd54f;font-weight:bold}
.ctx{font-size:12px;margin:1px 0}.sc{display:inline-block;width:4.5em;text-align:right;color:#555}.lab{color:#888}
details{margin:.3em 0}summary{cursor:pointer}pre{background:#f7f7f7;padding:.6em;white-space:pre-wrap;font-size:12px}
</style></head><body><h1>${esc(title)}</h1>${body}</body></html>\n`;
}
