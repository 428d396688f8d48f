// `monet sample --checkpoint <folder>`: generate text from a trained run folder or a downloaded MonetLLM folder.

import { FlagError, formatHelp, parseFlags, type FlagSpec, type FlagValues } from '../train/flags.ts';
import { SEED_MAX } from '../train/rng.ts';
import { THREADS_FLAG, threadsOf } from '../train/options.ts';
import { openRun } from '../train/run.ts';
import { generate, generateIds, TextStream, type SamplingOptions } from '../train/sample.ts';
import { isHfDir } from '../hf/dir-source.ts';
import { openHf } from '../hf/open.ts';
import type { BackendChoice } from '../train/options.ts';

export const BACKEND_FLAG: FlagSpec = {
  name: 'backend',
  type: 'string',
  choices: ['auto', 'webgpu', 'wasm', 'reference', 'js'],
  help: 'where to run the model',
  default: 'auto',
};

export const SAMPLING_FLAGS: FlagSpec[] = [
  {
    name: 'tokens',
    type: 'int',
    min: 1,
    help: 'tokens to generate',
    default: '300 (run folders), 64 (MonetLLM folders)',
  },
  { name: 'temperature', type: 'float', min: 0, help: 'sampling temperature (0 = greedy)', default: '0.8' },
  { name: 'top-k', type: 'int', min: 0, help: 'sample among the k most likely tokens (0 = all)', default: '0' },
  {
    name: 'top-p',
    type: 'float',
    positive: true,
    help: 'nucleus sampling: smallest set of mass ≥ p (1 = all)',
    default: '1',
  },
  {
    name: 'repetition-penalty',
    type: 'float',
    positive: true,
    help: 'divide positive (multiply negative) logits of tokens already in the context (1 = off)',
    default: '1',
  },
  { name: 'seed', type: 'int', min: 0, max: SEED_MAX, help: 'sampling seed', default: '1' },
];

const FLAGS: FlagSpec[] = [
  {
    name: 'checkpoint',
    type: 'string',
    help: 'run folder written by monet train, or a MonetLLM folder (config.json, *.safetensors, tokenizer.json)',
  },
  { name: 'prompt', type: 'string', help: 'text to continue', default: '"The "' },
  {
    name: 'prompt-ids',
    type: 'list',
    help: 'token ids to continue instead of text (MonetLLM folders: no tokenizer needed)',
  },
  ...SAMPLING_FLAGS,
  { name: 'no-stop', type: 'bool', help: 'keep generating after the end-of-sequence token (MonetLLM folders)' },
  { name: 'json', type: 'bool', help: 'print one JSON object {ids, text, tokens_per_s} instead of streaming text' },
  { name: 'verbose', type: 'bool', help: 'print what was read and ignored while loading (to stderr)' },
  BACKEND_FLAG,
  THREADS_FLAG,
];

export function samplingOf(f: FlagValues): SamplingOptions {
  return {
    temperature: (f.temperature as number | undefined) ?? 0.8,
    topK: (f['top-k'] as number | undefined) ?? 0,
    topP: (f['top-p'] as number | undefined) ?? 1,
    repetitionPenalty: (f['repetition-penalty'] as number | undefined) ?? 1,
  };
}

/** Token ids of a --prompt-ids / --ids list, each checked against the vocabulary. */
export function parseIds(list: string[], V: number, flag: string): number[] {
  return list.map((s, i) => {
    const v = Number(s);
    if (!/^\d+$/.test(s.trim()) || !Number.isSafeInteger(v) || v >= V)
      throw new FlagError(`--${flag}: item ${i + 1} is '${s}'; expected a token id in [0, vocab_size = ${V})`);
    return v;
  });
}

