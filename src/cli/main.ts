// `monet` command line. Each subcommand lives in its own module and is loaded only when used.

const HELP = `monet — sparse interpretable transformer layers (Monet, PEER, SMoE, TopK) in TypeScript

Usage: monet <command> [options]

Commands:
  demo                      forward + backward of a tiny float64 LM with each feed-forward kind, gradient-checked
  check <files|folders…>    run golden fixtures through a backend and compare (docs/fixtures.md)
  train                     train an LM (Monet-VD by default) on the Brown corpus; writes runs/<name>/
  sample                    generate text from a run folder or a MonetLLM folder (--checkpoint <folder>)
  eval                      validation loss of a run folder; cross-entropy of --ids / --text under any model folder
  chat                      talk to a MonetLLM chat model (its folder's chat template)
  export                    write a Monet run folder as a MonetLLM (Hugging Face) folder (--hf <folder>)
  inspect <subcommand>      look inside a trained run: units, unit, compare, mask, steer, report, code-corpus
  help                      this text

Run \`monet <command> --help\` for a command's options.`;

import { guardOutput } from './output.ts';

type Command = (args: string[]) => Promise<number>;

const COMMANDS: Record<string, () => Promise<Command>> = {
  demo: async () => (await import('./demo.ts')).demo,
  train: async () => (await import('./train.ts')).trainCommand,
  sample: async () => (await import('./sample.ts')).sampleCommand,
  eval: async () => (await import('./eval.ts')).evalCommand,
  chat: async () => (await import('./chat.ts')).chatCommand,
  export: async () => (await import('./export.ts')).exportCommand,
  inspect: async () => (await import('./inspect.ts')).inspectCommand,
  check: async () => (await import('./check.ts')).check,
};

export async function main(argv: string[]): Promise<number> {
  guardOutput();
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === 'help' || cmd === '--help' || cmd === '-h') {
    console.log(HELP);
    return 0;
  }
  const load = COMMANDS[cmd];
  if (!load) {
    console.error(`monet: unknown command '${cmd}'. Expected one of: ${Object.keys(COMMANDS).join(', ')}, help.`);
    return 2;
  }
  return (await load())(rest);
}
