// `monet train` options: flag declarations, defaults, and the mapping from flags to a model config.
// Every flag that does not apply to the chosen model is refused with the reason (a silently ignored
// `--moe-experts` on a dense model would make a user believe they trained something they did not).

import { availableParallelism } from 'node:os';
import { FlagError, flagValueProblem, type FlagSpec, type FlagValues } from './flags.ts';
import { SEED_MAX } from './rng.ts';
import { getPreset, presetNames, validateConfig, type FfnKind, type ModelConfig, type Preset } from './presets.ts';

export const BACKENDS = ['auto', 'webgpu', 'wasm', 'reference', 'js'] as const;
export type BackendChoice = (typeof BACKENDS)[number];

export interface TrainOptions {
  name: string;
  runsDir: string;
  preset: string;
  backend: BackendChoice;
  /** Threads the wasm backend runs its kernels on (results do not depend on it). */
  threads: number;
  steps: number;
  batchSize: number;
  seqLen: number;
  gradAccum: number;
  lr: number;
  minLr: number;
  warmup: number;
  weightDecay: number;
  beta1: number;
  beta2: number;
  eps: number;
  clip: number;
  seed: number;
  evalEvery: number;
  evalBatches: number;
  logEvery: number;
  saveEvery: number;
  /** Keep a snapshot of the model every N steps (and at steps 0 and the last) in snapshots/; 0 = none. */
  keepEvery: number;
  sampleTokens: number;
  prompt: string;
  temperature: number;
  topkAnneal: number;
  data: string[] | null;
  tokenizer: string;
}

export const TRAIN_DEFAULTS: Omit<TrainOptions, 'name'> = {
  runsDir: 'runs',
  preset: 'monet-vd-small',
  backend: 'auto',
  threads: availableParallelism(),
  steps: 400,
  batchSize: 16,
  seqLen: 128,
  gradAccum: 1,
  lr: 3e-3,
  minLr: 3e-4,
  warmup: 30,
  weightDecay: 0.1,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  clip: 1.0,
  seed: 1337,
  evalEvery: 100,
  evalBatches: 8,
  logEvery: 10,
  saveEvery: 100,
  keepEvery: 0,
  sampleTokens: 300,
  prompt: 'The ',
  temperature: 0.8,
  topkAnneal: 0.2,
  data: null,
  tokenizer: 'bytes',
};

const D = TRAIN_DEFAULTS;

/** `--threads` as given, or the default (the machine's cores). */
export function threadsOf(f: FlagValues): number {
  return (f.threads as number | undefined) ?? D.threads;
}

/** `--threads`, shared by monet train, sample, eval and inspect. */
export const THREADS_FLAG: FlagSpec = {
  name: 'threads',
  type: 'int',
  positive: true,
  help: 'threads the wasm backend runs its kernels on (1: bit-reproducible; more: see docs/backends.md)',
  default: `the machine's cores (${D.threads} here)`,
};

