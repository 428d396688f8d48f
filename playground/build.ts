// Builds the browser playground into a static folder and serves it. Used by `npm run playground` /
// `npm run playground:build` (scripts/playground.mjs) and by test/playground.test.ts.
//
// What the folder holds (everything the page needs; it fetches nothing from the network):
//   index.html, style.css        the page
//   main.js                      playground/main.ts and the package code it uses, bundled by esbuild; the WGSL
//                                shaders are inlined as text (esbuild's text loader, the browser twin of the Node
//                                loader hook src/backend/webgpu/register-wgsl.mjs)
//   kernels*.wasm                the AssemblyScript kernels (asm/build/, built by scripts/build-asm.mjs): one thread,
//                                and the shared-memory builds for threads (loaded when the page is cross-origin
//                                isolated: servePlayground sends the COOP/COEP headers, ISOLATION_HEADERS)
//   fixtures/…, fixtures/index.json      every committed fixture and the list the page walks for the check
//   corpus.json                  a slice of the Brown corpus (whole documents, every genre) to train and analyse on
//
// Node-only modules: the package's file helpers (loadFixture, loadModel, loadBrown, …) import node:fs and friends at
// the top of files whose other exports the page uses (parseFixture, parseSafetensors, …). The bundle replaces each
// node: module with a stub whose functions throw "not available in a browser" if ever called; the page only calls
// the byte-level functions. The `webgpu` npm package (Dawn for Node) stays an unresolved dynamic import that gpu.ts
// reaches only when navigator.gpu is missing, and whose failure it reports as "no adapter".

import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
  readFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:http';
import { dirname, extname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { nodeStubPlugin } from '../src/browser-bundle.ts';
import { loadBrown } from '../src/train/corpus.ts';

export const PLAYGROUND_DIR = dirname(fileURLToPath(import.meta.url));
export const ROOT = resolve(PLAYGROUND_DIR, '..');
export const DEFAULT_OUT = join(PLAYGROUND_DIR, 'dist');

/** Documents of the Brown corpus the page trains on: the first `perGenre` training documents of every genre, and
 *  one validation document per genre (for the top contexts of experts and neurons). Whole documents, tags dropped. */
function corpusSlice(perGenre: number): {
  name: string;
  train: { id: string; genre: string; text: string }[];
  validation: { id: string; genre: string; text: string }[];
} {
  const c = loadBrown();
  const take = (docs: typeof c.train, n: number) => {
    const count = new Map<string, number>();
    return docs
      .filter((d) => {
        const k = count.get(d.genre) ?? 0;
        count.set(d.genre, k + 1);
        return k < n;
      })
      .map((d) => ({ id: d.id, genre: d.genre, text: d.text }));
  };
  return { name: 'Brown corpus (slice)', train: take(c.train, perGenre), validation: take(c.validation, 1) };
}

function copyTree(src: string, dst: string, filter: (name: string) => boolean, found: string[], base: string): void {
  mkdirSync(dst, { recursive: true });
  for (const e of readdirSync(src, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const s = join(src, e.name);
    const d = join(dst, e.name);
    if (e.isDirectory()) copyTree(s, d, filter, found, base);
    else if (filter(e.name)) {
      copyFileSync(s, d);
      found.push(relative(base, d).split(sep).join('/'));
    }
  }
}

export interface BuildResult {
  outDir: string;
  files: number;
  bytes: number;
  seconds: number;
}

/** The kernel builds the page loads: one thread, and the shared-memory ones for threads. */
const WASM_FILES = ['kernels.wasm', 'kernels-relaxed.wasm', 'kernels-threads.wasm', 'kernels-threads-relaxed.wasm'];

/** Build the static site into outDir (emptied first). */
export async function buildPlayground(
  outDir = DEFAULT_OUT,
  opts: { minify?: boolean; quiet?: boolean } = {},
): Promise<BuildResult> {
  const t0 = performance.now();
  const wasmDir = join(ROOT, 'asm', 'build');
  for (const f of WASM_FILES) {
    if (!existsSync(join(wasmDir, f)))
      throw new Error(`playground build: expected ${join(wasmDir, f)}; run \`npm run build:asm\` first`);
  }
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const r = await build({
    entryPoints: [join(PLAYGROUND_DIR, 'main.ts')],
    outfile: join(outDir, 'main.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    sourcemap: true,
    minify: opts.minify ?? false,
    loader: { '.wgsl': 'text' },
    external: ['webgpu'],
    plugins: [nodeStubPlugin()],
    logLevel: 'silent',
    // gpu.ts / node.ts look at process.env only when it exists; the page has none.
  });
  for (const w of r.warnings) if (!opts.quiet) console.warn(`playground build warning: ${w.text}`);
  for (const f of ['index.html', 'style.css']) copyFileSync(join(PLAYGROUND_DIR, f), join(outDir, f));
  for (const f of WASM_FILES) copyFileSync(join(wasmDir, f), join(outDir, f));
  const fixtures: string[] = [];
  copyTree(
    join(ROOT, 'fixtures'),
    join(outDir, 'fixtures'),
    (n) => n.endsWith('.safetensors'),
    fixtures,
    join(outDir, 'fixtures'),
  );
  writeFileSync(join(outDir, 'fixtures', 'index.json'), `${JSON.stringify({ fixtures }, null, 1)}\n`);
  writeFileSync(join(outDir, 'corpus.json'), JSON.stringify(corpusSlice(3)));
  let bytes = 0;
  let files = 0;
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else {
        files++;
        bytes += statSync(p).size;
      }
    }
  };
  walk(outDir);
  return { outDir, files, bytes, seconds: (performance.now() - t0) / 1000 };
}

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.map': 'application/json',
  '.safetensors': 'application/octet-stream',
};

