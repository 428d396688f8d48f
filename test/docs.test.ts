// The repository stands alone: what the code and the docs cite is in it.
//   1. No file names a document that users do not have (notes kept outside the repository).
//   2. Every relative link in README.md, docs/ and tools/pytorch/README.md resolves, anchors included.
//   3. Every repository file named in a file (a doc, a test, a source file) exists.
//   4. Every citation of docs/spec.md names a section that exists there.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';

const ROOT = join(import.meta.dirname, '..');
const TEXT = /\.(ts|mts|mjs|js|json|md|py|sh|wgsl|html|css|yml|yaml|toml|txt)$|^\.ci\/run$|(^|\/)\.gitignore$/;

/** Text files git knows (tracked or new, not ignored), without the fixtures and test data. */
function textFiles(): string[] {
  const out = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  return out
    .split('\n')
    .filter((f) => TEXT.test(f) && !f.startsWith('fixtures/') && !f.startsWith('test/data/'))
    .filter((f) => f !== 'package-lock.json' && existsSync(join(ROOT, f)));
}

const read = (f: string) => readFileSync(join(ROOT, f), 'utf8');

/** GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces to hyphens. */
function headingSlug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}_\- ]/gu, '')
    .replace(/ /g, '-');
}

function anchorsOf(mdFile: string): Set<string> {
  const out = new Set<string>();
  let fenced = false;
  for (const line of read(mdFile).split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    const m = !fenced && /^#{1,6} (.*)$/.exec(line);
    if (m) out.add(headingSlug(m[1]));
  }
  return out;
}

test('no file cites notes kept outside the repository', () => {
  // Spelled in pieces so that this file does not match itself.
  const outside = new RegExp(
    [
      '\\.\\./' + 'shared',
      '/' + 'shared/',
      'SPEC' + '\\.md',
      'SPEC' + ' §',
      'FIXTURES' + '\\.md',
      'NAMES' + '\\.md',
      '(^|[^\\w/.-])' + 'names\\.md',
      'notes/' + 'names',
    ].join('|'),
  );
  const hits: string[] = [];
  for (const f of textFiles()) {
    read(f)
      .split('\n')
      .forEach((line, i) => {
        if (outside.test(line)) hits.push(`${f}:${i + 1}: ${line.trim().slice(0, 100)}`);
      });
  }
  assert.equal(hits, [], `citations of documents that are not in the repository:\n${hits.join('\n')}`);
});

const DOCS = () => ['README.md', 'tools/pytorch/README.md', ...textFiles().filter((f) => /^docs\/.*\.md$/.test(f))];

test('every relative link in README.md, docs/ and tools/pytorch/README.md resolves, anchors included', () => {
  const broken: string[] = [];
  for (const f of DOCS()) {
    for (const m of read(f).matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = m[1];
      if (/^(https?|mailto):/.test(target)) continue;
      const [path, anchor] = target.split('#');
      const file = path ? normalize(join(dirname(f), path)) : f;
      if (!existsSync(join(ROOT, file))) broken.push(`${f}: ${target} (no file ${file})`);
      else if (anchor !== undefined && file.endsWith('.md') && !anchorsOf(file).has(anchor))
        broken.push(`${f}: ${target} (no heading with anchor #${anchor} in ${file})`);
    }
  }
  assert.equal(broken, [], broken.join('\n'));
});

test('every repository file named in a file exists (docs, tests, sources, tools)', () => {
  const dirs = 'docs|test|bench|src|reference|scripts|tools|asm|wgsl|bin';
  const cited = new RegExp(`(?<![\\w$/.-])((?:${dirs})/[\\w./-]+\\.(?:md|ts|mjs|py|sh|json))\\b`, 'g');
  const missing: string[] = [];
  for (const f of textFiles())
    for (const m of read(f).matchAll(cited)) if (!existsSync(join(ROOT, m[1]))) missing.push(`${f}: ${m[1]}`);
  assert.equal([...new Set(missing)], [], [...new Set(missing)].join('\n'));
});

test('every citation of docs/spec.md names one of its sections', () => {
  const sections = new Set<string>();
  for (const line of read('docs/spec.md').split('\n')) {
    const m = /^#{2,3} (\d+(?:\.\d+)?)\.? /.exec(line);
    if (m) sections.add(m[1]);
  }
  assert.ok(sections.has('1.3') && sections.has('4.4'), [...sections].join(' '));
  const bad: string[] = [];
  for (const f of textFiles()) {
    for (const m of read(f).matchAll(/spec(?:\.md)?\]?\(?[\w.#-]*\)?\s*§\s*([\d.–, §]+)/g)) {
      for (const ref of m[1].split(/[–,§\s]+/).filter((x) => /^\d/.test(x))) {
        const n = ref.replace(/\.$/, '');
        if (!sections.has(n)) bad.push(`${f}: §${n}`);
      }
    }
  }
  assert.equal(bad, [], bad.join('\n'));
});

test.run();
