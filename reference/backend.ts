// The reference as a CaseBackend: each fixture kind is dispatched to its layer file's case runner
// (`run<Kind>Case(c, opts): TensorMap`, see reference/common.ts). Everything is float64 and synchronous; the
// Promise is only the CaseBackend contract's shape.
//
// RUNNERS is typed by the list of fixture kinds (src/fixtures/kinds.ts), so a kind added to the contract without a
// reference runner is a compile error, not a silently unsupported kind.

import type { CaseBackend, FixtureCase, RunOptions } from '../src/backend/case.ts';
import type { FixtureKind } from '../src/fixtures/kinds.ts';
import type { TensorMap } from '../src/tensor.ts';
import { runDenseFfnCase } from './dense-ffn.ts';
import { runLmCase } from './lm.ts';
import { runMonetHdCase } from './monet-hd.ts';
import { runMonetRouterCase } from './monet-router.ts';
import { runMonetVdCase } from './monet-vd.ts';
import { runPeerCase } from './peer.ts';
import { runSmoeCase } from './smoe.ts';
import { runTopkFfnCase } from './topk-ffn.ts';
import { runTopkCase } from './topk.ts';

type CaseRunner = (c: FixtureCase, opts?: RunOptions) => TensorMap;

const RUNNERS: Record<FixtureKind, CaseRunner> = {
  'dense-ffn': runDenseFfnCase,
  smoe: runSmoeCase,
  topk: runTopkCase,
  'topk-ffn': runTopkFfnCase,
  peer: runPeerCase,
  'monet-router': runMonetRouterCase,
  'monet-hd': runMonetHdCase,
  'monet-vd': runMonetVdCase,
  lm: runLmCase,
};

export class ReferenceBackend implements CaseBackend {
  readonly name = 'reference';
  supports(kind: string): boolean {
    return Object.hasOwn(RUNNERS, kind);
  }
  async run(c: FixtureCase, opts?: RunOptions): Promise<TensorMap> {
    if (!this.supports(c.kind)) {
      throw new Error(
        `reference backend: unknown kind '${c.kind}' (expected one of ${Object.keys(RUNNERS).join(', ')})`,
      );
    }
    return RUNNERS[c.kind as FixtureKind](c, opts);
  }
}

export async function createReferenceBackend(): Promise<ReferenceBackend> {
  return new ReferenceBackend();
}
