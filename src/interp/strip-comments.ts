// Remove the comments from JavaScript / TypeScript source, keeping everything else byte for byte.
//
// Why: package sources are full of English in their comments (lodash's files are half JSDoc), so a "js" label would
// also mean "English prose", which is what the md label is about. For language masking the code corpus can keep only
// the code (`monet inspect code-corpus --strip-comments`).
//
// How: the TypeScript compiler parses the file (so `//` inside a string, a template or a regular expression is not a
// comment), every node's leading and trailing comment ranges are collected, and those ranges are cut out. A line that
// held only comments is dropped whole; a line that held code keeps its code and loses its trailing spaces. Runs of
// more than one empty line left behind are folded to one. The `typescript` package is loaded only when this is used.

import { createRequire } from 'node:module';
import type * as TS from 'typescript';

let tsModule: typeof TS | null = null;

function typescript(): typeof TS {
  if (tsModule) return tsModule;
  try {
    tsModule = createRequire(import.meta.url)('typescript') as typeof TS;
  } catch (e) {
    throw new Error(
      `strip comments: the 'typescript' package is needed to parse the sources and could not be loaded ` +
        `(${(e as Error).message}); install the development dependencies (npm ci)`,
    );
  }
  return tsModule;
}

/** The [start, end) ranges (UTF-16 code unit offsets) of every comment in `text`, sorted, without duplicates. */
export function commentRanges(text: string, fileName: string): Array<[number, number]> {
  const ts = typescript();
  const kind = /\.(ts|mts|cts)$/.test(fileName) ? ts.ScriptKind.TS : ts.ScriptKind.JS;
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true, kind);
  const seen = new Map<number, number>();
  const add = (rs: readonly TS.CommentRange[] | undefined) => {
    for (const r of rs ?? []) seen.set(r.pos, r.end);
  };
  const visit = (node: TS.Node) => {
    add(ts.getLeadingCommentRanges(text, node.getFullStart()));
    add(ts.getTrailingCommentRanges(text, node.getEnd()));
    for (const child of node.getChildren(sf)) visit(child);
  };
  visit(sf);
  return [...seen.entries()].sort((a, b) => a[0] - b[0]);
}

/** `text` without its comments (see the header); a shebang line is code and stays. */
export function stripComments(text: string, fileName: string): string {
  const ranges = commentRanges(text, fileName);
  if (ranges.length === 0) return text;
  // Mark every character inside a comment, then rebuild line by line.
  const inComment = new Uint8Array(text.length);
  for (const [a, b] of ranges) inComment.fill(1, a, b);
  const out: string[] = [];
  let lineStart = 0;
  let blank = 0;
  while (lineStart <= text.length) {
    let lineEnd = text.indexOf('\n', lineStart);
    if (lineEnd < 0) lineEnd = text.length;
    let kept = '';
    let hadComment = false;
    for (let i = lineStart; i < lineEnd; i++) {
      if (inComment[i]) hadComment = true;
      else kept += text[i];
    }
    kept = kept.replace(/\r$/, '');
    if (hadComment) kept = kept.trimEnd();
    const empty = kept.trim() === '';
    if (!(empty && hadComment)) {
      if (empty) blank++;
      else blank = 0;
      if (blank <= 1) out.push(kept);
    }
    lineStart = lineEnd + 1;
  }
  return out.join('\n');
}