export const TRAIN_FLAGS: FlagSpec[] = [
  // run
  {
    name: 'name',
    type: 'string',
    help: 'run name: the run folder is <runs-dir>/<name>',
    default: '<preset>-<date>-<time>; with --resume, the newest run',
  },
  { name: 'runs-dir', type: 'string', help: 'folder that holds run folders', default: D.runsDir },
  { name: 'resume', type: 'bool', help: 'continue the run in <runs-dir>/<name> from its last checkpoint' },
  {
    name: 'backend',
    type: 'string',
    choices: BACKENDS,
    help:
      'where the whole step runs; auto = webgpu on a hardware adapter, else wasm; reference = float64 (slow, ' +
      'exact); js = the kernel contract in plain TypeScript (slow)',
    default: D.backend,
  },
  THREADS_FLAG,
  { name: 'list-presets', type: 'bool', help: 'print every preset with its parameter count and exit' },
  { name: 'force', type: 'bool', help: 'replace an existing run folder of the same name' },
  // data
  { name: 'data', type: 'list', help: 'train on these text files instead of the Brown corpus' },
  { name: 'tokenizer', type: 'string', choices: ['bytes'], help: 'tokenizer', default: D.tokenizer },
  // model
  { name: 'preset', type: 'string', help: `model preset (${presetNames().join(', ')})`, default: D.preset },
  {
    name: 'ffn',
    type: 'string',
    choices: ['dense', 'smoe', 'peer', 'monet', 'topk'],
    help: 'feed-forward kind (picks the <kind>-small preset unless --preset is given)',
  },
  { name: 'hidden-size', type: 'int', positive: true, help: 'model width d' },
  { name: 'layers', type: 'int', positive: true, help: 'number of decoder layers' },
  { name: 'heads', type: 'int', positive: true, help: 'attention heads' },
  { name: 'kv-heads', type: 'int', positive: true, help: 'key/value heads (grouped-query attention)' },
  {
    name: 'intermediate-size',
    type: 'int',
    positive: true,
    help: 'FFN hidden width F (dense, smoe experts, topk, dense layers of peer)',
  },
  {
    name: 'activation',
    type: 'string',
    choices: ['swiglu', 'relu2', 'relu', 'gelu'],
    help: 'FFN activation (dense, smoe, peer)',
  },
  { name: 'moe-decompose', type: 'string', choices: ['vertical', 'horizontal'], help: 'Monet decomposition: VD or HD' },
  { name: 'moe-experts', type: 'int', positive: true, help: 'Monet √N (experts per side)' },
  { name: 'moe-heads', type: 'int', positive: true, help: 'Monet expert heads H' },
  { name: 'moe-topk', type: 'int', positive: true, help: 'Monet per-router top-k the BN threshold targets' },
  { name: 'moe-dim', type: 'int', positive: true, help: 'Monet expert dim m' },
  { name: 'moe-groups', type: 'int', positive: true, help: 'layers sharing one Monet router' },
  { name: 'aux-unif', type: 'float', min: 0, help: 'Monet uniformity-loss coefficient' },
  { name: 'aux-amb', type: 'float', min: 0, help: 'Monet ambiguity-loss coefficient' },
  { name: 'num-experts', type: 'int', positive: true, help: 'SMoE experts, or PEER experts N (a perfect square)' },
  { name: 'top-k', type: 'int', positive: true, help: 'SMoE experts per token, or PEER experts per head' },
  { name: 'aux-balance', type: 'float', min: 0, help: 'SMoE load-balance coefficient' },
  { name: 'aux-z', type: 'float', min: 0, help: 'SMoE router z-loss coefficient' },
  { name: 'peer-heads', type: 'int', positive: true, help: 'PEER retrieval heads' },
  { name: 'key-dim', type: 'int', positive: true, help: 'PEER query/key dim' },
  { name: 'peer-layers', type: 'list', help: 'PEER layer indices (others dense)' },
  { name: 'topk-k', type: 'int', positive: true, help: 'TopK active units per token' },
  {
    name: 'topk-placement',
    type: 'string',
    choices: ['ffn', 'hidden'],
    help: 'TopK on the FFN hidden units or on the block output',
  },
  {
    name: 'topk-anneal',
    type: 'float',
    min: 0,
    help: 'share of the steps over which TopK α goes 1 → 0',
    default: String(D.topkAnneal),
  },
  { name: 'n-last-dense', type: 'int', min: 0, help: 'TopK: last layers kept dense' },
  // optimisation
  { name: 'steps', type: 'int', positive: true, help: 'optimizer steps', default: String(D.steps) },
  { name: 'batch-size', type: 'int', positive: true, help: 'sequences per micro-batch', default: String(D.batchSize) },
  { name: 'seq-len', type: 'int', min: 2, help: 'tokens per sequence', default: String(D.seqLen) },
  {
    name: 'grad-accum',
    type: 'int',
    positive: true,
    help: 'micro-batches per optimizer step',
    default: String(D.gradAccum),
  },
  { name: 'lr', type: 'float', positive: true, help: 'peak learning rate', default: String(D.lr) },
  { name: 'min-lr', type: 'float', min: 0, help: 'learning rate at the last step', default: String(D.minLr) },
  { name: 'warmup', type: 'int', min: 0, help: 'linear warm-up steps', default: `${D.warmup} (at most steps/10)` },
  {
    name: 'weight-decay',
    type: 'float',
    min: 0,
    help: 'AdamW weight decay (not on norms and biases)',
    default: String(D.weightDecay),
  },
  { name: 'beta1', type: 'float', min: 0, help: 'AdamW β1', default: String(D.beta1) },
  { name: 'beta2', type: 'float', min: 0, help: 'AdamW β2', default: String(D.beta2) },
  { name: 'adam-eps', type: 'float', positive: true, help: 'AdamW ε', default: String(D.eps) },
  { name: 'clip', type: 'float', min: 0, help: 'gradient-norm clip (0 = off)', default: String(D.clip) },
  { name: 'seed', type: 'int', min: 0, max: SEED_MAX, help: 'seed for init and batches', default: String(D.seed) },
  // reporting
  { name: 'eval-every', type: 'int', positive: true, help: 'validation every N steps', default: String(D.evalEvery) },
  { name: 'eval-batches', type: 'int', positive: true, help: 'validation batches', default: String(D.evalBatches) },
  {
    name: 'log-every',
    type: 'int',
    positive: true,
    help: 'read the loss back every N steps',
    default: String(D.logEvery),
  },
  { name: 'save-every', type: 'int', positive: true, help: 'checkpoint every N steps', default: String(D.saveEvery) },
  {
    name: 'keep-every',
    type: 'int',
    min: 0,
    help:
      'keep a model snapshot every N steps, and at the first and last step, in <run>/snapshots/step-NNNNNN/ ' +
      '(for monet inspect formation); 0 = none',
    default: String(D.keepEvery),
  },
  {
    name: 'sample-tokens',
    type: 'int',
    min: 0,
    help: 'tokens to generate at the end',
    default: String(D.sampleTokens),
  },
  { name: 'prompt', type: 'string', help: 'prompt of the final sample', default: JSON.stringify(D.prompt) },
  {
    name: 'temperature',
    type: 'float',
    min: 0,
    help: 'sampling temperature (0 = greedy)',
    default: String(D.temperature),
  },
];

