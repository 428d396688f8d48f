import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { main } from '../src/cli/main.ts';

test('monet --help prints usage and exits 0', async () => {
  const lines: string[] = [];
  const log = console.log;
  console.log = (s: unknown) => void lines.push(String(s));
  try {
    assert.is(await main(['--help']), 0);
  } finally {
    console.log = log;
  }
  assert.match(lines.join('\n'), /Usage: monet <command>/);
});

test('monet with an unknown command exits 2 and names the command', async () => {
  const errs: string[] = [];
  const err = console.error;
  console.error = (s: unknown) => void errs.push(String(s));
  try {
    assert.is(await main(['frobnicate']), 2);
  } finally {
    console.error = err;
  }
  assert.match(errs.join('\n'), /unknown command 'frobnicate'/);
});

test.run();
