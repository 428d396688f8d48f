// `monet chat --checkpoint <MonetLLM chat folder>`: a conversation through the folder's chat template
// (tokenizer_config.json chat_template, rendered by @huggingface/jinja). One turn with --message, else turns are read
// from standard input line by line (an empty line or end of input ends the conversation).

import { createInterface } from 'node:readline';
import { FlagError, formatHelp, parseFlags, type FlagSpec } from '../train/flags.ts';
import { generateIds, TextStream } from '../train/sample.ts';
import { isHfDir } from '../hf/dir-source.ts';
import { openHf } from '../hf/open.ts';
import type { ChatMessage } from '../hf/tokenizer.ts';
import type { BackendChoice } from '../train/options.ts';
import { BACKEND_FLAG, SAMPLING_FLAGS, samplingOf } from './sample.ts';

const FLAGS: FlagSpec[] = [
  {
    name: 'checkpoint',
    type: 'string',
    help: 'a MonetLLM chat model folder (tokenizer_config.json has chat_template)',
  },
  { name: 'system', type: 'string', help: 'a system message first' },
  { name: 'message', type: 'string', help: 'one user message: answer it and exit' },
  ...SAMPLING_FLAGS,
  BACKEND_FLAG,
];

export async function chatCommand(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    console.log(formatHelp('Usage: monet chat --checkpoint <MonetLLM chat folder> [options]', FLAGS));
    return 0;
  }
  try {
    const f = parseFlags('chat', FLAGS, args);
    if (!f.checkpoint) throw new FlagError('monet chat: --checkpoint <MonetLLM chat folder> is required');
    const dir = f.checkpoint as string;
    if (!(await isHfDir(dir)))
      throw new FlagError(`monet chat: ${dir} is not a MonetLLM folder (config.json with model_type)`);
    const hf = await openHf(dir, ((f.backend as string | undefined) ?? 'auto') as BackendChoice);
    try {
      const tok = await hf.tokenizer();
      const messages: ChatMessage[] = f.system ? [{ role: 'system', content: f.system as string }] : [];
      const turn = async (user: string) => {
        messages.push({ role: 'user', content: user });
        const text = tok.chatPrompt(messages);
        // the template writes <s> itself when it wants one; encoding must not add a second
        const ids = Array.from(tok.encodePlain(text));
        const stream = new TextStream(tok);
        const out = await generateIds(hf.engine, ids, {
          tokens: (f.tokens as number | undefined) ?? 256,
          sampling: samplingOf(f),
          seed: (f.seed as number | undefined) ?? 1,
          stop: hf.eos,
          alpha: 1,
          maxContext: hf.config.max_position_embeddings,
          onId: (id) => void process.stdout.write(stream.push(id)),
        });
        process.stdout.write(`${stream.flush()}\n`);
        messages.push({ role: 'assistant', content: tok.decode(out) });
      };
      if (f.message) await turn(f.message as string);
      else {
        const rl = createInterface({ input: process.stdin });
        process.stdout.write('> ');
        for await (const line of rl) {
          if (line.trim() === '') break;
          await turn(line);
          process.stdout.write('> ');
        }
        rl.close();
      }
    } finally {
      await hf.engine.dispose();
    }
    return 0;
  } catch (e) {
    console.error(e instanceof FlagError ? e.message : `monet chat: ${(e as Error).message}`);
    return e instanceof FlagError ? 2 : 1;
  }
}
