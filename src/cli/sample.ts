// `monet sample --checkpoint <run folder>`: generate text from a trained model.

import { FlagError, formatHelp, parseFlags, type FlagSpec } from '../train/flags.ts';
import { openRun } from '../train/run.ts';
import { generate } from '../train/sample.ts';

const FLAGS: FlagSpec[] = [
  {
    name: 'checkpoint',
    type: 'string',
    help: 'run folder written by monet train (holds config.json and model.safetensors)',
  },
  { name: 'prompt', type: 'string', help: 'text to continue', default: '"The "' },
  { name: 'tokens', type: 'int', min: 1, help: 'tokens to generate', default: '300' },
  { name: 'temperature', type: 'float', min: 0, help: 'sampling temperature (0 = greedy)', default: '0.8' },
  { name: 'seed', type: 'int', min: 0, help: 'sampling seed', default: '1' },
  {
    name: 'backend',
    type: 'string',
    choices: ['auto', 'webgpu', 'wasm', 'reference', 'js'],
    help: 'where to run the model',
    default: 'auto',
  },
];

export async function sampleCommand(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    console.log(formatHelp('Usage: monet sample --checkpoint <run folder> [options]', FLAGS));
    return 0;
  }
  try {
    const f = parseFlags('sample', FLAGS, args);
    if (!f.checkpoint)
      throw new FlagError('monet sample: --checkpoint <run folder> is required (e.g. runs/monet-vd-small-run)');
    const run = await openRun(f.checkpoint as string, (f.backend as 'auto') ?? 'auto');
    try {
      const prompt = (f.prompt as string | undefined) ?? 'The ';
      process.stdout.write(prompt);
      await generate(run.engine, run.tokenizer, {
        prompt,
        tokens: (f.tokens as number | undefined) ?? 300,
        temperature: (f.temperature as number | undefined) ?? 0.8,
        seed: (f.seed as number | undefined) ?? 1,
        alpha: run.alpha,
        maxContext: run.config.max_position_embeddings,
        onToken: (t) => process.stdout.write(t),
      });
      process.stdout.write('\n');
    } finally {
      await run.engine.dispose();
    }
    return 0;
  } catch (e) {
    console.error(e instanceof FlagError ? e.message : `monet sample: ${(e as Error).message}`);
    return e instanceof FlagError ? 2 : 1;
  }
}
