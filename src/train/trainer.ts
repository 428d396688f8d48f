// The training loop behind `monet train`: data → engine steps → validation → checkpoints, in a run folder.
//
//   runs/<name>/config.json                model config (docs/fixtures.md `lm` keys) + tokenizer
//   runs/<name>/model.safetensors          parameters (HF / Monet names) + BatchNorm buffers
//   runs/<name>/trainer_state.safetensors  AdamW moments, step, data-sampler RNG state and position, options
//   runs/<name>/log.jsonl                  one JSON record per logged step / validation / event
//   runs/<name>/loss.svg                   loss curve (self-contained SVG)
//   runs/<name>/run.json                   options and a summary (final losses, entropy, timing, sample)
//
// Resume: the sampler's RNG state and batch count, the step, the moments and the BN state come back from the files;
// the learning rate and TopK α are functions of the step; so a resumed run draws the same batches with the same
// hyper-parameters as an uninterrupted one (bit-identical on the deterministic CPU backends).
//
// Faults (docs/robustness.md): a step whose loss or gradient is not finite is skipped by the engine (no update) and
// logged as an `event: 'skip'` record; MAX_CONSECUTIVE_FAULTS in a row stop the run with a clear message, and no
// checkpoint is written while a fault streak lasts, so the last checkpoint stays a good one. The reference engine
// reports every skipped step as it happens; a device engine decides on the device and counts the skipped steps
// there, and the loop learns of them when it reads a result: every --log-every steps, and always before an
// evaluation or a checkpoint (so neither runs in the middle of a streak). Any error in the loop
// (a lost WebGPU device, a failed checkpoint write) is reported with the step of the last checkpoint to resume from.

import { existsSync, mkdirSync, rmdirSync } from 'node:fs';
import { badValue, MAX_WEIGHT, sealedJson } from '../validate.ts';
import { join } from 'node:path';
import { appendJsonl, readJsonl, writeFileAtomic } from './atomic.ts';
import {
  type HostParams,
  loadModel,
  loadTrainerState,
  recoverCheckpoint,
  saveCheckpoint,
  saveModel,
} from './checkpoint.ts';
import { byteUnigramEntropy, loadBrown, loadTextFiles, type Corpus } from './corpus.ts';
import { BatchSampler, tokenizeDocs, validationBatches } from './data.ts';
import type { Engine, StepHyper, StepResult } from './engine.ts';
import { createEngine } from './engines.ts';
import { initParams } from './init.ts';
import { type TrainOptions, validateSavedOptions } from './options.ts';
import { expertScaling, formatCount, paramBreakdown, type ModelConfig } from './presets.ts';
import { checkMemory, type MemoryUse } from './memory.ts';
import { Progress } from './progress.ts';
import { readRunJson, type RunJson } from './run.ts';
import { checkFreshRunFolder, clearRunFolder, lockRunFolder, type RunLock } from './run-folder.ts';
import { generate } from './sample.ts';
import { learningRate, topkAlpha } from './schedule.ts';
import { lossCurveSvg } from './svg.ts';
import type { RngState } from './rng.ts';
import { makeTokenizer, type Tokenizer } from './tokenizer.ts';

export interface TrainResult {
  runDir: string;
  backend: string;
  steps: number;
  finalTrainLoss: number;
  valLoss: number; // validation cross-entropy (nats/token), eval mode
  unigramEntropy: number; // nats/byte of the validation split
  ratio: number; // valLoss / unigramEntropy
  sample: string;
  seconds: number;
  /** Stopped by io.stop (Ctrl-C) before o.steps: a checkpoint was written; no final validation or sample. */
  interrupted: boolean;
}

export interface TrainIO {
  out: { write(s: string): unknown; isTTY?: boolean };
  /**
   * Set by the caller (SIGINT) to stop after the current step; a checkpoint is written before returning. The loop
   * yields to the event loop after every step, so a signal handler gets to run on every backend.
   */
  stop?: { requested: boolean };
  /** Fault-injection hook for tests: wraps the engine the run trains with (e.g. to return a NaN loss at step k). */
  wrapEngine?: (engine: Engine) => Engine;
  /** Consecutive skipped steps that stop the run (default MAX_CONSECUTIVE_FAULTS). */
  maxConsecutiveFaults?: number;
  /** Consecutive readings of a diverging loss that stop the run (default DIVERGENCE_STREAK). */
  divergenceStreak?: number;
}

/**
 * Divergence with finite numbers (a learning rate far too high, no clip): the training loss far above where it
 * started. "Far above" is twice the larger of the uniform entropy ln V (what a model that knows nothing scores) and
 * the step-0 validation CE; a reading above it is warned about and logged, DIVERGENCE_STREAK readings in a row stop
 * the run, and no checkpoint is written while such a streak lasts. A run whose final validation CE is above it
 * fails without writing its final checkpoint.
 */
export const DIVERGENCE_STREAK = 3;

/** The divergence limit and the current streak of readings above it. */
interface Divergence {
  readonly limit: number;
  streak: number;
  from: number; // first step of the streak
  readonly max: number;
}

