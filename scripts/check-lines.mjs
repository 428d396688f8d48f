#!/usr/bin/env node
// Line-length check for what the formatter cannot wrap (comments, long strings) and for the files it does not
// format (AssemblyScript, WGSL, Python): every line of code in the repository is at most 120 characters, counted
// in Unicode code points. Prints each offending line as file:line (length) and exits 1 if there is any.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const LIMIT = 120;
const CODE = /\.(ts|mts|mjs|js|wgsl|py|sh)$/;
const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], { encoding: 'utf8' })
  .split('\n')
  .filter((f) => CODE.test(f) && !f.startsWith('fixtures/'));
let bad = 0;
for (const file of files) {
  let text;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    continue; // listed by git but deleted in the work tree
  }
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const n = [...lines[i]].length;
    if (n > LIMIT) {
      bad++;
      console.log(`${file}:${i + 1} (${n} > ${LIMIT} characters)`);
    }
  }
}
if (bad > 0) {
  console.log(`${bad} line(s) over ${LIMIT} characters`);
  process.exit(1);
}
console.log(`line length: ${files.length} files, every line ≤ ${LIMIT} characters`);
