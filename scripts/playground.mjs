#!/usr/bin/env node
// The browser playground (playground/): build the static site with esbuild, then serve it on 127.0.0.1.
//   npm run playground                    build into playground/dist/ and serve it; prints the URL
//   npm run playground:build              build only (the folder is self-contained: copy it to any static host)
//   node scripts/playground.mjs [--build] [--out <dir>] [--port <n>] [--minify]
// The WASM kernels must be built first (npm runs scripts/build-asm.mjs before both scripts).
import { tsImport } from 'tsx/esm/api';

const HELP = `Usage: node scripts/playground.mjs [--build] [--out <dir>] [--port <n>] [--minify]
  --build        write the site and exit (default: build, then serve until Ctrl-C)
  --out <dir>    output folder (default: playground/dist)
  --port <n>     port on 127.0.0.1 (default: 8080; 0 = any free port)
  --minify       minify main.js`;

const args = process.argv.slice(2);
const opt = { build: false, out: undefined, port: 8080, minify: false };
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--build') opt.build = true;
  else if (a === '--minify') opt.minify = true;
  else if (a === '--out') opt.out = args[++i];
  else if (a === '--port') opt.port = Number(args[++i]);
  else if (a === '-h' || a === '--help') {
    console.log(HELP);
    process.exit(0);
  } else {
    console.error(`playground: unknown argument '${a}'\n${HELP}`);
    process.exit(2);
  }
}
if (!Number.isInteger(opt.port) || opt.port < 0 || opt.port > 65535) {
  console.error(`playground: --port expects an integer in [0, 65535], found '${args[args.indexOf('--port') + 1]}'`);
  process.exit(2);
}

const { buildPlayground, servePlayground, DEFAULT_OUT } = await tsImport('../playground/build.ts', import.meta.url);
const out = opt.out ?? DEFAULT_OUT;
try {
  const r = await buildPlayground(out, { minify: opt.minify });
  console.log(
    `playground: built ${r.files} files (${(r.bytes / 1e6).toFixed(1)} MB) into ${r.outDir} in ` +
      `${r.seconds.toFixed(1)} s`,
  );
} catch (e) {
  console.error(`playground: build failed: ${e.message}`);
  process.exit(1);
}
if (!opt.build) {
  let served;
  try {
    served = await servePlayground(out, opt.port);
  } catch (e) {
    console.error(
      `playground: cannot serve on 127.0.0.1:${opt.port}: ` +
        `${e.message}${e.code === 'EADDRINUSE' ? ' (pass --port 0 for any free port)' : ''}`,
    );
    process.exit(1);
  }
  console.log(`playground: serving ${out} at ${served.url}  (Ctrl-C to stop)`);
  console.log('  Open it in Chrome/Edge 113+ for WebGPU (other browsers fall back to WASM).');
  process.on('SIGINT', async () => {
    await served.close();
    process.exit(0);
  });
}
