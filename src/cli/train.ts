// `monet train`: train a small LM (Monet-VD by default) on the Brown corpus, on WebGPU when an adapter exists, else
// WASM. See docs/training.md.

import { FlagError, formatHelp, parseFlags, type FlagValues } from '../train/flags.ts';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { defaultRunName, resolveModel, resolveTrainOptions, TRAIN_DEFAULTS, TRAIN_FLAGS } from '../train/options.ts';
import { PRESETS } from '../train/presets.ts';
import { readRunJson } from '../train/run.ts';
import { describeModel, train } from '../train/trainer.ts';
import { onOutputClosed } from './output.ts';

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
  if (runs.length === 0)
    throw new FlagError(`monet train: --resume: no run folder with a checkpoint in ${runsDir}/; pass --name <run>`);
  runs.sort(
    (a, b) =>
      statSync(join(runsDir, a, 'trainer_state.safetensors')).mtimeMs -
      statSync(join(runsDir, b, 'trainer_state.safetensors')).mtimeMs,
  );
  return runs[runs.length - 1];
}

/** Flags a resume may change (the trainer's `keep` list, in flag spelling); every other setting comes from the run. */
const MAY_CHANGE_ON_RESUME = new Set([
  'resume',
  'name',
  'runs-dir',
  'steps',
  'backend',
  'threads',
  'eval-every',
  'log-every',
  'save-every',
  'sample-tokens',
  'prompt',
  'temperature',
  'eval-batches',
]);

/**
 * A resumed run keeps its model, data and optimiser settings, so a flag that would change one of them would be
 * silently ignored: refuse it, naming the saved value. Repeating the original command line with --resume is fine
 * (equal values pass). What a flag controls is found by resolving the flags with and without it.
 */
/** An object's own keys and values, in order. */
function entries(o: object): Map<string, unknown> {
  return new Map(Object.entries(o));
}

function refuseChangedOnResume(f: FlagValues, runDir: string): void {
  let saved: { options?: Record<string, unknown>; config?: Record<string, unknown> } | null;
  try {
    saved = readRunJson(runDir) as { options?: Record<string, unknown>; config?: Record<string, unknown> } | null;
  } catch {
    return; // a damaged run.json: the trainer reports what is wrong with the folder
  }
  if (!saved) return;
  const without = (k: string): FlagValues => Object.fromEntries(Object.entries(f).filter(([j]) => j !== k));
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  const changed: string[] = [];
  for (const k of Object.keys(f)) {
    if (f[k] === undefined || MAY_CHANGE_ON_RESUME.has(k)) continue;
    try {
      const a = resolveModel(f);
      const b = resolveModel(without(k));
      const oa = entries(resolveTrainOptions(f, a.preset, 'x'));
      const ob = entries(resolveTrainOptions(without(k), b.preset, 'x'));
      const ca = entries(a.config);
      const cb = entries(b.config);
      for (const [key, v] of ca) {
        if (!same(v, cb.get(key)) && saved.config && !same(v, saved.config[key]))
          changed.push(
            `--${k} (config ${key}: run has ${JSON.stringify(saved.config[key])}, flags give ${JSON.stringify(v)})`,
          );
      }
      for (const [key, v] of oa) {
        if (key === 'preset' || key === 'name') continue;
        if (!same(v, ob.get(key)) && saved.options && !same(v, saved.options[key]))
          changed.push(`--${k} (run has ${JSON.stringify(saved.options[key])}, flag gives ${JSON.stringify(v)})`);
      }
    } catch {
      // a flag that cannot be resolved on its own was already reported by resolveModel/resolveTrainOptions above
    }
  }
  if (changed.length > 0) {
    throw new FlagError(
      "monet train --resume: the run's saved model, data and optimiser settings are used, so these flags cannot " +
        `change them: ${[...new Set(changed)].join('; ')}. ` +
        `A resume may change ${[...MAY_CHANGE_ON_RESUME]
          .filter((k) => k !== 'resume')
          .map((k) => `--${k}`)
          .join(', ')}`,
    );
  }
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
      throw new FlagError(
        `monet train: preset ${preset} (${describeModel(config)[0]}) is listed for parameter accounting and is ` +
          'far too large to train here; pick a trainable preset (monet train --list-presets)',
      );
    }
    let name = f.name as string | undefined;
    if (resume && !name) {
      name = newestRun((f['runs-dir'] as string | undefined) ?? TRAIN_DEFAULTS.runsDir);
      console.log(`--resume without --name: continuing the newest run, ${name}`);
    }
    const o = resolveTrainOptions(f, preset, name ?? defaultRunName(preset));
    if (resume) refuseChangedOnResume(f, join(o.runsDir, o.name));
    // Ctrl-C: finish the step, write a checkpoint, exit 130; a second Ctrl-C exits at once (the run folder keeps
    // its last checkpoint). A closed output (`monet train | head`) stops the same way, with exit 1.
    const stop = { requested: false };
    let interrupted = false;
    const onSigint = () => {
      if (interrupted) {
        process.stderr.write('\ninterrupt again: quitting at once, without a checkpoint of this step\n');
        process.exit(130);
      }
      interrupted = stop.requested = true;
      process.stderr.write(
        '\ninterrupt: finishing this step and writing a checkpoint (Ctrl-C again to quit at once)\n',
      );
    };
    process.on('SIGINT', onSigint);
    const restoreOutput = onOutputClosed(() => {
      stop.requested = true;
    });
    try {
      const r = await train(o, config, resume, { out: process.stdout, stop }, Boolean(f.force));
      return r.interrupted ? (interrupted ? 130 : 1) : 0;
    } finally {
      process.off('SIGINT', onSigint);
      restoreOutput();
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
