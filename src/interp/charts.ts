// Inline SVG charts for the inspect reports and the unit site: no scripts, no network, readable without zooming.
//
// Rules every chart here follows: axis ticks at "nice" values (1, 2, 5 × 10^k) printed with just enough digits to
// tell them apart (never "0.000" next to "-0.000"); every colour has a legend, placed outside the plot area; a
// colour scale (heat maps) comes with its colour bar and numbers; several layers are drawn as separate panels with
// one shared axis range, not pooled into one curve.

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf'];
export const colour = (i: number) => PALETTE[i % PALETTE.length];

export const esc = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

type Attrs = Record<string, string | number | undefined>;

/** One SVG element: numbers rounded to 0.1 px, strings escaped, undefined attributes left out. */
export function tag(name: string, attrs: Attrs, inner?: string): string {
  let a = '';
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined) continue;
    a += ` ${k}="${typeof v === 'number' ? String(Math.round(v * 10) / 10) : esc(v)}"`;
  }
  return inner === undefined ? `<${name}${a}/>` : `<${name}${a}>${inner}</${name}>`;
}

const FONT = 'system-ui,sans-serif';

/** A text element; `opts` are extra attributes (text-anchor, transform, fill, font-weight). */
function text(x: number, y: number, s: string, size: number, opts: Attrs = {}): string {
  return tag('text', { x, y, 'font-size': size, 'font-family': FONT, ...opts }, esc(s));
}

/** A rectangle with a hover title. */
function rect(x: number, y: number, w: number, h: number, fill: string, title?: string, opts: Attrs = {}): string {
  return tag(
    'rect',
    { x, y, width: w, height: h, fill, ...opts },
    title === undefined ? undefined : tag('title', {}, esc(title)),
  );
}

/** Tick positions at 1/2/5 × 10^k covering [lo, hi] with about `n` intervals, and the decimals that print them. */
export function niceTicks(
  lo: number,
  hi: number,
  n = 5,
): { ticks: number[]; decimals: number; lo: number; hi: number } {
  if (!Number.isFinite(lo) || !Number.isFinite(hi))
    throw new Error(`niceTicks: expected finite bounds, found ${lo}, ${hi}`);
  if (hi < lo) [lo, hi] = [hi, lo];
  if (hi === lo) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((f) => f * mag).find((s) => s >= raw) ?? 10 * mag;
  const a = Math.floor(lo / step + 1e-9) * step;
  const b = Math.ceil(hi / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let k = 0; a + k * step <= b + step * 1e-9; k++) ticks.push(a + k * step);
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  return { ticks, decimals, lo: a, hi: b };
}

/** A tick label: fixed decimals, no negative zero. */
export function tickLabel(v: number, decimals: number): string {
  const s = v.toFixed(decimals);
  return /^-0(\.0*)?$/.test(s) ? s.slice(1) : s;
}

interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

interface Range {
  lo: number;
  hi: number;
  ticks: number[];
  decimals: number;
}

/** Axes with ticks and grid lines for a plot area (no x ticks when xr is null); returns the scale functions. */
function axes(
  area: Box,
  xr: Range | null,
  yr: Range,
  labels: { x?: string; y?: string },
): { svg: string; X: (v: number) => number; Y: (v: number) => number } {
  const X = xr ? (v: number) => area.x + ((v - xr.lo) / (xr.hi - xr.lo)) * area.w : (v: number) => v;
  const Y = (v: number) => area.y + area.h - ((v - yr.lo) / (yr.hi - yr.lo)) * area.h;
  const bottom = area.y + area.h;
  let svg = '';
  for (const t of yr.ticks) {
    svg += tag('line', { x1: area.x, y1: Y(t), x2: area.x + area.w, y2: Y(t), stroke: t === 0 ? '#555' : '#e3e3e3' });
    svg += text(area.x - 4, Y(t) + 3.5, tickLabel(t, yr.decimals), 10, { 'text-anchor': 'end' });
  }
  for (const t of xr?.ticks ?? []) {
    svg += tag('line', { x1: X(t), y1: bottom, x2: X(t), y2: bottom + 4, stroke: '#555' });
    svg += text(X(t), bottom + 15, tickLabel(t, xr!.decimals), 10, { 'text-anchor': 'middle' });
  }
  svg += tag('rect', { x: area.x, y: area.y, width: area.w, height: area.h, fill: 'none', stroke: '#888' });
  if (labels.x) svg += text(area.x + area.w / 2, bottom + 30, labels.x, 11, { 'text-anchor': 'middle' });
  if (labels.y) {
    const cx = area.x - 40;
    const cy = area.y + area.h / 2;
    svg += text(cx, cy, labels.y, 11, { 'text-anchor': 'middle', transform: `rotate(-90 ${cx} ${cy})` });
  }
  return { svg, X, Y };
}