async function sampleHf(dir: string, f: FlagValues): Promise<void> {
  const hf = await openHf(dir, ((f.backend as string | undefined) ?? 'auto') as BackendChoice, threadsOf(f));
  try {
    if (f.verbose) for (const n of hf.notes) console.error(`note: ${n}`);
    const tok = f['prompt-ids'] ? null : await hf.tokenizer();
    const prompt = f['prompt-ids']
      ? parseIds(f['prompt-ids'] as string[], hf.config.vocab_size, 'prompt-ids')
      : Array.from(tok!.encode((f.prompt as string | undefined) ?? 'The '));
    if (prompt.length < (hf.engine.openDecoder ? 1 : 2))
      throw new FlagError(
        `monet sample: the prompt is ${prompt.length} token(s); give at least ${hf.engine.openDecoder ? 1 : 2} ` +
          '(the reference backend recomputes the context, whose forward needs two positions)',
      );
    const stream = tok && !f.json ? new TextStream(tok) : null;
    if (stream) process.stdout.write((f.prompt as string | undefined) ?? 'The ');
    const t0 = performance.now();
    const ids = await generateIds(hf.engine, prompt, {
      tokens: (f.tokens as number | undefined) ?? 64,
      sampling: samplingOf(f),
      seed: (f.seed as number | undefined) ?? 1,
      stop: f['no-stop'] ? [] : hf.eos,
      alpha: 1,
      maxContext: hf.config.max_position_embeddings,
      onId: (id) => {
        if (stream) process.stdout.write(stream.push(id));
        else if (!f.json && !tok) process.stdout.write(`${id} `);
      },
    });
    const seconds = (performance.now() - t0) / 1000;
    if (f.json) {
      const text = tok ? tok.decode(ids) : null;
      console.log(
        JSON.stringify({
          ids,
          text,
          tokens_per_s: ids.length / seconds,
          load_s: hf.loadSeconds,
          backend: hf.engine.name,
        }),
      );
    } else {
      if (stream) process.stdout.write(stream.flush());
      process.stdout.write('\n');
      console.error(
        `${ids.length} tokens in ${seconds.toFixed(2)} s (${(ids.length / seconds).toFixed(2)} tokens/s, ` +
          `${hf.engine.name}; loaded in ${hf.loadSeconds.toFixed(1)} s)`,
      );
    }
  } finally {
    await hf.engine.dispose();
  }
}

async function sampleRun(dir: string, f: FlagValues): Promise<void> {
  const run = await openRun(dir, (f.backend as 'auto') ?? 'auto', threadsOf(f), {
    purpose: 'sample',
    tokens: (f.tokens as number | undefined) ?? 300,
  });
  for (const w of run.warnings) console.error(`monet sample: warning: ${w}`);
  try {
    const prompt = (f.prompt as string | undefined) ?? 'The ';
    const s = samplingOf(f);
    if (!f.json) process.stdout.write(prompt);
    const t0 = performance.now();
    let n = 0;
    const text = await generate(run.engine, run.tokenizer, {
      prompt,
      tokens: (f.tokens as number | undefined) ?? 300,
      temperature: s.temperature,
      sampling: s,
      seed: (f.seed as number | undefined) ?? 1,
      alpha: run.alpha,
      maxContext: run.config.max_position_embeddings,
      onToken: (t) => {
        n++;
        if (!f.json) process.stdout.write(t);
      },
    });
    const seconds = (performance.now() - t0) / 1000;
    if (f.json) console.log(JSON.stringify({ text, tokens_per_s: n / seconds, backend: run.engine.name }));
    else process.stdout.write('\n');
  } finally {
    await run.engine.dispose();
  }
}

export async function sampleCommand(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    console.log(formatHelp('Usage: monet sample --checkpoint <folder> [options]', FLAGS));
    return 0;
  }
  try {
    const f = parseFlags('sample', FLAGS, args);
    if (!f.checkpoint)
      throw new FlagError(
        'monet sample: --checkpoint <run folder> is required ' +
          '(a run folder such as runs/monet-vd-small-run, or a MonetLLM folder)',
      );
    const dir = f.checkpoint as string;
    if (await isHfDir(dir)) await sampleHf(dir, f);
    else {
      if (f['prompt-ids'])
        throw new FlagError('monet sample: --prompt-ids is for MonetLLM folders; run folders take --prompt');
      await sampleRun(dir, f);
    }
    return 0;
  } catch (e) {
    console.error(e instanceof FlagError ? e.message : `monet sample: ${(e as Error).message}`);
    return e instanceof FlagError ? 2 : 1;
  }
}
