// `monet` command line. Each subcommand lives in its own module and is loaded only when used.

const HELP = `monet — sparse interpretable transformer layers (Monet, PEER, SMoE, TopK) in TypeScript

Usage: monet <command> [options]

Commands:
  check <files|folders…>    run golden fixtures through a backend and compare (docs/fixtures.md)
  help                      this text

Run \`monet <command> --help\` for a command's options.`;

type Command = (args: string[]) => Promise<number>;

const COMMANDS: Record<string, () => Promise<Command>> = {
  check: async () => (await import('./check.ts')).check,
};

export async function main(argv: string[]): Promise<number> {
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
