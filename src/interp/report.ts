// Terminal tables and a self-contained HTML report (inline CSS and SVG charts from charts.ts; no scripts, no
// network).

import { esc } from './charts.ts';
import type { Collected, UnitSummary } from './collect.ts';
import { contextOf, showTokenOf, type TokenVocab } from './data.ts';
import type { MaskResult, MaskRow, MaskVerdict, NullResult } from './mask.ts';
import { quantile } from './stats.ts';
import { unitName, type UnitGroup } from './units.ts';

export { esc };

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
const tokList = (s: UnitSummary, text: { vocab?: TokenVocab }) =>
  s.topTokens
    .slice(0, 3)
    .map(([b, n]) => `${showTokenOf(text, b)}:${n}`)
    .join(' ');

/** `text` says how token ids read (bytes when it has no vocab). */
export function unitsTable(
  lu: UnitGroup,
  list: UnitSummary[],
  hasTags: boolean,
  text: { vocab?: TokenVocab } = {},
): string {
  const head = [
    'unit',
    'density',
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
    tokList(s, text),
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
  const heap = c.groups[s.group].top[s.unit];
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
  group: string; // 'layer 1', 'group 0 (layers 0–1)'
  layers: number[];
  unitKind: string;
  units: number;
  measured: number;
  tok: number[];
  tag: number[] | null;
  label: number[];
}

/** Median (interquartile range) of a list, 2 decimals: '1.17 (0.37–1.82)'; '—' when empty. */
export const medianIqr = (v: number[]) =>
  v.length ? `${f2(quantile(v, 0.5))} (${f2(quantile(v, 0.25))}–${f2(quantile(v, 0.75))})` : '—';
const qs = medianIqr;

export function entropyTable(rows: EntropyRow[]): string {
  return table(
    ['model', 'units of', 'units', 'measured', 'token H median (IQR)', 'POS H median (IQR)', 'label H median (IQR)'],
    rows.map((r) => [
      r.model,
      `${r.group} ${r.unitKind}`,
      String(r.units),
      String(r.measured),
      qs(r.tok),
      r.tag ? qs(r.tag) : '—',
      qs(r.label),
    ]),
    ['l', 'l', 'r', 'r', 'r', 'r', 'r'],
  );
}

/** ΔL ÷ the other labels' mean ΔL: the number, or why there is none. */
export function othersText(x: MaskRow): string {
  if (x.unitsPerGroup.every((n) => n === 0)) return '— (none)';
  if (x.ratioOthers !== null) return x.ratioOthers.toFixed(1);
  return x.deltaTarget > 0 ? 'others ≤ 0' : 'ΔL ≤ 0';
}

/** A null's cell: 'mean / floor → ratio', 'no effect' when ΔL ≤ floor. */
export function nullText(n: NullResult): string {
  if (n.verdict === 'none') return '—';
  const head = `${f4(n.mean)} / ${n.floor.toFixed(5)}`;
  if (n.verdict === 'no-effect') return `${head}: no effect`;
  return `${head}: ${n.ratio === null ? 'mean ≤ 0' : `${n.ratio.toFixed(1)}×`}`;
}

const VERDICT: Record<MaskVerdict, string> = {
  none: 'nothing selected',
  'no-effect': 'no effect',
  weak: 'above floor, a ratio < 3',
  specific: 'specific (ratios ≥ 3)',
};
export const verdictText = (v: MaskVerdict) => VERDICT[v];

export const deltaText = (x: number) => f4(x);

/** The masked units' share of the label's routing weight, then the uniform and matched draws' mean shares. */
export const shareText = (x: MaskRow) =>
  x.unitsPerGroup.every((n) => n === 0)
    ? '—'
    : [x.massShare, x.uniform.share, x.matched.share].map((v) => `${(100 * v).toFixed(1)}%`).join(' / ');

export function maskTable(r: MaskResult): string {
  return table(
    [
      'label',
      'max lean',
      'chance lean',
      'masked units',
      'weight share: masked / uniform / matched',
      'base loss',
      'ΔL target',
      'mean ΔL others',
      '÷ others',
      'uniform: mean / floor: ÷',
      'matched: mean / floor: ÷',
      'verdict (uniform, matched)',
    ],
    r.rows.map((x, g) => [
      x.label,
      leanText(x.maxLean),
      leanText(r.chanceLean[g]),
      `${x.unitsPerGroup.reduce((a, b) => a + b, 0)} (${x.unitsPerGroup.join('+')})`,
      shareText(x),
      r.baseLoss[g].toFixed(4),
      f4(x.deltaTarget),
      f4(x.deltaOthers),
      othersText(x),
      nullText(x.uniform),
      nullText(x.matched),
      `${verdictText(x.uniform.verdict)}; ${verdictText(x.matched.verdict)}`,
    ]),
    ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l'],
  );
}

export const leanText = (v: number) => (v === Infinity ? 'only' : `${v.toFixed(2)}×`);

// ---------------------------------------------------------------------------------------------------------------
// HTML

export function htmlTable(head: string[], rows: string[][]): string {
  return `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((x) => `<td>${x}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

export function htmlContexts(c: Collected, s: UnitSummary, n: number, radius = 28): string {
  const heap = c.groups[s.group].top[s.unit];
  if (!heap) return '<p>never fired</p>';
  const S = c.text.S;
  const lines = heap
    .sorted()
    .slice(0, n)
    .map(({ score, pos }) => {
      const w = Math.floor(pos / S);
      const [a, t, b] = contextOf(c.text, w, pos % S, radius);
      const label = c.text.labels[c.text.windowLabel[w]];
      const code = `<code>…${esc(a)}<mark>${esc(t)}</mark>${esc(b)}…</code>`;
      const sc = `<span class="sc">${score.toFixed(3)}</span>`;
      return `<div class="ctx">${sc} ${code} <span class="lab">${esc(label)}</span></div>`;
    });
  return lines.join('');
}

export function htmlPage(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title><style>
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:left}th{background:#f3f3f3}td.n{text-align:right}
code{font-size:12px;white-space:pre}mark{background:#ffd54f;font-weight:bold}
.ctx{font-size:12px;margin:1px 0}.sc{display:inline-block;width:4.5em;text-align:right;color:#555}.lab{color:#888}
details{margin:.3em 0}summary{cursor:pointer}pre{background:#f7f7f7;padding:.6em;white-space:pre-wrap;font-size:12px}
.dv{background:#ffd7d7}.warn{background:#fff3cd;border:1px solid #d39e00;padding:.5em;font-weight:600}
svg{display:block;margin:.6em 0 1.2em}
</style></head><body><h1>${esc(title)}</h1>${body}</body></html>\n`;
}
