// Run `monet …` in-process and capture everything it prints (console and direct stream writes), so a test can
// assert on the exit code and the text. The real console and streams are restored even when the command throws.
import { main } from '../src/cli/main.ts';

export interface CliRun {
  code: number;
  /** console.log and process.stdout.write, joined by newlines */
  out: string;
  /** console.error and process.stderr.write, joined by newlines */
  err: string;
}

export async function runMonet(args: string[]): Promise<CliRun> {
  const out: string[] = [];
  const err: string[] = [];
  const saved = [console.log, console.error, process.stdout.write, process.stderr.write] as const;
  const sink = (into: string[]) =>
    ((s: string | Uint8Array) => {
      into.push(String(s));
      return true;
    }) as typeof process.stdout.write;
  console.log = (...a: unknown[]) => void out.push(a.join(' '));
  console.error = (...a: unknown[]) => void err.push(a.join(' '));
  process.stdout.write = sink(out);
  process.stderr.write = sink(err);
  try {
    const code = await main(args);
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    [console.log, console.error, process.stdout.write, process.stderr.write] = saved;
  }
}