/** Which model flags apply to which ffn kinds (and to which config key they write). */
const MODEL_FLAGS: Record<string, { kinds: FfnKind[] | 'all'; apply: (c: ModelConfig, v: never) => void }> = {
  'hidden-size': { kinds: 'all', apply: (c, v: number) => (c.hidden_size = v) },
  layers: { kinds: 'all', apply: (c, v: number) => (c.num_hidden_layers = v) },
  heads: { kinds: 'all', apply: (c, v: number) => (c.num_attention_heads = v) },
  'kv-heads': { kinds: 'all', apply: (c, v: number) => (c.num_key_value_heads = v) },
  'intermediate-size': { kinds: ['dense', 'smoe', 'topk', 'peer'], apply: (c, v: number) => (c.intermediate_size = v) },
  activation: { kinds: ['dense', 'smoe', 'peer'], apply: (c, v: ModelConfig['activation']) => (c.activation = v) },
  'moe-decompose': { kinds: ['monet'], apply: (c, v: ModelConfig['moe_decompose']) => (c.moe_decompose = v) },
  'moe-experts': { kinds: ['monet'], apply: (c, v: number) => (c.moe_experts = v) },
  'moe-heads': { kinds: ['monet'], apply: (c, v: number) => (c.moe_heads = v) },
  'moe-topk': { kinds: ['monet'], apply: (c, v: number) => (c.moe_topk = v) },
  'moe-dim': { kinds: ['monet'], apply: (c, v: number) => (c.moe_dim = v) },
  'moe-groups': { kinds: ['monet'], apply: (c, v: number) => (c.moe_groups = v) },
  'aux-unif': { kinds: ['monet'], apply: (c, v: number) => (c.aux = { ...c.aux, unif: v }) },
  'aux-amb': { kinds: ['monet'], apply: (c, v: number) => (c.aux = { ...c.aux, amb: v }) },
  'num-experts': { kinds: ['smoe', 'peer'], apply: (c, v: number) => (c.num_experts = v) },
  'top-k': { kinds: ['smoe', 'peer'], apply: (c, v: number) => (c.top_k = v) },
  'aux-balance': { kinds: ['smoe'], apply: (c, v: number) => (c.aux = { ...c.aux, balance: v }) },
  'aux-z': { kinds: ['smoe'], apply: (c, v: number) => (c.aux = { ...c.aux, z: v }) },
  'peer-heads': { kinds: ['peer'], apply: (c, v: number) => (c.heads = v) },
  'key-dim': { kinds: ['peer'], apply: (c, v: number) => (c.key_dim = v) },
  'peer-layers': {
    kinds: ['peer'],
    apply: (c, v: string[]) => {
      c.peer_layers = v.map((s) => {
        if (!/^\d+$/.test(s)) throw new FlagError(`monet train: --peer-layers expects layer indices, found '${s}'`);
        return Number(s);
      });
    },
  },
  'topk-k': { kinds: ['topk'], apply: (c, v: number) => (c.k = v) },
  'topk-placement': { kinds: ['topk'], apply: (c, v: ModelConfig['topk_placement']) => (c.topk_placement = v) },
  'n-last-dense': { kinds: ['topk'], apply: (c, v: number) => (c.n_last_non_topk = v) },
};

