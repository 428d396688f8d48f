// Tokens/s of one training step (forward, backward, gradient clipping, AdamW, loss read back) of the trainable
// `monet train` presets on our WASM backend, against the same model in PyTorch eager on the same CPU, with the
// same number of threads, measured in the same run.
//
//   node --import tsx bench/train-step.ts [--preset NAME[,NAME…] | --all] [--threads 1,2] [--steps 4] [--warmup 2]
//     [--rounds 3] [--batch-size 16] [--seq-len 128] [--alpha 0.5] [--torch-own-threads N,1] [--out FILE]
//     [--allow-reference-blas]
//
// Both sides start from the same parameters and the same batch (written to a temp folder as safetensors); the
// step-0 losses are printed side by side as the check that they run the same model. For each thread count the
// sides run in alternating rounds (ours, PyTorch, ours, …) and each keeps its best round: on a shared machine the
// load changes from minute to minute. Every figure is given twice: by wall clock and by process CPU time (all of a
// process's threads; on a busy machine CPU time is the compute a side needed, wall time what it got).
// PyTorch is found and described by bench/lib/torch.ts (version, threads, the BLAS library really loaded); a ratio
// against netlib's reference BLAS is refused unless --allow-reference-blas, and then labelled.
// PyTorch's threads: its BLAS (OpenBLAS's own pool) always gets the N threads of the row; PyTorch's own (OpenMP)
// threads default to N as well, which is what a user gets, but OpenMP's spinning workers and OpenBLAS's pool then
// share the same cores: --torch-own-threads N,1 also times one own thread driving the N-thread BLAS, one row each,
// so that the peer is PyTorch's faster setting. A setting more than DROP_SLOWER times slower than the other after a
// round is not timed again (it is not the peer; its rounds are given in the table).
// Writes the tables and every number (machine, load before and after, versions) to --out (default
// bench/results/train-step.{md,json}). Not a test: timings are machine-dependent.

import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { serializeSafetensors } from '../src/safetensors.ts';
import { saveModel, type HostParams } from '../src/train/checkpoint.ts';
import { loadBrown } from '../src/train/corpus.ts';
import { BatchSampler, tokenizeDocs } from '../src/train/data.ts';
import type { Engine } from '../src/train/engine.ts';
import { createEngine } from '../src/train/engines.ts';
import { parseFlags, type FlagSpec } from '../src/train/flags.ts';
import { initParams } from '../src/train/init.ts';
import { getPreset, paramBreakdown, formatCount, PRESETS, type ModelConfig } from '../src/train/presets.ts';
import { ByteTokenizer } from '../src/train/tokenizer.ts';
import { relaxedSimdSupported } from '../src/backend/wasm/device.ts';
import { enableRelaxedSimd, readWasmBytes } from '../src/backend/wasm/node.ts';
import { finishMachineInfo, machineInfo } from './lib/machine.ts';
import { blasVerdict, describeTorch, findTorchPython, torchThreadEnv, type TorchEnv } from './lib/torch.ts';

const FLAGS: FlagSpec[] = [
  { name: 'preset', type: 'list', help: 'trainable presets (default monet-vd-small)' },
  { name: 'all', type: 'bool', help: 'every trainable preset' },
  { name: 'threads', type: 'list', help: 'thread counts, each run for both sides (default 1)' },
  { name: 'steps', type: 'int', positive: true, help: 'timed steps per round (default 4)' },
  { name: 'warmup', type: 'int', positive: true, help: 'untimed steps first (default 2)' },
  { name: 'rounds', type: 'int', positive: true, help: 'alternating rounds; each side keeps its best (default 3)' },
  { name: 'batch-size', type: 'int', positive: true, help: 'sequences per step (default 16)' },
  { name: 'seq-len', type: 'int', min: 2, help: 'tokens per sequence (default 128)' },
  { name: 'alpha', type: 'float', min: 0, help: 'TopK α of every step (default 0.5)' },
  { name: 'out', type: 'string', help: 'output path without extension (default bench/results/train-step)' },
  { name: 'allow-reference-blas', type: 'bool', help: 'print ratios against netlib reference BLAS (labelled)' },
  {
    name: 'torch-own-threads',
    type: 'list',
    help:
      "PyTorch's own (OpenMP) thread counts to try beside its BLAS's N, each a row ('N' = the same as the BLAS; " +
      "'N,1' also times one own thread driving an N-thread BLAS; default N)",
  },
];

