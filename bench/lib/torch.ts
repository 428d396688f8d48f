// The PyTorch peers of the benchmarks: finding a Python that has torch, starting it with the thread counts asked
// for, and reading what it really ran on (bench/lib/torch_env.py: version, threads, the BLAS library loaded).
//
// Finding torch: $MONET_PYTHON if set, else `python3` on PATH, else /usr/bin/python3 — the first that imports torch
// (on this project's machine the pyenv python3 on PATH has no torch and Debian's /usr/bin/python3 does). Missing
// torch is not an error: the PyTorch rows are then absent and the reason is recorded.
//
// Threads: PyTorch's own threads (torch.set_num_threads, OMP_NUM_THREADS) and, behind Debian's generic BLAS
// interface, OpenBLAS's separate pool (OPENBLAS_NUM_THREADS, read when the library loads): both are set to the
// same count in the child's environment, and the child reports both back.
//
// Reference BLAS: a PyTorch that calls netlib's reference BLAS (Debian's libblas3 without libopenblas0-pthread) is
// no peer: ratios against it are refused unless asked for, and then labelled (`blasVerdict`).

import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface TorchSpec {
  threads: number;
  matmul?: number[];
  dense?: { T: number; d: number; F: number };
  topk?: { T: number; d: number; F: number; k: number };
  seconds: number;
}

/** bench/lib/torch_env.py's report. */
export interface TorchEnv {
  torch: string;
  threads: number;
  blas: { kind: string; library: string; build: string; threads: number | null; core?: string | null };
  env: Record<string, string | null>;
}

export interface TorchResult extends TorchEnv {
  matmul: { n: number; median_s: number; min_s: number; cpu_s: number; samples: number }[];
  layers: { layer: string; median_s: number; min_s: number; cpu_s: number; samples: number }[];
}

const SCRIPT = fileURLToPath(new URL('./torch_native.py', import.meta.url));

let found: { python: string; version: string } | { error: string } | undefined;

/** The first Python that imports torch (see the header), with torch's version; or why none does. */
export function findTorchPython(): { python: string; version: string } | { error: string } {
  if (found) return found;
  const candidates = process.env.MONET_PYTHON ? [process.env.MONET_PYTHON] : ['python3', '/usr/bin/python3'];
  const tried: string[] = [];
  for (const py of candidates) {
    const r = spawnSync(py, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8', timeout: 60_000 });
    if (r.status === 0) {
      found = { python: py, version: r.stdout.trim() };
      return found;
    }
    tried.push(`${py}: ${r.error ? r.error.message : (r.stderr || '').trim().split('\n').pop()}`);
  }
  found = { error: `no Python with torch found (${tried.join('; ')}); set MONET_PYTHON` };
  return found;
}

/**
 * The child environment for `threads` PyTorch threads (0 = PyTorch's default): its own (OpenMP) threads and the
 * BLAS's. `torchThreads` sets PyTorch's own separately (e.g. 1, leaving the threads to the BLAS).
 */
export function torchThreadEnv(threads: number, torchThreads = threads): NodeJS.ProcessEnv {
  if (threads <= 0) return process.env;
  const n = String(threads);
  return { ...process.env, OMP_NUM_THREADS: String(torchThreads), OPENBLAS_NUM_THREADS: n, MKL_NUM_THREADS: n };
}

/** One line naming what a PyTorch row ran on. */
export function describeTorch(t: TorchEnv): string {
  const blasThreads = t.blas.threads === null ? '' : `, ${t.blas.threads} BLAS thread(s)`;
  const core = t.blas.core ? `, ${t.blas.core} kernels` : '';
  return `PyTorch ${t.torch}, ${t.threads} thread(s)${blasThreads}, ${t.blas.kind}${core} (${t.blas.library})`;
}

/**
 * Whether a ratio against this PyTorch may be printed: not against netlib's reference BLAS (unoptimised Fortran,
 * no peer), unless `allowReference`, and then with a label that says so.
 */
export function blasVerdict(t: TorchEnv, allowReference: boolean): { ratio: boolean; label: string } {
  if (!/netlib reference/i.test(t.blas.kind)) return { ratio: true, label: '' };
  const label =
    '*** PyTorch here calls netlib REFERENCE BLAS (unoptimised): NOT a peer; ' +
    'install libopenblas0-pthread (docs/perf.md) ***';
  return { ratio: allowReference, label };
}

export function runTorch(spec: TorchSpec): TorchResult | { error: string } {
  const py = findTorchPython();
  if ('error' in py) return py;
  const r = spawnSync(py.python, [SCRIPT, JSON.stringify(spec)], {
    encoding: 'utf8',
    timeout: 180_000,
    env: torchThreadEnv(spec.threads),
  });
  if (r.error) return { error: `${py.python}: ${r.error.message}` };
  if (r.status !== 0)
    return { error: `${py.python} ${SCRIPT} exited with ${r.status}: ${(r.stderr || '').trim().split('\n').pop()}` };
  try {
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as TorchResult;
  } catch {
    return { error: `${py.python}: expected one JSON line on stdout, found ${JSON.stringify(r.stdout.slice(0, 200))}` };
  }
}
