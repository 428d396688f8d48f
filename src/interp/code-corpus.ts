// A second training corpus for language masking (Monet paper §5.2): source files that the installed npm packages
// ship under node_modules/, one text file per language, written so that `monet train --data <files>` can train on it
// and `monet inspect` can use each file's base name (js, ts, json, md) as the language label.
//
// Languages and extensions:
//   js    .js .mjs .cjs (not .min.js)
//   ts    .ts .mts .cts (not .d.ts declarations)
//   json  .json
//   md    .md .markdown
// (CSS was the obvious fourth language, but node_modules here holds only two small .css files, about 6 kB.)
//
// Deterministic: candidate files are ordered by an FNV-1a hash of their path relative to node_modules (a fixed
// pseudo-random order that spreads the picks over all packages instead of taking the alphabetically first one),
// and taken until each language has `bytesPerLanguage` bytes. Files that look generated are skipped: larger than
// 64 kB, any line longer than 300 characters (minified code), or not valid UTF-8.

import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';

export const CODE_LANGUAGES: Record<string, (name: string) => boolean> = {
  js: (n) => /\.(js|mjs|cjs)$/.test(n) && !n.endsWith('.min.js'),
  ts: (n) => /\.(ts|mts|cts)$/.test(n) && !/\.d\.(ts|mts|cts)$/.test(n),
  json: (n) => n.endsWith('.json'),
  md: (n) => /\.(md|markdown)$/i.test(n),
};

/** FNV-1a, 32 bit: a fixed, platform-independent hash for ordering paths. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

function walk(dir: string, out: string[]): void {
  let entries: string[];
  try {
    entries = readdirSync(dir).sort();
  } catch {
    return;
  }
  for (const e of entries) {
    const p = join(dir, e);
    let st;
    try {
      st = statSync(p);
    } catch {
      continue;
    }
    if (st.isDirectory()) walk(p, out);
    else if (st.isFile()) out.push(p);
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function looksHandWritten(buf: Buffer): string | null {
  if (buf.length > 64 * 1024 || buf.length < 200) return null;
  let text: string;
  try {
    text = utf8.decode(buf);
  } catch {
    return null;
  }
  if (text.split('\n').some((l) => l.length > 300)) return null;
  return text;
}

export interface CodeCorpusFile {
  language: string;
  path: string; // the written file
  bytes: number;
  sources: number; // files taken from node_modules
}

export function buildCodeCorpus(nodeModules: string, outDir: string, bytesPerLanguage: number): CodeCorpusFile[] {
  if (!existsSync(nodeModules)) throw new Error(`code corpus: ${nodeModules} does not exist (expected an installed node_modules folder)`);
  const all: string[] = [];
  walk(nodeModules, all);
  mkdirSync(outDir, { recursive: true });
  const result: CodeCorpusFile[] = [];
  for (const [lang, match] of Object.entries(CODE_LANGUAGES)) {
    const files = all
      .map((p) => relative(nodeModules, p))
      .filter((r) => match(r))
      .sort((a, b) => fnv1a(a) - fnv1a(b) || (a < b ? -1 : 1));
    const parts: string[] = [];
    let bytes = 0;
    for (const r of files) {
      if (bytes >= bytesPerLanguage) break;
      const text = looksHandWritten(readFileSync(join(nodeModules, r)));
      if (text === null) continue;
      parts.push(text.trimEnd());
      bytes += Buffer.byteLength(text) + 2;
    }
    if (bytes < bytesPerLanguage / 4) throw new Error(`code corpus: only ${bytes} bytes of ${lang} found under ${nodeModules}; expected at least ${Math.ceil(bytesPerLanguage / 4)}`);
    const path = join(outDir, `${lang}.txt`);
    const body = parts.join('\n\n') + '\n';
    writeFileSync(path, body);
    result.push({ language: lang, path, bytes: Buffer.byteLength(body), sources: parts.length });
  }
  return result;
}
