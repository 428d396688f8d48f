// MonetLLM 1.4B on this machine (not a test): a random-weight bf16 folder with the released 1.4B shape, written at
// bench time by tools/pytorch/write_hf_checkpoint.py --preset 1.4b (2.9 GB; not committed), then:
//   load       folder → device (wall and process CPU seconds), resident memory after it
//   prefill    one forward over a 512-token prompt (per token)
//   decode     greedy tokens one at a time with the KV cache (tokens/s)
// Each figure is printed with the load average, since the machine is shared.
//
//   node --import tsx --import ./src/backend/webgpu/register-wgsl.mjs bench/monetllm.ts [--dir D] [--backend wasm]
//        [--prompt 512] [--tokens 8] [--threads 1]

import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { loadavg } from 'node:os';
import { openHf } from '../src/hf/open.ts';
import type { BackendChoice } from '../src/train/options.ts';
import { appendPrompt, PROMPT_PIECE } from '../src/train/sample.ts';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
}

const dir = arg('dir', '/tmp/monetllm-1.4b');
const backend = arg('backend', 'wasm') as BackendChoice;
const promptLen = Number(arg('prompt', '512'));
const tokens = Number(arg('tokens', '8'));
const threads = Number(arg('threads', '1'));

if (!existsSync(`${dir}/config.json`)) {
  console.log(`writing ${dir} (random bf16 weights, released 1.4B shape) …`);
  execFileSync(
    '/usr/bin/python3',
    ['tools/pytorch/write_hf_checkpoint.py', '--out', dir, '--decompose', 'vertical', '--preset', '1.4b'],
    {
      stdio: 'inherit',
    },
  );
}

const load = () =>
  loadavg()
    .map((x) => x.toFixed(1))
    .join(' ');
const timed = async <T>(f: () => Promise<T>): Promise<{ v: T; wall: number; cpu: number }> => {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const v = await f();
  const c = process.cpuUsage(c0);
  return { v, wall: (performance.now() - t0) / 1000, cpu: (c.user + c.system) / 1e6 };
};

/** Resident memory, and how much of it the JS heap and the ArrayBuffers outside the wasm memory hold. */
const memory = () => {
  const m = process.memoryUsage();
  const gb = (b: number) => (b / 1e9).toFixed(2);
  return `resident ${gb(m.rss)} GB (JS heap ${gb(m.heapUsed)} GB, array buffers ${gb(m.arrayBuffers)} GB)`;
};

const opened = await timed(() => openHf(dir, backend, threads));
const hf = opened.v;
console.log(
  `load: ${opened.wall.toFixed(1)} s wall, ${opened.cpu.toFixed(1)} s CPU; ${memory()}; ` +
    `${hf.engine.name}; load average ${load()}`,
);
const ids = Int32Array.from({ length: promptLen }, (_, i) => 1 + ((i * 7919) % 31999));
const dec = hf.engine.openDecoder!(promptLen + tokens, 1);
const pre = await timed(() => appendPrompt(dec, Array.from(ids)));
const preMs = ((pre.wall / promptLen) * 1000).toFixed(0);
console.log(
  `prefill ${promptLen} tokens (pieces of ${PROMPT_PIECE}): ${pre.wall.toFixed(1)} s wall (${preMs} ms/token), ` +
    `${pre.cpu.toFixed(1)} s CPU; load average ${load()}`,
);
let logits = pre.v;
let next = 0;
const step = await timed(async () => {
  for (let n = 0; n < tokens; n++) {
    next = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i] > logits[next]) next = i;
    logits = await dec.append(Int32Array.of(next));
  }
  return null;
});
const perTok = step.wall / tokens;
console.log(
  `decode ${tokens} tokens with the KV cache: ${(tokens / step.wall).toFixed(2)} tokens/s wall ` +
    `(${(tokens / step.cpu).toFixed(2)} per CPU second); prefill per token is ` +
    `${(perTok / (pre.wall / promptLen)).toFixed(1)}× faster than decoding (by CPU time ` +
    `${(step.cpu / tokens / (pre.cpu / promptLen)).toFixed(1)}×); ` +
    `${memory()}; load average ${load()}`,
);
dec.dispose();
await hf.engine.dispose();
