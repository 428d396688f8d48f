// Weights kept as bfloat16 on the device (two per int32 word) and widened to float32 when a layer asks for them:
// a 1.4B model then takes 2.9 GB instead of 5.9 GB, which is what lets it into wasm32's 4 GiB.
//
// The layers read parameters through `Map.get` (src/layers/lm.ts), so this is a Map whose `get` widens a packed
// weight into a float32 slot (the widenBf16 kernel) and returns the slot. Slots are reused, never freed per call:
// a slot handed out at fetch number c is overwritten no earlier than fetch c + keepLive. The LM fetches a layer's
// weights right before using them; the largest bundle fetched before use is Monet-VD's 10 expert tensors, so 16
// leaves a margin while keeping few slots (a 1.4B model's slots then take ≈ 0.5 GB). On WebGPU the widen and the
// matmul that reads it are queued in order, so overwriting a slot later in the queue is safe.
// Only forward-only use: a packed weight has no gradient, and exportModel reads the widened values.

import type { Device } from '../backend/device.ts';
import type { F32, I32 } from '../backend/kernels.ts';

interface Slot {
  t: F32;
  usedAt: number; // fetch number that last handed it out
}

export class WideningParams extends Map<string, F32> {
  private packed = new Map<string, { bits: I32; n: number }>();
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
    const even = bits.length % 2 === 0 ? bits : Uint16Array.from({ length: bits.length + 1 }, (_, i) => bits[i] ?? 0);
    this.packed.set(name, {
      bits: this.dev.upload(new Int32Array(even.buffer, even.byteOffset, even.length / 2)),
      n: bits.length,
    });
  }

  /** Bytes the packed weights take on the device. */
  packedBytes(): number {
    let b = 0;
    for (const p of this.packed.values()) b += 2 * p.n;
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
    const list = this.slots.get(p.n) ?? [];
    this.slots.set(p.n, list);
    let slot = list.find((s) => now - s.usedAt >= this.keepLive);
    if (!slot) {
      slot = { t: this.dev.alloc('f32', p.n), usedAt: now };
      list.push(slot);
    }
    slot.usedAt = now;
    this.dev.kernels.widenBf16(slot.t, p.bits, { n: p.n });
    return slot.t;
  }
}