interface LegendItem {
  name: string;
  colour: string;
  dash?: boolean;
}

/** A legend as a column of swatches starting at (x, y); callers place it outside the plot area. */
function legend(x: number, y: number, items: LegendItem[]): string {
  let svg = '';
  for (const [i, it] of items.entries()) {
    const yy = y + 16 * i;
    svg += it.dash
      ? tag('line', {
          x1: x,
          y1: yy + 5,
          x2: x + 14,
          y2: yy + 5,
          stroke: it.colour,
          'stroke-width': 2,
          'stroke-dasharray': '4 2',
        })
      : rect(x, yy, 14, 10, it.colour);
    svg += text(x + 19, yy + 9, it.name, 11);
  }
  return svg;
}

function svgOpen(w: number, h: number, title: string): string {
  const open = tag('svg', {
    xmlns: 'http://www.w3.org/2000/svg',
    width: w,
    height: h,
    viewBox: `0 0 ${Math.round(w)} ${Math.round(h)}`,
    role: 'img',
    'aria-label': title,
  }).replace(/\/>$/, '>');
  return open + text(8, 16, title, 13, { 'font-weight': 600 });
}

const legendWidth = (names: string[]) => 30 + 6.3 * Math.max(0, ...names.map((n) => n.length));

export interface Series {
  name: string;
  values: number[];
}

/** A step-line path of a histogram's bin values h over [lo, hi]. */
function stepPath(h: number[], lo: number, hi: number, X: (v: number) => number, Y: (v: number) => number): string {
  const bins = h.length;
  const f = (v: number) => (Math.round(v * 10) / 10).toString();
  let d = `M${f(X(lo))},${f(Y(0))}`;
  for (let b = 0; b < bins; b++) {
    const x0 = f(X(lo + ((hi - lo) * b) / bins));
    const x1 = f(X(lo + ((hi - lo) * (b + 1)) / bins));
    d += ` L${x0},${f(Y(h[b]))} L${x1},${f(Y(h[b]))}`;
  }
  return `${d} L${f(X(hi))},${f(Y(0))}`;
}

/**
 * Histograms of several series (as step lines, share of each series per bin) in one panel per entry of `panels`,
 * all panels on one x range [0, max] and one y range; the legend sits to the right of the panels.
 */
