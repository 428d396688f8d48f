// The code corpus: one file per language, deterministic, rebuilt from its manifest; comment stripping (only comments
// go); languages read from one commit of a git repository.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildCodeCorpus } from '../src/interp/code-corpus.ts';
import { stripComments } from '../src/interp/strip-comments.ts';

test('stripComments: comments go, comment-like code stays', () => {
  const src = [
    '#!/usr/bin/env node',
    '/**',
    ' * JSDoc block: English prose.',
    ' */',
    "const url = 'https://example.com/a'; // trailing note",
    'const re = /\\/\\/ not a comment/g;',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the source text of a JavaScript template literal
    'const t = `a ${b /* inner */ + 1} // still template`;',
    '  // an indented comment line',
    'f(x /* inline */, y);',
    '',
    '',
    '',
    '/* two */ /* blocks */',
    'end();',
    '',
  ].join('\n');
  const want = [
    '#!/usr/bin/env node',
    "const url = 'https://example.com/a';",
    'const re = /\\/\\/ not a comment/g;',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the source text of a JavaScript template literal
    'const t = `a ${b  + 1} // still template`;',
    'f(x , y);',
    '',
    'end();',
    '',
  ].join('\n');
  assert.is(stripComments(src, 'a.js'), want);
});

test('stripComments: TypeScript syntax, and text without comments comes back unchanged', () => {
  const ts = 'function f<T>(a: T): T { // id\n  return a as T; /* cast */\n}\n';
  assert.is(stripComments(ts, 'a.ts'), 'function f<T>(a: T): T {\n  return a as T;\n}\n');
  const plain = 'let a = "// x";\nlet b = 1 / 2 / 3;\n';
  assert.is(stripComments(plain, 'b.js'), plain);
});

