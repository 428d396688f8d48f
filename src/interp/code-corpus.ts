// A second training corpus for language masking (Monet paper §5.2): source files that the installed npm packages
// ship under node_modules/, one text file per language, written so that `monet train --data <files>` can train on it
// and `monet inspect` can use each file's base name (js, ts, json, md) as the language label.
//
// Languages and extensions (the default set is js, ts, json, md; `languages` picks others):
//   js    .js .mjs .cjs (not .min.js)        from node_modules
//   ts    .ts .mts .cts (not .d.ts)          from node_modules
//   json  .json                              from node_modules
//   md    .md .markdown                      from node_modules
//   py    .py                                from this repository's git history (no package ships Python)
//   wgsl  .wgsl                              from this repository's git history (our WebGPU shaders)
// (CSS was the obvious other language, but node_modules here holds only minified CSS.) Repository files are read
// with `git show <commit>:<path>` at one commit, so a corpus built from them is the same on every clone that has
// that commit, whatever the working tree holds; the manifest names them `git:<commit>:<path>`.
//
// Deterministic: candidate files are ordered by an FNV-1a hash of their path relative to node_modules (a fixed
// pseudo-random order that spreads the picks over all packages instead of taking the alphabetically first one),
// and taken until each language has `bytesPerLanguage` bytes. Files that look generated are skipped: larger than
// 64 kB, any line longer than 300 characters (minified code), or not valid UTF-8.
//
// npm's own entries at the top of node_modules (.bin, .package-lock.json, .cache) are not package sources and are
// skipped: they change with every install.
//
// The pick depends on which packages are installed, so the output folder also gets sources.txt (language, path
// relative to node_modules, bytes — one file per line, in corpus order); `manifest` rebuilds exactly those files and
// refuses a listed file whose size changed (another version of its package is installed).
//
// With `stripComments` the js and ts files lose their comments before they are counted and written
// (src/interp/strip-comments.ts): the code stays, the English in it goes. The files' sizes in sources.txt are still
// the installed files' sizes (they check the package version), and its first line, `# strip-comments`, makes a
// rebuild from that manifest strip the same way unless told otherwise (`stripComments: false`; `true` strips the
// files of a manifest written without it).

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, type Stats, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { stripComments } from './strip-comments.ts';

export const CODE_LANGUAGES: Record<string, (name: string) => boolean> = {
  js: (n) => /\.(js|mjs|cjs)$/.test(n) && !n.endsWith('.min.js'),
  ts: (n) => /\.(ts|mts|cts)$/.test(n) && !/\.d\.(ts|mts|cts)$/.test(n),
  json: (n) => n.endsWith('.json'),
  md: (n) => /\.(md|markdown)$/i.test(n),
  py: (n) => n.endsWith('.py'),
  wgsl: (n) => n.endsWith('.wgsl'),
};
export const DEFAULT_CODE_LANGUAGES = ['js', 'ts', 'json', 'md'];
/** Languages read from the repository's git history rather than from node_modules. */
const FROM_GIT = new Set(['py', 'wgsl']);