/** The limit from the run's own records: twice max(ln V, step-0 validation CE). */
function divergenceLimit(run: Run): number {
  const uniform = Math.log(run.config.vocab_size);
  const start = run.log.records.find((r) => r.step === 0 && typeof r.val_loss === 'number')?.val_loss as number;
  return 2 * Math.max(uniform, Number.isFinite(start) ? start : uniform);
}

/** What the limit is, in words, for messages. */
const limitWords = (d: Divergence, run: Run) =>
  `${d.limit.toFixed(2)} (twice the larger of the uniform entropy ln ${run.config.vocab_size} and the start)`;

/** Record a reading of the training CE; warn when it is above the limit, throw once a streak reaches the max. */
function checkDivergence(run: Run, ce: number, step: number, d: Divergence, progress: Progress): void {
  if (ce <= d.limit) {
    d.streak = 0;
    return;
  }
  if (d.streak++ === 0) d.from = step;
  run.log.write({ step, event: 'diverging', ce, limit: d.limit, streak: d.streak });
  progress.log(
    `warning: step ${step}: training CE ${ce.toPrecision(5)} is far above ${limitWords(d, run)}; ` +
      `the run may be diverging (${d.streak} reading${d.streak > 1 ? 's' : ''} in a row, stop at ${d.max})`,
  );
  if (d.streak >= d.max) {
    progress.done();
    throw new Error(
      `training stopped at step ${step}: the training loss diverged — ${d.streak} readings in a row ` +
        `(steps ${d.from}–${step}) above ${limitWords(d, run)}, last CE ${ce.toPrecision(5)} — try a lower --lr, ` +
        `a gradient clip (--clip) or a longer --warmup; ${resumeHint(run)}`,
    );
  }
}

/** What one training step holds: a micro-batch of B sequences of S tokens on the run's backend. */
const trainingUse = (o: TrainOptions): MemoryUse => ({
  purpose: 'train',
  backend: o.backend,
  batch: o.batchSize,
  seq: o.seqLen,
});

/** Consecutive non-finite steps after which training stops: one bad batch is noise, five in a row is divergence. */
export const MAX_CONSECUTIVE_FAULTS = 5;

interface LogRecord {
  step: number;
  [k: string]: unknown;
}

export interface CorpusSplits {
  corpus: Corpus;
  train: Int32Array;
  validation: Int32Array;
  entropy: number;
}

export function loadSplits(data: string[] | null, tokenizer: string): CorpusSplits {
  const corpus = data ? loadTextFiles(data) : loadBrown();
  const tok = makeTokenizer(tokenizer);
  const train = tokenizeDocs(corpus.train, tok).tokens;
  const validation = tokenizeDocs(corpus.validation, tok).tokens;
  const entropy = byteUnigramEntropy(Uint8Array.from(validation));
  // A text of one repeated byte has entropy 0: the loss ratio (CE / entropy) would be infinite, and there is
  // nothing to learn.
  if (!(entropy > 0))
    throw new Error(
      `corpus: the validation text${data ? ` (the last 10 % of ${data.join(', ')})` : ''} is one byte repeated ` +
        '(byte-unigram entropy 0); expected varied text',
    );
  return { corpus, train, validation, entropy };
}

/** 'monet-vd', 'monet-hd', 'dense', … */
export function modelKind(config: ModelConfig): string {
  return config.ffn === 'monet' ? (config.moe_decompose === 'horizontal' ? 'monet-hd' : 'monet-vd') : config.ffn;
}

/** Lines describing a model's size; for Monet also what SMoE / PEER would need for as many experts. */
export function describeModel(config: ModelConfig): string[] {
  const b = paramBreakdown(config);
  const lines = [
    `parameters ${formatCount(b.total)} (${b.total.toLocaleString('en-US')}): ` +
      `embeddings ${formatCount(b.embeddings)}, attention ${formatCount(b.attention)}, ` +
      `feed-forward ${formatCount(b.ffn)}${b.routers ? `, routers ${formatCount(b.routers)}` : ''}, ` +
      `norms ${formatCount(b.norms)}`,
  ];
  if (config.ffn === 'monet') {
    const s = expertScaling(config);
    const N = s.N.toLocaleString('en-US');
    lines.push(
      `experts per layer N = ${config.moe_experts}² = ${N}: ` +
        `Monet-${config.moe_decompose === 'horizontal' ? 'HD' : 'VD'} holds them in ${formatCount(s.monetPerLayer)} ` +
        `parameters per layer; an SMoE with ${N} experts of width m = ${config.moe_dim} would need ` +
        `${formatCount(s.smoePerLayer)}, PEER with ${N} singleton experts ${formatCount(s.peerPerLayer)}`,
    );
  }
  return lines;
}

/** The data sampler's position: its RNG state and the number of batches drawn. */
export type SamplerState = { rng: RngState; batches: number };

