// esbuild support for bundling package code into browser pages (the playground, the unit site's test box).
//
// Node-only modules: the package's file helpers (loadFixture, loadModel, loadBrown, …) import node:fs and friends at
// the top of files whose other exports a page uses (parseFixture, parseSafetensors, …). The bundle replaces each
// node: module with a stub whose functions throw "not available in a browser" if ever called; the pages only call
// the byte-level functions.

import type { Plugin } from 'esbuild';

/** Names the bundled package code imports from node: modules (a missing one is a build error, so it is noticed). */
const NODE_STUB_EXPORTS: Record<string, string[]> = {
  fs: [
    'readFileSync',
    'writeFileSync',
    'existsSync',
    'mkdirSync',
    'readdirSync',
    'statSync',
    'rmSync',
    'openSync',
    'writeSync',
    'fsyncSync',
    'closeSync',
    'renameSync',
    'unlinkSync',
    'appendFileSync',
  ],
  'fs/promises': ['readFile', 'writeFile'],
  path: ['join', 'dirname', 'basename', 'extname', 'relative', 'resolve'],
  url: ['fileURLToPath', 'pathToFileURL'],
  module: ['createRequire', 'register'],
  v8: ['setFlagsFromString'],
  os: ['tmpdir', 'cpus', 'availableParallelism'],
  worker_threads: ['Worker'],
};

export function nodeStubPlugin(): Plugin {
  return {
    name: 'node-stubs',
    setup(b) {
      b.onResolve({ filter: /^node:/ }, (a) => ({ path: a.path.slice(5), namespace: 'node-stub' }));
      b.onLoad({ filter: /.*/, namespace: 'node-stub' }, (a) => {
        const names = NODE_STUB_EXPORTS[a.path];
        if (!names)
          return {
            errors: [
              {
                text:
                  `browser bundle: the page's code imports node:${a.path}, which has no browser stub; ` +
                  'add it to NODE_STUB_EXPORTS in src/browser-bundle.ts',
              },
            ],
          };
        const fn = (n: string) =>
          `export function ${n}() { throw new Error('node:${a.path} ${n}() is not available in a browser ` +
          `(pages read files through fetch, <input type=file> or embedded data)'); }`;
        return { contents: `${names.map(fn).join('\n')}\nexport default { ${names.join(', ')} };\n`, loader: 'js' };
      });
    },
  };
}