test('code corpus: one file per language, extensions filtered, deterministic', () => {
  const root = mkdtempSync(join(tmpdir(), 'interp-code-'));
  try {
    const nm = join(root, 'node_modules');
    const line = (tag: string, i: number) => `// ${tag} line ${i} ${'x'.repeat(40)}\n`;
    const body = (tag: string) => Array.from({ length: 12 }, (_, i) => line(tag, i)).join('');
    for (let p = 0; p < 6; p++) {
      const dir = join(nm, `pkg${p}`, 'lib');
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, `a${p}.js`), body(`js${p}`));
      writeFileSync(join(dir, `a${p}.min.js`), body(`minjs${p}`));
      writeFileSync(join(dir, `b${p}.ts`), body(`ts${p}`));
      writeFileSync(join(dir, `b${p}.d.ts`), body(`dts${p}`));
      writeFileSync(join(dir, `c${p}.json`), body(`json${p}`));
      writeFileSync(join(dir, `README${p}.md`), body(`md${p}`));
      writeFileSync(join(dir, `long${p}.js`), `${'y'.repeat(400)}\n${body(`longjs${p}`)}`); // minified-looking
    }
    writeFileSync(join(nm, '.package-lock.json'), body('npmlock')); // npm's own file: not a package source
    const out1 = join(root, 'out1');
    const out2 = join(root, 'out2');
    const files = buildCodeCorpus(nm, out1, 1500);
    buildCodeCorpus(nm, out2, 1500);
    assert.equal(
      files.map((f) => f.language),
      ['js', 'ts', 'json', 'md'],
    );
    for (const f of files) {
      const t = readFileSync(f.path, 'utf8');
      assert.is(t, readFileSync(join(out2, `${f.language}.txt`), 'utf8'));
      assert.ok(t.includes(`// ${f.language}`), `${f.language}.txt holds ${f.language} files`);
      assert.not.match(t, /minjs|dts|longjs|npmlock/);
      assert.ok(f.bytes >= 1500 && f.sources < 6, `${f.language}: stops after the byte budget`);
    }
    // A manifest rebuilds the same files even after more packages are installed.
    mkdirSync(join(nm, 'zzz-new', 'lib'), { recursive: true });
    for (let p = 0; p < 6; p++) writeFileSync(join(nm, 'zzz-new', 'lib', `n${p}.js`), body(`new${p}`));
    const out3 = join(root, 'out3');
    buildCodeCorpus(nm, out3, 1500, join(out1, 'sources.txt'));
    for (const f of files)
      assert.is(readFileSync(join(out3, `${f.language}.txt`), 'utf8'), readFileSync(f.path, 'utf8'));
    assert.throws(() => buildCodeCorpus(nm, out3, 1500, join(root, 'missing.txt')), /does not exist/);
    // A listed file of another size (another package version) is refused by name.
    const first = readFileSync(join(out1, 'sources.txt'), 'utf8').split('\n')[0].split('\t')[1];
    writeFileSync(join(nm, first), `${body('changed')}// one more line\n`);
    assert.throws(
      () => buildCodeCorpus(nm, out3, 1500, join(out1, 'sources.txt')),
      (e: Error) => e.message.includes(first) && /has \d+ bytes: another version/.test(e.message),
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('code corpus --strip-comments: js, ts lose comments, json, md keep theirs; manifest header; option wins', () => {
  const root = mkdtempSync(join(tmpdir(), 'monet-strip-'));
  try {
    const nm = join(root, 'node_modules');
    const code = (tag: string) =>
      Array.from({ length: 12 }, (_, i) => `// ${tag} comment ${i}\nconst ${tag}_${i} = ${i}; // note\n`).join('');
    for (let p = 0; p < 4; p++) {
      const dir = join(nm, `pkg${p}`);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, `a${p}.js`), code(`js${p}`));
      writeFileSync(join(dir, `b${p}.ts`), code(`ts${p}`));
      writeFileSync(
        join(dir, `c${p}.json`),
        `${JSON.stringify({ k: '// kept', v: ['x'.repeat(150), 'z'.repeat(150)] }, null, 2)}\n`,
      );
      writeFileSync(
        join(dir, `d${p}.md`),
        `# Title ${p}\n\n// kept in markdown ${'y'.repeat(150)}\n${'w'.repeat(150)}\n`,
      );
    }
    const out1 = join(root, 'out1');
    const files = buildCodeCorpus(nm, out1, 600, undefined, { stripComments: true });
    const text = Object.fromEntries(files.map((f) => [f.language, readFileSync(f.path, 'utf8')]));
    assert.not.match(text.js, /comment|note|\/\//);
    assert.not.match(text.ts, /comment|note|\/\//);
    assert.match(text.js, /const js\d_11 = 11;/);
    assert.match(text.json, /\/\/ kept/);
    assert.match(text.md, /\/\/ kept in markdown/);
    const manifest = join(out1, 'sources.txt');
    const lines = readFileSync(manifest, 'utf8').split('\n');
    assert.is(lines[0], '# strip-comments');
    // The sizes listed are the installed files' sizes (they check the package version), not the stripped sizes.
    const [, rel, bytes] = lines[1].split('\t');
    assert.is(Number(bytes), readFileSync(join(nm, rel)).length);
    // Rebuilding from the manifest strips the same way without being asked.
    const out2 = join(root, 'out2');
    buildCodeCorpus(nm, out2, 600, manifest);
    for (const f of files) assert.is(readFileSync(join(out2, `${f.language}.txt`), 'utf8'), text[f.language]);
    // Without the option nothing is stripped, and no header is written.
    const out3 = join(root, 'out3');
    const plain = buildCodeCorpus(nm, out3, 600);
    assert.match(readFileSync(plain[0].path, 'utf8'), /\/\/ js\d comment 0/);
    assert.not.match(readFileSync(join(out3, 'sources.txt'), 'utf8'), /^#/);
    // An explicit option wins over the manifest: the same files, with or without their comments.
    const out4 = join(root, 'out4');
    buildCodeCorpus(nm, out4, 600, join(out3, 'sources.txt'), { stripComments: true });
    assert.is(
      readFileSync(join(out4, 'sources.txt'), 'utf8'),
      `# strip-comments\n${readFileSync(join(out3, 'sources.txt'), 'utf8')}`,
    );
    assert.not.match(readFileSync(join(out4, 'js.txt'), 'utf8'), /comment|note|\/\//);
    const out5 = join(root, 'out5');
    buildCodeCorpus(nm, out5, 600, manifest, { stripComments: false });
    assert.match(readFileSync(join(out5, 'js.txt'), 'utf8'), /\/\/ js\d comment 0/);
    assert.not.match(readFileSync(join(out5, 'sources.txt'), 'utf8'), /^#/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('buildCodeCorpus: py and wgsl come from one commit of the repository, whatever the working tree holds', () => {
  const root = mkdtempSync(join(tmpdir(), 'monet-gitcorpus-'));
  try {
    const repo = join(root, 'repo');
    mkdirSync(join(repo, 'tools'), { recursive: true });
    mkdirSync(join(repo, 'shaders'), { recursive: true });
    const lines = (tag: string, n: number) =>
      Array.from({ length: n }, (_, i) => `${tag}_${i} = ${i}  # ${'x'.repeat(30)}\n`).join('');
    for (let i = 0; i < 5; i++) {
      writeFileSync(join(repo, 'tools', `t${i}.py`), lines(`py${i}`, 10));
      writeFileSync(join(repo, 'shaders', `s${i}.wgsl`), lines(`wgsl${i}`, 10).replaceAll('#', '//'));
    }
    const g = (...args: string[]) =>
      execFileSync('git', ['-C', repo, '-c', 'user.name=t', '-c', 'user.email=t@t', ...args], { stdio: 'pipe' })
        .toString()
        .trim();
    g('init', '-q');
    g('add', '.');
    g('commit', '-qm', 'corpus');
    const sha = g('rev-parse', 'HEAD');
    const nm = join(root, 'node_modules'); // never created: py and wgsl do not need one
    const out1 = join(root, 'out1');
    const files = buildCodeCorpus(nm, out1, 900, undefined, { languages: ['py', 'wgsl'], repository: repo });
    assert.equal(
      files.map((f) => f.language),
      ['py', 'wgsl'],
    );
    const py = readFileSync(files[0].path, 'utf8');
    assert.match(py, /py\d_9 = 9/);
    assert.not.match(py, /wgsl/);
    const manifest = join(out1, 'sources.txt');
    for (const line of readFileSync(manifest, 'utf8').trim().split('\n'))
      assert.match(line, new RegExp(`^(py|wgsl)\tgit:${sha}:(tools|shaders)/[ts]\\d\\.(py|wgsl)\t\\d+$`));
    // The working tree changes and a new commit lands: the manifest still rebuilds the same bytes.
    for (let i = 0; i < 5; i++) writeFileSync(join(repo, 'tools', `t${i}.py`), lines(`changed${i}`, 12));
    g('commit', '-qam', 'later');
    const out2 = join(root, 'out2');
    buildCodeCorpus(nm, out2, 900, manifest, { repository: repo });
    assert.is(readFileSync(join(out2, 'py.txt'), 'utf8'), py);
    // A new pick reads the new commit; an unknown language and a malformed entry are refused with what was expected.
    const out3 = join(root, 'out3');
    buildCodeCorpus(nm, out3, 900, undefined, { languages: ['py'], repository: repo });
    assert.match(readFileSync(join(out3, 'py.txt'), 'utf8'), /changed\d_11 = 11/);
    assert.throws(
      () => buildCodeCorpus(nm, out3, 900, undefined, { languages: ['cobol'], repository: repo }),
      /unknown language 'cobol'; expected some of js, ts, json, md, py, wgsl/,
    );
    const bad = join(root, 'bad.txt');
    writeFileSync(bad, 'py\ttools/t0.py\t100\n');
    assert.throws(
      () => buildCodeCorpus(nm, out3, 900, bad, { repository: repo }),
      (e: Error) => e.message.includes(`${bad} line 1`) && e.message.includes("'git:<commit>:<path>'"),
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test.run();
