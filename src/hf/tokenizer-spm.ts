// A folder's `tokenizer.model` (SentencePiece's protobuf) in Node. Text is split by Google's SentencePiece itself,
// compiled to WebAssembly (@sctg/sentencepiece-js): the same code that wrote the ids the model was trained on.
// That build exposes encode, decode and nothing about the vocabulary, so the list of pieces is read here from the
// file: ModelProto field 1, repeated, each a message with piece = field 1 (string), score = 2 (float) and
// type = 3 (1 normal, 2 unknown, 3 control such as <s> and </s>, 4 user-defined, 5 unused, 6 byte).
// Node only (the library reads files through `fs`); the playground reads tokenizer.json.

import type { SentencePieceProcessor } from '@sctg/sentencepiece-js';
import type { FolderSource } from './source.ts';
import { type ChatMessage, type HfTokenizer, renderChat, showPiece } from './tokenizer.ts';

/** One vocabulary entry of a SentencePiece model. */
export interface SpmPiece {
  piece: string;
  /** 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte. */
  type: number;
}

const CONTROL = 3;

/** The pieces of a SentencePiece ModelProto, in id order; a malformed file fails naming `where` and the offset. */
export function readSpmPieces(buf: Uint8Array, where: string): SpmPiece[] {
  const fail = (at: number, what: string): never => {
    throw new Error(`${where}: not a SentencePiece model: ${what} at byte ${at} of ${buf.length}`);
  };
  /** A base-128 varint at `pos`: its value and the offset after it. */
  const varint = (pos: number, end: number): [number, number] => {
    let v = 0;
    for (let shift = 0; shift < 64; shift += 7) {
      if (pos >= end) fail(pos, 'a number runs past its end');
      const b = buf[pos++];
      v += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return [v, pos];
    }
    return fail(pos, 'a number longer than 10 bytes');
  };
  /** Calls `field(number, wireType, start, end)` for each field of the message in [pos, end). */
  const fields = (pos: number, end: number, field: (n: number, wire: number, start: number, stop: number) => void) => {
    while (pos < end) {
      const at = pos;
      const [key, p] = varint(pos, end);
      const wire = key % 8;
      let start = p;
      let stop: number;
      if (wire === 0) stop = varint(p, end)[1];
      else if (wire === 1) stop = p + 8;
      else if (wire === 5) stop = p + 4;
      else if (wire === 2) {
        const [len, q] = varint(p, end);
        start = q;
        stop = q + len;
      } else return fail(at, `field ${Math.floor(key / 8)} has wire type ${wire}`);
      if (stop > end) fail(at, `field ${Math.floor(key / 8)} runs past the end of its message`);
      field(Math.floor(key / 8), wire, start, stop);
      pos = stop;
    }
  };
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const pieces: SpmPiece[] = [];
  fields(0, buf.length, (n, wire, start, stop) => {
    if (n !== 1) return; // trainer and normalizer specs: SentencePiece reads them itself
    if (wire !== 2) fail(start, `pieces (field 1) with wire type ${wire}`);
    const entry: SpmPiece = { piece: '', type: 1 };
    fields(start, stop, (m, w, s, e) => {
      if (m === 1 && w === 2) {
        try {
          entry.piece = utf8.decode(buf.subarray(s, e));
        } catch {
          fail(s, `piece ${pieces.length} is not UTF-8`);
        }
      } else if (m === 3 && w === 0) entry.type = varint(s, e)[0];
    });
    pieces.push(entry);
  });
  if (pieces.length === 0) fail(0, 'no pieces');
  return pieces;
}

/** The part of @sctg/sentencepiece-js's SentencePieceProcessor used here. */
interface Processor {
  encodeIds(text: string): number[];
  decodeIds(ids: number[]): string;
}

/** tokenizer.model through SentencePiece. */
class SpmTokenizer implements HfTokenizer {
  readonly name = 'hf';
  readonly vocabSize: number;
  readonly bos: number | null;
  readonly eos: number | null;
  private addBos: boolean;
  private addEos: boolean;
  constructor(
    private spp: Processor,
    private pieces: SpmPiece[],
    private cfg: Record<string, unknown>,
    readonly where: string,
  ) {
    this.vocabSize = pieces.length;
    const id = (key: string, dflt: string) => {
      const v = cfg[key];
      const name = typeof v === 'string' ? v : ((v as { content?: string } | undefined)?.content ?? dflt);
      const i = pieces.findIndex((p) => p.piece === name);
      return i >= 0 ? i : null;
    };
    this.bos = id('bos_token', '<s>');
    this.eos = id('eos_token', '</s>');
    // LlamaTokenizer's defaults: <s> first, no </s> at the end
    this.addBos = cfg.add_bos_token !== false && this.bos !== null;
    this.addEos = cfg.add_eos_token === true && this.eos !== null;
  }

  encode(text: string): Int32Array {
    const ids = this.spp.encodeIds(text);
    return Int32Array.from([...(this.addBos ? [this.bos!] : []), ...ids, ...(this.addEos ? [this.eos!] : [])]);
  }

  encodePlain(text: string): Int32Array {
    return Int32Array.from(this.spp.encodeIds(text));
  }

  piece(id: number): string {
    return showPiece(this.pieces[id]?.piece ?? this.decode([id]));
  }

  decode(ids: ArrayLike<number>): string {
    const kept = Array.from(ids).filter((i) => this.pieces[i]?.type !== CONTROL);
    return kept.length === 0 ? '' : this.spp.decodeIds(kept);
  }

  chatPrompt(messages: ChatMessage[]): string {
    return renderChat(this.cfg, this.where, messages);
  }
}

/**
 * The library's processor as a Processor. Its declaration types decodeIds as (Int32Array) => any: the ids go in as
 * an Int32Array and the result is checked to be a string, so no cast is needed.
 */
function asProcessor(spp: SentencePieceProcessor, where: string): Processor {
  return {
    encodeIds: (text) => spp.encodeIds(text),
    decodeIds: (ids) => {
      const text: unknown = spp.decodeIds(Int32Array.from(ids));
      if (typeof text !== 'string')
        throw new Error(`${where}: SentencePiece decodeIds returned ${typeof text}, expected a string`);
      return text;
    },
  };
}

/** Read `tokenizer.model` of a folder (loadHfTokenizer's `sentencePiece` in Node). */
export async function loadSentencePiece(src: FolderSource, cfg: Record<string, unknown>): Promise<HfTokenizer> {
  const where = src.where('tokenizer.model');
  const bytes = await src.bytes('tokenizer.model', 0, src.size('tokenizer.model'));
  const pieces = readSpmPieces(bytes, where);
  const { SentencePieceProcessor } = await import('@sctg/sentencepiece-js');
  const library = new SentencePieceProcessor();
  await library.loadFromB64StringModel(Buffer.from(bytes).toString('base64'));
  const spp = asProcessor(library, where);
  // the library does not report a model SentencePiece refused: a piece's text must encode to ids of the vocabulary
  const probe = pieces.findIndex((p) => p.type === 1);
  const text = pieces[probe]?.piece.replace(/▁/g, ' ');
  const got = text ? spp.encodeIds(text) : [];
  if (got.length === 0 || got.some((i) => !(i >= 0 && i < pieces.length)))
    throw new Error(
      `${where}: SentencePiece did not load it (${JSON.stringify(text)} encodes to [${got.join(', ')}] ` +
        `with ${pieces.length} pieces)`,
    );
  return new SpmTokenizer(spp, pieces, cfg, where);
}
