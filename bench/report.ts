// Turns a benchmark run into: markdown tables for the terminal (and docs/perf.md), one JSON file with everything
// and the machine it ran on, one CSV per table, and a self-contained HTML page with SVG charts (no scripts, no
// network: open it from disk).

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MachineInfo } from './lib/machine.ts';
import type { MatmulResult } from './matmul.ts';
import type { LayersRun } from './layers.ts';
import type { ScalingModel, ScalingRun } from './scaling.ts';

export interface BenchResults {
  schema: 'monet-ts-bench/1';
  command: string;
  quick: boolean;
  startedAt: string;
  finishedAt: string;
  elapsedSeconds: number;
  machine: MachineInfo;
  matmul?: { results: MatmulResult[]; notes: string[] };
  layers?: LayersRun;
  scaling?: ScalingRun;
  notes: string[];
}

// ----------------------------------------------------------------------------------------------- formatting

const f1 = (x: number | undefined) =>
  x === undefined || !Number.isFinite(x) ? '–' : x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
const ratio = (a: number | undefined, b: number | undefined) => (a && b ? `${(a / b).toFixed(2)}×` : '–');
export function human(n: number | undefined): string {
  if (n === undefined) return '–';
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} k`;
  return String(n);
}
const mib = (b: number | undefined) => (b === undefined ? '–' : `${(b / 2 ** 20).toFixed(b < 2 ** 24 ? 2 : 0)} MiB`);

/** The figure a matmul row is compared by: CPU-time GFLOP/s where measured (single-threaded rows), else best sample. */
export const matmulRate = (r: MatmulResult) => r.gflopsCpu ?? r.gflopsBest;

/**
 * Matmul: GFLOP/s per implementation and size (wall: median, or mean for the rows bench/wasm-matmul.ts times, and the
 * fastest sample; CPU: from the best process CPU time, single-threaded rows), with ratios to tfjs-backend-wasm,
 * gpu.js and plain JS on `matmulRate` (on a shared machine CPU time is the figure that keeps its meaning).
 */
export function matmulTable(rows: MatmulResult[]): string {
  const out = [
    '| n³ | implementation | GFLOP/s wall typical | wall best | **CPU time** | × tfjs-backend-wasm | × gpu.js ' +
      '(auto) | × plain JS | note |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const n of [...new Set(rows.map((r) => r.n))]) {
    const at = rows.filter((r) => r.n === n);
    const pick = (f: (r: MatmulResult) => boolean) => {
      const r = at.find(f);
      return r ? matmulRate(r) : undefined;
    };
    const tfjs = pick((r) => r.impl.startsWith('tfjs'));
    const gpujs = pick((r) => r.impl.startsWith('gpu.js (auto'));
    const js = pick((r) => r.impl === 'plain JS');
    for (const r of at) {
      const x = matmulRate(r);
      out.push(
        `| ${n}³ | ${r.impl} | ${f1(r.gflops)} | ${f1(r.gflopsBest)} | ` +
          `${r.gflopsCpu ? `**${f1(r.gflopsCpu)}**` : '–'} | ${ratio(x, tfjs)} | ${ratio(x, gpujs)} | ` +
          `${ratio(x, js)} | ${r.note ?? ''} |`,
      );
    }
  }
  return out.join('\n');
}

/** Layers: ms per forward+backward step per backend, with ratios to our WASM SIMD backend and to the peers. */
export function layersTable(run: LayersRun): string {
  const out = [
    `T = ${run.T} tokens, d = ${run.d}. Wall ms: median (fastest sample). CPU ms: best process CPU time (one thread).`,
    "Ratio: this row's time ÷ wasm simd's, on CPU time where both have it, else on the fastest wall samples.",
    '',
    '| layer | size | backend | wall ms / step | **CPU ms / step** | tokens/s (CPU) | time ÷ wasm simd | note |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const layer of [...new Set(run.results.map((r) => r.layer))]) {
    const at = run.results.filter((r) => r.layer === layer);
    const ours = at.find((r) => r.backend === 'wasm simd');
    for (const r of at) {
      let rel = '–';
      if (ours && r !== ours)
        rel =
          r.msCpu && ours.msCpu ? (r.msCpu / ours.msCpu).toFixed(2) : `${(r.msBest / ours.msBest).toFixed(2)} (wall)`;
      const tps = r.msCpu ? Math.round((run.T / r.msCpu) * 1000) : '–';
      out.push(
        `| ${r.layer} | ${r.size} | ${r.backend} | ${f1(r.msPerStep)} (${f1(r.msBest)}) | ` +
          `${r.msCpu ? `**${f1(r.msCpu)}**` : '–'} | ${tps} | ${rel} | ${r.note ?? ''} |`,
      );
    }
  }
  return out.join('\n');
}

/** How the growth table names each measured quantity. */
const QUANTITY = { usPerToken: 'CPU time per token', peakTensorBytes: 'peak tensor memory', params: 'parameters' };

/** Scaling: one row per (model, N), then the measured growth exponents. */
export function scalingTable(run: ScalingRun): string {
  const out = [
    `${run.device}, one thread; d = ${run.d}, T = ${run.T} tokens per step`,
    '',
    '| model | N | parameters (measured) | peak tensor memory | process RSS | fwd+bwd wall ms / step, median (best) ' +
      '| **CPU µs / token** | zero grads ms | fwd FLOP/token (napkin) |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of run.results) {
    if (r.status !== 'ok') {
      out.push(`| ${r.model} | ${r.sqrtN}² | not measured: ${r.reason} | | | | | | |`);
      continue;
    }
    out.push(
      `| ${r.model} | ${r.sqrtN}² | ${human(r.params)} (${r.params}) | ${mib(r.peakTensorBytes)} | ` +
        `${mib(r.rssBytes)} | ${f1(r.msPerStep)} (${f1(r.msBest)}) | **${f1(r.usPerToken)}** | ${f1(r.zeroGradMs)} ` +
        `| ${human(r.forwardFlopsPerToken)} |`,
    );
  }
  out.push(
    '',
    'Growth exponent: least-squares slope of log(quantity) on log(N) (√N growth = 0.5, N growth = 1).',
    '',
    '| model | quantity | slope over all measured N | slope over the 3 largest | points |',
    '|---|---|---|---|---|',
  );
  for (const g of run.growth)
    out.push(
      `| ${g.model} | ${QUANTITY[g.quantity]} | ${g.slopeAll.toFixed(3)} | ${g.slopeLast3.toFixed(3)} | ${g.points} |`,
    );
  return out.join('\n');
}

export function machineLines(m: MachineInfo): string {
  return [
    `CPU: ${m.cpuModel}, ${m.logicalCores} logical cores, ${m.totalMemoryGiB} GiB; ${m.platform}; Node ${m.node} ` +
      `(V8 ${m.v8})`,
    `WebAssembly SIMD: ${m.wasmSimd ? 'yes' : 'no'}; relaxed SIMD: ${m.wasmRelaxedSimd ? 'yes' : 'no'}`,
    `WebGPU adapter: ${m.webgpuAdapter ?? 'none'}; gpu.js modes: ${m.gpujsModes?.join(', ') || '–'}; ` +
      `${m.tfjs ?? ''}; ${m.torch ?? 'PyTorch: –'}`,
    `load average (1, 5, 15 min) at start ` +
      `${m.loadAvgStart.join(', ')}${m.loadAvgEnd ? `, at end ${m.loadAvgEnd.join(', ')}` : ''}`,
  ].join('\n');
}

// ----------------------------------------------------------------------------------------------- CSV

function csv(header: string[], rows: (string | number | undefined)[][]): string {
  const cell = (v: string | number | undefined) => {
    const s = v === undefined ? '' : String(v);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return `${[header, ...rows].map((r) => r.map(cell).join(',')).join('\n')}\n`;
}

// ----------------------------------------------------------------------------------------------- SVG charts

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const COLORS = [
  '#1f77b4',
  '#d62728',
  '#2ca02c',
  '#9467bd',
  '#ff7f0e',
  '#8c564b',
  '#e377c2',
  '#7f7f7f',
  '#17becf',
  '#bcbd22',
];

/** Horizontal bars on a log axis (values span orders of magnitude: plain JS vs SIMD vs native). */
function barChart(
  title: string,
  unit: string,
  groups: { label: string; bars: { name: string; value: number; hatch?: boolean }[] }[],
): string {
  const all = groups.flatMap((g) => g.bars.map((b) => b.value)).filter((v) => v > 0);
  if (!all.length) return '';
  const lo = 10 ** Math.floor(Math.log10(Math.min(...all))),
    hi = 10 ** Math.ceil(Math.log10(Math.max(...all)));
  const W = 900,
    left = 330,
    right = 60,
    barH = 16,
    gap = 22;
  const rows = groups.reduce((s, g) => s + g.bars.length, 0);
  const H = 50 + rows * barH + groups.length * gap + 30;
  const x = (v: number) =>
    left + ((Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * (W - left - right);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" ` +
      `patternTransform="rotate(45)"><rect width="6" height="6" fill="#ccc"/><line x1="0" y1="0" x2="0" y2="6" ` +
      `stroke="#888" stroke-width="3"/></pattern></defs>`,
    `<text x="10" y="20" font-size="15" font-weight="bold">${esc(title)}</text>`,
  ];
  for (let p = Math.log10(lo); p <= Math.log10(hi); p++) {
    const xv = x(10 ** p);
    parts.push(
      `<line x1="${xv}" y1="30" x2="${xv}" y2="${H - 25}" stroke="#ddd"/><text x="${xv}" y="${H - 10}" ` +
        `text-anchor="middle" fill="#555">${10 ** p >= 1 ? 10 ** p : (10 ** p).toPrecision(1)}</text>`,
    );
  }
  parts.push(`<text x="${W - 10}" y="20" text-anchor="end" fill="#555">${esc(unit)}, log scale</text>`);
  let y = 40;
  const names = [...new Set(groups.flatMap((g) => g.bars.map((b) => b.name)))];
  for (const g of groups) {
    parts.push(`<text x="10" y="${y + 12}" font-weight="bold">${esc(g.label)}</text>`);
    y += gap - 6;
    for (const b of g.bars) {
      const c = COLORS[names.indexOf(b.name) % COLORS.length];
      const w = Math.max(1, x(b.value) - left);
      parts.push(
        `<text x="${left - 6}" y="${y + barH - 4}" text-anchor="end">${esc(b.name)}</text>`,
        `<rect x="${left}" y="${y + 1}" width="${w}" height="${barH - 2}" fill="${b.hatch ? 'url(#hatch)' : c}"/>`,
        `<text x="${left + w + 4}" y="${y + barH - 4}">${f1(b.value)}</text>`,
      );
      y += barH;
    }
    y += 6;
  }
  parts.push('</svg>');
  return parts.join('\n');
}

