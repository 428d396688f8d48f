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
  /**
   * `length` bytes of `name` starting at byte `offset`. With `into` (at least `length` bytes) they are read into its
   * start and the result is a view of it: a loader reading many pieces reuses one buffer instead of leaving hundreds
   * of 16 MB buffers to the garbage collector (host memory that the process then keeps).
   */
  bytes(name: string, offset: number, length: number, into?: Uint8Array): Promise<Uint8Array>;
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
  async bytes(name: string, offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    checkInto(into, length, this.where(name));
    const b = new Uint8Array(
      await this.get(name)
        .slice(offset, offset + length)
        .arrayBuffer(),
    );
    if (b.length !== length)
      throw new Error(
        `${this.where(name)}: file ended at byte ${offset + b.length}, expected ${length - b.length} more`,
      );
    if (!into) return b;
    into.set(b);
    return into.subarray(0, length);
  }
  where(name: string): string {
    return `${this.label}/${name}`;
  }
}

/** A FolderSource.bytes `into` buffer must hold the bytes asked for. */
export function checkInto(into: Uint8Array | undefined, length: number, where: string): void {
  if (into && into.length < length)
    throw new Error(
      `${where}: a read of ${length} bytes into a buffer of ${into.length} (expected at least ${length})`,
    );
}
