// `monet check` end to end: exit 0 / 1 / 2 with messages that name the tensor or the problem, on copies of a
// committed fixture that are corrupted, truncated or mislabelled in a temporary folder.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { main } from '../src/cli/main.ts';
import { parseSafetensors, serializeSafetensors } from '../src/safetensors.ts';

const ROOT = join(import.meta.dirname, '..');
const SRC = join(ROOT, 'fixtures', 'dense-ffn', 'swiglu.safetensors');
const dir = mkdtempSync(join(tmpdir(), 'monet-check-'));

/** Run `monet check …` in-process, capturing what it prints. */
async function run(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [],
    err: string[] = [];
  const log = console.log,
    error = console.error;
  console.log = (...a: unknown[]) => void out.push(a.join(' '));
  console.error = (...a: unknown[]) => void err.push(a.join(' '));
  try {
    const code = await main(['check', ...args]);
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    console.log = log;
    console.error = error;
  }
}

/** A copy of the source fixture with its metadata or tensors edited. */
function variant(
  name: string,
  edit: (meta: Record<string, string>, tensors: ReturnType<typeof parseSafetensors>['tensors']) => void,
): string {
  const { metadata, tensors } = parseSafetensors(readFileSync(SRC), SRC);
  delete metadata.checksum; // an edited file without a checksum (a damaged one is tested in fixture-hostile)
  edit(metadata, tensors);
  const path = join(dir, name);
  writeFileSync(path, serializeSafetensors(tensors, metadata));
  return path;
}

test('a good fixture and the committed folder: exit 0', async () => {
  const good = join(dir, 'good.safetensors');
  copyFileSync(SRC, good);
  const r = await run(good);
  assert.is(r.code, 0, r.out + r.err);
  assert.match(r.out, /out\.y\s+pass/);
  assert.match(r.out, /check: PASS/);
  const all = await run(join(ROOT, 'fixtures'), '--backend', 'reference', '--failures');
  assert.is(all.code, 0, all.out + all.err);
});

test('one corrupted output value: exit 1, naming the tensor and the element', async () => {
  const path = variant('corrupt.safetensors', (_m, t) => {
    const y = t.get('out.y')!;
    (y.data as Float64Array)[1 * y.shape[1] + 2] += 1e-6; // element [1, 2]
  });
  const r = await run(path);
  assert.is(r.code, 1, r.out + r.err);
  assert.match(r.out, /out\.y\s+FAIL\s+1\.00e-6\s+\[1,2\]/);
  assert.match(r.out, /failed: .*corrupt\.safetensors \(out\.y\)/);
  const j = await run(path, '--json');
  assert.is(j.code, 1);
  const report = JSON.parse(j.out);
  const bad = report.reports[0].tensors.filter((t: { status: string }) => t.status === 'fail');
  assert.equal(
    bad.map((t: { name: string }) => t.name),
    ['out.y'],
  );
  assert.equal(bad[0].where, [1, 2]);
});

test('a truncated file: exit 2 with a clear message', async () => {
  const bytes = readFileSync(SRC);
  const path = join(dir, 'truncated.safetensors');
  writeFileSync(path, bytes.subarray(0, bytes.length - 100));
  const r = await run(path);
  assert.is(r.code, 2);
  assert.match(r.err, /truncated\.safetensors: tensor '[^']+': data_offsets .* run past the data area.*truncated/);
  writeFileSync(path, bytes.subarray(0, 4));
  const r2 = await run(path);
  assert.is(r2.code, 2);
  assert.match(r2.err, /expected at least 8 bytes .* found a file of 4 bytes/);
});

test('not safetensors, wrong format version, unknown kind, config not matching the tensors: exit 2', async () => {
  const junk = join(dir, 'junk.safetensors');
  writeFileSync(junk, 'this is not a safetensors file at all');
  const a = await run(junk);
  assert.is(a.code, 2);
  assert.match(a.err, /junk\.safetensors: header length/);

  const v2 = variant('v2.safetensors', (m) => {
    m.format = 'monet-ts-fixture/2';
  });
  const b = await run(v2);
  assert.is(b.code, 2);
  assert.match(b.err, /v2\.safetensors: format version 2 \('monet-ts-fixture\/2'\); this checker reads version 1/);

  const kind = variant('kind.safetensors', (m) => {
    m.kind = 'mixture';
  });
  const c = await run(kind);
  assert.is(c.code, 2);
  assert.match(c.err, /kind is 'mixture'; expected one of/);

  const cfg = variant('cfg.safetensors', (m) => {
    m.config = JSON.stringify({ ...JSON.parse(m.config), intermediate_size: 99 });
  });
  const d = await run(cfg);
  assert.is(d.code, 2);
  assert.match(
    d.err,
    /cfg\.safetensors: tensor 'param\.\w+_proj\.weight': shape \[\d+,\d+\] does not match the config: expected \[/,
  );
  assert.match(d.err, /intermediate_size=99/);

  // A broken file among good ones: the good ones are still checked and reported; exit 2 wins.
  const good = join(dir, 'good.safetensors');
  const e = await run(good, kind);
  assert.is(e.code, 2);
  assert.match(e.out, /good\.safetensors\s+out\.y\s+pass/);
});

test('usage errors: missing path, unknown backend, unknown option: exit 2', async () => {
  const a = await run(join(dir, 'nope.safetensors'));
  assert.is(a.code, 2);
  assert.match(a.err, /nope\.safetensors: no such file or folder/);
  const b = await run(SRC, '--backend', 'cuda');
  assert.is(b.code, 2);
  assert.match(b.err, /unknown backend 'cuda'; expected one of reference/);
  const c = await run(SRC, '--frobnicate');
  assert.is(c.code, 2);
  assert.match(c.err, /unknown option '--frobnicate'/);
});

test('the real command sets the process exit code (bin/monet.mjs)', () => {
  const corrupt = join(dir, 'corrupt.safetensors');
  const p = spawnSync(process.execPath, [join(ROOT, 'bin', 'monet.mjs'), 'check', corrupt, '--failures'], {
    encoding: 'utf8',
  });
  assert.is(p.status, 1, p.stdout + p.stderr);
  assert.match(p.stdout, /out\.y\s+FAIL/);
});

test.after(() => rmSync(dir, { recursive: true, force: true }));

test.run();