const SMALL_FOR: Record<FfnKind, string> = {
  dense: 'dense-small',
  smoe: 'smoe-small',
  peer: 'peer-small',
  monet: 'monet-vd-small',
  topk: 'topk-small',
};

/** The model config implied by the flags: a preset, then the overrides, validated. */
export function resolveModel(f: FlagValues): { preset: string; config: ModelConfig } {
  const ffn = f.ffn as FfnKind | undefined;
  let presetName = f.preset as string | undefined;
  if (!presetName) {
    presetName = ffn ? SMALL_FOR[ffn] : D.preset;
    if (ffn === 'monet' && f['moe-decompose'] === 'horizontal') presetName = 'monet-hd-small';
  }
  let preset: Preset;
  try {
    preset = getPreset(presetName);
  } catch (e) {
    // a usage error: exit 2
    throw new FlagError(`monet train: --preset: ${(e as Error).message.replace(/^preset: /, '')}`);
  }
  const config = preset.config;
  if (ffn && ffn !== config.ffn)
    throw new FlagError(
      `monet train: --ffn ${ffn} conflicts with --preset ${presetName}, whose ffn is '${config.ffn}'; give one of them`,
    );
  for (const [flag, rule] of Object.entries(MODEL_FLAGS)) {
    const v = f[flag];
    if (v === undefined) continue;
    if (rule.kinds !== 'all' && !rule.kinds.includes(config.ffn)) {
      throw new FlagError(
        `monet train: --${flag} applies to ${rule.kinds.map((k) => `--ffn ${k}`).join(' / ')}; ` +
          `this model is ${config.ffn} (preset ${presetName})`,
      );
    }
    rule.apply(config, v as never);
  }
  if (f['kv-heads'] === undefined && f.heads !== undefined) config.num_key_value_heads = config.num_attention_heads;
  const seq = f['seq-len'] as number | undefined;
  if (seq !== undefined && seq > config.max_position_embeddings) config.max_position_embeddings = seq;
  try {
    validateConfig(config);
  } catch (e) {
    throw new FlagError(`monet train: ${(e as Error).message} (after applying the flags to preset ${presetName})`);
  }
  return { preset: presetName, config };
}

/** A fresh run's default name: the preset and the local start time, so that every `npm start` gets its own folder. */
export function defaultRunName(preset: string, now = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  const date = `${now.getFullYear()}${p(now.getMonth() + 1)}${p(now.getDate())}`;
  return `${preset}-${date}-${p(now.getHours())}${p(now.getMinutes())}${p(now.getSeconds())}`;
}

/** Training options from flags (defaults filled in). The model is resolved separately. */
export function resolveTrainOptions(f: FlagValues, preset: string, defaultName: string): TrainOptions {
  const num = (k: string, d: number) => (f[k] as number | undefined) ?? d;
  const o: TrainOptions = {
    name: (f.name as string | undefined) ?? defaultName,
    runsDir: (f['runs-dir'] as string | undefined) ?? D.runsDir,
    preset,
    backend: (f.backend as BackendChoice | undefined) ?? D.backend,
    threads: num('threads', D.threads),
    steps: num('steps', D.steps),
    batchSize: num('batch-size', D.batchSize),
    seqLen: num('seq-len', D.seqLen),
    gradAccum: num('grad-accum', D.gradAccum),
    lr: num('lr', D.lr),
    minLr: num('min-lr', D.minLr),
    // Default warm-up: 30 steps, but never more than a tenth of a short run.
    warmup: num('warmup', Math.min(D.warmup, Math.floor(num('steps', D.steps) / 10))),
    weightDecay: num('weight-decay', D.weightDecay),
    beta1: num('beta1', D.beta1),
    beta2: num('beta2', D.beta2),
    eps: num('adam-eps', D.eps),
    clip: num('clip', D.clip),
    seed: num('seed', D.seed),
    evalEvery: num('eval-every', D.evalEvery),
    evalBatches: num('eval-batches', D.evalBatches),
    logEvery: num('log-every', D.logEvery),
    saveEvery: num('save-every', D.saveEvery),
    keepEvery: num('keep-every', D.keepEvery),
    sampleTokens: num('sample-tokens', D.sampleTokens),
    prompt: (f.prompt as string | undefined) ?? D.prompt,
    temperature: num('temperature', D.temperature),
    topkAnneal: num('topk-anneal', D.topkAnneal),
    data: (f.data as string[] | undefined) ?? null,
    tokenizer: (f.tokenizer as string | undefined) ?? D.tokenizer,
  };
  const broken = brokenOptionRule(o);
  if (broken) throw new FlagError(`monet train: ${broken}`);
  return o;
}

