// The tokenizer of a Hugging Face model folder: `tokenizer.json` (+ `tokenizer_config.json`) through
// @lenml/tokenizers (the tokenizers of transformers.js without the rest), the chat template through
// @huggingface/jinja. MonetLLM uses the Llama SentencePiece vocabulary (32,000 pieces, <s> = 1, </s> = 2): as a
// tokenizer.json it is a BPE model with byte fallback, which the library implements; nothing is hand-written here.
//
// A folder with only `tokenizer.model` (the SentencePiece protobuf) is read in Node by tokenizer-spm.ts (Google's
// SentencePiece compiled to WebAssembly, @sctg/sentencepiece-js), which the Node callers pass in as
// `sentencePiece`; without it (the playground) such a folder is refused with the one-line conversion that writes
// tokenizer.json.

import { Template } from '@huggingface/jinja';
import { TokenizerLoader } from '@lenml/tokenizers';
import type { Tokenizer } from '../train/tokenizer.ts';
import type { FolderSource } from './source.ts';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

type LibTokenizer = ReturnType<typeof TokenizerLoader.fromPreTrained>;

/** A folder's tokenizer, whichever file it was read from. */
export interface HfTokenizer extends Tokenizer {
  /** The file it was read from, for error messages. */
  readonly where: string;
  readonly bos: number | null;
  readonly eos: number | null;
  /** Ids of `text`, with <s> first when the tokenizer config adds it (Llama: add_bos_token true). */
  encode(text: string): Int32Array;
  /** Ids of `text` without any special token. */
  encodePlain(text: string): Int32Array;
  /** The vocabulary entry of one id as inspection shows it (showPiece). */
  piece(id: number): string;
  /** Text of `ids`, special tokens (<s>, </s>) left out. */
  decode(ids: ArrayLike<number>): string;
  /** The prompt text of a conversation by the folder's chat template (tokenizer_config.json chat_template). */
  chatPrompt(messages: ChatMessage[]): string;
}

/** Reads a folder's tokenizer.model for loadHfTokenizer (in Node: loadSentencePiece of tokenizer-spm.ts). */
export type SentencePieceLoader = (src: FolderSource, tokenizerConfig: Record<string, unknown>) => Promise<HfTokenizer>;

/** A vocabulary entry as shown: '▁the' as '␣the', a byte-fallback piece '<0x65>' as 'e', '<0x0A>' as \\n. */
export function showPiece(p: string): string {
  const byte = /^<0x([0-9A-F]{2})>$/.exec(p);
  if (!byte) return p.replace(/▁/g, '␣');
  const b = Number.parseInt(byte[1], 16);
  if (b === 10) return '\\n';
  return b > 32 && b < 127 ? String.fromCharCode(b) : `\\x${byte[1].toLowerCase()}`;
}

/** The prompt text of a conversation by `tokenizerConfig.chat_template`, rendered by @huggingface/jinja. */
export function renderChat(tokenizerConfig: Record<string, unknown>, where: string, messages: ChatMessage[]): string {
  const t = tokenizerConfig.chat_template;
  if (typeof t !== 'string')
    throw new Error(
      `${where}: tokenizer_config.json has no 'chat_template' (a string); monet chat needs a chat model's folder`,
    );
  const token = (k: string) => {
    const v = tokenizerConfig[k];
    return typeof v === 'string' ? v : v && typeof v === 'object' ? ((v as { content?: string }).content ?? '') : '';
  };
  return new Template(t).render({
    messages,
    add_generation_prompt: true,
    bos_token: token('bos_token'),
    eos_token: token('eos_token'),
  });
}

/** tokenizer.json through @lenml/tokenizers. */
class JsonTokenizer implements HfTokenizer {
  readonly name = 'hf';
  readonly vocabSize: number;
  readonly bos: number | null;
  readonly eos: number | null;
  constructor(
    private tok: LibTokenizer,
    private cfg: Record<string, unknown>,
    readonly where: string,
  ) {
    // Typed as always present; seen as possibly absent, since a model kind may lack either.
    const model: { vocab?: readonly unknown[]; tokens_to_ids?: Map<string, number> } = tok.model;
    this.vocabSize = model.vocab?.length ?? model.tokens_to_ids?.size ?? 0;
    this.bos = tok.bos_token_id ?? null;
    this.eos = tok.eos_token_id ?? null;
  }

  encode(text: string): Int32Array {
    return Int32Array.from(this.tok.encode(text));
  }

  encodePlain(text: string): Int32Array {
    return Int32Array.from(this.tok.encode(text, { add_special_tokens: false }));
  }

  piece(id: number): string {
    const vocab: readonly string[] | undefined = this.tok.model.vocab;
    return showPiece(vocab?.[id] ?? this.decode([id]));
  }

  decode(ids: ArrayLike<number>): string {
    if (ids.length === 0) return ''; // the library refuses an empty list
    return this.tok.decode(Array.from(ids), { skip_special_tokens: true });
  }

  chatPrompt(messages: ChatMessage[]): string {
    return renderChat(this.cfg, this.where, messages);
  }
}

/**
 * Read the tokenizer files of a folder: tokenizer.json, else tokenizer.model through `o.sentencePiece` (Node).
 */
export async function loadHfTokenizer(
  src: FolderSource,
  o: { sentencePiece?: SentencePieceLoader } = {},
): Promise<HfTokenizer> {
  const parse = async (name: string): Promise<Record<string, unknown>> => {
    try {
      const v = JSON.parse(await src.text(name));
      if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('expected a JSON object');
      return v;
    } catch (e) {
      throw new Error(`${src.where(name)}: ${(e as Error).message}`);
    }
  };
  const tokenizerConfig = src.has('tokenizer_config.json') ? await parse('tokenizer_config.json') : {};
  if (!src.has('tokenizer.json')) {
    const spm = src.has('tokenizer.model');
    if (spm && o.sentencePiece) return o.sentencePiece(src, tokenizerConfig);
    throw new Error(
      `${src.label}: tokenizer.json is missing` +
        (spm ? ' (tokenizer.model, the SentencePiece file, is read by the monet commands in Node, not here)' : '') +
        '; write it once with: python3 -c "from transformers import AutoTokenizer as T; ' +
        `T.from_pretrained('${src.label}').save_pretrained('${src.label}')"` +
        ' — or pass token ids (--prompt-ids / --ids)',
    );
  }
  const tokenizerJSON = await parse('tokenizer.json');
  let tok: LibTokenizer;
  try {
    tok = TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig } as Parameters<
      typeof TokenizerLoader.fromPreTrained
    >[0]);
  } catch (e) {
    throw new Error(`${src.where('tokenizer.json')}: the tokenizer library cannot build it (${(e as Error).message})`);
  }
  return new JsonTokenizer(tok, tokenizerConfig, src.where('tokenizer.json'));
}
