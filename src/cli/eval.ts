// `monet eval --checkpoint <folder>`: validation loss of a trained run folder against the byte-unigram entropy, or
// the next-token cross-entropy of given ids / text under any model folder (a MonetLLM folder included).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FlagError, formatHelp, parseFlags, type FlagSpec, type FlagValues } from '../train/flags.ts';
import { THREADS_FLAG, threadsOf } from '../train/options.ts';
import { openRun } from '../train/run.ts';
import { loadSplits } from '../train/trainer.ts';
import { validationBatches } from '../train/data.ts';
import { isHfDir } from '../hf/dir-source.ts';
import { openHf } from '../hf/open.ts';
import type { BackendChoice } from '../train/options.ts';
import { BACKEND_FLAG, parseIds } from './sample.ts';

const FLAGS: FlagSpec[] = [
  { name: 'checkpoint', type: 'string', help: 'run folder written by monet train, or a MonetLLM folder' },
  { name: 'ids', type: 'list', help: 'token ids to score (mean next-token cross-entropy over them)' },
  { name: 'text', type: 'string', help: 'a text file to score (tokenized by the folder’s tokenizer)' },
  { name: 'data', type: 'list', help: "evaluate on the validation part of these text files instead of the run's data" },
  {
    name: 'batches',
    type: 'int',
    positive: true,
    help: "validation batches (of the run's batch size and sequence length)",
    default: "the run's --eval-batches",
  },
  BACKEND_FLAG,
  THREADS_FLAG,
  { name: 'json', type: 'bool', help: 'print one JSON object instead of text' },
];

/** Mean next-token CE of `ids` (one sequence, cut into windows of the model's positions). */
async function scoreIds(
  engine: { evalLoss(t: Int32Array, B: number, S: number, alpha: number): Promise<{ ce: number }> },
  ids: number[],
  maxPos: number,
  alpha: number,
): Promise<{ loss: number; predicted: number }> {
  if (ids.length < 2) throw new FlagError(`monet eval: need at least 2 token ids to score, found ${ids.length}`);
  let sum = 0;
  let predicted = 0;
  // windows overlap by one id so that every id after the first is predicted exactly once
  for (let start = 0; start < ids.length - 1; start += maxPos - 1) {
    const w = ids.slice(start, start + maxPos);
    if (w.length < 2) break;
    const r = await engine.evalLoss(Int32Array.from(w), 1, w.length, alpha);
    sum += r.ce * (w.length - 1);
    predicted += w.length - 1;
  }
  const loss = sum / predicted;
  finiteLoss(loss, 'the cross-entropy of the given ids');
  return { loss, predicted };
}

/**
 * A loss that is not finite means the model's outputs are not (weights too large for float32, or a forged file):
 * an error, never a "CE NaN" result with exit 0.
 */
function finiteLoss(v: number, what: string): void {
  if (!Number.isFinite(v))
    throw new Error(
      `${what} is ${v}: the model's outputs are not finite numbers (weights too large for float32, or a damaged ` +
        'or forged checkpoint)',
    );
}

async function evalHf(dir: string, f: FlagValues): Promise<void> {
  const hf = await openHf(dir, ((f.backend as string | undefined) ?? 'auto') as BackendChoice, threadsOf(f));
  try {
    let ids: number[];
    if (f.ids) ids = parseIds(f.ids as string[], hf.config.vocab_size, 'ids');
    else if (f.text) ids = Array.from((await hf.tokenizer()).encode(readFileSync(f.text as string, 'utf8')));
    else throw new FlagError('monet eval: a MonetLLM folder needs --ids 1,2,3,… or --text FILE to score');
    const { loss, predicted } = await scoreIds(hf.engine, ids, hf.config.max_position_embeddings, 1);
    const res = {
      checkpoint: dir,
      backend: hf.engine.name,
      loss,
      tokens: ids.length,
      predicted,
      perplexity: Math.exp(loss),
    };
    if (f.json) console.log(JSON.stringify(res));
    else
      console.log(
        `${dir} (${hf.engine.name}): next-token cross-entropy ${loss.toFixed(4)} nats/token over ${predicted} ` +
          `predictions (perplexity ${Math.exp(loss).toFixed(2)})`,
      );
  } finally {
    await hf.engine.dispose();
  }
}

