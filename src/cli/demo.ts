// `monet demo`: forward and backward of a tiny float64 reference LM with every feed-forward kind the reference
// supports (the examples of src/kinds/examples.ts), printing the loss and a finite-difference gradient check per
// kind, and one verdict line. Exit 1 if any check fails.

import { zerosLike } from '../../reference/common.ts';
import { gradCheck } from '../../reference/gradcheck.ts';
import { lmBackward, lmForward } from '../../reference/lm.ts';
import { Rng } from '../../reference/rng.ts';
import { drawWithMargin, lmMargin } from '../fixtures/margins.ts';
import { lmExampleConfigs, TINY_LM_BASE } from '../kinds/examples.ts';
import { initLm, lmParams, parseLm } from '../kinds/lm.ts';
import { numel } from '../kinds/tensors.ts';
import { SEED_MAX } from '../train/rng.ts';

const HELP = `monet demo — run a tiny float64 LM forward and backward with each feed-forward kind, check gradients

Usage: monet demo [--seed N] [--samples N]

  --seed N      seed for weights and tokens (default 1)
  --samples N   entries checked by finite differences per parameter tensor (default 3)

For every feed-forward kind of the reference LM (the examples in src/kinds/examples.ts) this draws a tiny model
(B=2 sequences of S=6 tokens, vocabulary 11, d=8, 3 layers), away from routing boundaries, computes the loss and
every gradient with the hand-written backward, and compares sampled entries of every parameter tensor with central
finite differences. A kind passes when the worst relative error is ≤ 1e-6. Exit code 0 when all pass, 1 otherwise.`;

const TOL = 1e-6;

function parseArgs(args: string[]): { seed: number; samples: number } | 'help' {
  const opts = { seed: 1, samples: 3 };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--help' || a === '-h') return 'help';
    if (a !== '--seed' && a !== '--samples')
      throw new Error(`monet demo: unknown option '${a}'; expected --seed N, --samples N or --help`);
    const raw = args[++i] ?? '';
    const v = Number(raw);
    // decimal digits only (Number() would also read 0x10, 1e3 or ' 7 ')
    if (
      !/^\d+$/.test(raw) ||
      !Number.isSafeInteger(v) ||
      v < (a === '--seed' ? 0 : 1) ||
      (a === '--seed' && v > SEED_MAX)
    )
      throw new Error(
        `monet demo: ${a} expects an integer ${a === '--seed' ? `in [0, ${SEED_MAX}]` : '≥ 1'} ` +
          `in decimal digits, found '${raw}'`,
      );
    if (a === '--seed') opts.seed = v;
    else opts.samples = v;
  }
  return opts;
}

export async function demo(args: string[]): Promise<number> {
  let opts: ReturnType<typeof parseArgs>;
  try {
    opts = parseArgs(args);
  } catch (e) {
    console.error((e as Error).message);
    return 2;
  }
  if (opts === 'help') {
    console.log(HELP);
    return 0;
  }
  const [B, S] = [2, 6];
  console.log(
    `monet demo: tiny float64 LM (B=${B}, S=${S}, V=${TINY_LM_BASE.vocab_size}, d=${TINY_LM_BASE.hidden_size}, ` +
      `${TINY_LM_BASE.num_hidden_layers} layers), seed ${opts.seed}`,
  );
  console.log(
    `${'feed-forward'.padEnd(34)}${'params'.padStart(7)}  ${'loss'.padEnd(9)} ${'aux'.padEnd(28)} ` +
      `${'grad check'.padEnd(28)} verdict`,
  );
  let failed = 0;
  let count = 0;
  let worstAll = 0;
  for (const ex of lmExampleConfigs()) {
    count++;
    const label = ex.label.startsWith(ex.ffn) ? ex.label : `${ex.ffn}: ${ex.label}`;
    try {
      const m = parseLm(ex.config, `demo ${label}`);
      const rng = new Rng(opts.seed);
      // O(1) weights so that every path matters; re-draw until every routing decision has a margin ≥ 1e-3.
      const { value } = drawWithMargin(
        () => ({ ...initLm(m, rng, 0.5), tokens: rng.ints(B * S, m.V) }),
        (d) => lmMargin(m, d.params, lmForward(m, d.params, d.tokens, B, S, d.state)),
      );
      const { params, state, tokens } = value;
      const fwd = lmForward(m, params, tokens, B, S, state);
      const grads = zerosLike(params);
      lmBackward(m, params, fwd, grads);
      const results = gradCheck(
        () => lmForward(m, params, tokens, B, S, state).loss,
        Object.keys(params).map((name) => ({ name, value: params[name], grad: grads[name] })),
        { sample: opts.samples, pick: (n) => rng.int(n) },
      );
      const worst = results.reduce((a, r) => (r.relError > a.relError ? r : a));
      const ok = worst.relError <= TOL && Number.isFinite(fwd.loss);
      worstAll = Math.max(worstAll, worst.relError);
      if (!ok) failed++;
      let nParams = 0;
      for (const s of lmParams(m)) nParams += numel(s.shape);
      const aux =
        Object.entries(fwd.aux)
          .map(([k, v]) => `${k} ${v.toFixed(4)}`)
          .join(', ') || '–';
      const check = `worst rel err ${worst.relError.toExponential(1)}`;
      console.log(
        `${label.padEnd(34)}${String(nParams).padStart(7)}  ${fwd.loss.toFixed(5).padEnd(9)} ${aux.padEnd(28)} ` +
          `${check.padEnd(28)} ${ok ? 'ok' : `FAIL (${worst.name})`}`,
      );
    } catch (e) {
      failed++;
      console.log(`${label.padEnd(34)} FAIL: ${(e as Error).message}`);
    }
  }
  if (failed === 0)
    console.log(
      `verdict: PASS — all ${count} feed-forward configurations match finite differences (worst relative error ` +
        `${worstAll.toExponential(1)} ≤ ${TOL.toExponential(0)})`,
    );
  else
    console.log(
      `verdict: FAIL — ${failed} of ${count} feed-forward configurations failed the gradient check (tolerance ` +
        `${TOL.toExponential(0)})`,
    );
  return failed === 0 ? 0 : 1;
}
