// What the inspect tools need to know about a run folder besides its weights: which corpus it trained on, its
// sequence length, and the TopK α at the checkpoint (from run.json, written by `monet train`).

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TRAIN_DEFAULTS, type TrainOptions } from '../train/options.ts';
import { topkAlpha } from '../train/schedule.ts';
import { loadInterpModel, type InterpModel } from './model.ts';

export interface RunInfo {
  dir: string;
  name: string;
  data: string[] | null; // null = Brown
  seqLen: number;
  step: number;
  alpha: number;
  model: InterpModel;
}

export function openRunForInspect(dir: string): RunInfo {
  if (!existsSync(dir))
    throw new Error(`run folder ${dir} does not exist (expected a folder written by monet train, e.g. runs/<name>)`);
  let options: TrainOptions = { ...TRAIN_DEFAULTS, name: dir };
  let step = 0;
  const runJson = join(dir, 'run.json');
  if (existsSync(runJson)) {
    const r = JSON.parse(readFileSync(runJson, 'utf8')) as { options?: TrainOptions; step?: number };
    if (r.options) options = r.options;
    step = r.step ?? 0;
  }
  const alpha = topkAlpha(options.topkAnneal, options.steps, step);
  const model = loadInterpModel(dir, alpha);
  const seqLen = Math.min(options.seqLen, model.lm.cfg.maxPos);
  const name = dir.replace(/\/+$/, '').split('/').pop() ?? dir;
  return { dir, name, data: options.data, seqLen, step, alpha, model };
}