async function evalRun(dir: string, f: FlagValues): Promise<void> {
  const run = await openRun(dir, (f.backend as 'auto') ?? 'auto', threadsOf(f));
  for (const w of run.warnings) console.error(`monet eval: warning: ${w}`);
  try {
    if (f.ids || f.text) {
      const ids = f.ids
        ? parseIds(f.ids as string[], run.config.vocab_size, 'ids')
        : Array.from(run.tokenizer.encode(readFileSync(f.text as string, 'utf8')));
      const { loss, predicted } = await scoreIds(run.engine, ids, run.config.max_position_embeddings, run.alpha);
      const res = { checkpoint: dir, backend: run.engine.name, loss, tokens: ids.length, predicted };
      if (f.json) console.log(JSON.stringify(res));
      else
        console.log(
          `${dir} (${run.engine.name}): next-token cross-entropy ${loss.toFixed(4)} nats/token ` +
            `over ${predicted} predictions`,
        );
      return;
    }
    if (!run.hasRunJson)
      throw new Error(
        `${join(dir, 'run.json')} does not exist: validation uses the run's batch size and sequence length, which ` +
          'monet train records there (or pass --ids / --text to score given text)',
      );
    const data = (f.data as string[] | undefined) ?? run.options.data;
    const splits = loadSplits(data, run.options.tokenizer);
    const B = run.options.batchSize;
    const S = run.options.seqLen;
    const batches = validationBatches(
      splits.validation,
      B,
      S,
      (f.batches as number | undefined) ?? run.options.evalBatches,
    );
    let ce = 0;
    let loss = 0;
    for (const b of batches) {
      const r = await run.engine.evalLoss(b, B, S, run.alpha);
      ce += r.ce / batches.length;
      loss += r.loss / batches.length;
    }
    finiteLoss(ce, 'the validation cross-entropy');
    finiteLoss(loss, 'the validation loss');
    const H = splits.entropy;
    const res = {
      checkpoint: run.dir,
      backend: run.engine.name,
      step: run.step,
      windows: batches.length * B,
      seq_len: S,
      val_ce: ce,
      val_loss_with_aux: loss,
      unigram_entropy: H,
      ratio: ce / H,
    };
    if (f.json) console.log(JSON.stringify(res));
    else {
      console.log(
        `${run.dir} (step ${run.step}, ${run.engine.name}): validation CE ${ce.toFixed(4)} nats/token ` +
          `over ${batches.length * B} windows of ${S}` +
          `${loss !== ce ? ` (with aux terms ${loss.toFixed(4)})` : ''}`,
      );
      console.log(
        `byte-unigram entropy of the validation split ${H.toFixed(4)} nats (${(H / Math.LN2).toFixed(3)} bits); ` +
          `ratio ${(ce / H).toFixed(3)}`,
      );
    }
  } finally {
    await run.engine.dispose();
  }
}

export async function evalCommand(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    console.log(formatHelp('Usage: monet eval --checkpoint <folder> [options]', FLAGS));
    return 0;
  }
  try {
    const f = parseFlags('eval', FLAGS, args);
    if (!f.checkpoint)
      throw new FlagError(
        'monet eval: --checkpoint <run folder> is required (e.g. runs/monet-vd-small-run; a MonetLLM folder works too)',
      );
    if (f.ids && f.text) throw new FlagError('monet eval: give --ids or --text, not both');
    const dir = f.checkpoint as string;
    if (await isHfDir(dir)) await evalHf(dir, f);
    else await evalRun(dir, f);
    return 0;
  } catch (e) {
    console.error(e instanceof FlagError ? e.message : `monet eval: ${(e as Error).message}`);
    return e instanceof FlagError ? 2 : 1;
  }
}