export function svgHistogramPanels(
  panels: Array<{ title: string; series: Series[] }>,
  title: string,
  xLabel: string,
  bins = 20,
): string {
  const all = panels.flatMap((p) => p.series.flatMap((s) => s.values));
  if (all.length === 0) return `<p>${esc(title)}: no units measured.</p>`;
  const names = [...new Set(panels.flatMap((p) => p.series.map((s) => s.name)))];
  const xt = niceTicks(0, Math.max(...all), 5);
  const hist = (v: number[]) => {
    const h = new Array<number>(bins).fill(0);
    for (const x of v) h[Math.min(bins - 1, Math.floor(((x - xt.lo) / (xt.hi - xt.lo)) * bins))]++;
    return h.map((c) => (v.length ? c / v.length : 0));
  };
  const dens = panels.map((p) => p.series.map((s) => hist(s.values)));
  const yt = niceTicks(0, Math.max(1e-9, ...dens.flat(2)), 4);
  const pw = 260;
  const ph = 150;
  const cols = Math.min(panels.length, 3);
  const rows = Math.ceil(panels.length / cols);
  const left = 60;
  const lw = legendWidth(names);
  let svg = svgOpen(left + cols * (pw + 60) + lw, 34 + rows * (ph + 66), title);
  for (const [pi, p] of panels.entries()) {
    const area = { x: left + (pi % cols) * (pw + 60), y: 44 + Math.floor(pi / cols) * (ph + 66), w: pw, h: ph };
    const ax = axes(area, xt, yt, { x: xLabel, y: pi % cols === 0 ? 'share of units' : undefined });
    svg += ax.svg + text(area.x + area.w / 2, area.y - 6, p.title, 11, { 'text-anchor': 'middle' });
    for (const [si, s] of p.series.entries()) {
      const d = stepPath(dens[pi][si], xt.lo, xt.hi, ax.X, ax.Y);
      const stroke = colour(names.indexOf(s.name));
      svg += tag(
        'path',
        { d, fill: 'none', stroke, 'stroke-width': 1.6 },
        tag('title', {}, esc(`${p.title}: ${s.name}`)),
      );
    }
    const counts = `${p.series.map((s) => `${s.values.length}`).join(' / ')} units`;
    svg += text(area.x + area.w - 4, area.y + 12, counts, 10, { 'text-anchor': 'end', fill: '#555' });
  }
  svg += legend(
    left + cols * (pw + 60) - 20,
    50,
    names.map((n, i) => ({ name: n, colour: colour(i) })),
  );
  return `${svg}</svg>`;
}

/**
 * Grouped bars (values may be negative) with nice ticks; `band` draws, per category, a grey band ±band[c] around 0
 * (a noise floor). The legend sits below the category labels.
 */
export function svgGroupedBars(
  categories: string[],
  series: Series[],
  title: string,
  yLabel: string,
  band?: { name: string; values: number[] },
): string {
  const vals = series.flatMap((s) => s.values).filter(Number.isFinite);
  const floors = band?.values.filter(Number.isFinite) ?? [];
  vals.push(...floors, ...floors.map((v) => -v));
  const yt = niceTicks(Math.min(0, ...vals), Math.max(0, ...vals), 5);
  const gw = Math.max(28, 10 + 14 * series.length);
  const left = 76;
  const area = { x: left, y: 34, w: gw * categories.length, h: 190 };
  const lw = legendWidth([...series.map((s) => s.name), band?.name ?? '']);
  const W = Math.max(area.x + area.w + 16, left + lw);
  let svg = svgOpen(W, area.y + area.h + 80 + 16 * (series.length + (band ? 1 : 0)), title);
  const ax = axes(area, null, yt, { y: yLabel });
  svg += ax.svg;
  for (const [ci, c] of categories.entries()) {
    const x0 = area.x + ci * gw;
    const fl = band?.values[ci];
    if (band && fl !== undefined && Number.isFinite(fl) && fl > 0) {
      const t = `${c} — ${band.name}: ±${fl.toExponential(2)}`;
      svg += rect(x0 + 1, ax.Y(fl), gw - 2, ax.Y(-fl) - ax.Y(fl), '#bbb', t, { 'fill-opacity': 0.45 });
    }
    const bw = (gw - 8) / series.length;
    for (const [si, s] of series.entries()) {
      const v = s.values[ci];
      if (!Number.isFinite(v)) continue;
      const top = Math.min(ax.Y(v), ax.Y(0));
      const t = `${c} — ${s.name}: ${v.toExponential(3)}`;
      svg += rect(x0 + 4 + si * bw, top, bw - 1, Math.abs(ax.Y(v) - ax.Y(0)), colour(si), t);
    }
    const cx = x0 + gw / 2;
    const ly = area.y + area.h + 12;
    svg += text(cx, ly, c, 10, { 'text-anchor': 'end', transform: `rotate(-40 ${cx} ${ly})` });
  }
  const items: LegendItem[] = series.map((s, i) => ({ name: s.name, colour: colour(i) }));
  if (band) items.push({ name: band.name, colour: '#bbb' });
  svg += legend(left, area.y + area.h + 70, items);
  return `${svg}</svg>`;
}

