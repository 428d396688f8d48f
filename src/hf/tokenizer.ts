// The tokenizer of a Hugging Face model folder: `tokenizer.json` (+ `tokenizer_config.json`) through
// @lenml/tokenizers (the tokenizers of transformers.js without the rest), the chat template through
// @huggingface/jinja. MonetLLM uses the Llama SentencePiece vocabulary (32,000 pieces, <s> = 1, </s> = 2): as a
// tokenizer.json it is a BPE model with byte fallback, which the library implements; nothing is hand-written here.
//
// A folder with only `tokenizer.model` (the SentencePiece protobuf) is refused with the one-line conversion that
// writes tokenizer.json: reading the protobuf would mean re-implementing SentencePiece.

import { Template } from '@huggingface/jinja';
import { TokenizerLoader } from '@lenml/tokenizers';
import type { Tokenizer } from '../train/tokenizer.ts';
import type { FolderSource } from './source.ts';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

type LibTokenizer = ReturnType<typeof TokenizerLoader.fromPreTrained>;

export class HfTokenizer implements Tokenizer {
  readonly name = 'hf';
  readonly vocabSize: number;
  readonly bos: number | null;
  readonly eos: number | null;
  constructor(
    private tok: LibTokenizer,
    private cfg: Record<string, unknown>,
    readonly where: string,
  ) {
    const model = tok.model as unknown as { vocab?: unknown[]; tokens_to_ids?: Map<string, number> };
    this.vocabSize = model.vocab?.length ?? model.tokens_to_ids?.size ?? 0;
    this.bos = tok.bos_token_id ?? null;
    this.eos = tok.eos_token_id ?? null;
  }

  /** Ids of `text`, with <s> first when the tokenizer config adds it (Llama: add_bos_token true). */
  encode(text: string): Int32Array {
    return Int32Array.from(this.tok.encode(text));
  }

  /** Ids of `text` without any special token. */
  encodePlain(text: string): Int32Array {
    return Int32Array.from(this.tok.encode(text, { add_special_tokens: false }));
  }

  /** The vocabulary entry of one id: '▁the' shown as '␣the', a byte-fallback piece '<0x65>' as 'e', '<0x0A>' as \\n. */
  piece(id: number): string {
    const vocab = (this.tok.model as unknown as { vocab?: string[] }).vocab;
    const p = vocab?.[id] ?? this.decode([id]);
    const byte = /^<0x([0-9A-F]{2})>$/.exec(p);
    if (!byte) return p.replace(/▁/g, '␣');
    const b = Number.parseInt(byte[1], 16);
    if (b === 10) return '\\n';
    return b > 32 && b < 127 ? String.fromCharCode(b) : `\\x${byte[1].toLowerCase()}`;
  }

  /** Text of `ids`, special tokens (<s>, </s>) left out. */
  decode(ids: ArrayLike<number>): string {
    if (ids.length === 0) return ''; // the library refuses an empty list
    return this.tok.decode(Array.from(ids), { skip_special_tokens: true });
  }

  /** The prompt text of a conversation by the folder's chat template (tokenizer_config.json chat_template). */
  chatPrompt(messages: ChatMessage[]): string {
    const t = this.cfg.chat_template;
    if (typeof t !== 'string')
      throw new Error(
        `${this.where}: tokenizer_config.json has no 'chat_template' (a string); ` +
          "monet chat needs a chat model's folder",
      );
    const token = (k: string) => {
      const v = this.cfg[k];
      return typeof v === 'string' ? v : v && typeof v === 'object' ? ((v as { content?: string }).content ?? '') : '';
    };
    return new Template(t).render({
      messages,
      add_generation_prompt: true,
      bos_token: token('bos_token'),
      eos_token: token('eos_token'),
    });
  }
}

/** Read the tokenizer files of a folder. */
export async function loadHfTokenizer(src: FolderSource): Promise<HfTokenizer> {
  if (!src.has('tokenizer.json')) {
    const spm = src.has('tokenizer.model');
    throw new Error(
      `${src.label}: tokenizer.json is missing` +
        (spm ? ' (tokenizer.model, the SentencePiece file, is not read here)' : '') +
        '; write it once with: python3 -c "from transformers import AutoTokenizer as T; ' +
        `T.from_pretrained('${src.label}').save_pretrained('${src.label}')"` +
        ' — or pass token ids (--prompt-ids / --ids)',
    );
  }
  const parse = async (name: string): Promise<Record<string, unknown>> => {
    try {
      const v = JSON.parse(await src.text(name));
      if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('expected a JSON object');
      return v;
    } catch (e) {
      throw new Error(`${src.where(name)}: ${(e as Error).message}`);
    }
  };
  const tokenizerJSON = await parse('tokenizer.json');
  const tokenizerConfig = src.has('tokenizer_config.json') ? await parse('tokenizer_config.json') : {};
  let tok: LibTokenizer;
  try {
    tok = TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig } as Parameters<
      typeof TokenizerLoader.fromPreTrained
    >[0]);
  } catch (e) {
    throw new Error(`${src.where('tokenizer.json')}: the tokenizer library cannot build it (${(e as Error).message})`);
  }
  return new HfTokenizer(tok, tokenizerConfig, src.where('tokenizer.json'));
}
