// JSON that says one thing. JSON.parse accepts an object with the same key twice and keeps the last value, so a
// file could show one value to a reader that takes the first and another to us. Every header and config this project
// reads goes through `duplicateKey` first, which refuses that.
//
// The scanner walks the text once with an explicit stack (no recursion: a hostile file may nest 100,000 levels),
// tracking the keys of every open object. It does not validate the JSON (JSON.parse does that after it); on text
// that is not JSON it may stop early, and JSON.parse then reports the error.

/** A key that appears twice in one object: the key and the path of the object (`$`, `$.config`, `$.a[3]`). */
export interface DuplicateKey {
  key: string;
  path: string;
}

/** The first key that appears twice in one object of `text`, or null. */
export function duplicateKey(text: string): DuplicateKey | null {
  // one frame per open object or array: its keys (objects), its path, and (objects) the key being read next
  const stack: Array<{ keys: Set<string> | null; path: string; index: number; last: string }> = [];
  let expectKey = false; // inside an object, before a key
  let i = 0;
  const n = text.length;
  const readString = (): string | null => {
    // text[i] is the opening quote; returns the decoded string and leaves i after the closing quote
    let out = '';
    i++;
    while (i < n) {
      const c = text[i];
      if (c === '"') {
        i++;
        return out;
      }
      if (c === '\\') {
        const e = text[i + 1];
        if (e === 'u') {
          out += String.fromCharCode(Number.parseInt(text.slice(i + 2, i + 6), 16));
          i += 6;
        } else {
          out += ({ n: '\n', t: '\t', r: '\r', b: '\b', f: '\f' } as Record<string, string>)[e] ?? e;
          i += 2;
        }
        continue;
      }
      out += c;
      i++;
    }
    return null; // unterminated: JSON.parse will say so
  };
  const childPath = (): string => {
    const top = stack[stack.length - 1];
    if (!top) return '$';
    return top.keys ? `${top.path}.${top.last}` : `${top.path}[${top.index}]`;
  };
  while (i < n) {
    const c = text[i];
    if (c === '"') {
      const top = stack[stack.length - 1];
      const s = readString();
      if (s === null) return null;
      if (top?.keys && expectKey) {
        if (top.keys.has(s)) return { key: s, path: top.path };
        top.keys.add(s);
        top.last = s;
        expectKey = false;
      }
      continue;
    }
    if (c === '{' || c === '[') {
      stack.push({ keys: c === '{' ? new Set() : null, path: childPath(), index: 0, last: '' });
      expectKey = c === '{';
    } else if (c === '}' || c === ']') {
      stack.pop();
      expectKey = false;
    } else if (c === ',') {
      const top = stack[stack.length - 1];
      if (top?.keys) expectKey = true;
      else if (top) top.index++;
    }
    i++;
  }
  return null;
}
