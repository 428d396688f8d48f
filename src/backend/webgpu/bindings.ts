// Which storage buffers a WGSL entry point uses, read from the source — so that a kernel needing more than a
// portable WebGPU device offers is refused by name before it is compiled, and a test can check every kernel.
//
// Why this matters: WebGPU counts, per pipeline, the storage buffers its entry point *statically uses* (with
// layout 'auto', a declared but unused binding is not part of the layout). The spec's default for
// maxStorageBuffersPerShaderStage is 8, and a device only gets more when it asks and the adapter has more:
// Chromium's SwiftShader offers 10, many phones 8. So every entry point of every kernel file stays at ≤ 8, and the
// device asks for exactly 8 (gpu.ts), which makes a kernel that needs more fail everywhere, not only in browsers.
//
// "Statically used" follows the WGSL spec: a module-scope variable is used by an entry point if its name appears
// in the entry point's body or in the body of any function the entry point calls, transitively. This reader is a
// tokenizer, not a WGSL parser: it finds `var<storage…> name` declarations and `fn name(…) {…}` bodies by brace
// matching, and treats every identifier in a body as a use, except member names after a dot and the function's
// parameters and local declarations. A function that declares a local with a storage variable's name in one block
// and uses the storage variable in another would be undercounted; the kernels never reuse those names, and the
// portability test (test/webgpu-portability.test.ts) also compiles every entry point on a device limited to 8.

/** The WebGPU default of maxStorageBuffersPerShaderStage: what every conforming device offers without asking. */
export const MAX_STORAGE_BUFFERS = 8;

/** Strip // and /* *\/ comments (WGSL block comments nest; the kernels do not use them, but be correct anyway). */
function stripComments(src: string): string {
  let out = '';
  let depth = 0;
  for (let i = 0; i < src.length; i++) {
    if (depth === 0 && src[i] === '/' && src[i + 1] === '/') {
      while (i < src.length && src[i] !== '\n') i++;
      out += '\n';
    } else if (src[i] === '/' && src[i + 1] === '*') {
      depth++;
      i++;
    } else if (depth > 0 && src[i] === '*' && src[i + 1] === '/') {
      depth--;
      i++;
    } else if (depth === 0) out += src[i];
  }
  return out;
}

interface Parsed {
  /** storage variable name → binding number */
  storage: Map<string, number>;
  /** function name → identifiers in its body */
  bodies: Map<string, Set<string>>;
  /** entry point names (functions marked @compute) */
  entries: string[];
}

function parse(wgsl: string): Parsed {
  const src = stripComments(wgsl);
  const storage = new Map<string, number>();
  // @group(0) @binding(N) var<storage, …> name : …
  for (const m of src.matchAll(/@binding\(\s*(\d+)\s*\)[^;]*?\bvar\s*<\s*storage\b[^>]*>\s*([A-Za-z_]\w*)/g)) {
    storage.set(m[2], Number(m[1]));
  }
  const bodies = new Map<string, Set<string>>();
  const entries: string[] = [];
  for (const m of src.matchAll(/((?:@\w+(?:\([^)]*\))?\s*)*)\bfn\s+([A-Za-z_]\w*)\s*\(/g)) {
    const name = m[2];
    // The body is the first balanced {…} after the header (parameters and return type contain no braces).
    const open = src.indexOf('{', m.index! + m[0].length);
    if (open < 0) continue;
    let depth = 0;
    let end = open;
    for (; end < src.length; end++) {
      if (src[end] === '{') depth++;
      else if (src[end] === '}' && --depth === 0) break;
    }
    // Identifiers of the body, less member names (`gid.x`) and the function's own parameters and local
    // `let`/`var`/`const` names (a helper's parameter `x` is not the storage buffer `x`).
    const ids = new Set(src.slice(open, end).match(/(?<![.\w])[A-Za-z_]\w*/g) ?? []);
    const params = src.slice(m.index! + m[0].length, open).match(/(?<![.\w:<])[A-Za-z_]\w*(?=\s*:)/g) ?? [];
    const locals = [...src.slice(open, end).matchAll(/\b(?:let|var|const)\s+([A-Za-z_]\w*)/g)].map((l) => l[1]);
    for (const l of [...params, ...locals]) ids.delete(l);
    bodies.set(name, ids);
    if (/@compute\b/.test(m[1])) entries.push(name);
  }
  return { storage, bodies, entries };
}

/** The entry points (`@compute fn …`) of a WGSL source. */
export function computeEntryPoints(wgsl: string): string[] {
  return parse(wgsl).entries;
}

/** The storage variables an entry point statically uses (directly or through functions it calls), with their
 *  binding numbers, in binding order. Throws when the source has no such entry point. */
export function storageBindingsUsed(wgsl: string, entryPoint: string): Array<{ name: string; binding: number }> {
  const { storage, bodies } = parse(wgsl);
  if (!bodies.has(entryPoint))
    throw new Error(`WGSL has no function '${entryPoint}' (functions: ${[...bodies.keys()].join(', ')})`);
  const seen = new Set<string>();
  const used = new Set<string>();
  const visit = (fn: string) => {
    if (seen.has(fn)) return;
    seen.add(fn);
    for (const id of bodies.get(fn)!) {
      if (storage.has(id)) used.add(id);
      else if (bodies.has(id)) visit(id);
    }
  };
  visit(entryPoint);
  return [...used].map((name) => ({ name, binding: storage.get(name)! })).sort((a, b) => a.binding - b.binding);
}