const f = parseFlags('bench/train-step.ts', FLAGS, process.argv.slice(2));
const presets = f.all
  ? PRESETS.filter((p) => p.trainable).map((p) => p.name)
  : ((f.preset as string[] | undefined) ?? ['monet-vd-small']);
const threadCounts = ((f.threads as string[] | undefined) ?? ['1']).map((t) => {
  const n = Number(t);
  if (!Number.isInteger(n) || n < 1)
    throw new Error(`bench/train-step.ts: --threads expects positive integers, found '${t}'`);
  return n;
});
const steps = (f.steps as number | undefined) ?? 4;
const warmup = (f.warmup as number | undefined) ?? 2;
const rounds = (f.rounds as number | undefined) ?? 3;
const B = (f['batch-size'] as number | undefined) ?? 16;
const S = (f['seq-len'] as number | undefined) ?? 128;
const alpha = (f.alpha as number | undefined) ?? 0.5;
const out = (f.out as string | undefined) ?? 'bench/results/train-step';
const allowReference = Boolean(f['allow-reference-blas']);
const torchOwnThreads = ((f['torch-own-threads'] as string[] | undefined) ?? ['N']).map((t) => {
  if (t === 'N') return Infinity;
  const n = Number(t);
  if (!Number.isInteger(n) || n < 1)
    throw new Error(`bench/train-step.ts: --torch-own-threads expects 'N' or positive integers, found '${t}'`);
  return n;
});
/** PyTorch's own thread counts to time beside a BLAS on `threads` threads (each at most `threads`, no repeats). */
const ownThreadsFor = (threads: number) => [...new Set(torchOwnThreads.map((t) => Math.min(t, threads)))];
const LR = 3e-3;

interface Side {
  wall: number; // best seconds per step by wall clock
  cpu: number; // best process CPU seconds per step
}
interface Row {
  preset: string;
  parameters: number;
  threads: number;
  ours: Side & { name: string; loss0: number };
  torch: (Side & { loss0: number; env: TorchEnv; rounds: number }) | { error: string };
}
/** A PyTorch thread setting this many times slower than the other one after a round is not timed again. */
const DROP_SLOWER = 2;

const bytes = readWasmBytes();
enableRelaxedSimd();
const machine = machineInfo(WebAssembly.validate(bytes.plain), relaxedSimdSupported(bytes.relaxed));
const py = findTorchPython();
const docs = tokenizeDocs(loadBrown().train.slice(0, 20), new ByteTokenizer()).tokens;
const batch = new BatchSampler(docs, B, S, 3).next();
const cpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
const hp = (i: number) => ({
  lr: LR,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  weightDecay: 0.1,
  clip: 1,
  step: i + 1,
  alpha,
});

/** The model and batch as files for the PyTorch side. */
function writeCase(config: ModelConfig, params: HostParams, state: HostParams): string {
  const dir = mkdtempSync(join(tmpdir(), 'monet-bench-'));
  const f32 = (m: HostParams) => new Map([...m].map(([k, v]) => [k, Float32Array.from(v)]));
  saveModel(dir, config, 'bytes', f32(params), f32(state));
  writeFileSync(
    join(dir, 'batch.safetensors'),
    serializeSafetensors(new Map([['tokens', { dtype: 'I32', shape: [B, S], data: batch }]])),
  );
  return dir;
}

async function timeOurs(engine: Engine, stepNo: { n: number }): Promise<Side> {
  const t0 = performance.now();
  const c0 = cpuSeconds();
  for (let i = 0; i < steps; i++) await engine.trainStep([batch], B, S, hp(stepNo.n++), true);
  return { wall: (performance.now() - t0) / 1000 / steps, cpu: (cpuSeconds() - c0) / steps };
}

