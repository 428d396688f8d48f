import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { demo } from '../src/cli/demo.ts';
import { LM_EXAMPLES } from '../src/kinds/examples.ts';

async function capture(args: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const log = console.log;
  const err = console.error;
  console.log = (s: unknown) => void lines.push(String(s));
  console.error = (s: unknown) => void lines.push(String(s));
  try {
    return { code: await demo(args), out: lines.join('\n') };
  } finally {
    console.log = log;
    console.error = err;
  }
}

test('monet demo checks every feed-forward configuration of the reference LM, ends in one PASS verdict', async () => {
  const { code, out } = await capture(['--samples', '1', '--seed', '3']);
  assert.is(code, 0, out);
  const rows = out.split('\n').filter((l) => / ok$/.test(l));
  const expected = Object.values(LM_EXAMPLES).reduce((n, list) => n + list.length, 0);
  assert.is(rows.length, expected, out);
  for (const kind of Object.keys(LM_EXAMPLES))
    assert.ok(
      rows.some((r) => r.startsWith(kind)),
      `no row for ${kind}`,
    );
  assert.match(out.split('\n').at(-1)!, /^verdict: PASS — all \d+ feed-forward configurations/);
});

test('monet demo refuses unknown options with exit code 2', async () => {
  const { code, out } = await capture(['--frobnicate']);
  assert.is(code, 2);
  assert.match(out, /unknown option '--frobnicate'/);
});

test.run();
