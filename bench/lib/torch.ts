// Runs bench/lib/torch_native.py (PyTorch on the CPU, its own process) for the native reference rows.
// Debian's /usr/bin/python3 carries torch on this machine (the pyenv python3 on PATH does not); MONET_PYTHON
// overrides it. Missing torch is not an error: the rows are then absent and the reason is recorded.

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface TorchSpec {
  threads: number;
  matmul?: number[];
  dense?: { T: number; d: number; F: number };
  topk?: { T: number; d: number; F: number; k: number };
  seconds: number;
}
export interface TorchResult {
  torch: string;
  threads: number;
  blas: string; // BLAS_INFO of the build and, for 'generic', the system library it resolves to
  matmul: { n: number; median_s: number; min_s: number; cpu_s: number; samples: number }[];
  layers: { layer: string; median_s: number; min_s: number; cpu_s: number; samples: number }[];
}

const SCRIPT = fileURLToPath(new URL('./torch_native.py', import.meta.url));

export function pythonWithTorch(): string {
  return process.env.MONET_PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
}

export function runTorch(spec: TorchSpec): TorchResult | { error: string } {
  const py = pythonWithTorch();
  const r = spawnSync(py, [SCRIPT, JSON.stringify(spec)], { encoding: 'utf8', timeout: 180_000 });
  if (r.error) return { error: `${py}: ${r.error.message}` };
  if (r.status !== 0)
    return { error: `${py} ${SCRIPT} exited with ${r.status}: ${(r.stderr || '').trim().split('\n').pop()}` };
  try {
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as TorchResult;
  } catch {
    return { error: `${py}: expected one JSON line on stdout, found ${JSON.stringify(r.stdout.slice(0, 200))}` };
  }
}
