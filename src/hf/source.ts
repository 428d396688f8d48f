// Where the files of a model folder come from: a directory on disk (Node) or the files a user dropped on the
// playground (a browser File list). The loader only asks for a file's size, its text, or a byte range of it, so a
// 3 GB shard is never held in memory as a whole. The folder on disk is in dir-source.ts (Node only).

export interface FolderSource {
  /** How errors name the folder (a path, or 'the dropped folder'). */
  readonly label: string;
  /** File names directly inside the folder. */
  names(): string[];
  has(name: string): boolean;
  size(name: string): number;
  text(name: string): Promise<string>;
  /** `length` bytes of `name` starting at byte `offset`. */
  bytes(name: string, offset: number, length: number): Promise<Uint8Array>;
  /** How errors name one file of the folder. */
  where(name: string): string;
}

/** The minimal part of a browser File this module uses. */
export interface BlobLike {
  readonly name: string;
  readonly size: number;
  slice(start: number, end: number): { arrayBuffer(): Promise<ArrayBuffer> };
  text(): Promise<string>;
}

/** Files picked or dropped in a browser; nothing is uploaded anywhere, slices are read locally. */
export class BlobSource implements FolderSource {
  private files = new Map<string, BlobLike>();
  constructor(
    files: Iterable<BlobLike>,
    readonly label = 'the chosen folder',
  ) {
    for (const f of files) this.files.set(f.name.split('/').pop()!, f);
  }
  names(): string[] {
    return [...this.files.keys()];
  }
  has(name: string): boolean {
    return this.files.has(name);
  }
  private get(name: string): BlobLike {
    const f = this.files.get(name);
    if (!f) throw new Error(`${this.where(name)} is missing`);
    return f;
  }
  size(name: string): number {
    return this.get(name).size;
  }
  text(name: string): Promise<string> {
    return this.get(name).text();
  }
  async bytes(name: string, offset: number, length: number): Promise<Uint8Array> {
    const b = new Uint8Array(
      await this.get(name)
        .slice(offset, offset + length)
        .arrayBuffer(),
    );
    if (b.length !== length)
      throw new Error(
        `${this.where(name)}: file ended at byte ${offset + b.length}, expected ${length - b.length} more`,
      );
    return b;
  }
  where(name: string): string {
    return `${this.label}/${name}`;
  }
}