/** Where a run starts: a fresh model, or a checkpoint with everything the loop restores from it. */
export interface RunStart {
  /** For a resume: the saved options, with what may change on resume taken from the command line. */
  options: TrainOptions;
  config: ModelConfig;
  params: HostParams;
  state: HostParams; // BatchNorm running statistics
  /** AdamW moments (absent for a fresh run: the engine starts them at zero). */
  moments?: { m: HostParams; v: HostParams };
  step: number; // optimizer steps already done
  /** The data position (absent for a fresh run: the sampler is seeded from options.seed). */
  sampler?: SamplerState;
  seconds: number; // training time already spent
  records: LogRecord[]; // log.jsonl up to the checkpoint
  resumed: boolean;
}

/** The text a run trains and validates on, as the loop needs it. */
interface RunData {
  splits: CorpusSplits;
  tokenizer: Tokenizer;
  sampler: BatchSampler;
  valBatches: Int32Array[]; // each (B·S,)
}

/** Everything the jobs of one run share once the engine exists. */
interface Run {
  o: TrainOptions;
  config: ModelConfig;
  runDir: string;
  engine: Engine;
  data: RunData;
  log: RunLog;
  resumed: boolean;
  startStep: number;
  prevSeconds: number; // training time spent before this session
  /** The step of the last checkpoint on disk (null: none yet). */
  lastCheckpoint: number | null;
  /** The limit is set once the session's first records are written (logSessionStart). */
  divergence: Divergence;
  say: (line: string) => void;
}

/** How the loop ended. */
interface LoopEnd {
  step: number;
  lastLoss: number;
  seconds: number; // training time of the whole run so far
  /** Stopped by io.stop; `inStreak`: the last step read was skipped (no checkpoint is written then). */
  interrupted?: { inStreak: boolean };
}

/** Let pending events (a SIGINT handler, an EPIPE) run: a CPU backend's step never returns to the event loop. */
const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** The options a resume takes from the command line; every other one comes from the run's saved options. */
const MAY_CHANGE_ON_RESUME: readonly (keyof TrainOptions)[] = [
  'steps',
  'backend',
  'threads',
  'evalEvery',
  'logEvery',
  'saveEvery',
  'keepEvery',
  'sampleTokens',
  'prompt',
  'temperature',
  'evalBatches',
];

/** The log records of a run: kept in memory for the loss curve, appended to log.jsonl as they happen. */
class RunLog {
  constructor(
    private readonly path: string,
    readonly records: LogRecord[],
  ) {}

  write(r: LogRecord): void {
    this.records.push(r);
    appendJsonl(this.path, r);
  }