function timeTorch(
  dir: string,
  blasThreads: number,
  threads: number,
): (Side & { loss0: number; env: TorchEnv }) | { error: string } {
  if ('error' in py) return py;
  const args = ['bench/train_step_torch.py', dir, '--steps', String(steps), '--warmup', String(warmup)];
  args.push('--threads', String(threads), '--lr', String(LR), '--alpha', String(alpha));
  const env = torchThreadEnv(blasThreads, threads);
  const r = spawnSync(py.python, args, { encoding: 'utf8', env, timeout: 1_800_000 });
  if (r.status !== 0)
    return { error: `${py.python} bench/train_step_torch.py exited with ${r.status}: ${(r.stderr || '').trim()}` };
  const j = JSON.parse(r.stdout.trim().split('\n').pop()!) as TorchEnv & {
    loss0: number;
    seconds_per_step: number;
    cpu_seconds_per_step: number;
  };
  return { wall: j.seconds_per_step, cpu: j.cpu_seconds_per_step, loss0: j.loss0, env: j };
}

const rows: Row[] = [];
for (const preset of presets) {
  const p = getPreset(preset);
  if (!p.trainable) throw new Error(`bench/train-step.ts: preset ${preset} is not trainable here`);
  const config = p.config;
  if (S > config.max_position_embeddings) config.max_position_embeddings = S;
  const { params, state } = initParams(config, 1);
  const dir = writeCase(config, params, state);
  for (const threads of threadCounts) {
    const { engine } = await createEngine('wasm', { config, params, state }, { threads });
    const stepNo = { n: 0 };
    const r0 = await engine.trainStep([batch], B, S, hp(stepNo.n++), true);
    for (let i = 1; i < warmup; i++) await engine.trainStep([batch], B, S, hp(stepNo.n++), true);
    let ours: Side = { wall: Infinity, cpu: Infinity };
    const owns = ownThreadsFor(threads);
    const torch = new Map<number, Row['torch']>();
    for (let r = 0; r < rounds; r++) {
      const o = await timeOurs(engine, stepNo);
      ours = { wall: Math.min(ours.wall, o.wall), cpu: Math.min(ours.cpu, o.cpu) };
      const fastest = Math.min(...[...torch.values()].map((t) => ('error' in t ? Infinity : t.wall)));
      for (const own of owns) {
        const prev = torch.get(own);
        if (prev && ('error' in prev || prev.wall > DROP_SLOWER * fastest)) continue; // no peer: not re-timed
        const t = timeTorch(dir, threads, own);
        if ('error' in t || !prev) torch.set(own, 'error' in t ? t : { ...t, rounds: 1 });
        else
          torch.set(own, {
            ...prev,
            wall: Math.min(prev.wall, t.wall),
            cpu: Math.min(prev.cpu, t.cpu),
            rounds: prev.rounds + 1,
          });
      }
    }
    for (const own of owns)
      rows.push({
        preset,
        parameters: paramBreakdown(config).total,
        threads,
        ours: { ...ours, name: engine.name, loss0: r0!.loss },
        torch: torch.get(own)!,
      });
    await engine.dispose();
    console.error(`${preset}, ${threads} thread(s): done (load ${loadavg()[0].toFixed(2)})`);
  }
  rmSync(dir, { recursive: true, force: true });
}
finishMachineInfo(machine);

// ---- report
const lines: string[] = [];
const tps = (sec: number) => Math.round((B * S) / sec).toLocaleString('en-US');
const torchRuns = rows
  .map((r) => r.torch)
  .filter((t): t is Exclude<Row['torch'], { error: string }> => !('error' in t));
const torchEnv = torchRuns[0];
const verdict = torchEnv ? blasVerdict(torchEnv.env, allowReference) : { ratio: false, label: '' };
const ratio = (ours: number, theirs: number) =>
  verdict.ratio ? `${(theirs / ours).toFixed(2)}×${verdict.label ? ' (reference BLAS!)' : ''}` : 'refused';
