// The training loop behind `monet train`: data → engine steps → validation → checkpoints, in a run folder.
//
//   runs/<name>/config.json                model config (FIXTURES.md `lm` keys) + tokenizer
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

import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { totalmem } from 'node:os';
import { appendJsonl, readJsonl, writeFileAtomic } from './atomic.ts';
import { loadModel, loadTrainerState, recoverCheckpoint, saveCheckpoint } from './checkpoint.ts';
import { byteUnigramEntropy, loadBrown, loadTextFiles, type Corpus } from './corpus.ts';
import { BatchSampler, tokenizeDocs, validationBatches } from './data.ts';
import type { Engine, StepHyper } from './engine.ts';
import { createEngine } from './engines.ts';
import { initParams } from './init.ts';
import type { TrainOptions } from './options.ts';
import { expertScaling, formatCount, paramBreakdown, type ModelConfig } from './presets.ts';
import { Progress } from './progress.ts';
import { generate } from './sample.ts';
import { learningRate, topkAlpha } from './schedule.ts';
import { lossCurveSvg } from './svg.ts';
import { makeTokenizer } from './tokenizer.ts';

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
}

export interface TrainIO {
  out: { write(s: string): unknown; isTTY?: boolean };
  /** Set by the caller (SIGINT) to stop after the current step; a checkpoint is written before returning. */
  stop?: { requested: boolean };
  /** Fault-injection hook for tests: wraps the engine the run trains with (e.g. to return a NaN loss at step k). */
  wrapEngine?: (engine: Engine) => Engine;
  /** Consecutive skipped steps that stop the run (default MAX_CONSECUTIVE_FAULTS). */
  maxConsecutiveFaults?: number;
}

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
    `parameters ${formatCount(b.total)} (${b.total.toLocaleString('en-US')}): embeddings ${formatCount(b.embeddings)}, attention ${formatCount(b.attention)}, ` +
      `feed-forward ${formatCount(b.ffn)}${b.routers ? `, routers ${formatCount(b.routers)}` : ''}, norms ${formatCount(b.norms)}`,
  ];
  if (config.ffn === 'monet') {
    const s = expertScaling(config);
    lines.push(
      `experts per layer N = ${config.moe_experts}² = ${s.N.toLocaleString('en-US')}: Monet-${config.moe_decompose === 'horizontal' ? 'HD' : 'VD'} holds them in ${formatCount(s.monetPerLayer)} parameters per layer; ` +
        `an SMoE with ${s.N.toLocaleString('en-US')} experts of width m = ${config.moe_dim} would need ${formatCount(s.smoePerLayer)}, PEER with ${s.N.toLocaleString('en-US')} singleton experts ${formatCount(s.peerPerLayer)}`,
    );
  }
  return lines;
}

/**
 * Refuse a model whose training state cannot fit in this machine's memory, before allocating it: a `--hidden-size
 * 16384` typo should be a sentence, not a V8 out-of-memory abort. Counted: parameters initialised in float64, plus
 * parameters, gradients and two AdamW moments in the engine's precision (float64 for the reference, float32 else).
 */
export function checkFitsInMemory(config: ModelConfig, backend: string): void {
  const n = paramBreakdown(config).total;
  const bytes = n * 8 + n * 4 * (backend === 'reference' ? 8 : 4);
  const have = totalmem();
  if (bytes > have) {
    const gb = (b: number) => (b / 2 ** 30).toFixed(1);
    throw new Error(
      `the model has ${formatCount(n)} parameters; training it needs at least ${gb(bytes)} GiB (parameters, gradients and two AdamW moments) ` +
        `but this machine has ${gb(have)} GiB; pick a smaller --hidden-size / --layers / expert count, or a preset from monet train --list-presets`,
    );
  }
}

