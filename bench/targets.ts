// The CPU-training targets checked against the figures bench/issue-figures.sh wrote: one line per target and preset
// with the measured value, the bound, and met / missed. Reads train-step.json, matmul-shapes-monet-vd-small.json and
// npm-start.json from --dir (default bench/results) and writes targets.md there.
//
//   node --import tsx bench/targets.ts [--dir bench/results]
//
// Tokens/s ratios are given by wall clock and by process CPU time (both from the same run); a target is met when
// both meet it (on a quiet machine they agree; on a busy one wall time is what the process got, not what it
// needed). Two-thread targets are wall-clock only: CPU time does not show threads running side by side. The
// PyTorch peer of each row is its fastest thread setting in the run (PyTorch's own threads N or 1 beside an
// N-thread BLAS). A file that is missing makes its targets "not measured", never met.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseFlags } from '../src/train/flags.ts';

const f = parseFlags(
  'bench/targets.ts',
  [{ name: 'dir', type: 'string', help: 'results folder' }],
  process.argv.slice(2),
);
const dir = (f.dir as string | undefined) ?? 'bench/results';
const DEFAULT = 'monet-vd-small';

interface Side {
  wall: number; // seconds per step
  cpu: number;
}
interface TrainRow {
  preset: string;
  threads: number;
  ours: Side;
  torch: (Side & { env: { threads: number; blas: { kind: string; threads: number | null } } }) | { error: string };
}

function readJson<T>(name: string): T | null {
  const path = join(dir, name);
  if (!existsSync(path)) return null;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch (e) {
    throw new Error(`bench/targets.ts: ${path} is not JSON: ${(e as Error).message}`);
  }
}

const lines: string[] = [
  `node --import tsx bench/targets.ts --dir ${dir}`,
  '',
  '| target | preset | measured | bound | verdict |',
  '|---|---|---|---|---|',
];
const verdicts: boolean[] = [];
const row = (target: string, preset: string, measured: string, bound: string, met: boolean | null) => {
  if (met !== null) verdicts.push(met);
  const v = met === null ? 'not measured' : met ? 'met' : '**missed**';
  lines.push(`| ${target} | ${preset} | ${measured} | ${bound} | ${v} |`);
};
const x = (v: number) => `${v.toFixed(2)}×`;

// ---- train step
const ts = readJson<{ B: number; S: number; rows: TrainRow[] }>('train-step.json');
if (!ts) row('train step (all targets)', '–', `${join(dir, 'train-step.json')} missing`, '–', null);
else {
  const presets = [...new Set(ts.rows.map((r) => r.preset))];
  /** Our side and PyTorch's fastest setting (by wall time) at `threads`. */
  const at = (preset: string, threads: number) => {
    const rs = ts.rows.filter((r) => r.preset === preset && r.threads === threads);
    if (rs.length === 0) return null;
    const ok = rs
      .map((r) => r.torch)
      .filter((t): t is Exclude<TrainRow['torch'], { error: string }> => !('error' in t));
    const torch = ok.sort((a, b) => a.wall - b.wall)[0] ?? null;
    return { ours: rs[0].ours, torch };
  };
  const vsTorch = (preset: string, threads: number, bound: number, label: string) => {
    const a = at(preset, threads);
    if (!a?.torch) return row(label, preset, 'no PyTorch figure', `≥ ${x(bound)}`, null);
    const wall = a.torch.wall / a.ours.wall;
    const cpu = a.torch.cpu / a.ours.cpu;
    const own = `PyTorch own ${a.torch.env.threads} / BLAS ${a.torch.env.blas.threads ?? '?'} threads`;
    const measured = `${x(wall)} wall, ${x(cpu)} CPU time (${own})`;
    // two threads: wall only (CPU time counts both threads' work, whoever ran it when)
    row(label, preset, measured, `≥ ${x(bound)}`, threads === 1 ? wall >= bound && cpu >= bound : wall >= bound);
  };
  for (const p of presets) vsTorch(p, 1, p === DEFAULT ? 1.0 : 0.8, 'one thread: ours / PyTorch + OpenBLAS, 1 thread');
  for (const p of presets) {
    const one = at(p, 1);
    const two = at(p, 2);
    if (!one || !two) row('two threads: ours / ours on one thread', p, 'not run', '≥ 1.60×', null);
    else
      row(
        'two threads: ours / ours on one thread',
        p,
        `${x(one.ours.wall / two.ours.wall)} wall`,
        '≥ 1.60×',
        one.ours.wall / two.ours.wall >= 1.6,
      );
  }
  for (const p of presets) vsTorch(p, 2, 1.0, 'two threads: ours / PyTorch + OpenBLAS, 2 threads (wall)');
}

// ---- matmul at the step's shapes
const ms = readJson<{ worstRatioCpu: number; shapes: { shape: string; ratioCpu: number }[] }>(
  'matmul-shapes-monet-vd-small.json',
);
if (!ms) row('matmul ≥ 1.2× tfjs-backend-wasm at every step shape', DEFAULT, 'file missing', '≥ 1.20×', null);
else {
  const worst = ms.shapes.reduce((a, b) => (b.ratioCpu < a.ratioCpu ? b : a));
  const misses = ms.shapes.filter((s) => s.ratioCpu < 1.2).length;
  const measured =
    `smallest ${x(worst.ratioCpu)} CPU time (${worst.shape}); ` + `${ms.shapes.length} shapes, ${misses} below`;
  row('matmul / tfjs-backend-wasm at every step shape', DEFAULT, measured, '≥ 1.20×', misses === 0);
}

// ---- npm start
const ns = readJson<{ wallSeconds: number; verdict: string; command: string }>('npm-start.json');
if (!ns) row('`npm start` from a fresh clone', DEFAULT, 'file missing', '≤ 120 s, loss target met', null);
else {
  const lossMet = /target ≤ 0\.75: met/.test(ns.verdict);
  const full = !/--steps/.test(ns.command);
  row(
    '`npm start` from a fresh clone (400 steps)',
    DEFAULT,
    `${ns.wallSeconds.toFixed(1)} s wall; ${ns.verdict || 'no verdict line'}${full ? '' : ' (not the full run)'}`,
    '≤ 120 s, loss target met',
    full ? ns.wallSeconds <= 120 && lossMet : null,
  );
}

lines.push('', `${verdicts.filter((v) => v).length} of ${verdicts.length} measured targets met`);
const text = lines.join('\n');
console.log(text);
writeFileSync(join(dir, 'targets.md'), `${text}\n`);