function git(dir: string, args: string[]): Buffer {
  try {
    return execFileSync('git', ['-C', dir, ...args], {
      maxBuffer: 256 * 1024 * 1024,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (e) {
    const err = (e as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(`code corpus: git ${args.join(' ')} in ${dir} failed: ${err || (e as Error).message}`);
  }
}

/** The languages whose files lose their comments with `stripComments`. */
const STRIPPED = new Set(['js', 'ts']);
const STRIP_HEADER = '# strip-comments';

/** FNV-1a, 32 bit: a fixed, platform-independent hash for ordering paths. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

function walk(dir: string, out: string[], top = true): void {
  let entries: string[];
  try {
    entries = readdirSync(dir).sort();
  } catch {
    return;
  }
  for (const e of entries) {
    if (top && e.startsWith('.')) continue;
    const p = join(dir, e);
    let st: Stats;
    try {
      st = statSync(p);
    } catch {
      continue;
    }
    if (st.isDirectory()) walk(p, out, false);
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

export function buildCodeCorpus(
  nodeModules: string,
  outDir: string,
  bytesPerLanguage: number,
  manifest?: string,
  opts: {
    stripComments?: boolean;
    /** Which languages, in order (default js, ts, json, md); a manifest brings its own. */
    languages?: string[];
    /** The repository the py / wgsl files come from, and the commit (default: HEAD). */
    repository?: string;
    commit?: string;
  } = {},
): CodeCorpusFile[] {
  // From a manifest: exactly the listed files, in order. Otherwise: the hashed order over everything installed.
  let listed: Map<string, string[]> | null = null;
  const listedBytes = new Map<string, number>();
  let strip = opts.stripComments === true;
  if (manifest) {
    if (!existsSync(manifest)) throw new Error(`code corpus: manifest ${manifest} does not exist`);
    listed = new Map();
    const lines = readFileSync(manifest, 'utf8').split('\n');
    const manifestStrips = lines[0]?.trim() === STRIP_HEADER;
    // The manifest says whether its corpus was stripped; an explicit option wins (the same files, with or without
    // their comments).
    strip = opts.stripComments ?? manifestStrips;
    for (const [n, line] of lines.entries()) {
      if (!line.trim() || (n === 0 && manifestStrips)) continue;
      const [lang, rel, bytes] = line.split('\t');
      if (!CODE_LANGUAGES[lang] || !rel || !/^\d+$/.test(bytes ?? ''))
        throw new Error(
          `code corpus: ${manifest} line ${n + 1}: expected '<language>\\t<path>\\t<bytes>' with a language of ` +
            `${Object.keys(CODE_LANGUAGES).join(', ')}, found '${line}'`,
        );
      if (FROM_GIT.has(lang) !== rel.startsWith('git:'))
        throw new Error(
          `code corpus: ${manifest} line ${n + 1}: ${lang} files ${FROM_GIT.has(lang) ? 'come' : 'do not come'} from ` +
            `git and are listed as ${FROM_GIT.has(lang) ? "'git:<commit>:<path>'" : 'paths under node_modules'}, ` +
            `found '${rel}'`,
        );
      listed.set(lang, [...(listed.get(lang) ?? []), rel]);
      listedBytes.set(rel, Number(bytes));
    }
  }
  const languages = listed ? [...listed.keys()] : (opts.languages ?? DEFAULT_CODE_LANGUAGES);
  for (const lang of languages)
    if (!CODE_LANGUAGES[lang])
      throw new Error(
        `code corpus: unknown language '${lang}'; expected some of ${Object.keys(CODE_LANGUAGES).join(', ')}`,
      );
  if (languages.some((l) => !FROM_GIT.has(l)) && !existsSync(nodeModules))
    throw new Error(`code corpus: ${nodeModules} does not exist (expected an installed node_modules folder)`);
  const repo = opts.repository ?? '.';
  const needsGit = languages.some((l) => FROM_GIT.has(l));
  // The commit, resolved once to its full hash (a manifest's entries name theirs).
  const commit =
    needsGit && !listed
      ? git(repo, ['rev-parse', '--verify', `${opts.commit ?? 'HEAD'}^{commit}`])
          .toString()
          .trim()
      : '';
  const all: string[] = [];
  if (!listed && languages.some((l) => !FROM_GIT.has(l))) walk(nodeModules, all);
  const tracked = commit ? git(repo, ['ls-tree', '-r', '--name-only', commit]).toString().split('\n') : [];
  mkdirSync(outDir, { recursive: true });
  const result: CodeCorpusFile[] = [];
  const sources: string[] = [];
  for (const lang of languages) {
    const match = CODE_LANGUAGES[lang];
    const fromGit = FROM_GIT.has(lang);
    const files = listed
      ? (listed.get(lang) ?? [])
      : (fromGit ? tracked.filter((r) => r && match(r)) : all.map((p) => relative(nodeModules, p)).filter(match))
          .sort((a, b) => fnv1a(a) - fnv1a(b) || (a < b ? -1 : 1))
          .map((r) => (fromGit ? `git:${commit}:${r}` : r));
    const parts: string[] = [];
    let bytes = 0;
    for (const r of files) {
      if (!listed && bytes >= bytesPerLanguage) break;
      let path: string;
      let buf: Buffer;
      if (fromGit) {
        const m = /^git:([0-9a-f]{40}):(.+)$/.exec(r);
        if (!m) throw new Error(`code corpus: '${r}' is not 'git:<40-digit commit>:<path>'`);
        path = r;
        buf = git(repo, ['show', `${m[1]}:${m[2]}`]);
      } else {
        path = join(nodeModules, r);
        if (listed && !existsSync(path)) throw new Error(`code corpus: ${path} (listed in ${manifest}) does not exist`);
        buf = readFileSync(path);
      }
      const original = looksHandWritten(buf);
      if (original === null) {
        if (listed)
          throw new Error(
            `code corpus: ${path} (listed in ${manifest}) no longer passes the filters (size, line length, UTF-8)`,
          );
        continue;
      }
      const found = Buffer.byteLength(original);
      if (listed && found !== listedBytes.get(r))
        throw new Error(
          `code corpus: ${path} (listed in ${manifest} with ${listedBytes.get(r)} bytes) has ${found} bytes: ` +
            (fromGit
              ? 'the listed commit holds another version of the file (was the history rewritten?)'
              : 'another version of its package is installed (run npm ci to install the pinned versions)'),
        );
      const text = strip && STRIPPED.has(lang) ? stripComments(original, r).trimEnd() : original.trimEnd();
      const textBytes = Buffer.byteLength(text);
      // A file that was (almost) all comments adds nothing; it is skipped, and so never listed.
      if (!listed && textBytes < 200) continue;
      parts.push(text);
      sources.push(`${lang}\t${r}\t${found}`);
      bytes += textBytes + 2;
    }
    if (!listed && bytes < bytesPerLanguage / 4)
      throw new Error(
        `code corpus: only ${bytes} bytes of ${lang} found ` +
          `${fromGit ? `in ${repo} at ${commit}` : `under ${nodeModules}`}; expected at least ` +
          `${Math.ceil(bytesPerLanguage / 4)}`,
      );
    const path = join(outDir, `${lang}.txt`);
    const body = `${parts.join('\n\n')}\n`;
    writeFileSync(path, body);
    result.push({ language: lang, path, bytes: Buffer.byteLength(body), sources: parts.length });
  }
  writeFileSync(join(outDir, 'sources.txt'), `${strip ? `${STRIP_HEADER}\n` : ''}${sources.join('\n')}\n`);
  return result;
}
