// `--data` reads regular files only, of a bounded size, holding UTF-8 text: a binary file (a NUL byte), bytes that
// are not UTF-8, /dev/zero (which never ends), a FIFO (whose read blocks forever), a file over the size limit and a
// text of one repeated byte (entropy 0, so "ratio Infinity") are each refused with the file and the reason.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { closeSync, ftruncateSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTextFiles, MAX_DATA_BYTES } from '../src/train/corpus.ts';
import { loadSplits } from '../src/train/trainer.ts';
import { testUnless } from './skip.ts';

const ROOT = join(import.meta.dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'monet-data-'));
const prose = 'The quick brown fox jumps over the lazy dog. '.repeat(10);

test('a binary file (NUL byte) and bytes that are not UTF-8 are refused: the file, the reason, the offset', () => {
  const bin = join(dir, 'model.bin');
  writeFileSync(bin, Buffer.concat([Buffer.from(prose), Buffer.from([0, 1, 2, 3])]));
  assert.throws(
    () => loadTextFiles([bin]),
    new RegExp(`--data file '${bin}' is not text: a NUL byte \\(a binary file\\) at byte ${prose.length}`),
  );
  const latin1 = join(dir, 'latin1.txt');
  writeFileSync(latin1, Buffer.concat([Buffer.from(prose), Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x20])]));
  assert.throws(
    () => loadTextFiles([latin1]),
    new RegExp(`'${latin1}' is not text: a UTF-8 character cut short \\(not UTF-8 text\\) at byte ${prose.length + 3}`),
  );
  const cont = join(dir, 'cont.txt');
  writeFileSync(cont, Buffer.concat([Buffer.from(prose), Buffer.from([0x80])]));
  assert.throws(() => loadTextFiles([cont]), /byte 0x80, which does not start a UTF-8 character/);
  // UTF-8 text with multi-byte characters is fine
  const ok = join(dir, 'ok.txt');
  writeFileSync(ok, `${prose}naïve café — 東京 🙂\n`.repeat(3));
  assert.is(loadTextFiles([ok]).train.length, 1);
});

test('/dev/zero and a folder are not regular files: refused at once', () => {
  assert.throws(() => loadTextFiles(['/dev/zero']), /--data file '\/dev\/zero' is a device; expected a regular/);
  assert.throws(() => loadTextFiles([dir]), /is a folder; expected a regular UTF-8 text file/);
});

const fifo = join(dir, 'pipe');
const made = spawnSync('mkfifo', [fifo], { encoding: 'utf8' });
const noFifo = made.status === 0 ? null : `mkfifo could not make a FIFO here (${made.error?.message ?? made.stderr})`;

testUnless(noFifo)('a FIFO is not a regular file: refused at once, not read (which would block)', () => {
  // In a child process with a time limit: reading a FIFO nobody writes to would block the test runner forever.
  const r = spawnSync(
    process.execPath,
    [join(ROOT, 'bin/monet.mjs'), 'train', '--preset', 'tiny', '--data', fifo, '--runs-dir', dir, '--seq-len', '16'],
    { cwd: ROOT, encoding: 'utf8', timeout: 30_000 },
  );
  assert.is(r.status, 1, `exit ${r.status} (signal ${r.signal}): ${r.stderr}`);
  assert.match(r.stderr, new RegExp(`--data file '${fifo}' is a FIFO \\(named pipe\\); expected a regular`));
});

test('a file over the size limit is refused before it is read', () => {
  // a sparse file: its size is what counts, no disk is used
  const big = join(dir, 'big.txt');
  const fd = openSync(big, 'w');
  ftruncateSync(fd, MAX_DATA_BYTES + 1);
  closeSync(fd);
  assert.throws(() => loadTextFiles([big]), /has 268,435,457 bytes; --data takes at most 268,435,456 bytes of text/);
});

test('a text of one repeated byte (entropy 0) is refused instead of "ratio Infinity"', () => {
  const same = join(dir, 'aaaa.txt');
  writeFileSync(same, 'a'.repeat(1000));
  assert.throws(
    () => loadSplits([same], 'bytes'),
    /the validation text \(the last 10 % of \S+aaaa\.txt\) is one byte repeated \(byte-unigram entropy 0\)/,
  );
});

test.after(() => rmSync(dir, { recursive: true, force: true }));

test.run();
