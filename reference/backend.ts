// The reference as a CaseBackend: each fixture kind is dispatched to its layer file's case runner
// (`run<Kind>Case(c, opts): TensorMap`, see reference/common.ts). Everything is float64 and synchronous; the
// Promise is only the CaseBackend contract's shape.

import { existsSync } from 'node:fs';
import type { CaseBackend, FixtureCase, RunOptions } from '../src/backend/case.ts';
import type { TensorMap } from '../src/tensor.ts';

type CaseRunner = (c: FixtureCase, opts?: RunOptions) => TensorMap;

/** Which file and export runs each kind. */
const RUNNERS: Record<string, [file: string, exportName: string]> = {
  'dense-ffn': ['./dense-ffn.ts', 'runDenseFfnCase'],
  smoe: ['./smoe.ts', 'runSmoeCase'],
  topk: ['./topk.ts', 'runTopkCase'],
  'topk-ffn': ['./topk-ffn.ts', 'runTopkFfnCase'],
  peer: ['./peer.ts', 'runPeerCase'],
  'monet-router': ['./monet-router.ts', 'runMonetRouterCase'],
  'monet-hd': ['./monet-hd.ts', 'runMonetHdCase'],
  'monet-vd': ['./monet-vd.ts', 'runMonetVdCase'],
  lm: ['./lm.ts', 'runLmCase'],
};

export class ReferenceBackend implements CaseBackend {
  readonly name = 'reference';
  constructor(private readonly runners: ReadonlyMap<string, CaseRunner>) {}
  supports(kind: string): boolean {
    return this.runners.has(kind);
  }
  async run(c: FixtureCase, opts?: RunOptions): Promise<TensorMap> {
    const r = this.runners.get(c.kind);
    if (!r) throw new Error(`reference backend: kind '${c.kind}' is not supported (supported: ${[...this.runners.keys()].join(', ')})`);
    return r(c, opts);
  }
}

/** Load every case runner that exists; a kind whose runner is missing is left out of `supports`. */
export async function createReferenceBackend(): Promise<ReferenceBackend> {
  const runners = new Map<string, CaseRunner>();
  for (const [kind, [file, name]] of Object.entries(RUNNERS)) {
    const url = new URL(file, import.meta.url);
    // A layer file (or its runner) that is not there yet means the kind is unsupported; a file that is there but
    // fails to load is an error, not a silent gap.
    if (!existsSync(url)) continue;
    const mod = (await import(url.href)) as Record<string, unknown>;
    const fn = mod[name];
    if (typeof fn === 'function') runners.set(kind, fn as CaseRunner);
  }
  return new ReferenceBackend(runners);
}