/** Diverging colour for v in [−vmax, vmax]: blue (negative) — white — red (positive). */
export function divergingColour(v: number, vmax: number): string {
  const a = vmax > 0 ? Math.max(-1, Math.min(1, v / vmax)) : 0;
  const mix = (c: number, t: number) => Math.round(255 + (c - 255) * t);
  return a >= 0
    ? `rgb(${mix(178, a)},${mix(24, a)},${mix(43, a)})`
    : `rgb(${mix(33, -a)},${mix(102, -a)},${mix(172, -a)})`;
}

/** A vertical colour bar for [lo, hi] at (x, y), height h, with tick labels to its right. */
function colourBar(x: number, y: number, h: number, r: Range, name: string): string {
  let svg = '';
  const steps = 40;
  for (let k = 0; k < steps; k++) {
    const v = r.hi - ((r.hi - r.lo) * (k + 0.5)) / steps;
    svg += rect(x, y + (h * k) / steps, 14, h / steps + 0.5, divergingColour(v, r.hi));
  }
  svg += tag('rect', { x, y, width: 14, height: h, fill: 'none', stroke: '#888' });
  for (const t of r.ticks) {
    const ty = y + ((r.hi - t) / (r.hi - r.lo)) * h;
    svg += tag('line', { x1: x + 14, y1: ty, x2: x + 18, y2: ty, stroke: '#555' });
    svg += text(x + 21, ty + 3.5, tickLabel(t, r.decimals), 10);
  }
  return svg + text(x, y - 8, name, 10);
}

/** Heat map of a square matrix (row label × column label) on a symmetric diverging scale, with its colour bar. */
export function svgHeatmap(labels: string[], matrix: number[][], title: string, valueName: string): string {
  const n = labels.length;
  const c = Math.max(14, Math.min(28, Math.floor(420 / n)));
  const m = { l: 120, t: 120 };
  const vmax = Math.max(1e-12, ...matrix.flat().map(Math.abs));
  const ct = niceTicks(-vmax, vmax, 4);
  const barX = m.l + n * c + 30;
  let svg = svgOpen(Math.max(barX + 150, 16 + 7 * title.length), Math.max(m.t + n * c + 40, m.t + 220), title);
  svg += text(m.l, m.t - 94, 'rows: masked · columns: evaluated · outlined: the diagonal', 10, { fill: '#555' });
  for (const [i, l] of labels.entries()) {
    svg += text(m.l - 4, m.t + i * c + c * 0.7, l, 10, { 'text-anchor': 'end' });
    const x = m.l + i * c + c * 0.6;
    svg += text(x, m.t - 4, l, 10, { transform: `rotate(-60 ${x} ${m.t - 4})` });
  }
  for (const [i, row] of matrix.entries()) {
    for (const [j, v] of row.entries()) {
      const t = `mask ${labels[i]} → loss on ${labels[j]}: ${v >= 0 ? '+' : ''}${v.toExponential(3)}`;
      const stroke = i === j ? '#000' : 'none';
      svg += rect(m.l + j * c, m.t + i * c, c - 1, c - 1, divergingColour(v, ct.hi), t, { stroke });
    }
  }
  svg += colourBar(barX, m.t, 180, ct, valueName);
  return `${svg}</svg>`;
}

/** Lines over a shared x axis (e.g. training step), several series, legend to the right. */
export function svgLines(
  x: number[],
  series: Array<{ name: string; values: Array<number | null>; dash?: boolean }>,
  title: string,
  labels: { x: string; y: string },
): string {
  const vals = series.flatMap((s) => s.values).filter((v): v is number => v !== null && Number.isFinite(v));
  if (vals.length === 0 || x.length === 0) return `<p>${esc(title)}: no data.</p>`;
  const xt = niceTicks(Math.min(...x), Math.max(...x), 6);
  const yt = niceTicks(Math.min(0, ...vals), Math.max(...vals), 5);
  const area = { x: 70, y: 34, w: 460, h: 220 };
  const lw = legendWidth(series.map((s) => s.name));
  let svg = svgOpen(area.x + area.w + 24 + lw, Math.max(area.y + area.h + 44, 40 + 16 * series.length), title);
  const ax = axes(area, xt, yt, labels);
  svg += ax.svg;
  for (const [si, s] of series.entries()) {
    let d = '';
    for (const [k, v] of s.values.entries()) {
      if (v === null || !Number.isFinite(v)) continue;
      const px = Math.round(ax.X(x[k]) * 10) / 10;
      const py = Math.round(ax.Y(v) * 10) / 10;
      d += `${d ? ' L' : 'M'}${px},${py}`;
      const t = tag('title', {}, esc(`${s.name} at ${x[k]}: ${v.toFixed(3)}`));
      svg += tag('circle', { cx: px, cy: py, r: 2.5, fill: colour(si) }, t);
    }
    const dash = s.dash ? '5 3' : undefined;
    svg += tag('path', { d, fill: 'none', stroke: colour(si), 'stroke-width': 1.8, 'stroke-dasharray': dash });
  }
  const items = series.map((s, i) => ({ name: s.name, colour: colour(i), dash: s.dash }));
  svg += legend(area.x + area.w + 24, area.y, items);
  return `${svg}</svg>`;
}