export interface Served {
  url: string;
  port: number;
  close(): Promise<void>;
}

/**
 * The headers that make the page cross-origin isolated, which browsers require before they give it
 * SharedArrayBuffer (the WASM device's threads share one memory). Any static host can send them; without them the
 * page runs WASM on one thread and says so.
 */
export const ISOLATION_HEADERS = {
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
};

/**
 * Serve `dir` on host:port (port 0 = any free port). Static files only, GET/HEAD, no directory listings, nothing
 * outside `dir`. 127.0.0.1 counts as a secure context, which WebGPU requires. Every response carries
 * ISOLATION_HEADERS unless `isolate` is false (the tests serve it both ways).
 */
export function servePlayground(
  dir = DEFAULT_OUT,
  port = 0,
  host = '127.0.0.1',
  opts: { isolate?: boolean } = {},
): Promise<Served> {
  const isolation = opts.isolate === false ? {} : ISOLATION_HEADERS;
  const root = resolve(dir);
  if (!existsSync(join(root, 'index.html')))
    throw new Error(
      `playground serve: ${join(root, 'index.html')} does not exist; build first (npm run playground:build)`,
    );
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    let path: string;
    try {
      path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    } catch {
      res.writeHead(400).end('bad path');
      return;
    }
    if (path.endsWith('/')) path += 'index.html';
    const file = resolve(root, `.${path}`);
    if (file !== root && !file.startsWith(root + sep)) {
      res.writeHead(403).end('outside the site');
      return;
    }
    if (!existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: ${path}`);
      return;
    }
    const body = readFileSync(file);
    res.writeHead(200, {
      ...isolation,
      'content-type': MIME[extname(file)] ?? 'application/octet-stream',
      'content-length': body.length,
      'cache-control': 'no-store',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  return new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => {
      const a = server.address();
      const p = typeof a === 'object' && a ? a.port : port;
      ok({
        url: `http://${host}:${p}/`,
        port: p,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections?.();
            server.close(() => done());
          }),
      });
    });
  });
}
