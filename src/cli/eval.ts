// `monet eval --checkpoint <run folder>`: validation loss of a trained model against the byte-unigram entropy.

import { FlagError, formatHelp, parseFlags, type FlagSpec } from '../train/flags.ts';
import { openRun } from '../train/run.ts';
import { loadSplits } from '../train/trainer.ts';
import { validationBatches } from '../train/data.ts';

const FLAGS: FlagSpec[] = [
  { name: 'checkpoint', type: 'string', help: 'run folder written by monet train' },
  { name: 'data', type: 'list', help: "evaluate on the validation part of these text files instead of the run's data" },
  {
    name: 'batches',
    type: 'int',
    positive: true,
    help: "validation batches (of the run's batch size and sequence length)",
    default: "the run's --eval-batches",
  },
  {
    name: 'backend',
    type: 'string',
    choices: ['auto', 'webgpu', 'wasm', 'reference', 'js'],
    help: 'where to run the model',
    default: 'auto',
  },
  { name: 'json', type: 'bool', help: 'print one JSON object instead of text' },
];

export async function evalCommand(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    console.log(formatHelp('Usage: monet eval --checkpoint <run folder> [options]', FLAGS));
    return 0;
  }
  try {
    const f = parseFlags('eval', FLAGS, args);
    if (!f.checkpoint)
      throw new FlagError('monet eval: --checkpoint <run folder> is required (e.g. runs/monet-vd-small-run)');
    const run = await openRun(f.checkpoint as string, (f.backend as 'auto') ?? 'auto');
    try {
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
          `${run.dir} (step ${run.step}, ${run.engine.name}): validation CE ${ce.toFixed(4)} nats/token over ${batches.length * B} windows of ${S}` +
            `${loss !== ce ? ` (with aux terms ${loss.toFixed(4)})` : ''}`,
        );
        console.log(
          `byte-unigram entropy of the validation split ${H.toFixed(4)} nats (${(H / Math.LN2).toFixed(3)} bits); ratio ${(ce / H).toFixed(3)}`,
        );
      }
    } finally {
      await run.engine.dispose();
    }
    return 0;
  } catch (e) {
    console.error(e instanceof FlagError ? e.message : `monet eval: ${(e as Error).message}`);
    return e instanceof FlagError ? 2 : 1;
  }
}