/** Bars of a histogram with equal bins over [lo, hi] and their counts; the x axis in the values' own units. */
export function svgHistogram(
  counts: number[],
  lo: number,
  hi: number,
  title: string,
  labels: { x: string; y: string },
  width = 420,
): string {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return `<p>${esc(title)}: nothing to draw.</p>`;
  const xt = niceTicks(lo, hi, 5);
  const yt = niceTicks(0, Math.max(...counts), 4);
  const area = { x: 66, y: 30, w: width - 86, h: 140 };
  let svg = svgOpen(width, area.y + area.h + 44, title);
  const ax = axes(area, xt, yt, labels);
  svg += ax.svg;
  const bw = (hi - lo) / counts.length;
  for (const [b, n] of counts.entries()) {
    if (n === 0) continue;
    const x0 = ax.X(lo + b * bw);
    const x1 = ax.X(lo + (b + 1) * bw);
    const t = `${(lo + b * bw).toPrecision(3)} – ${(lo + (b + 1) * bw).toPrecision(3)}: ${n}`;
    svg += rect(x0, ax.Y(n), Math.max(0.5, x1 - x0 - 0.5), ax.Y(0) - ax.Y(n), colour(0), t);
  }
  return `${svg}</svg>`;
}

/** Horizontal paired bars: observed share vs base rate per category (labels / genres). */
export function svgShareBars(
  categories: string[],
  observed: number[],
  base: number[],
  title: string,
  names: { observed: string; base: string },
): string {
  const left = 120;
  const rowH = 16;
  const xt = niceTicks(0, Math.max(1e-9, ...observed, ...base), 4);
  const area = { x: left, y: 30, w: 260, h: rowH * categories.length };
  const lw = legendWidth([names.observed, names.base]);
  let svg = svgOpen(area.x + area.w + 24 + lw, area.y + area.h + 40, title);
  const X = (v: number) => area.x + ((v - xt.lo) / (xt.hi - xt.lo)) * area.w;
  for (const t of xt.ticks) {
    svg += tag('line', { x1: X(t), y1: area.y, x2: X(t), y2: area.y + area.h, stroke: '#e3e3e3' });
    const label = `${tickLabel(100 * t, Math.max(0, xt.decimals - 2))}%`;
    svg += text(X(t), area.y + area.h + 14, label, 10, { 'text-anchor': 'middle' });
  }
  for (const [i, c] of categories.entries()) {
    const y = area.y + i * rowH;
    svg += text(area.x - 4, y + 11, c, 10, { 'text-anchor': 'end' });
    svg += rect(area.x, y + 2, X(observed[i]) - area.x, 8, colour(0), `${c}: ${(100 * observed[i]).toFixed(1)}%`);
    svg += rect(area.x, y + 10, X(base[i]) - area.x, 4, '#999', `${c}: base rate ${(100 * base[i]).toFixed(1)}%`);
  }
  svg += tag('rect', { x: area.x, y: area.y, width: area.w, height: area.h, fill: 'none', stroke: '#888' });
  svg += legend(area.x + area.w + 24, area.y, [
    { name: names.observed, colour: colour(0) },
    { name: names.base, colour: '#999' },
  ]);
  return `${svg}</svg>`;
}
