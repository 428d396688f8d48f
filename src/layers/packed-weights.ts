// Weights kept as bfloat16 on the device (two per int32 word): a 1.4B model then takes 2.9 GB instead of 5.9 GB,
// which is what lets it into wasm32's 4 GiB.
//
// The forward reads the weight matrices in place: LmModel.packed (`packed` below) hands them to the matrix products
// and the embedding lookup as PackedBf16, which the matmulBf16 / gatherRowsBf16 kernels widen in registers.
// Everything else reads parameters through `Map.get` as float32 (src/layers/lm.ts), so this is also a Map whose `get`
// widens a packed tensor into a float32 slot (the widenBf16 kernel) and returns the slot: in a forward that is only
// Monet's 2-D biases b / b1 / b2 (a few MB per layer); interpretability taps and exportModel use it too.
// Slots are reused, never freed per call: a slot handed out at fetch number c is overwritten no earlier than fetch
// c + keepLive. The LM fetches a layer's tensors right before using them, a handful at a time, so 16 leaves a
// margin. On WebGPU the widen and the kernel that reads it are queued in order, so overwriting a slot later in the
// queue is safe. Only forward-only use: a packed weight has no gradient.

import { isHostMemoryDevice, type Device } from '../backend/device.ts';
import type { F32 } from '../backend/kernels.ts';
import type { PackedBf16 } from './common.ts';

interface Slot {
  t: F32;
  usedAt: number; // fetch number that last handed it out
}

export class WideningParams extends Map<string, F32> {
  /** The 16-bit tensors by name, as the forward reads them (LmModel.packed). */
  readonly packed = new Map<string, PackedBf16>();
  private slots = new Map<number, Slot[]>(); // by element count
  private fetches = 0;
  constructor(
    private dev: Device,
    readonly keepLive = 16,
  ) {
    super();
  }

  /** Store `bits` (bfloat16 values) for `name`; `get(name)` returns them widened. */
  setPacked(name: string, bits: Uint16Array): void {
    const even = bits.length % 2 === 0 && bits.byteOffset % 4 === 0 ? bits : padded(bits);
    this.packed.set(name, {
      dtype: 'bf16',
      bits: this.dev.upload(new Int32Array(even.buffer, even.byteOffset, even.length / 2)),
      length: bits.length,
    });
  }

  /**
   * Store `length` bfloat16 values for `name` that arrive in pieces (every piece but the last of even length): each
   * piece is uploaded and copied into place on the device, so the host holds one piece at a time.
   */
  async setPackedPieces(name: string, length: number, pieces: AsyncIterable<Uint16Array>): Promise<void> {
    const where = `16-bit weight '${name}'`;
    const dev = this.dev;
    const words = dev.alloc('i32', Math.ceil(length / 2));
    let at = 0; // elements stored
    try {
      for await (const p of pieces) {
        if (at % 2 !== 0) throw new Error(`${where}: a piece of odd length (${at} values so far) is not the last`);
        if (at + p.length > length) throw new Error(`${where}: pieces hold more than its ${length} values`);
        const even = p.length % 2 === 0 && p.byteOffset % 4 === 0 ? p : padded(p);
        const data = new Int32Array(even.buffer, even.byteOffset, even.length / 2);
        // host memory (WASM): written in place; elsewhere (WebGPU) uploaded, then copied into place on the device
        if (isHostMemoryDevice(dev)) dev.writeRange(words, data, at / 2);
        else {
          const piece = dev.upload(data);
          const n = data.length;
          const block = { rows: 1, cols: n, dstLd: n, srcLd: n, dstOffset: at / 2, srcOffset: 0, accumulate: false };
          dev.kernels.copyBlock(words, piece, block);
          dev.free(piece);
        }
        at += p.length;
      }
      if (at !== length) throw new Error(`${where}: the pieces end after ${at} of its ${length} values`);
    } catch (e) {
      this.dev.free(words);
      throw e;
    }
    this.packed.set(name, { dtype: 'bf16', bits: words, length });
  }

  /** Bytes the packed weights take on the device. */
  packedBytes(): number {
    let b = 0;
    for (const p of this.packed.values()) b += 2 * p.length;
    return b;
  }

  /**
   * Every slot free again: called before each forward, when nothing of the previous one is still to run (its result
   * was read back, or on WebGPU it is queued before anything this forward enqueues). Without it the embedding of a
   * forward could not reuse the slot that the previous forward's head (same shape) was widened into a moment ago.
   */
  settle(): void {
    for (const list of this.slots.values()) for (const s of list) s.usedAt = -Infinity;
  }

  override has(name: string): boolean {
    return super.has(name) || this.packed.has(name);
  }

  override get(name: string): F32 | undefined {
    const plain = super.get(name);
    if (plain) return plain;
    const p = this.packed.get(name);
    if (!p) return undefined;
    const now = ++this.fetches;
    const list = this.slots.get(p.length) ?? [];
    this.slots.set(p.length, list);
    let slot = list.find((s) => now - s.usedAt >= this.keepLive);
    if (!slot) {
      slot = { t: this.dev.alloc('f32', p.length), usedAt: now };
      list.push(slot);
    }
    slot.usedAt = now;
    this.dev.kernels.widenBf16(slot.t, p.bits, { n: p.length });
    return slot.t;
  }
}

/** The values in a fresh buffer of even length (a zero after an odd count): whole int32 words. */
function padded(bits: Uint16Array): Uint16Array {
  const out = new Uint16Array(bits.length + (bits.length % 2));
  out.set(bits);
  return out;
}
