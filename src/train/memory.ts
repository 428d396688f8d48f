// Whether a model fits this machine, from the closed-form estimate of memory-estimate.ts (which has no Node imports,
// so that the browser's inspection code can size its forwards with it too).

import { totalmem } from 'node:os';
import { getHeapStatistics } from 'node:v8';
import { estimateMemory, WASM32_BYTES, type MemoryEstimate, type MemoryUse } from './memory-estimate.ts';
import { formatCount, type ModelConfig } from './presets.ts';

export { estimateMemory, type MemoryEstimate, type MemoryUse } from './memory-estimate.ts';

/** The memory this process may use: the machine's, or a container's limit when it is lower. */
export function availableMemory(): { values: number; heap: number } {
  const constrained = (process as { constrainedMemory?: () => number | undefined }).constrainedMemory?.() ?? 0;
  const machine = totalmem();
  const values = constrained > 0 && constrained < machine ? constrained : machine;
  // Typed arrays live outside the JS heap; the heap holds the objects (one per tensor and more).
  return { values, heap: getHeapStatistics().heap_size_limit };
}

const gib = (b: number) => `${(b / 2 ** 30).toFixed(b < 2 ** 30 ? 2 : 1)} GiB`;

/** Refuse a model that cannot fit before anything is allocated, naming the sizes and what to change. */
export function checkMemory(config: ModelConfig, use: MemoryUse): MemoryEstimate {
  const e = estimateMemory(config, use);
  const have = availableMemory();
  const detail =
    `parameters ${gib(e.bytes.parameters)}` +
    (e.bytes.optimizer ? `, gradients and AdamW moments ${gib(e.bytes.optimizer)}` : '') +
    `, activations of ${use.batch} × ${use.seq} tokens ${gib(e.bytes.activations)}`;
  const advice =
    use.purpose === 'train'
      ? 'pick a smaller --hidden-size / --layers / expert count / --batch-size / --seq-len, or a preset from ' +
        'monet train --list-presets'
      : 'the config asks for a model this machine cannot hold';
  const verb = { train: 'training it', eval: 'evaluating it', sample: 'sampling from it' }[use.purpose];
  const problems: string[] = [];
  if (e.valueBytes > have.values)
    problems.push(`${verb} needs at least ${gib(e.valueBytes)} (${detail}) but this machine has ${gib(have.values)}`);
  if (e.bytes.bookkeeping > 0.5 * have.heap)
    problems.push(
      `its ${e.tensors.toLocaleString('en-US')} parameter tensors need about ${gib(e.bytes.bookkeeping)} of ` +
        `JavaScript objects, more than half the JS heap (${gib(have.heap)})`,
    );
  if (use.backend === 'wasm' && e.wasmBytes > WASM32_BYTES && problems.length === 0)
    problems.push(`the WASM backend would need ${gib(e.wasmBytes)} of wasm32 memory, which holds at most 4 GiB`);
  if (problems.length > 0)
    throw new Error(
      `the model has ${formatCount(e.params)} parameters; ${problems.join('; and ')}. ` +
        `Nothing was allocated; ${advice}`,
    );
  return e;
}
