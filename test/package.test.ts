// The npm package as a user gets it: `npm pack` (whose prepack step builds dist/), the tarball installed into an
// empty folder outside the repository, and there, with no tsx and no TypeScript sources anywhere it can reach:
// `npx monet check <fixture> --backend wasm`, an import of every subpath, the backend author's test of
// docs/fixtures.md §10, and a TypeScript consumer type-checked against the shipped declarations.
//
// Nothing is downloaded. The tarball's runtime dependencies (package.json `dependencies`, and theirs: every package
// package-lock.json does not mark dev) are copied from this checkout's node_modules into the empty folder first;
// `npm install --offline` with an empty cache then finds every dependency already satisfied and only unpacks the
// tarball and links its bin. (An install from the registry would fetch the same versions; CI's `npm ci` installed
// them here.)
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..');
const work = mkdtempSync(join(tmpdir(), 'monet-pack-'));
const app = join(work, 'app');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  dependencies: Record<string, string>;
  exports: Record<string, unknown>;
};
const tarball = join(work, `${pkg.name}-${pkg.version}.tgz`);

/** Run a command; its output on failure. `env` adds to a copy of this process's environment without npm's own. */
function sh(cmd: string, args: string[], cwd: string, timeout = 300_000): string {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('npm_')));
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) exited ${r.status}:\n${out.slice(-4000)}`);
  return out;
}

/**
 * The runtime dependencies and theirs, as package-lock.json lists them (every package not marked dev), copied (not
 * linked) from this checkout's node_modules into `to`: a top-level folder brings the packages nested in it along.
 */
function copyRuntimeDependencies(to: string): string[] {
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { dev?: boolean; devOptional?: boolean }>;
  };
  const top = Object.entries(lock.packages)
    .filter(([path, p]) => /^node_modules\/(@[^/]+\/)?[^/]+$/.test(path) && !p.dev && !p.devOptional)
    .map(([path]) => path);
  for (const path of top) {
    assert.ok(existsSync(join(ROOT, path)), `runtime dependency ${path} is not installed in this checkout (npm ci)`);
    cpSync(join(ROOT, path), join(to, path), { recursive: true, dereference: true });
  }
  return top;
}

test('npm pack builds dist/ and ships it, the bin, the wasm kernels, the WGSL and the fixtures, no sources', () => {
  sh('npm', ['pack', '--pack-destination', work], ROOT);
  assert.ok(existsSync(tarball), `npm pack wrote ${readdirSync(work).join(', ')}`);
  const files = execFileSync('tar', ['tzf', tarball], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean)
    .map((f) => f.replace(/^package\//, ''));
  for (const f of [
    'package.json',
    'README.md',
    'bin/monet.mjs',
    'dist/src/cli/main.js',
    'dist/src/index.js',
    'dist/src/index.d.ts',
    'dist/reference/index.js',
    'dist/reference/index.d.ts',
    'dist/asm/build/kernels.wasm',
    'dist/asm/build/kernels-threads.wasm',
    'dist/wgsl/matmul.wgsl',
    'dist/wgsl/matmul.wgsl.js',
    'dist/src/interp/site-box.iife.js',
    'dist/fixtures/dense-ffn/relu.safetensors',
    'schema/kinds.schema.json',
  ])
    assert.ok(files.includes(f), `the tarball lacks ${f}`);
  for (const [sub, target] of Object.entries(pkg.exports)) {
    if (typeof target === 'string') continue;
    const t = target as { types: string; default: string };
    for (const f of [t.types, t.default]) assert.ok(files.includes(f.slice(2)), `export '${sub}' names ${f}`);
  }
  const sources = files.filter((f) => (f.endsWith('.ts') && !f.endsWith('.d.ts')) || /^(test|bench|src)\//.test(f));
  assert.equal(sources, [], 'TypeScript sources or test files in the tarball');
});

test('the tarball installs into an empty folder offline (runtime dependencies copied from this checkout)', () => {
  mkdirSync(join(app, 'node_modules'), { recursive: true });
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  const copied = copyRuntimeDependencies(app);
  for (const d of Object.keys(pkg.dependencies))
    assert.ok(copied.includes(`node_modules/${d}`), `package-lock.json lists no runtime ${d}`);
  sh(
    'npm',
    [
      'install',
      '--offline',
      '--cache',
      join(work, 'empty-npm-cache'),
      '--no-audit',
      '--no-fund',
      '--no-package-lock',
      tarball,
    ],
    app,
  );
  assert.ok(existsSync(join(app, 'node_modules', 'monet-ts', 'dist', 'src', 'cli', 'main.js')));
  assert.ok(existsSync(join(app, 'node_modules', '.bin', 'monet')), 'npm linked the monet bin');
  // Nothing there can load TypeScript: tsx is not installed, and the package has no .ts sources.
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', "await import('tsx')"], {
    cwd: app,
    encoding: 'utf8',
  });
  assert.is.not(r.status, 0, 'tsx is importable from the install folder');
  assert.match(r.stderr, /ERR_MODULE_NOT_FOUND|Cannot find package 'tsx'/);
});

test('npx monet check <fixture> --backend wasm runs from dist/ in the install folder', () => {
  const out = sh(
    'npx',
    [
      '--offline',
      'monet',
      'check',
      join(ROOT, 'fixtures', 'monet-vd'),
      join(ROOT, 'fixtures', 'external', 'pytorch', 'peer', 'train_relu.safetensors'),
      '--backend',
      'wasm',
    ],
    app,
  );
  assert.match(out, /wasm: 3 fixtures, 3 passed, 0 failed, 0 unsupported/);
  assert.match(out, /check: PASS/);
  const bad = spawnSync('npx', ['--offline', 'monet', 'check', join(work, 'no-such-file.safetensors')], {
    cwd: app,
    encoding: 'utf8',
  });
  assert.is(bad.status, 2, `a missing file: exit 2\n${bad.stdout}${bad.stderr}`);
  // webgpu is an optional peer dependency, not installed here: the backend says what is missing.
  const noGpu = spawnSync(
    'npx',
    ['--offline', 'monet', 'check', join(ROOT, 'fixtures', 'monet-vd'), '--backend', 'webgpu'],
    { cwd: app, encoding: 'utf8' },
  );
  assert.is(noGpu.status, 2, `webgpu without its package: exit 2\n${noGpu.stdout}${noGpu.stderr}`);
  assert.match(`${noGpu.stdout}${noGpu.stderr}`, /the npm package 'webgpu' \(Dawn for Node\) could not be loaded/);
});

test('every subpath imports in the install folder without tsx', () => {
  const script = `
    const want = {
      'monet-ts': ['runFixture', 'main', 'KINDS', 'FIXTURES_DIR'],
      'monet-ts/reference': ['lmForward', 'lmBackward', 'monetVdForward', 'peerBackward', 'smoeForward'],
      'monet-ts/fixtures': ['loadFixture', 'runFixture', 'formatReports', 'collectFixtureFiles', 'FIXTURES_DIR'],
      'monet-ts/wasm': ['createWasmDevice', 'createWasmCaseBackend'],
      'monet-ts/webgpu': ['createWebGpuDevice', 'openGpu', 'createWebGpuCaseBackend'],
      'monet-ts/layers': ['lmForward', 'lmBackward', 'createJsDevice'],
    };
    for (const [path, names] of Object.entries(want)) {
      const m = await import(path);
      for (const n of names) if (!(n in m)) throw new Error(path + ' does not export ' + n);
    }
    const { default: schema } = await import('monet-ts/kinds.schema.json', { with: { type: 'json' } });
    if (!schema.$defs['monet-vd']) throw new Error('monet-ts/kinds.schema.json has no monet-vd');
    const { FIXTURES_DIR, collectFixtureFiles } = await import('monet-ts/fixtures');
    console.log('fixtures shipped: ' + collectFixtureFiles([FIXTURES_DIR]).files.length);
  `;
  const out = sh(process.execPath, ['--input-type=module', '-e', script], app);
  const shipped = Number(/fixtures shipped: (\d+)/.exec(out)?.[1]);
  assert.ok(shipped >= 60, out);
});

test("docs/fixtures.md §10: the backend author's test runs against the installed package", () => {
  const doc = readFileSync(join(ROOT, 'docs', 'fixtures.md'), 'utf8');
  const m = /backend-author\.test\.mjs -->\n```js\n([\s\S]*?)\n```/.exec(doc);
  assert.ok(m, 'docs/fixtures.md has the marked example');
  writeFileSync(join(app, 'backend-author.test.mjs'), m![1]);
  const out = sh(process.execPath, ['--test', 'backend-author.test.mjs'], app);
  assert.match(out, /# pass 1\n# fail 0/);
});

test('a TypeScript consumer type-checks against the shipped declarations', () => {
  writeFileSync(
    join(app, 'consumer.ts'),
    [
      "import { loadFixture, runFixture, type CaseBackend, type TensorMap } from 'monet-ts/fixtures';",
      "import { lmForward, type LmConfig } from 'monet-ts/reference';",
      "import type { WasmDevice } from 'monet-ts/wasm';",
      'const backend: CaseBackend = { name: "mine", supports: () => true, run: async () => new Map() as TensorMap };',
      'export async function go(path: string, cfg: LmConfig, dev: WasmDevice): Promise<boolean> {',
      "  const r = await runFixture(loadFixture(path), backend, { preset: 'f32' });",
      '  return r.pass && typeof lmForward === "function" && cfg.d > 0 && dev.threads > 0;',
      '}',
      '',
    ].join('\n'),
  );
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  sh(
    process.execPath,
    [
      tsc,
      '--noEmit',
      '--strict',
      '--skipLibCheck',
      '--module',
      'nodenext',
      '--moduleResolution',
      'nodenext',
      '--target',
      'es2022',
      '--typeRoots',
      join(ROOT, 'node_modules', '@types'),
      '--types',
      'node',
      'consumer.ts',
    ],
    app,
  );
});

test.after(() => rmSync(work, { recursive: true, force: true }));

test.run();
