// Machine information recorded with every benchmark run (bench/results/*.json, docs/perf.md): what the figures
// were measured on, and how busy the machine was (load average before and after: other processes share the cores).

import { execFileSync } from 'node:child_process';
import { cpus, loadavg, totalmem } from 'node:os';

export interface MachineInfo {
  cpuModel: string; // `lscpu` "Model name" (os.cpus() where lscpu is absent)
  logicalCores: number;
  totalMemoryGiB: number;
  node: string;
  v8: string;
  platform: string;
  wasmSimd: boolean; // our SIMD kernel build validates
  wasmRelaxedSimd: boolean; // relaxed-SIMD build validates (Node 20: after --experimental-wasm-relaxed-simd)
  /** Filled in by the suites that open them. */
  webgpuAdapter?: string;
  gpujsModes?: string[];
  tfjs?: string;
  torch?: string;
  loadAvgStart: number[];
  loadAvgEnd?: number[];
}

function lscpuModel(): string | null {
  try {
    const out = execFileSync('lscpu', { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const line = out.split('\n').find((l) => /^Model name:/.test(l));
    return line ? line.replace(/^Model name:\s*/, '').trim() : null;
  } catch {
    return null;
  }
}

/** `simdValidates`, `relaxedValidates`: whether the engine validates our plain-SIMD and relaxed-SIMD kernel builds. */
export function machineInfo(simdValidates: boolean, relaxedValidates: boolean): MachineInfo {
  return {
    cpuModel: lscpuModel() ?? cpus()[0]?.model ?? 'unknown',
    logicalCores: cpus().length,
    totalMemoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    v8: process.versions.v8,
    platform: `${process.platform} ${process.arch}`,
    wasmSimd: simdValidates,
    wasmRelaxedSimd: relaxedValidates,
    loadAvgStart: loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

export function finishMachineInfo(m: MachineInfo): void {
  m.loadAvgEnd = loadavg().map((x) => Math.round(x * 100) / 100);
}