  /** [step, value] of every record that holds a number under `key`. */
  points(key: string): [number, number][] {
    return this.records.filter((r) => typeof r[key] === 'number').map((r) => [r.step, r[key] as number]);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Starting a run

/** A fresh run: refuse to overwrite a run without --force, check the memory, draw the initial parameters. */
function startFresh(o: TrainOptions, config: ModelConfig, force: boolean): RunStart {
  // Refused now if the folder holds a run (without --force) or anything that is not a run's; it is replaced /
  // created only once the data and the backend are known to work (createRunFolder), so that a wrong --data or
  // --seq-len neither deletes an old run nor leaves an empty folder behind.
  checkFreshRunFolder(join(o.runsDir, o.name), force);
  checkMemory(config, trainingUse(o));
  const { params, state } = initParams(config, o.seed);
  return { options: o, config, params, state, step: 0, seconds: 0, records: [], resumed: false };
}

/**
 * A resumed run: finish an interrupted checkpoint commit, load the model and trainer state (checking that they
 * belong together), take the saved options, and cut log.jsonl back to the checkpoint's step.
 */
export function openResume(o: TrainOptions, say: (line: string) => void): RunStart {
  const runDir = join(o.runsDir, o.name);
  // Finish (or discard) a checkpoint commit that a crash interrupted, before reading anything.
  const recovered = recoverCheckpoint(runDir);
  if (recovered) say(`${runDir}: ${recovered}`);
  if (!existsSync(join(runDir, 'trainer_state.safetensors'))) {
    throw new Error(
      `--resume: ${runDir} has no trainer_state.safetensors (expected a run folder written by monet train)`,
    );
  }
  const ck = loadModel(runDir);
  for (const w of ck.warnings) say(`warning: ${w}`);
  const st = loadTrainerState(runDir, ck.config);
  if (st.modelChecksum && ck.checksum && st.modelChecksum !== ck.checksum) {
    throw new Error(
      `--resume: ${runDir}: trainer_state.safetensors (step ${st.step}) was saved with model ${st.modelChecksum}, ` +
        `but model.safetensors is ${ck.checksum}${ck.step !== undefined ? ` (step ${ck.step})` : ''}; ` +
        'the checkpoint is inconsistent',
    );
  }
  // run.json is rewritten at the next checkpoint, but a damaged one means a damaged folder: checked like the rest.
  const saved = readRunJson(runDir);
  const merged: TrainOptions = { ...savedOptions(st.info, saved, runDir) };
  for (const k of MAY_CHANGE_ON_RESUME) copyOption(merged, o, k);
  if (st.step >= merged.steps)
    throw new Error(
      `--resume: ${runDir} already finished ${st.step} of ${merged.steps} steps; pass a larger --steps to continue`,
    );
  return {
    options: merged,
    config: ck.config,
    params: ck.params,
    state: ck.state,
    moments: { m: st.m, v: st.v },
    step: st.step,
    sampler: st.sampler,
    seconds: Number(st.info.seconds ?? 0),
    records: logUpTo(runDir, st.step),
    resumed: true,
  };
}

/** The options a run was started with: from the trainer state (same commit), else run.json; checked like flags. */
/** to[k] = from[k], typed per key. */
function copyOption<K extends keyof TrainOptions>(to: TrainOptions, from: TrainOptions, k: K): void {
  to[k] = from[k];
}

function savedOptions(info: Record<string, unknown>, saved: RunJson | null, runDir: string): TrainOptions {
  if (info.options !== undefined)
    return validateSavedOptions(info.options, `trainer state: ${join(runDir, 'trainer_state.safetensors')}: options`);
  if (!saved) throw new Error(`--resume: ${runDir}: no options in the trainer state and no run.json`);
  return saved.options;
}

/**
 * The log records up to `step`, with log.jsonl rewritten to hold just those: records written after the checkpoint
 * (a crash between checkpoints) describe steps that will run again, and a kill mid-append can leave a cut-off last
 * line, which is dropped.
 */
function logUpTo(runDir: string, step: number): LogRecord[] {
  const path = join(runDir, 'log.jsonl');
  if (!existsSync(path)) return [];
  const records = readJsonl<LogRecord>(path).records.filter((r) => r.step <= step);
  writeFileAtomic(path, records.map((r) => JSON.stringify(r)).join('\n') + (records.length ? '\n' : ''));
  return records;
}

/** Read and split the text, check it against the model, and describe data and model. */
function loadRunData(o: TrainOptions, config: ModelConfig, sampler: SamplerState | undefined, say: Say): RunData {
  const splits = loadSplits(o.data, o.tokenizer);
  const tokenizer = makeTokenizer(o.tokenizer);
  if (tokenizer.vocabSize !== config.vocab_size)
    throw new Error(
      `tokenizer '${o.tokenizer}' has ${tokenizer.vocabSize} ids but the model's vocab_size is ${config.vocab_size}`,
    );
  const B = o.batchSize;
  const S = o.seqLen;
  if (S > config.max_position_embeddings)
    throw new Error(`--seq-len ${S} exceeds the model's max_position_embeddings ${config.max_position_embeddings}`);
  const valBatches = validationBatches(splits.validation, B, S, o.evalBatches);
  const H = splits.entropy;
  say(
    `data: ${splits.corpus.name === 'brown' ? 'Brown corpus' : 'text files'} — ` +
      `${splits.corpus.train.length} training documents (${splits.train.length.toLocaleString('en-US')} tokens), ` +
      `${splits.corpus.validation.length} validation documents ` +
      `(${splits.validation.length.toLocaleString('en-US')} tokens; ` +
      `${valBatches.length * B} windows of ${S} used for validation)`,
  );
  say(
    `validation byte-unigram entropy ${H.toFixed(4)} nats (${(H / Math.LN2).toFixed(3)} bits); ` +
      `target validation loss ≤ 0.75 × that = ${(0.75 * H).toFixed(4)}`,
  );
  for (const l of describeModel(config))
    say(`model: ${o.preset}, ${modelKind(config)}, ${config.num_hidden_layers} × ${config.hidden_size}; ${l}`);
  return {
    splits,
    tokenizer,
    // The sampler's stream is seeded one past the init's (wrapping at 2³², so that every uint32 --seed works).
    sampler: new BatchSampler(splits.train, B, S, sampler ?? (o.seed + 1) >>> 0),
    valBatches,
  };
}

/**
 * Create the folder of a fresh run (or, with --force, remove the old run's files from it), under the folder's lock,
 * and mark it as a run folder with a first run.json.
 */
function createRunFolder(runDir: string, force: boolean): RunLock {
  const created = !existsSync(runDir);
  try {
    mkdirSync(runDir, { recursive: true });
  } catch (e) {
    throw new Error(`cannot create the run folder ${runDir} (${(e as Error).message})`);
  }
  const lock = lockRunFolder(runDir);
  try {
    clearRunFolder(runDir, force);
  } catch (e) {
    lock.release();
    if (created) rmdirSync(runDir, { recursive: false });
    throw e;
  }
  return lock;
}

/** Take the lock of a resumed run's folder, which must exist. */
function lockForResume(runDir: string): RunLock {
  if (!existsSync(runDir)) throw new Error(`--resume: run folder ${runDir} does not exist`);
  return lockRunFolder(runDir);
}

// ---------------------------------------------------------------------------------------------------------------
// The jobs of a running run

type Say = (line: string) => void;

/** Validation loss and CE over the run's fixed validation windows, in eval mode. */
async function evaluate(run: Run, alpha: number): Promise<{ loss: number; ce: number }> {
  const { valBatches } = run.data;
  let loss = 0;
  let ce = 0;
  for (const b of valBatches) {
    const r = await run.engine.evalLoss(b, run.o.batchSize, run.o.seqLen, alpha);
    loss += r.loss / valBatches.length;
    ce += r.ce / valBatches.length;
  }
  return { loss, ce };
}

const alphaAt = (o: TrainOptions, step: number) => topkAlpha(o.topkAnneal, o.steps, step);

const schedule = (o: TrainOptions) => ({ lr: o.lr, minLr: o.minLr, warmup: o.warmup, steps: o.steps });

/** The hyper-parameters of the step that follows `step` steps. */
function stepHyper(o: TrainOptions, step: number): StepHyper {
  return {
    lr: learningRate(schedule(o), step),
    beta1: o.beta1,
    beta2: o.beta2,
    eps: o.eps,
    weightDecay: o.weightDecay,
    clip: o.clip,
    step: step + 1,
    alpha: alphaAt(o, step),
  };
}

/** run.json: the options, the model config, the backend and whatever the caller adds (step, summary); sealed. */
function runJson(run: Run, extra: Record<string, unknown>): string {
  return sealedJson({ options: run.o, config: run.config, backend: run.engine.name, ...extra });
}

const resumeCommand = (o: TrainOptions) =>
  `monet train --resume --name ${o.name}${o.runsDir !== 'runs' ? ` --runs-dir ${o.runsDir}` : ''}`;

/** What to tell the user when the run cannot go on. */
function resumeHint(run: Run): string {
  const { o } = run;
  if (run.lastCheckpoint === null) return 'no checkpoint had been written yet';
  return `the checkpoint of step ${run.lastCheckpoint} in ${run.runDir} is intact; continue with: ${resumeCommand(o)}`;
}

/** Write a checkpoint of the engine's model and moments, then run.json and the loss curve. */
async function writeCheckpoint(run: Run, step: number, seconds: number): Promise<void> {
  const { params, state } = await run.engine.exportModel();
  const { m, v } = await run.engine.exportMoments();
  // Never replace a good checkpoint with a diverged model (an update can overflow even when its gradient was finite):
  // the bound is the one the loader applies (src/train/run-files.ts), so every checkpoint written can be read back.
  for (const [name, a] of params) {
    const bad = badValue(a, MAX_WEIGHT);
    if (bad)
      throw new Error(
        `not writing the checkpoint of step ${step}: parameter '${name}' holds ${bad}: the model has diverged; ` +
          resumeHint(run),
      );
  }
  saveCheckpoint(run.runDir, run.config, run.o.tokenizer, params, state, {
    step,
    sampler: run.data.sampler.state(),
    info: { seconds, backend: run.engine.name, options: run.o },
    m,
    v,
  });
  run.lastCheckpoint = step;
  writeFileAtomic(join(run.runDir, 'run.json'), runJson(run, { step }));
  writeLossCurve(run);
}

/** Where `monet train --keep-every` keeps the model of a step: <run>/snapshots/step-NNNNNN/. */
export function snapshotDir(runDir: string, step: number): string {
  return join(runDir, 'snapshots', `step-${String(step).padStart(6, '0')}`);
}

/** A snapshot of the model at this step (config.json + model.safetensors), when --keep-every asks for one. */
async function keepSnapshot(run: Run, step: number, last: boolean): Promise<void> {
  const every = run.o.keepEvery ?? 0;
  if (!(every > 0) || (step % every !== 0 && !last)) return;
  const dir = snapshotDir(run.runDir, step);
  if (existsSync(join(dir, 'model.safetensors'))) return;
  const { params, state } = await run.engine.exportModel();
  for (const [name, a] of params) {
    const bad = badValue(a, MAX_WEIGHT); // the loader's bound: every snapshot written can be read back
    if (bad)
      throw new Error(`not keeping the snapshot of step ${step}: parameter '${name}' holds ${bad}; ${resumeHint(run)}`);
  }
  mkdirSync(dir, { recursive: true });
  saveModel(dir, run.config, run.o.tokenizer, params, state);
}

/** loss.svg: training loss and validation CE against the entropy and the target. */
function writeLossCurve(run: Run): void {
  const H = run.data.splits.entropy;
  const svg = lossCurveSvg(
    `${run.o.name}: ${modelKind(run.config)} on ${run.engine.name}`,
    [
      { label: 'train loss', color: '#1f77b4', points: run.log.points('loss') },
      { label: 'validation CE', color: '#d62728', points: run.log.points('val_loss'), dots: true },
    ],
    [
      { label: 'byte-unigram entropy', color: '#7f7f7f', y: H },
      { label: '0.75 × entropy (target)', color: '#2ca02c', y: 0.75 * H },
    ],
  );
  writeFileAtomic(join(run.runDir, 'loss.svg'), svg);
}

/** The first records of a session: a fresh run's start record and step-0 validation, or a resume record. */
async function logSessionStart(run: Run): Promise<void> {
  const { o, config, engine, log } = run;
  if (run.resumed) {
    log.write({ step: run.startStep, event: 'resume', backend: engine.name });
    return;
  }
  log.write({
    step: 0,
    event: 'start',
    backend: engine.name,
    preset: o.preset,
    params: paramBreakdown(config).total,
    entropy: run.data.splits.entropy,
  });
  const v0 = await evaluate(run, alphaAt(o, 0));
  log.write({ step: 0, val_loss: v0.ce, val_total: v0.loss });
  run.say(
    `step 0: validation CE ${v0.ce.toFixed(4)} ` +
      `(uniform over 256 bytes would be ${Math.log(config.vocab_size).toFixed(4)})`,
  );
}

/**
 * Whether the loop asks the engine for this step's result: at log steps, and before an evaluation or a checkpoint
 * (a device engine's fault counters arrive with a result, and neither may run while a streak of skipped steps lasts).
 */
function wantsResult(o: TrainOptions, step: number, startStep: number): boolean {
  const next = step + 1;
  return (
    next % o.logEvery === 0 ||
    next === o.steps ||
    step === startStep ||
    next % o.evalEvery === 0 ||
    next % o.saveEvery === 0
  );
}

/** Consecutive skipped steps, as the loop knows them from the results it reads. */
interface FaultCount {
  streak: number; // consecutive skipped steps
  lastRead: number; // the step of the previous result read from the engine
  readonly max: number; // the streak that stops the run
}

/** Log the skipped steps a result reports and update the streak; throw once the streak reaches the limit. */
function recordFaults(run: Run, r: StepResult, hp: StepHyper, step: number, faults: FaultCount, progress: Progress) {
  if (r.faults) {
    // Device engine: the steps it skipped since its previous result, counted on the device.
    const f = r.faults;
    faults.streak = f.streak;
    run.log.write({
      step: f.lastStep,
      event: 'skip',
      reason: f.reason,
      loss: f.lastLoss,
      grad_norm: f.lastNorm,
      lr: learningRate(schedule(run.o), f.lastStep - 1),
      skipped: f.count,
      since: faults.lastRead + 1,
      read_at: step,
      streak: f.streak,
      streak_from: f.streakFrom,
    });
    progress.log(
      `steps ${faults.lastRead + 1}–${step}: ${f.count} skipped, not applied ` +
        `(latest: step ${f.lastStep}, ${f.reason})` +
        (f.streak > 0 ? `; ${f.streak} in a row up to step ${step} (stop at ${faults.max})` : ''),
    );
  } else if (r.skipped) {
    // Reference engine: this step, checked on the host.
    faults.streak++;
    run.log.write({ step, event: 'skip', reason: r.skipped, loss: r.loss, grad_norm: r.gradNorm, lr: hp.lr });
    progress.log(
      `step ${step}: skipped, not applied (${r.skipped}); ${faults.streak} in a row (stop at ${faults.max})`,
    );
  } else faults.streak = 0;
  faults.lastRead = step;
  if (r.skipped && faults.streak >= faults.max) {
    progress.done();
    const from = r.faults ? ` (steps ${r.faults.streakFrom}–${step})` : '';
    throw new Error(
      `training stopped at step ${step}: ${faults.streak} consecutive steps${from} had a non-finite loss ` +
        `or gradient (last: ${r.skipped}, lr ${hp.lr}); ` +
        `the parameters may have diverged — try a lower --lr or a gradient clip (--clip); ${resumeHint(run)}`,
    );
  }
}

/** Throughput since the previous read. */
interface Throughput {
  tMark: number; // performance.now() at the previous read
  tokens: number; // tokens trained since then
}

/** The optimizer steps from the start step to o.steps (or an interrupt), with evaluations and checkpoints. */
async function trainLoop(run: Run, io: TrainIO): Promise<LoopEnd> {
  const { o, engine, data } = run;
  const B = o.batchSize;
  const S = o.seqLen;
  const tokensPerStep = B * S * o.gradAccum;
  const H = data.splits.entropy;
  const progress = new Progress(io.out, o.logEvery);
  const faults: FaultCount = {
    streak: 0,
    lastRead: run.startStep,
    max: io.maxConsecutiveFaults ?? MAX_CONSECUTIVE_FAULTS,
  };
  const div = run.divergence;
  const tLoop = performance.now();
  const seconds = () => run.prevSeconds + (performance.now() - tLoop) / 1000;
  const rate: Throughput = { tMark: tLoop, tokens: 0 };
  let lastLoss = NaN;
  let step = run.startStep;
  while (step < o.steps) {
    const batches: Int32Array[] = [];
    for (let a = 0; a < o.gradAccum; a++) batches.push(data.sampler.next());
    const hp = stepHyper(o, step);
    // After a stop request the loop runs on to the next step whose result it reads (a device engine's fault
    // counters arrive with it), and stops there.
    const want = wantsResult(o, step, run.startStep) || io.stop?.requested === true;
    let r: StepResult | null;
    try {
      r = await engine.trainStep(batches, B, S, hp, want);
    } catch (e) {
      throw new Error(`step ${step + 1} failed on ${engine.name}: ${(e as Error).message}; ${resumeHint(run)}`, {
        cause: e,
      });
    }
    step++;
    rate.tokens += tokensPerStep;
    await yieldToEventLoop();
    if (r) {
      recordFaults(run, r, hp, step, faults, progress);
      if (!r.skipped) {
        lastLoss = r.loss;
        logStep(run, r, hp, step, rate, progress, tLoop);
        checkDivergence(run, r.ce, step, div, progress);
      }
    }
    // no evaluation or checkpoint while a fault streak lasts: the last checkpoint stays a good one
    if (!r?.skipped) {
      if (step % o.evalEvery === 0 && step < o.steps) {
        const ev = await evaluate(run, alphaAt(o, step));
        run.log.write({ step, val_loss: ev.ce, val_total: ev.loss });
        progress.log(`step ${step}: validation CE ${ev.ce.toFixed(4)} = ${(ev.ce / H).toFixed(3)} × entropy`);
        if (!(ev.ce <= div.limit))
          progress.log(
            `warning: step ${step}: validation CE ${ev.ce.toPrecision(5)} is far above ${limitWords(div, run)}`,
          );
      }
      // nor while the loss is far above the limit: a diverging model does not replace a good checkpoint
      if (step % o.saveEvery === 0 && step < o.steps && div.streak === 0) await writeCheckpoint(run, step, seconds());
      if (step < o.steps) await keepSnapshot(run, step, false);
    }
    if (io.stop?.requested && r && step < o.steps) {
      progress.done();
      return { step, lastLoss, seconds: seconds(), interrupted: { inStreak: Boolean(r.skipped) || div.streak > 0 } };
    }
  }
  progress.done();
  return { step, lastLoss, seconds: seconds() };
}

/** The log record and progress line of a step whose result was read. */
function logStep(
  run: Run,
  r: StepResult,
  hp: StepHyper,
  step: number,
  rate: Throughput,
  progress: Progress,
  tLoop: number,
): void {
  const now = performance.now();
  const tps = rate.tokens / ((now - rate.tMark) / 1000);
  rate.tMark = now;
  rate.tokens = 0;
  run.log.write({
    step,
    loss: r.loss,
    ce: r.ce,
    grad_norm: r.gradNorm,
    lr: hp.lr,
    alpha: run.config.ffn === 'topk' ? hp.alpha : undefined,
    tokens_per_s: Math.round(tps),
    seconds: run.prevSeconds + (now - tLoop) / 1000,
  });
  progress.update({
    step,
    steps: run.o.steps,
    loss: r.loss,
    tokensPerSec: tps,
    elapsed: (now - tLoop) / 1000,
    lr: hp.lr,
    startStep: run.startStep,
  });
}

/** The end of an interrupted session: a checkpoint (unless a fault streak lasts) and where to continue from. */
async function finishInterrupted(run: Run, end: LoopEnd): Promise<TrainResult> {
  if (end.interrupted?.inStreak) {
    run.say(
      `interrupted at step ${end.step} during a streak of skipped or diverging steps; ` +
        `no checkpoint written: ${resumeHint(run)}`,
    );
  } else {
    if (run.lastCheckpoint !== end.step) await writeCheckpoint(run, end.step, end.seconds);
    run.say(
      `interrupted at step ${end.step} of ${run.o.steps}: checkpoint of step ${end.step} written to ${run.runDir}; ` +
        `continue with: ${resumeCommand(run.o)}`,
    );
  }
  return {
    runDir: run.runDir,
    backend: run.engine.name,
    steps: end.step,
    finalTrainLoss: end.lastLoss,
    valLoss: NaN,
    unigramEntropy: run.data.splits.entropy,
    ratio: NaN,
    sample: '',
    seconds: end.seconds,
    interrupted: true,
  };
}

/** The end of a session: final validation, checkpoint, sample, and run.json with the summary. */
async function finishRun(run: Run, end: LoopEnd, t0: number): Promise<TrainResult> {
  const { o, engine, config } = run;
  const H = run.data.splits.entropy;
  const final = await evaluate(run, alphaAt(o, end.step));
  run.log.write({ step: end.step, val_loss: final.ce, val_total: final.loss });
  if (!(final.ce <= run.divergence.limit))
    throw new Error(
      `training ended at step ${end.step} with validation CE ${final.ce.toPrecision(5)}, far above ` +
        `${limitWords(run.divergence, run)}: the run diverged, and its final checkpoint was not written — try a ` +
        `lower --lr, a gradient clip (--clip) or a longer --warmup; ${resumeHint(run)}`,
    );
  await writeCheckpoint(run, end.step, end.seconds);
  await keepSnapshot(run, end.step, true);
  const ratio = final.ce / H;
  run.say(
    `validation CE ${final.ce.toFixed(4)} nats/byte vs byte-unigram entropy ${H.toFixed(4)}: ` +
      `ratio ${ratio.toFixed(3)} (target ≤ 0.75: ${ratio <= 0.75 ? 'met' : 'NOT met'})`,
  );
  let sample = '';
  if (o.sampleTokens > 0) {
    sample = await generate(engine, run.data.tokenizer, {
      prompt: o.prompt,
      tokens: o.sampleTokens,
      temperature: o.temperature,
      seed: o.seed,
      alpha: alphaAt(o, end.step),
      maxContext: config.max_position_embeddings,
    });
    run.say(`sample (temperature ${o.temperature}):\n${o.prompt}${sample}`);
  }
  const result: TrainResult = {
    runDir: run.runDir,
    backend: engine.name,
    steps: end.step,
    finalTrainLoss: end.lastLoss,
    valLoss: final.ce,
    unigramEntropy: H,
    ratio,
    sample,
    seconds: end.seconds,
    interrupted: false,
  };
  writeFileAtomic(
    join(run.runDir, 'run.json'),
    runJson(run, { step: end.step, summary: { ...result, totalSeconds: (performance.now() - t0) / 1000 } }),
  );
  run.say(
    `run folder: ${run.runDir} (config.json, model.safetensors, trainer_state.safetensors, log.jsonl, ` +
      `loss.svg, run.json) — ${end.seconds.toFixed(1)} s of training`,
  );
  return result;
}

// ---------------------------------------------------------------------------------------------------------------
// The whole run

export async function train(
  options: TrainOptions,
  flagsConfig: ModelConfig,
  resume: boolean,
  io: TrainIO,
  force = false,
): Promise<TrainResult> {
  const say: Say = (s) => io.out.write(`${s}\n`);
  const t0 = performance.now();
  const runDir = join(options.runsDir, options.name);
  // A resume locks the folder before it reads anything; a fresh run once it creates the folder.
  let lock: RunLock | null = resume ? lockForResume(runDir) : null;
  try {
    if (lock?.replaced) say(`${runDir}: removed the stale lock of PID ${lock.replaced.pid}, which no longer runs`);
    const start = resume ? openResume(options, say) : startFresh(options, flagsConfig, force);
    const { options: o, config } = start;
    if (resume) {
      say(`resuming ${runDir} at step ${start.step}`);
      checkMemory(config, trainingUse(o)); // a hand-edited run folder, or other settings than the first session's
    }

    const data = loadRunData(o, config, start.sampler, say);
    const created = await createEngine(
      o.backend,
      { config, params: start.params, state: start.state, m: start.moments?.m, v: start.moments?.v },
      { threads: o.threads },
    );
    const engine = io.wrapEngine ? io.wrapEngine(created.engine) : created.engine;
    try {
      say(`backend: ${engine.name} (${created.why})`);
      if (!start.resumed) lock = createRunFolder(runDir, force);
      say(
        `training ${o.steps} steps × ${(o.batchSize * o.seqLen * o.gradAccum).toLocaleString('en-US')} tokens ` +
          `(batch ${o.batchSize} × seq ${o.seqLen}${o.gradAccum > 1 ? ` × accum ${o.gradAccum}` : ''}), ` +
          `AdamW lr ${o.lr} → ${o.minLr}, warm-up ${o.warmup}, wd ${o.weightDecay}, clip ${o.clip}, seed ${o.seed}`,
      );
      const run: Run = {
        o,
        config,
        runDir,
        engine,
        data,
        log: new RunLog(join(runDir, 'log.jsonl'), start.records),
        resumed: start.resumed,
        startStep: start.step,
        prevSeconds: start.seconds,
        lastCheckpoint: start.resumed ? start.step : null,
        divergence: {
          limit: Number.POSITIVE_INFINITY,
          streak: 0,
          from: 0,
          max: io.divergenceStreak ?? DIVERGENCE_STREAK,
        },
        say,
      };
      return await runSession(run, io, t0);
    } finally {
      try {
        await engine.dispose();
      } catch {
        // a lost device cannot be disposed cleanly; the error that stopped the run is the one to report
      }
    }
  } finally {
    lock?.release();
  }
}

/** One session of a run in its (locked) folder: start records, the loop, and its end. */
async function runSession(run: Run, io: TrainIO, t0: number): Promise<TrainResult> {
  try {
    if (!run.resumed) writeFileAtomic(join(run.runDir, 'run.json'), runJson(run, { step: 0 }));
    await logSessionStart(run);
    run.divergence = { ...run.divergence, limit: divergenceLimit(run) };
    if (!run.resumed) await keepSnapshot(run, 0, false);
    const end = await trainLoop(run, io);
    return end.interrupted ? await finishInterrupted(run, end) : await finishRun(run, end, t0);
  } catch (e) {
    // Whatever stopped the run (device lost, disk full, divergence), say where it can be resumed from.
    const msg = (e as Error).message ?? String(e);
    if (/is intact|no checkpoint had been written|no earlier checkpoint/.test(msg)) throw e;
    throw new Error(`${msg}; ${resumeHint(run)}`, { cause: e });
  }
}
