// A model folder on disk, for the Node CLI (the browser reads dropped files through BlobSource in source.ts).

import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { checkInto, type FolderSource } from './source.ts';

/** A folder on disk. Reads go through one file descriptor per call (no file is read whole). */
export class DirSource implements FolderSource {
  constructor(readonly label: string) {
    if (!existsSync(label)) throw new Error(`model folder ${label} does not exist`);
    if (!statSync(label).isDirectory()) throw new Error(`${label} is not a folder (expected a model folder)`);
  }
  names(): string[] {
    return readdirSync(this.label);
  }
  has(name: string): boolean {
    return existsSync(join(this.label, name));
  }
  size(name: string): number {
    return statSync(join(this.label, name)).size;
  }
  async text(name: string): Promise<string> {
    return readFileSync(join(this.label, name), 'utf8');
  }
  async bytes(name: string, offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    checkInto(into, length, this.where(name));
    const out = into ? into.subarray(0, length) : new Uint8Array(length);
    const fd = openSync(join(this.label, name), 'r');
    try {
      let done = 0;
      while (done < length) {
        // readSync reads at most 2 GiB − 1 bytes per call
        const n = readSync(fd, out, done, Math.min(length - done, 0x7fff0000), offset + done);
        if (n === 0)
          throw new Error(`${this.where(name)}: file ended at byte ${offset + done}, expected ${length - done} more`);
        done += n;
      }
    } finally {
      closeSync(fd);
    }
    return out;
  }
  where(name: string): string {
    return join(this.label, name);
  }
}

/** True when `dir` is a folder holding a Hugging Face config.json (not one of our run folders). */
export async function isHfDir(dir: string): Promise<boolean> {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) return false;
  const { isHfFolder } = await import('./folder.ts');
  return isHfFolder(new DirSource(dir));
}