/** The rules between options (beyond each flag's own range), for flags and saved options alike. */
function brokenOptionRule(o: TrainOptions): string | null {
  if (o.beta1 >= 1) return `--beta1 must be below 1, found ${o.beta1}`;
  if (o.beta2 >= 1) return `--beta2 must be below 1, found ${o.beta2}`;
  if (o.minLr > o.lr) return `--min-lr ${o.minLr} exceeds --lr ${o.lr}`;
  if (o.warmup >= o.steps && o.steps > 1) return `--warmup ${o.warmup} must be below --steps ${o.steps}`;
  if (o.topkAnneal > 1) return `--topk-anneal is a share of the steps in [0, 1], found ${o.topkAnneal}`;
  if (/[/\\]|^\.\.?$/.test(o.name)) return `--name must be a plain folder name (no slashes), found '${o.name}'`;
  return null;
}

/** The flag each option comes from: its type and range are that flag's declaration (one home per rule). */
const OPTION_FLAG: Record<keyof TrainOptions, string> = {
  name: 'name',
  runsDir: 'runs-dir',
  preset: 'preset',
  backend: 'backend',
  steps: 'steps',
  batchSize: 'batch-size',
  seqLen: 'seq-len',
  gradAccum: 'grad-accum',
  lr: 'lr',
  minLr: 'min-lr',
  warmup: 'warmup',
  weightDecay: 'weight-decay',
  beta1: 'beta1',
  beta2: 'beta2',
  eps: 'adam-eps',
  clip: 'clip',
  seed: 'seed',
  evalEvery: 'eval-every',
  evalBatches: 'eval-batches',
  logEvery: 'log-every',
  saveEvery: 'save-every',
  sampleTokens: 'sample-tokens',
  prompt: 'prompt',
  temperature: 'temperature',
  topkAnneal: 'topk-anneal',
  data: 'data',
  tokenizer: 'tokenizer',
  threads: 'threads',
  keepEvery: 'keep-every',
};

/**
 * Training options read back from a file (run.json, the trainer state), checked as strictly as flags: every value
 * against its flag's type and range, no unknown key, then the rules between options. A key that is absent takes its
 * default (a run written before the option existed). Errors name the file (`where`) and the key.
 */
export function validateSavedOptions(raw: unknown, where: string): TrainOptions {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
    throw new Error(
      `${where}: expected an object of training options, found ${Array.isArray(raw) ? 'a list' : String(raw)}`,
    );
  const given = raw as Record<string, unknown>;
  const unknown = Object.keys(given).filter((k) => !(k in OPTION_FLAG));
  if (unknown.length > 0)
    throw new Error(
      `${where}: unknown option ${unknown
        .slice(0, 3)
        .map((k) => `'${k.slice(0, 40)}'`)
        .join(', ')}`,
    );
  if (typeof given.name !== 'string') throw new Error(`${where}: 'name' must be the run's name (a string)`);
  // A value per option, not checked yet (name was checked above; the others take their defaults when absent).
  const merged: { [K in keyof TrainOptions]: unknown } = { ...TRAIN_DEFAULTS, ...given, name: given.name };
  for (const [key, flag] of Object.entries(OPTION_FLAG) as [keyof TrainOptions, string][]) {
    const v = merged[key];
    if (key === 'data' && v === null) continue; // the Brown corpus
    const spec = TRAIN_FLAGS.find((s) => s.name === flag)!;
    const problem = flagValueProblem(spec, v);
    if (problem) {
      const found = typeof v === 'string' ? JSON.stringify(v.slice(0, 40)) : Array.isArray(v) ? '[…]' : String(v);
      throw new Error(`${where}: '${key}' (--${flag}) must be ${problem}, found ${found}`);
    }
  }
  // Every option has been checked against its flag's type and range above (OPTION_FLAG names them all).
  const o = merged as TrainOptions;
  const broken = brokenOptionRule(o);
  if (broken) throw new Error(`${where}: ${broken}`);
  return o;
}
