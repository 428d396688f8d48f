// `monet train`: train a small LM (Monet-VD by default) on the Brown corpus, on WebGPU when an adapter exists, else
// WASM. See docs/training.md.

import { FlagError, formatHelp, parseFlags } from '../train/flags.ts';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { defaultRunName, resolveModel, resolveTrainOptions, TRAIN_DEFAULTS, TRAIN_FLAGS } from '../train/options.ts';
import { PRESETS } from '../train/presets.ts';
import { describeModel, train } from '../train/trainer.ts';

const USAGE = `Usage: monet train [options]

Trains a language model on the Brown corpus (or --data files) and writes a run folder <runs-dir>/<name>/ with
config.json, model.safetensors, trainer_state.safetensors, log.jsonl, loss.svg and run.json.
Examples:
  monet train                                   # Monet-VD small, best backend, a few minutes on 2 CPU cores
  monet train --ffn peer --steps 300            # PEER instead (peer-small)
  monet train --preset monet-vd-512 --backend wasm
  monet train --name my-run --resume --steps 800
  monet train --list-presets`;

/** The most recently checkpointed run folder under runsDir (for `--resume` without `--name`). */
function newestRun(runsDir: string): string {
  const runs = existsSync(runsDir)
    ? readdirSync(runsDir).filter((n) => existsSync(join(runsDir, n, 'trainer_state.safetensors')))
    : [];
  if (runs.length === 0) throw new FlagError(`monet train: --resume: no run folder with a checkpoint in ${runsDir}/; pass --name <run>`);
  runs.sort((a, b) => statSync(join(runsDir, a, 'trainer_state.safetensors')).mtimeMs - statSync(join(runsDir, b, 'trainer_state.safetensors')).mtimeMs);
  return runs[runs.length - 1];
}

export async function trainCommand(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    console.log(formatHelp(USAGE, TRAIN_FLAGS));
    return 0;
  }
  try {
    const f = parseFlags('train', TRAIN_FLAGS, args);
    if (f['list-presets']) {
      for (const p of PRESETS) {
        console.log(`${p.name.padEnd(16)} ${p.trainable ? 'trainable' : 'accounting only'} — ${p.description}`);
        for (const l of describeModel(p.config)) console.log(`${' '.repeat(18)}${l}`);
        console.log(`${' '.repeat(18)}source: ${p.source}`);
      }
      return 0;
    }
    const resume = Boolean(f.resume);
    const { preset, config } = resolveModel(f);
    const p = PRESETS.find((q) => q.name === preset)!;
    if (!p.trainable && !resume) {
      throw new FlagError(`monet train: preset ${preset} (${describeModel(config)[0]}) is listed for parameter accounting and is far too large to train here; pick a trainable preset (monet train --list-presets)`);
    }
    let name = f.name as string | undefined;
    if (resume && !name) {
      name = newestRun((f['runs-dir'] as string | undefined) ?? TRAIN_DEFAULTS.runsDir);
      console.log(`--resume without --name: continuing the newest run, ${name}`);
    }
    const o = resolveTrainOptions(f, preset, name ?? defaultRunName(preset));
    const stop = { requested: false };
    const onSigint = () => {
      if (stop.requested) process.exit(130);
      stop.requested = true;
      process.stderr.write('\ninterrupt: finishing this step and writing a checkpoint (Ctrl-C again to quit at once)\n');
    };
    process.on('SIGINT', onSigint);
    try {
      await train(o, config, resume, { out: process.stdout, stop }, Boolean(f.force));
      return stop.requested ? 130 : 0;
    } finally {
      process.off('SIGINT', onSigint);
    }
  } catch (e) {
    if (e instanceof FlagError) {
      console.error(e.message);
      return 2;
    }
    console.error(`monet train: ${(e as Error).message}`);
    return 1;
  }
}