export async function train(
  o: TrainOptions,
  config: ModelConfig,
  resume: boolean,
  io: TrainIO,
  force = false,
): Promise<TrainResult> {
  const say = (s: string) => io.out.write(`${s}\n`);
  const runDir = join(o.runsDir, o.name);
  const t0 = performance.now();

  // ---- run folder: fresh or resumed
  let startStep = 0;
  let params;
  let state;
  let m;
  let v;
  let samplerState: { rng: [number, number, number, number]; batches: number } | undefined;
  let prevSeconds = 0;
  let records: LogRecord[] = [];
  if (resume) {
    if (!existsSync(runDir)) throw new Error(`--resume: run folder ${runDir} does not exist`);
    // Finish (or discard) a checkpoint commit that a crash interrupted, before reading anything.
    const recovered = recoverCheckpoint(runDir);
    if (recovered) say(`${runDir}: ${recovered}`);
    if (!existsSync(join(runDir, 'trainer_state.safetensors'))) {
      throw new Error(
        `--resume: ${runDir} has no trainer_state.safetensors (expected a run folder written by monet train)`,
      );
    }
    const ck = loadModel(runDir);
    const st = loadTrainerState(runDir, ck.config);
    if (st.modelChecksum && ck.checksum && st.modelChecksum !== ck.checksum) {
      throw new Error(
        `--resume: ${runDir}: trainer_state.safetensors (step ${st.step}) was saved with model ${st.modelChecksum}, but model.safetensors is ${ck.checksum}${ck.step !== undefined ? ` (step ${ck.step})` : ''}; the checkpoint is inconsistent`,
      );
    }
    // The options come from the trainer state (written in the same commit); run.json is the fallback for older runs.
    let saved: { options: TrainOptions };
    if (st.info.options && typeof st.info.options === 'object') saved = { options: st.info.options as TrainOptions };
    else {
      try {
        saved = JSON.parse(readFileSync(join(runDir, 'run.json'), 'utf8')) as { options: TrainOptions };
      } catch (e) {
        throw new Error(`--resume: ${runDir}: cannot read the run's options from run.json (${(e as Error).message})`);
      }
    }
    // The saved options win, except what a user may sensibly change on resume: more steps, the backend, reporting.
    const keep: (keyof TrainOptions)[] = [
      'steps',
      'backend',
      'evalEvery',
      'logEvery',
      'saveEvery',
      'sampleTokens',
      'prompt',
      'temperature',
      'evalBatches',
    ];
    const merged = { ...saved.options } as Record<string, unknown>;
    for (const k of keep) merged[k] = o[k];
    o = merged as unknown as TrainOptions;
    config = ck.config;
    params = ck.params;
    state = ck.state;
    startStep = st.step;
    m = st.m;
    v = st.v;
    samplerState = st.sampler;
    prevSeconds = Number(st.info.seconds ?? 0);
    if (existsSync(join(runDir, 'log.jsonl'))) {
      // A kill mid-append can leave a cut-off last line: it is dropped (its step runs again).
      records = readJsonl<LogRecord>(join(runDir, 'log.jsonl')).records;
      // Records written after the checkpoint (a crash between checkpoints) describe steps that will run again.
      records = records.filter((r) => r.step <= startStep);
      writeFileAtomic(
        join(runDir, 'log.jsonl'),
        records.map((r) => JSON.stringify(r)).join('\n') + (records.length ? '\n' : ''),
      );
    }
    if (startStep >= o.steps)
      throw new Error(
        `--resume: ${runDir} already finished ${startStep} of ${o.steps} steps; pass a larger --steps to continue`,
      );
    say(`resuming ${runDir} at step ${startStep}`);
  } else {
    if (existsSync(join(runDir, 'config.json')) || existsSync(join(runDir, 'trainer_state.safetensors'))) {
      if (!force)
        throw new Error(
          `run folder ${runDir} already holds a run; pass --resume to continue it, --force to replace it, or --name for a new one`,
        );
    }
    // The folder is replaced / created only once the data and the backend are known to work (below), so that a
    // wrong --data or --seq-len neither deletes an old run nor leaves an empty folder behind.
    checkFitsInMemory(config, o.backend);
    ({ params, state } = initParams(config, o.seed));
  }

  // ---- data
  const splits = loadSplits(o.data, o.tokenizer);
  const tok = makeTokenizer(o.tokenizer);
  if (tok.vocabSize !== config.vocab_size)
    throw new Error(
      `tokenizer '${o.tokenizer}' has ${tok.vocabSize} ids but the model's vocab_size is ${config.vocab_size}`,
    );
  const B = o.batchSize;
  const S = o.seqLen;
  if (S > config.max_position_embeddings)
    throw new Error(`--seq-len ${S} exceeds the model's max_position_embeddings ${config.max_position_embeddings}`);
  const sampler = new BatchSampler(splits.train, B, S, samplerState ?? o.seed + 1);
  const valBatches = validationBatches(splits.validation, B, S, o.evalBatches);
  const H = splits.entropy;
  say(
    `data: ${splits.corpus.name === 'brown' ? 'Brown corpus' : 'text files'} — ${splits.corpus.train.length} training documents (${splits.train.length.toLocaleString('en-US')} tokens), ` +
      `${splits.corpus.validation.length} validation documents (${splits.validation.length.toLocaleString('en-US')} tokens; ${valBatches.length * B} windows of ${S} used for validation)`,
  );
  say(
    `validation byte-unigram entropy ${H.toFixed(4)} nats (${(H / Math.LN2).toFixed(3)} bits); target validation loss ≤ 0.75 × that = ${(0.75 * H).toFixed(4)}`,
  );
  for (const l of describeModel(config))
    say(`model: ${o.preset}, ${modelKind(config)}, ${config.num_hidden_layers} × ${config.hidden_size}; ${l}`);

  // ---- engine
  const created = await createEngine(o.backend, { config, params, state, m, v });
  const engine = io.wrapEngine ? io.wrapEngine(created.engine) : created.engine;
  say(`backend: ${engine.name} (${created.why})`);
  if (!resume) {
    try {
      if (force) rmSync(runDir, { recursive: true, force: true });
      mkdirSync(runDir, { recursive: true });
    } catch (e) {
      await engine.dispose();
      throw new Error(`cannot create the run folder ${runDir} (${(e as Error).message})`);
    }
  }
  const tokensPerStep = B * S * o.gradAccum;
  say(
    `training ${o.steps} steps × ${tokensPerStep.toLocaleString('en-US')} tokens (batch ${B} × seq ${S}${o.gradAccum > 1 ? ` × accum ${o.gradAccum}` : ''}), AdamW lr ${o.lr} → ${o.minLr}, warm-up ${o.warmup}, wd ${o.weightDecay}, clip ${o.clip}, seed ${o.seed}`,
  );

  const write = (r: LogRecord) => {
    records.push(r);
    appendJsonl(join(runDir, 'log.jsonl'), r);
  };
  const alphaAt = (step: number) => topkAlpha(o.topkAnneal, o.steps, step);
  const sched = { lr: o.lr, minLr: o.minLr, warmup: o.warmup, steps: o.steps };

  const evaluate = async (alpha: number): Promise<{ loss: number; ce: number }> => {
    let loss = 0;
    let ce = 0;
    for (const b of valBatches) {
      const r = await engine.evalLoss(b, B, S, alpha);
      loss += r.loss / valBatches.length;
      ce += r.ce / valBatches.length;
    }
    return { loss, ce };
  };

  const runOptionsJson = (extra: Record<string, unknown>) =>
    `${JSON.stringify({ options: o, config, backend: engine.name, ...extra }, null, 2)}\n`;

  let lastCheckpoint: number | null = resume ? startStep : null;
  const checkpoint = async (step: number, seconds: number) => {
    const { params: p, state: s } = await engine.exportModel();
    const mom = await engine.exportMoments();
    // Never replace a good checkpoint with a diverged model (an update can overflow even when its gradient was finite).
    for (const [name, a] of p) {
      for (let i = 0; i < a.length; i++) {
        if (!Number.isFinite(a[i]))
          throw new Error(
            `not writing the checkpoint of step ${step}: parameter '${name}' holds ${a[i]} at index ${i}; ${resumeHint()}`,
          );
      }
    }
    saveCheckpoint(runDir, config, o.tokenizer, p, s, {
      step,
      sampler: sampler.state(),
      info: { seconds, backend: engine.name, options: o },
      m: mom.m,
      v: mom.v,
    });
    lastCheckpoint = step;
    writeFileAtomic(join(runDir, 'run.json'), runOptionsJson({ step }));
    writeSvg();
  };
  /** What to tell the user when the run cannot go on. */
  const resumeHint = () =>
    lastCheckpoint !== null
      ? `the checkpoint of step ${lastCheckpoint} in ${runDir} is intact; continue with: monet train --resume --name ${o.name}${o.runsDir !== 'runs' ? ` --runs-dir ${o.runsDir}` : ''}`
      : 'no checkpoint had been written yet';

  const writeSvg = () => {
    const trainPts = records
      .filter((r) => typeof r.loss === 'number')
      .map((r) => [r.step, r.loss as number] as [number, number]);
    const valPts = records
      .filter((r) => typeof r.val_loss === 'number')
      .map((r) => [r.step, r.val_loss as number] as [number, number]);
    const svg = lossCurveSvg(
      `${o.name}: ${modelKind(config)} on ${engine.name}`,
      [
        { label: 'train loss', color: '#1f77b4', points: trainPts },
        { label: 'validation CE', color: '#d62728', points: valPts, dots: true },
      ],
      [
        { label: 'byte-unigram entropy', color: '#7f7f7f', y: H },
        { label: '0.75 × entropy (target)', color: '#2ca02c', y: 0.75 * H },
      ],
    );
    writeFileAtomic(join(runDir, 'loss.svg'), svg);
  };

  if (!resume) {
    write({
      step: 0,
      event: 'start',
      backend: engine.name,
      preset: o.preset,
      params: paramBreakdown(config).total,
      entropy: H,
    });
    const v0 = await evaluate(alphaAt(0));
    write({ step: 0, val_loss: v0.ce, val_total: v0.loss });
    say(
      `step 0: validation CE ${v0.ce.toFixed(4)} (uniform over 256 bytes would be ${Math.log(config.vocab_size).toFixed(4)})`,
    );
  } else {
    write({ step: startStep, event: 'resume', backend: engine.name });
  }

  // ---- loop
  const progress = new Progress(io.out, o.logEvery);
  let lastLoss = NaN;
  let step = startStep;
  let tMark = performance.now();
  let tokensSinceMark = 0;
  const tLoop = performance.now();
  const maxFaults = io.maxConsecutiveFaults ?? MAX_CONSECUTIVE_FAULTS;
  let faults = 0; // consecutive skipped steps
  let lastRead = startStep; // the step of the previous result read from the engine
  try {
    while (step < o.steps) {
      const batches: Int32Array[] = [];
      for (let a = 0; a < o.gradAccum; a++) batches.push(sampler.next());
      const hp: StepHyper = {
        lr: learningRate(sched, step),
        beta1: o.beta1,
        beta2: o.beta2,
        eps: o.eps,
        weightDecay: o.weightDecay,
        clip: o.clip,
        step: step + 1,
        alpha: alphaAt(step),
      };
      // A result is read at log steps, and before an evaluation or a checkpoint: a device engine's fault counters
      // arrive with it, and neither may run while a streak of skipped steps lasts.
      const want =
        (step + 1) % o.logEvery === 0 ||
        step + 1 === o.steps ||
        step === startStep ||
        (step + 1) % o.evalEvery === 0 ||
        (step + 1) % o.saveEvery === 0;
      let r: Awaited<ReturnType<Engine['trainStep']>>;
      try {
        r = await engine.trainStep(batches, B, S, hp, want);
      } catch (e) {
        throw new Error(`step ${step + 1} failed on ${engine.name}: ${(e as Error).message}; ${resumeHint()}`, {
          cause: e,
        });
      }
      step++;
      tokensSinceMark += tokensPerStep;
      if (r?.faults) {
        // Device engine: the steps it skipped since its previous result, counted on the device.
        const f = r.faults;
        faults = f.streak;
        write({
          step: f.lastStep,
          event: 'skip',
          reason: f.reason,
          loss: f.lastLoss,
          grad_norm: f.lastNorm,
          lr: learningRate(sched, f.lastStep - 1),
          skipped: f.count,
          since: lastRead + 1,
          read_at: step,
          streak: f.streak,
          streak_from: f.streakFrom,
        });
        progress.log(
          `steps ${lastRead + 1}–${step}: ${f.count} skipped, not applied (latest: step ${f.lastStep}, ${f.reason})` +
            (f.streak > 0 ? `; ${f.streak} in a row up to step ${step} (stop at ${maxFaults})` : ''),
        );
      } else if (r?.skipped) {
        // Reference engine: this step, checked on the host.
        faults++;
        write({ step, event: 'skip', reason: r.skipped, loss: r.loss, grad_norm: r.gradNorm, lr: hp.lr });
        progress.log(`step ${step}: skipped, not applied (${r.skipped}); ${faults} in a row (stop at ${maxFaults})`);
      } else if (r) faults = 0;
      if (r) lastRead = step;
      if (r?.skipped) {
        if (faults >= maxFaults) {
          progress.done();
          const from = r.faults ? ` (steps ${r.faults.streakFrom}–${step})` : '';
          throw new Error(
            `training stopped at step ${step}: ${faults} consecutive steps${from} had a non-finite loss or gradient (last: ${r.skipped}, lr ${hp.lr}); ` +
              `the parameters may have diverged — try a lower --lr or a gradient clip (--clip); ${resumeHint()}`,
          );
        }
        continue; // no evaluation or checkpoint while a fault streak lasts: the last checkpoint stays a good one
      }
      if (r) {
        const now = performance.now();
        const tps = tokensSinceMark / ((now - tMark) / 1000);
        tMark = now;
        tokensSinceMark = 0;
        lastLoss = r.loss;
        write({
          step,
          loss: r.loss,
          ce: r.ce,
          grad_norm: r.gradNorm,
          lr: hp.lr,
          alpha: config.ffn === 'topk' ? hp.alpha : undefined,
          tokens_per_s: Math.round(tps),
          seconds: prevSeconds + (now - tLoop) / 1000,
        });
        progress.update({
          step,
          steps: o.steps,
          loss: r.loss,
          tokensPerSec: tps,
          elapsed: (now - tLoop) / 1000,
          lr: hp.lr,
          startStep,
        });
      }
      if (step % o.evalEvery === 0 && step < o.steps) {
        const ev = await evaluate(alphaAt(step));
        write({ step, val_loss: ev.ce, val_total: ev.loss });
        progress.log(`step ${step}: validation CE ${ev.ce.toFixed(4)} = ${(ev.ce / H).toFixed(3)} × entropy`);
      }
      if (step % o.saveEvery === 0 && step < o.steps)
        await checkpoint(step, prevSeconds + (performance.now() - tLoop) / 1000);
      if (io.stop?.requested) {
        progress.done();
        say(`stopping at step ${step} (interrupted); checkpoint written, continue with --resume`);
        break;
      }
    }
    progress.done();

    // ---- end: validation, checkpoint, sample
    const seconds = prevSeconds + (performance.now() - tLoop) / 1000;
    const final = await evaluate(alphaAt(step));
    write({ step, val_loss: final.ce, val_total: final.loss });
    await checkpoint(step, seconds);
    const ratio = final.ce / H;
    say(
      `validation CE ${final.ce.toFixed(4)} nats/byte vs byte-unigram entropy ${H.toFixed(4)}: ratio ${ratio.toFixed(3)} (target ≤ 0.75: ${ratio <= 0.75 ? 'met' : 'NOT met'})`,
    );
    let sample = '';
    if (o.sampleTokens > 0) {
      sample = await generate(engine, tok, {
        prompt: o.prompt,
        tokens: o.sampleTokens,
        temperature: o.temperature,
        seed: o.seed,
        alpha: alphaAt(step),
        maxContext: config.max_position_embeddings,
      });
      say(`sample (temperature ${o.temperature}):\n${o.prompt}${sample}`);
    }
    const result: TrainResult = {
      runDir,
      backend: engine.name,
      steps: step,
      finalTrainLoss: lastLoss,
      valLoss: final.ce,
      unigramEntropy: H,
      ratio,
      sample,
      seconds,
    };
    writeFileAtomic(
      join(runDir, 'run.json'),
      runOptionsJson({ step, summary: { ...result, totalSeconds: (performance.now() - t0) / 1000 } }),
    );
    say(
      `run folder: ${runDir} (config.json, model.safetensors, trainer_state.safetensors, log.jsonl, loss.svg, run.json) — ${seconds.toFixed(1)} s of training`,
    );
    return result;
  } catch (e) {
    // Whatever stopped the run (device lost, disk full, divergence), say where it can be resumed from.
    const msg = (e as Error).message ?? String(e);
    if (/is intact|no checkpoint had been written/.test(msg)) throw e;
    throw new Error(`${msg}; ${resumeHint()}`, { cause: e });
  } finally {
    try {
      await engine.dispose();
    } catch {
      // a lost device cannot be disposed cleanly; the error that stopped the run is the one to report
    }
  }
}
