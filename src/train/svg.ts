// A self-contained loss-curve SVG (no scripts, no external fonts or styles): training loss per step, validation loss
// at its evaluation steps, and an optional horizontal reference line (the byte-unigram entropy, and the 0.75× target).

export interface Series {
  label: string;
  color: string;
  points: [number, number][]; // (step, loss)
  dots?: boolean;
}

export interface HLine {
  label: string;
  color: string;
  y: number;
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Round numbers for axis ticks: 1, 2, 5 × 10^n. */
export function niceTicks(lo: number, hi: number, count: number): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / Math.max(1, count);
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((f) => f * p).find((s) => s >= raw) ?? 10 * p;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9 * step; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

export function lossCurveSvg(title: string, series: Series[], hlines: HLine[] = [], width = 720, height = 400): string {
  const ml = 56,
    mr = 16,
    mt = 32,
    mb = 44;
  const pw = width - ml - mr,
    ph = height - mt - mb;
  const all = series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  let x0 = 0,
    x1 = 1,
    y0 = 0,
    y1 = 1;
  if (all.length > 0) {
    x0 = Math.min(...all.map((p) => p[0]));
    x1 = Math.max(...all.map((p) => p[0]));
    const ys = all.map((p) => p[1]).concat(hlines.map((h) => h.y));
    y0 = Math.min(...ys);
    y1 = Math.max(...ys);
  }
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) y1 = y0 + 1;
  const pad = 0.05 * (y1 - y0);
  y0 -= pad;
  y1 += pad;
  const sx = (x: number) => ml + ((x - x0) / (x1 - x0)) * pw;
  const sy = (y: number) => mt + (1 - (y - y0) / (y1 - y0)) * ph;
  const f = (v: number) => v.toFixed(1);
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
      `font-family="sans-serif" font-size="11">`,
  );
  parts.push(`<rect width="${width}" height="${height}" fill="white"/>`);
  parts.push(`<text x="${width / 2}" y="18" text-anchor="middle" font-size="13">${esc(title)}</text>`);
  for (const t of niceTicks(y0, y1, 6)) {
    parts.push(`<line x1="${ml}" x2="${ml + pw}" y1="${f(sy(t))}" y2="${f(sy(t))}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${ml - 6}" y="${f(sy(t) + 4)}" text-anchor="end">${t}</text>`);
  }
  for (const t of niceTicks(x0, x1, 8)) {
    parts.push(`<line x1="${f(sx(t))}" x2="${f(sx(t))}" y1="${mt}" y2="${mt + ph}" stroke="#f0f0f0"/>`);
    parts.push(`<text x="${f(sx(t))}" y="${mt + ph + 16}" text-anchor="middle">${t}</text>`);
  }
  parts.push(`<rect x="${ml}" y="${mt}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`);
  parts.push(`<text x="${ml + pw / 2}" y="${height - 8}" text-anchor="middle">step</text>`);
  parts.push(
    `<text x="14" y="${mt + ph / 2}" text-anchor="middle" transform="rotate(-90 14 ${mt + ph / 2})">loss ` +
      `(nats/token)</text>`,
  );
  for (const h of hlines) {
    parts.push(
      `<line x1="${ml}" x2="${ml + pw}" y1="${f(sy(h.y))}" y2="${f(sy(h.y))}" stroke="${h.color}" ` +
        `stroke-dasharray="5,4"/>`,
    );
  }
  for (const s of series) {
    const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    if (pts.length === 0) continue;
    parts.push(
      `<polyline fill="none" stroke="${s.color}" stroke-width="1.5" ` +
        `points="${pts.map(([x, y]) => `${f(sx(x))},${f(sy(y))}`).join(' ')}"/>`,
    );
    if (s.dots)
      for (const [x, y] of pts) parts.push(`<circle cx="${f(sx(x))}" cy="${f(sy(y))}" r="2.5" fill="${s.color}"/>`);
  }
  // legend
  const legend: { label: string; color: string; dash: boolean }[] = [
    ...series.map((s) => ({ label: s.label, color: s.color, dash: false })),
    ...hlines.map((h) => ({ label: `${h.label} (${h.y.toFixed(3)})`, color: h.color, dash: true })),
  ];
  legend.forEach((l, i) => {
    const y = mt + 14 + i * 15;
    const x = ml + pw - 250;
    parts.push(
      `<line x1="${x}" x2="${x + 20}" y1="${y - 4}" y2="${y - 4}" stroke="${l.color}" ` +
        `stroke-width="2"${l.dash ? ' stroke-dasharray="5,4"' : ''}/>`,
    );
    parts.push(`<text x="${x + 26}" y="${y}">${esc(l.label)}</text>`);
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
