// `monet export --checkpoint <run folder> --hf <new folder>`: a Monet run folder in the MonetLLM (Hugging Face)
// layout, loadable by the official modeling code (src/hf/export.ts).

import { FlagError, formatHelp, parseFlags, type FlagSpec } from '../train/flags.ts';
import { loadModel } from '../train/checkpoint.ts';
import { exportHf } from '../hf/export.ts';

const FLAGS: FlagSpec[] = [
  { name: 'checkpoint', type: 'string', help: 'run folder written by monet train (a Monet model)' },
  { name: 'hf', type: 'string', help: 'folder to write (must not exist, or be empty)' },
  { name: 'dtype', type: 'string', choices: ['bf16', 'f32'], help: 'storage type of the weights', default: 'bf16' },
  { name: 'shard-mb', type: 'float', positive: true, help: 'largest shard in MB of tensor data', default: '2000' },
];

export async function exportCommand(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    console.log(formatHelp('Usage: monet export --checkpoint <run folder> --hf <folder> [options]', FLAGS));
    return 0;
  }
  try {
    const f = parseFlags('export', FLAGS, args);
    if (!f.checkpoint) throw new FlagError('monet export: --checkpoint <run folder> is required');
    if (!f.hf) throw new FlagError('monet export: --hf <folder> is required (where the MonetLLM folder goes)');
    const m = loadModel(f.checkpoint as string);
    const r = exportHf(f.hf as string, m.config, m.params, m.state, {
      dtype: (f.dtype as 'bf16' | 'f32' | undefined) ?? 'bf16',
      shardBytes: ((f['shard-mb'] as number | undefined) ?? 2000) * 1e6,
      step: m.step ?? 0,
    });
    console.log(`${f.hf}: ${r.files.join(', ')} (${(r.bytes / 1e6).toFixed(1)} MB of tensors)`);
    return 0;
  } catch (e) {
    console.error(e instanceof FlagError ? e.message : `monet export: ${(e as Error).message}`);
    return e instanceof FlagError ? 2 : 1;
  }
}