const cells = (c: (string | number)[]) => `| ${c.join(' | ')} |`;
lines.push(`node --import tsx bench/train-step.ts ${process.argv.slice(2).join(' ')}`);
lines.push(`${new Date().toISOString()}; ${machine.cpuModel}, ${machine.logicalCores} logical CPUs`);
lines.push(`load average: ${machine.loadAvgStart.join(' ')} at start, ${machine.loadAvgEnd!.join(' ')} at end`);
lines.push(`Node ${machine.node} (V8 ${machine.v8}); ours: ${[...new Set(rows.map((r) => r.ours.name))].join(', ')}`);
for (const d of new Set(torchRuns.map((t) => describeTorch(t.env))))
  lines.push(`${d}; ${'python' in py ? py.python : ''}`);
if (torchEnv) {
  const envs = [...new Set(torchRuns.map((t) => JSON.stringify(t.env.env)))].join('; ');
  lines.push(`PyTorch thread environment per run: ${envs}`);
} else lines.push(`PyTorch: ${'error' in py ? py.error : 'failed'}`);
if (verdict.label) lines.push(verdict.label);
lines.push(
  `batch ${B} × ${S} = ${B * S} tokens per step; best of ${rounds} alternating rounds of ${steps} steps ` +
    `after ${warmup} warm-up steps; TopK α ${alpha}`,
);
lines.push('');
lines.push(
  cells([
    'preset',
    'parameters',
    'threads',
    'PyTorch threads (own / BLAS)',
    'ours tok/s (wall)',
    'PyTorch tok/s (wall)',
    'ratio (wall)',
    'ours tok/s (CPU time)',
    'PyTorch tok/s (CPU time)',
    'ratio (CPU time)',
    'step-0 loss ours / PyTorch',
  ]),
);
lines.push(cells(Array(11).fill('---')));
for (const r of rows) {
  const t = r.torch;
  const head = [r.preset, formatCount(r.parameters), r.threads];
  if ('error' in t) {
    const tail = [tps(r.ours.cpu), '–', '–', `${r.ours.loss0.toFixed(5)} / –`];
    lines.push(cells([...head, '–', tps(r.ours.wall), '–', '–', ...tail]));
    continue;
  }
  const same = Math.abs(r.ours.loss0 - t.loss0) <= 1e-3 * Math.abs(t.loss0) ? '' : ' **MISMATCH**';
  lines.push(
    cells([
      ...head,
      `${t.env.threads} / ${t.env.blas.threads ?? '?'}${t.rounds < rounds ? ` (dropped after ${t.rounds})` : ''}`,
      tps(r.ours.wall),
      tps(t.wall),
      ratio(r.ours.wall, t.wall),
      tps(r.ours.cpu),
      tps(t.cpu),
      ratio(r.ours.cpu, t.cpu),
      `${r.ours.loss0.toFixed(5)} / ${t.loss0.toFixed(5)}${same}`,
    ]),
  );
}
if (threadCounts.length > 1) {
  lines.push('');
  lines.push('Scaling from 1 thread (wall tokens/s; needs a quiet machine to mean anything):');
  lines.push('');
  lines.push('| preset | threads | ours × its 1-thread | PyTorch × its 1-thread |');
  lines.push('|---|---|---|---|');
  for (const r of rows.filter((q) => q.threads > 1)) {
    const one = rows.find((q) => q.preset === r.preset && q.threads === 1);
    if (!one) continue;
    const t1 = one.torch;
    const tn = r.torch;
    const torchScale = 'error' in t1 || 'error' in tn ? '–' : `${(t1.wall / tn.wall).toFixed(2)}×`;
    const own = 'error' in tn ? '' : ` (own ${tn.env.threads} / BLAS ${tn.env.blas.threads ?? '?'})`;
    const oursScale = `${(one.ours.wall / r.ours.wall).toFixed(2)}×`;
    lines.push(`| ${r.preset} | ${r.threads} | ${oursScale} | ${torchScale}${own} |`);
  }
}
const text = lines.join('\n');
console.log(text);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(`${out}.md`, `${text}\n`);
const json = { command: lines[0], machine, B, S, steps, warmup, rounds, alpha, rows };
writeFileSync(`${out}.json`, `${JSON.stringify(json, null, 2)}\n`);
console.error(`wrote ${out}.md and ${out}.json`);
