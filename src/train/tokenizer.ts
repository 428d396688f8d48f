// Byte-level tokenizer: token id = UTF-8 byte value, vocab 256. Nothing to learn, nothing to download, and the
// validation loss is directly comparable with the byte-unigram entropy printed beside it (both in nats per byte).

export interface Tokenizer {
  readonly name: string;
  readonly vocabSize: number;
  encode(text: string): Int32Array;
  /** Invalid UTF-8 (a sample cut in the middle of a character) decodes to U+FFFD rather than throwing. */
  decode(ids: ArrayLike<number>): string;
}

export class ByteTokenizer implements Tokenizer {
  readonly name = 'bytes';
  readonly vocabSize = 256;
  private enc = new TextEncoder();
  private dec = new TextDecoder('utf-8', { fatal: false });

  encode(text: string): Int32Array {
    return Int32Array.from(this.enc.encode(text));
  }

  decode(ids: ArrayLike<number>): string {
    const bytes = new Uint8Array(ids.length);
    for (let i = 0; i < ids.length; i++) {
      const v = ids[i];
      if (!Number.isInteger(v) || v < 0 || v > 255)
        throw new Error(`ByteTokenizer.decode: expected byte ids 0..255, found ${v} at position ${i}`);
      bytes[i] = v;
    }
    return this.dec.decode(bytes);
  }
}

export function makeTokenizer(name: string): Tokenizer {
  if (name === 'bytes') return new ByteTokenizer();
  throw new Error(`tokenizer: unknown tokenizer '${name}'; expected 'bytes'`);
}