/** Log-log lines of y against N, one per model, with the √N and N slopes drawn for reference. */
function lineChart(title: string, unit: string, series: { name: string; pts: [number, number][] }[]): string {
  const pts = series.flatMap((s) => s.pts);
  if (!pts.length) return '';
  const xs = pts.map((p) => p[0]),
    ys = pts.map((p) => p[1]);
  const x0 = Math.log10(Math.min(...xs)),
    x1 = Math.log10(Math.max(...xs));
  const y0 = Math.floor(Math.log10(Math.min(...ys))),
    y1 = Math.ceil(Math.log10(Math.max(...ys)));
  const W = 440,
    H = 320,
    L = 60,
    R = 15,
    Tm = 30,
    B = 45;
  const X = (v: number) => L + ((Math.log10(v) - x0) / (x1 - x0 || 1)) * (W - L - R);
  const Y = (v: number) => H - B - ((Math.log10(v) - y0) / (y1 - y0 || 1)) * (H - B - Tm);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`,
    `<text x="${L}" y="18" font-size="13" font-weight="bold">${esc(title)}</text>`,
  ];
  for (let p = y0; p <= y1; p++)
    parts.push(
      `<line x1="${L}" y1="${Y(10 ** p)}" x2="${W - R}" y2="${Y(10 ** p)}" stroke="#e4e4e4"/><text x="${L - 4}" ` +
        `y="${Y(10 ** p) + 4}" text-anchor="end" fill="#555">1e${p}</text>`,
    );
  for (const v of [...new Set(xs)].sort((a, b) => a - b))
    parts.push(
      `<text x="${X(v)}" y="${H - B + 15}" text-anchor="middle" fill="#555">${Math.round(Math.sqrt(v))}²</text>`,
    );
  parts.push(
    `<text x="${(L + W - R) / 2}" y="${H - 10}" text-anchor="middle" fill="#555">N experts (log) — y: ${esc(unit)} ` +
      `(log)</text>`,
  );
  series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length];
    if (!s.pts.length) return;
    parts.push(
      `<polyline fill="none" stroke="${c}" stroke-width="2" ` +
        `points="${s.pts.map(([a, b]) => `${X(a)},${Y(b)}`).join(' ')}"/>`,
    );
    for (const [a, b] of s.pts) parts.push(`<circle cx="${X(a)}" cy="${Y(b)}" r="3" fill="${c}"/>`);
    parts.push(
      `<rect x="${L + 8}" y="${Tm + 4 + i * 15}" width="10" height="10" fill="${c}"/><text x="${L + 22}" ` +
        `y="${Tm + 13 + i * 15}">${esc(s.name)}</text>`,
    );
  });
  // reference slopes through the first point of the first series: √N (dashed) and N (dotted)
  const first = series.find((s) => s.pts.length)!.pts[0];
  const xsMax = Math.max(...xs);
  for (const [k, dash, label] of [
    [0.5, '6,4', '∝ √N'],
    [1, '2,3', '∝ N'],
  ] as const) {
    // y = first.y·(x/first.x)^k, stopped where it leaves the plot at the top
    const xEnd = Math.min(xsMax, first[0] * (10 ** y1 / first[1]) ** (1 / k));
    const yEnd = first[1] * (xEnd / first[0]) ** k;
    parts.push(
      `<line x1="${X(first[0])}" y1="${Y(first[1])}" x2="${X(xEnd)}" y2="${Y(yEnd)}" stroke="#999" ` +
        `stroke-dasharray="${dash}"/>`,
      `<text x="${X(xEnd) - 2}" y="${Y(yEnd) + (xEnd < xsMax ? 12 : -4)}" text-anchor="end" ` +
        `fill="#777">${label}</text>`,
    );
  }
  parts.push('</svg>');
  return parts.join('\n');
}

export function html(r: BenchResults): string {
  const sections: string[] = [];
  if (r.matmul) {
    const groups = [...new Set(r.matmul.results.map((x) => x.n))].map((n) => ({
      label: `${n}³`,
      bars: r
        .matmul!.results.filter((x) => x.n === n)
        .map((x) => ({ name: x.impl, value: matmulRate(x), hatch: !!x.note?.includes('not a performance figure') })),
    }));
    sections.push(
      '<h2>Matmul (float32, one thread)</h2>',
      barChart(
        'matmul GFLOP/s by CPU time (wall best sample where no CPU time; higher is better; hatched: software GPU, ' +
          'not a performance figure)',
        'GFLOP/s',
        groups,
      ),
      `<pre>${esc(matmulTable(r.matmul.results))}</pre>`,
    );
  }
  if (r.layers) {
    const groups = [...new Set(r.layers.results.map((x) => x.layer))].map((layer) => ({
      label: layer,
      bars: r
        .layers!.results.filter((x) => x.layer === layer)
        .map((x) => ({
          name: x.backend,
          value: x.msCpu ?? x.msBest,
          hatch: !!x.note?.includes('not a performance figure'),
        })),
    }));
    sections.push(
      '<h2>Layers, forward + backward</h2>',
      barChart(
        `ms per step by CPU time (wall best sample where none), T=${r.layers.T}, d=${r.layers.d} (lower is better; ` +
          `hatched: not a performance figure)`,
        'ms',
        groups,
      ),
      `<pre>${esc(layersTable(r.layers))}</pre>`,
    );
  }
  if (r.scaling) {
    const s = r.scaling;
    const series = (q: 'params' | 'usPerToken' | 'peakTensorBytes') =>
      (['monet-hd', 'monet-vd', 'smoe', 'peer'] as ScalingModel[]).map((m) => ({
        name: m,
        pts: s.results
          .filter((x) => x.model === m && x.status === 'ok' && x[q] !== undefined)
          .map((x) => [x.N, x[q]!] as [number, number]),
      }));
    sections.push(
      '<h2>Cost as the number of experts N grows</h2>',
      '<div style="display:flex;flex-wrap:wrap;gap:12px">',
      lineChart('parameters (measured)', 'parameters', series('params')),
      lineChart('peak tensor memory', 'bytes', series('peakTensorBytes')),
      lineChart('forward+backward CPU time per token', 'µs', series('usPerToken')),
      '</div>',
      ...s.results
        .filter((x) => x.status !== 'ok')
        .map((x) => `<p>${esc(`${x.model} at N = ${x.sqrtN}²: not measured: ${x.reason}`)}</p>`),
      `<pre>${esc(scalingTable(s))}</pre>`,
    );
  }
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>monet-ts benchmarks ${esc(r.startedAt)}</title>
<style>body{font-family:sans-serif;max-width:1100px;margin:20px auto;padding:0 10px}
pre{font-size:11px;overflow-x:auto;background:#f6f6f6;padding:8px}</style>
</head><body>
<h1>monet-ts benchmarks</h1>
<p>${esc(r.quick ? 'QUICK smoke run (tiny sizes): these figures mean nothing.' : 'Full run.')}
Started ${esc(r.startedAt)}, ${r.elapsedSeconds.toFixed(0)} s. Command: <code>${esc(r.command)}</code></p>
<pre>${esc(machineLines(r.machine))}</pre>
${r.notes.length ? `<ul>${r.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>` : ''}
${sections.join('\n')}
</body></html>
`;
}

/** Writes <prefix>.json, <prefix>-{matmul,layers,scaling}.csv and <prefix>.html into `dir`; returns the paths. */
export function writeResults(r: BenchResults, dir: string, prefix: string): string[] {
  mkdirSync(dir, { recursive: true });
  const files: [string, string][] = [[`${prefix}.json`, `${JSON.stringify(r, null, 2)}\n`]];
  const m = r.machine;
  const machineCols = [m.cpuModel, m.logicalCores, m.node];
  const mh = ['cpu', 'cores', 'node'];
  if (r.matmul) {
    files.push([
      `${prefix}-matmul.csv`,
      csv(
        [
          'n',
          'implementation',
          'group',
          'gflops_typical',
          'gflops_best',
          'gflops_interleaved_best',
          'gflops_cpu_time',
          'ms_per_product',
          'samples',
          'rme_percent',
          'note',
          ...mh,
        ],
        r.matmul.results.map((x) => [
          x.n,
          x.impl,
          x.group,
          x.gflops,
          x.gflopsBest,
          x.gflopsInterleaved,
          x.gflopsCpu,
          x.msPerCall,
          x.samples,
          x.rme,
          x.note,
          ...machineCols,
        ]),
      ),
    ]);
  }
  if (r.layers) {
    files.push([
      `${prefix}-layers.csv`,
      csv(
        [
          'layer',
          'size',
          'T',
          'd',
          'backend',
          'group',
          'ms_per_step_median',
          'ms_per_step_best',
          'ms_per_step_cpu',
          'tokens_per_s',
          'samples',
          'rme_percent',
          'note',
          ...mh,
        ],
        r.layers.results.map((x) => [
          x.layer,
          x.size,
          r.layers!.T,
          r.layers!.d,
          x.backend,
          x.group,
          x.msPerStep,
          x.msBest,
          x.msCpu,
          x.tokensPerSec,
          x.samples,
          x.rme,
          x.note,
          ...machineCols,
        ]),
      ),
    ]);
  }
  if (r.scaling) {
    files.push([
      `${prefix}-scaling.csv`,
      csv(
        [
          'model',
          'sqrt_n',
          'n',
          'status',
          'params',
          'peak_tensor_bytes',
          'rss_bytes',
          'ms_per_step_median',
          'ms_per_step_best',
          'ms_per_step_cpu',
          'us_per_token_cpu',
          'us_per_token_wall',
          'zero_grad_ms',
          'fwd_flops_per_token',
          'samples',
          'reason',
          'device',
          ...mh,
        ],
        r.scaling.results.map((x) => [
          x.model,
          x.sqrtN,
          x.N,
          x.status,
          x.params,
          x.peakTensorBytes,
          x.rssBytes,
          x.msPerStep,
          x.msBest,
          x.msCpu,
          x.usPerToken,
          x.usPerTokenWall,
          x.zeroGradMs,
          x.forwardFlopsPerToken,
          x.samples,
          x.reason,
          r.scaling!.device,
          ...machineCols,
        ]),
      ),
    ]);
  }
  files.push([`${prefix}.html`, html(r)]);
  const paths: string[] = [];
  for (const [name, text] of files) {
    const p = join(dir, name);
    writeFileSync(p, text);
    paths.push(p);
  }
  return paths;
}
