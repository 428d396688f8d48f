// Formation over training (TopK LM paper: neurons specialise as training goes on, their entropy falls): the same
// analysis windows run through every snapshot `monet train --keep-every N` kept in <run>/snapshots/, and per unit
// group the distribution of the units' entropies is followed step by step, together with the units that are the
// most specialised at the end (their entropy at every earlier snapshot).
//
// Sizes: K snapshots, U units of a group, W windows of S bytes.

import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { HostMemoryDevice } from '../backend/device.ts';
import type { TrainOptions } from '../train/options.ts';
import { topkAlpha } from '../train/schedule.ts';
import { collect, lossByLabel, summarizeGroup, summarizeUnit, type Collected } from './collect.ts';
import type { AnalysisText } from './data.ts';
import { loadInterpModel } from './model.ts';
import { quantile } from './stats.ts';
import { groupName, type UnitGroup } from './units.ts';
import { wasmForward } from './wasm-forward.ts';

export interface Snapshot {
  step: number;
  dir: string;
}

/** The snapshots of a run folder, by step; an error that says how to make them when there are none. */
export function listSnapshots(runDir: string): Snapshot[] {
  const dir = join(runDir, 'snapshots');
  const found = existsSync(dir)
    ? readdirSync(dir)
        .map((n) => /^step-(\d+)$/.exec(n))
        .filter((m): m is RegExpExecArray => m !== null && existsSync(join(dir, m[0], 'model.safetensors')))
        .map((m) => ({ step: Number(m[1]), dir: join(dir, m[0]) }))
        .sort((a, b) => a.step - b.step)
    : [];
  if (found.length < 2)
    throw new Error(
      `inspect formation: ${runDir} has ${found.length} model snapshot(s) in snapshots/; formation needs at least ` +
        'two: train with --keep-every N (e.g. monet train … --keep-every 50)',
    );
  return found;
}

export interface GroupAtStep {
  measured: number;
  dead: number;
  /** Median and quartiles of the token / POS / label entropy over the measured units (NaN when none). */
  token: [number, number, number];
  tag: [number, number, number] | null;
  label: [number, number, number];
}

export interface FormationResult {
  steps: number[];
  groups: UnitGroup[];
  loss: number[]; // (K) mean validation loss per snapshot (nats/token)
  perStep: GroupAtStep[][]; // (K, groups)
  /** Per group, the units most specialised at the last snapshot and their token entropy at every snapshot. */
  tracked: Array<Array<{ unit: number; token: Array<number | null>; top: string }>>;
  minFires: number;
  M: number;
  engine: string;
}

const q3 = (v: number[]): [number, number, number] => [quantile(v, 0.25), quantile(v, 0.5), quantile(v, 0.75)];

function groupStats(c: Collected, gi: number, minFires: number): GroupAtStep {
  const { measured, dead } = summarizeGroup(c, gi, minFires);
  return {
    measured: measured.length,
    dead,
    token: q3(measured.map((s) => s.tokenEntropy)),
    tag: c.text.tagSet ? q3(measured.map((s) => s.tagEntropy!)) : null,
    label: q3(measured.map((s) => s.labelEntropy)),
  };
}

/**
 * Run every snapshot over `text` on the WASM device `dev`; `track` units per group are followed (the lowest token
 * entropy at the last snapshot among units that fired ≥ minFires times).
 */
export function formation(
  snapshots: Snapshot[],
  options: TrainOptions,
  text: AnalysisText,
  dev: HostMemoryDevice | null,
  o: { M: number; minFires: number; track: number; log?: (line: string) => void },
): FormationResult {
  const collected: Collected[] = [];
  let groups: UnitGroup[] = [];
  for (const snap of snapshots) {
    o.log?.(`step ${snap.step}: ${snap.dir} …`);
    const model = loadInterpModel(snap.dir, topkAlpha(options.topkAnneal, options.steps, snap.step));
    if (dev) model.fast = wasmForward(dev, model);
    try {
      collected.push(collect(model, text, o.M));
    } finally {
      model.fast?.dispose();
    }
    groups = model.groups;
  }
  const last = collected[collected.length - 1];
  const tracked = groups.map((g) => {
    const best = summarizeGroup(last, g.group, o.minFires)
      .measured.filter((s) => s.topTokens.length > 0 && ![9, 10, 13, 32].includes(s.topTokens[0][0]))
      .sort((a, b) => a.tokenEntropy - b.tokenEntropy || b.fires - a.fires)
      .slice(0, o.track);
    return best.map((s) => ({
      unit: s.unit,
      top: String.fromCharCode(s.topTokens[0][0]),
      token: collected.map((c) => {
        const at = summarizeUnit(c, g.group, s.unit);
        return at.fires >= o.minFires ? at.tokenEntropy : null;
      }),
    }));
  });
  return {
    steps: snapshots.map((s) => s.step),
    groups,
    loss: collected.map((c) => {
      const l = lossByLabel(text, c.nll);
      return l.reduce((a, b) => a + b, 0) / l.length;
    }),
    perStep: collected.map((c) => groups.map((g) => groupStats(c, g.group, o.minFires))),
    tracked,
    minFires: o.minFires,
    M: o.M,
    engine: last.engine,
  };
}

/** 'group 0 (layers 0–1)' etc. for the rows and series of the report. */
export const formationGroupNames = (r: FormationResult) => r.groups.map(groupName);
