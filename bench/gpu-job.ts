// One WebGPU job for a real GPU machine (docs/perf.md, section WebGPU): checks, then times, then prints a table last.
//   1. every committed fixture on the webgpu backend (f32 preset), as `monet check fixtures --backend webgpu`;
//   2. matmul at 1024³, 2048³, 4096³ in the three layouts a Linear layer uses (NN, NT = forward, TN = weight
//      gradient), every tiled variant (64×64; 128×128 with K step 8 or 16), each first checked on sampled entries
//      against float64 on the host;
//   3. each layer's forward + backward (dense SwiGLU FFN, TopK FFN, SMoE, PEER, Monet HD and VD with their router)
//      on device-resident tensors, at one size each;
//   4. PyTorch float32 (TF32 off) on the same GPU in the same run: the same matmuls, the dense FFN and the TopK FFN
//      forward + backward (spawns `python3`; MONET_PYTHON overrides it).
//
// Run here (software GL, small sizes):
//   node --import tsx --import ./src/backend/webgpu/register-wgsl.mjs bench/gpu-job.ts --quick
// Run on the GPU machine (see docs/perf.md, section WebGPU): bundle the job, then run it there
//   npx esbuild bench/gpu-job.ts --bundle --platform=node --format=esm --external:webgpu --loader:.wgsl=text \
//     --outfile=.gpu/job.mjs
//   source .gpu/setup.sh && node .gpu/job.mjs
// With $OUT set (the device machine's result folder) the table is also written to $OUT/gpu-job.json.
// Timings are wall-clock between queue drains (no timestamp queries: Dawn's software GL has none), averaged over
// enough repetitions to run ≥ 0.3 s. Not a test: no assertion on speed.

import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openGpu, type Gpu, type GpuBuffer } from '../src/backend/webgpu/gpu.ts';
import { WebGpuDevice } from '../src/backend/webgpu/device.ts';
import { matmul, matmulVariant } from '../src/backend/webgpu/matmul.ts';
import { deviceCaseBackend } from '../src/backend/run-case.ts';
import { Scope } from '../src/backend/device.ts';
import type { F32 } from '../src/backend/kernels.ts';
import { collectFixtureFiles } from '../src/cli/check.ts';
import { formatReports, runFixture } from '../src/fixtures/checker.ts';
import { loadFixture } from '../src/fixtures/format.ts';
import { monetSigma } from '../reference/normal.ts';
import { denseFfnBackward, denseFfnForward, type DenseFfnConfig } from '../src/layers/dense-ffn.ts';
import { topkFfnBackward, topkFfnForward, type TopkFfnConfig } from '../src/layers/topk.ts';
import { smoeBackward, smoeForward, type SmoeConfig } from '../src/layers/smoe.ts';
import { peerBackward, peerForward, type PeerConfig } from '../src/layers/peer.ts';
import {
  monetAuxBackward,
  monetAuxForward,
  monetRouterBackward,
  monetRouterForward,
  type MonetRouterConfig,
} from '../src/layers/monet-router.ts';
import { monetHdBackward, monetHdForward } from '../src/layers/monet-hd.ts';
import { monetVdBackward, monetVdForward } from '../src/layers/monet-vd.ts';

const quick = process.argv.includes('--quick');
const noFixtures = process.argv.includes('--no-fixtures');
const SIZES = quick ? [64, 128, 256] : [1024, 2048, 4096];
const MIN_SECONDS = quick ? 0.1 : 0.3;

// ------------------------------------------------------------------------------------------------- helpers

let seed = 20261123;
function randn(n: number, scale: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    seed = (seed * 1664525 + 1013904223) >>> 0;
    const u = seed / 2 ** 32;
    seed = (seed * 1664525 + 1013904223) >>> 0;
    const v = seed / 2 ** 32;
    out[i] = scale * Math.sqrt(-2 * Math.log(u + 1e-12)) * Math.cos(2 * Math.PI * v);
  }
  return out;
}

/** Seconds per call of `step` (which only enqueues work), averaged over enough calls to last MIN_SECONDS. */
async function timeIt(gpu: Gpu, step: () => void, warmup = 2): Promise<number> {
  for (let i = 0; i < warmup; i++) step();
  await gpu.sync();
  let t0 = performance.now();
  step();
  await gpu.sync();
  const once = (performance.now() - t0) / 1000;
  const reps = Math.max(3, Math.min(200, Math.ceil(MIN_SECONDS / Math.max(once, 1e-6))));
  t0 = performance.now();
  for (let i = 0; i < reps; i++) step();
  await gpu.sync();
  return (performance.now() - t0) / 1000 / reps;
}

interface Row {
  what: string;
  shape: string;
  ours: number;
  flops?: number;
  torch?: number;
  /** The PyTorch measurement this row compares with (matmul: layout and size; layers: the name). */
  torchKey?: string;
}
const rows: Row[] = [];

// ------------------------------------------------------------------------------------------------- 1. fixtures

const gpu = await openGpu();
const dev = new WebGpuDevice(gpu);
console.log(`device: ${gpu.description}`);
let fixtureVerdict = 'skipped (--no-fixtures)';
if (!noFixtures) {
  const { files, errors } = collectFixtureFiles([join(process.cwd(), 'fixtures')]);
  if (errors.length) console.log(`fixtures: ${errors.join('; ')}`);
  const backend = deviceCaseBackend(dev, 'webgpu');
  let pass = 0;
  const failed: string[] = [];
  for (const file of files) {
    const r = await runFixture(loadFixture(file), backend, { preset: 'f32' });
    if (r.pass) pass++;
    else {
      failed.push(file);
      console.log(formatReports([r], { failuresOnly: true }));
    }
  }
  if (files.length === 0)
    throw new Error(`no fixtures under ${join(process.cwd(), 'fixtures')}: run the job from the project root`);
  fixtureVerdict =
    `${pass}/${files.length} fixtures pass on webgpu (f32 ` +
    `preset)${failed.length ? `; FAILED: ${failed.join(', ')}` : ''}`;
  console.log(fixtureVerdict);
}

// ------------------------------------------------------------------------------------------------- 2. matmul

async function checkSample(
  A: Float32Array,
  B: Float32Array,
  C: GpuBuffer,
  n: number,
  transA: boolean,
  transB: boolean,
): Promise<string> {
  const got = await gpu.read(C);
  let worst = 0;
  for (let s = 0; s < 64; s++) {
    const i = (s * 7919) % n,
      j = (s * 104729 + 13) % n;
    let acc = 0,
      mag = 0;
    for (let k = 0; k < n; k++) {
      const a = transA ? A[k * n + i] : A[i * n + k];
      const b = transB ? B[j * n + k] : B[k * n + j];
      acc += a * b;
      mag += Math.abs(a * b);
    }
    worst = Math.max(worst, Math.abs(got[i * n + j] - acc) / (mag * n * 2 ** -24));
  }
  if (worst > 2)
    throw new Error(
      `matmul ${n}³ transA=${transA} transB=${transB}: sampled error ${worst.toFixed(2)}× the float32 bound`,
    );
  return `${(worst * 100).toFixed(1)}% of bound`;
}

for (const n of SIZES) {
  const A = randn(n * n, 1),
    B = randn(n * n, 1);
  const gA = gpu.upload(A, 'A'),
    gB = gpu.upload(B, 'B'),
    gC = gpu.alloc(n * n, 'C');
  for (const [label, transA, transB] of [
    ['NN', false, false],
    ['NT', false, true],
    ['TN', true, false],
  ] as const) {
    const shape = { M: n, N: n, K: n, transA, transB };
    // Both tiled variants, so that one GPU run shows which one the automatic choice (matmulVariant) should pick.
    for (const variant of ['tile64', 'tile128', 'tile128k16'] as const) {
      matmul(gpu, gC, gA, gB, shape, variant);
      const check = await checkSample(A, B, gC, n, transA, transB);
      const t = await timeIt(gpu, () => matmul(gpu, gC, gA, gB, shape, variant));
      const auto = matmulVariant(n, n) === variant ? ' (auto)' : '';
      rows.push({
        what: `matmul ${label} ${variant}${auto}`,
        shape: `${n}³`,
        ours: t,
        flops: 2 * n ** 3,
        torchKey: `${label} ${n}`,
      });
      console.log(
        `matmul ${label} ${variant}${auto} ${n}³: ${(t * 1e3).toFixed(3)} ms, ` +
          `${((2 * n ** 3) / t / 1e9).toFixed(1)} GFLOP/s (check: ${check})`,
      );
    }
  }
  for (const b of [gA, gB, gC]) gpu.free(b);
  await gpu.sync();
}

// ------------------------------------------------------------------------------------------------- 3. layers

const up = (n: number, scale: number): F32 => dev.upload(randn(n, scale));
const zero = (n: number): F32 => dev.alloc('f32', n);

type Bench = { name: string; shape: string; flops?: number; step: (sc: Scope) => void };

function denseBench(T: number, d: number, F: number): Bench {
  const cfg: DenseFfnConfig = { d, F, activation: 'swiglu' };
  const x = up(T * d, 1),
    dy = up(T * d, 1);
  const w = { gate: up(F * d, d ** -0.5), up: up(F * d, d ** -0.5), down: up(d * F, F ** -0.5) };
  const g = { gate: zero(F * d), up: zero(F * d), down: zero(d * F) };
  const dx = zero(T * d),
    y = zero(T * d);
  return {
    name: 'dense-ffn (swiglu)',
    shape: `T=${T} d=${d} F=${F}`,
    flops: 18 * T * d * F,
    step: (sc) => {
      const s = denseFfnForward(sc, y, x, w, cfg, T);
      denseFfnBackward(sc, dx, g, dy, x, w, s, cfg, T);
    },
  };
}

function topkBench(T: number, d: number, F: number, k: number): Bench {
  const cfg: TopkFfnConfig = { d, F, k, alpha: 0 };
  const x = up(T * d, 1),
    dy = up(T * d, 1);
  const w = { up: up(F * d, d ** -0.5), down: up(d * F, F ** -0.5) };
  const g = { up: zero(F * d), down: zero(d * F) };
  const dx = zero(T * d),
    y = zero(T * d);
  return {
    name: 'topk-ffn (relu)',
    shape: `T=${T} d=${d} F=${F} k=${k}`,
    flops: 12 * T * d * F,
    step: (sc) => {
      const s = topkFfnForward(sc, y, x, w, cfg, T);
      topkFfnBackward(sc, dx, g, dy, x, w, s, cfg, T);
    },
  };
}

function smoeBench(T: number, d: number, F: number, E: number, k: number): Bench {
  const cfg: SmoeConfig = { d, F, E, k, activation: 'swiglu' };
  const x = up(T * d, 1),
    dy = up(T * d, 1);
  const w = {
    gate: up(E * d, d ** -0.5),
    w1: up(E * F * d, d ** -0.5),
    w2: up(E * d * F, F ** -0.5),
    w3: up(E * F * d, d ** -0.5),
  };
  const g = { gate: zero(E * d), w1: zero(E * F * d), w2: zero(E * d * F), w3: zero(E * F * d) };
  const dx = zero(T * d),
    y = zero(T * d),
    aux = { balance: zero(1), z: zero(1) };
  return {
    name: 'smoe (swiglu)',
    shape: `T=${T} d=${d} F=${F} E=${E} k=${k}`,
    flops: 18 * T * k * d * F,
    step: (sc) => {
      const s = smoeForward(sc, y, aux, x, w, cfg, T);
      smoeBackward(sc, dx, g, dy, x, w, s, cfg, T, 0.01, 0.001);
    },
  };
}

function peerBench(T: number, d: number, n: number, H: number, k: number, dk: number): Bench {
  const N = n * n,
    dq = H * dk;
  const cfg: PeerConfig = { d, N, n, H, k, dk, activation: 'relu', mode: 'train', bnEps: 1e-5, bnMomentum: 0.1 };
  const x = up(T * d, 1),
    dy = up(T * d, 1);
  const ones = dev.upload(new Float32Array(dq).fill(1));
  const p = {
    query: up(dq * d, d ** -0.5),
    queryBias: zero(dq),
    bnWeight: ones,
    bnBias: zero(dq),
    subKeys: up(2 * n * (dk / 2), 1),
    wDown: up(N * d, d ** -0.5),
    wUp: up(N * d, d ** -0.5),
  };
  const g = {
    query: zero(dq * d),
    queryBias: zero(dq),
    bnWeight: zero(dq),
    bnBias: zero(dq),
    subKeys: zero(2 * n * (dk / 2)),
    wDown: zero(N * d),
    wUp: zero(N * d),
  };
  const state = { runningMean: zero(dq), runningVar: dev.upload(new Float32Array(dq).fill(1)) };
  const dx = zero(T * d),
    y = zero(T * d);
  return {
    name: 'peer (relu, train)',
    shape: `T=${T} d=${d} N=${n}² H=${H} k=${k} dk=${dk}`,
    step: (sc) => {
      const s = peerForward(sc, y, x, p, state, cfg, T);
      peerBackward(sc, dx, g, dy, x, p, s, cfg, T);
    },
  };
}

function monetBench(
  decompose: 'horizontal' | 'vertical',
  T: number,
  d: number,
  E: number,
  H: number,
  m: number,
  topk: number,
): Bench {
  const rcfg: MonetRouterConfig = {
    d,
    H,
    E,
    topk,
    mode: 'train',
    bnEps: 1e-5,
    bnMomentum: 0.1,
    sigma: monetSigma(topk, E),
  };
  const dims = { T, d, H, E, m };
  const x = up(T * d, 1),
    dy = up(T * d, 1);
  const rp = { w1: up(H * E * d, d ** -0.5), w2: up(H * E * d, d ** -0.5) };
  const rg = { w1: zero(H * E * d), w2: zero(H * E * d) };
  const rs = {
    mean1: zero(H),
    var1: dev.upload(new Float32Array(H).fill(1)),
    mean2: zero(H),
    var2: dev.upload(new Float32Array(H).fill(1)),
  };
  const dx = zero(T * d),
    y = zero(T * d),
    unif = zero(1),
    amb = zero(1);
  const Em = E * m,
    Eh = (E * m) / 2,
    dh = d / 2;
  const hd = { u: up(Em * d, d ** -0.5), ub: zero(Em), v: up(d * Em, Em ** -0.5), b: zero(E * d) };
  const hdG = { u: zero(Em * d), ub: zero(Em), v: zero(d * Em), b: zero(E * d) };
  const vd = {
    u1: up(Eh * d, d ** -0.5),
    u1b: zero(Eh),
    u2: up(Eh * d, d ** -0.5),
    u2b: zero(Eh),
    v11: up(dh * Eh, Eh ** -0.5),
    v12: up(dh * Eh, Eh ** -0.5),
    v21: up(dh * Eh, Eh ** -0.5),
    v22: up(dh * Eh, Eh ** -0.5),
    b1: zero(E * dh),
    b2: zero(E * dh),
  };
  const vdG = {
    u1: zero(Eh * d),
    u1b: zero(Eh),
    u2: zero(Eh * d),
    u2b: zero(Eh),
    v11: zero(dh * Eh),
    v12: zero(dh * Eh),
    v21: zero(dh * Eh),
    v22: zero(dh * Eh),
    b1: zero(E * dh),
    b2: zero(E * dh),
  };
  return {
    name: `monet-${decompose === 'horizontal' ? 'hd' : 'vd'} + router (train)`,
    shape: `T=${T} d=${d} E=${E} H=${H} m=${m}`,
    step: (sc) => {
      const r = monetRouterForward(sc, x, rp, rs, rcfg, T);
      monetAuxForward(sc, unif, amb, r, H, E, T, 1e-10);
      const dg1 = sc.f32(T * H * E),
        dg2 = sc.f32(T * H * E);
      if (decompose === 'horizontal') {
        const s = monetHdForward(sc, y, x, r.g1, r.g2, hd, dims);
        monetHdBackward(sc, dx, hdG, dg1, dg2, dy, x, r.g1, r.g2, hd, s, dims);
      } else {
        const s = monetVdForward(sc, y, x, r.g1, r.g2, vd, dims);
        monetVdBackward(sc, dx, vdG, dg1, dg2, dy, x, r.g1, r.g2, vd, s, dims);
      }
      monetAuxBackward(sc, dg1, dg2, r, H, E, T, 1e-10, 1e-3, 1e-3);
      monetRouterBackward(sc, dx, rg, dg1, dg2, x, rp, r, rcfg, T);
    },
  };
}

const L = quick
  ? { T: 64, d: 64, F: 128, topF: 128, k: 8, E: 4, ek: 2, pn: 16, pH: 2, pk: 4, dk: 16, mE: 16, mH: 2, m: 8, mk: 4 }
  : {
      T: 2048,
      d: 1024,
      F: 2816,
      topF: 2048,
      k: 64,
      E: 8,
      ek: 2,
      pn: 256,
      pH: 8,
      pk: 16,
      dk: 128,
      mE: 64,
      mH: 4,
      m: 16,
      mk: 8,
    };
const benches: Bench[] = [
  denseBench(L.T, L.d, L.F),
  topkBench(L.T, L.d, L.topF, L.k),
  smoeBench(L.T, L.d, L.F / 2, L.E, L.ek),
  peerBench(L.T, L.d, L.pn, L.pH, L.pk, L.dk),
  monetBench('horizontal', L.T, L.d, L.mE, L.mH, L.m, L.mk),
  monetBench('vertical', L.T, L.d, L.mE, L.mH, L.m, L.mk),
];
for (const b of benches) {
  const t = await timeIt(
    gpu,
    () => {
      const sc = new Scope(dev);
      b.step(sc);
      sc.release();
    },
    1,
  );
  rows.push({ what: b.name, shape: b.shape, ours: t, flops: b.flops });
  console.log(`${b.name} ${b.shape}: forward+backward ${(t * 1e3).toFixed(2)} ms`);
}

// ------------------------------------------------------------------------------------------------- 4. PyTorch

const TORCH = `
import json, sys, time
cfg = json.loads(sys.argv[1])
try:
    import torch
    import torch.nn.functional as Fn
except Exception as e:
    print(json.dumps({"error": "cannot import torch: %s" % e})); sys.exit(0)
if not torch.cuda.is_available():
    print(json.dumps({"error": "torch %s has no CUDA device" % torch.__version__})); sys.exit(0)
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
dev = "cuda"
def timeit(fn):
    for _ in range(3): fn()
    torch.cuda.synchronize(); t0 = time.perf_counter(); fn(); torch.cuda.synchronize()
    once = time.perf_counter() - t0
    reps = max(3, min(200, int(cfg["min_seconds"] / max(once, 1e-6)) + 1))
    torch.cuda.synchronize(); t0 = time.perf_counter()
    for _ in range(reps): fn()
    torch.cuda.synchronize(); return (time.perf_counter() - t0) / reps
out = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "matmul": {}, "layers": {}}
for n in cfg["sizes"]:
    a = torch.randn(n, n, device=dev); b = torch.randn(n, n, device=dev)
    out["matmul"]["NN %d" % n] = timeit(lambda: a @ b)
    out["matmul"]["NT %d" % n] = timeit(lambda: a @ b.t())
    out["matmul"]["TN %d" % n] = timeit(lambda: a.t() @ b)
T, d, F = cfg["dense"]
x = torch.randn(T, d, device=dev, requires_grad=True); dy = torch.randn(T, d, device=dev)
wg = (torch.randn(F, d, device=dev) * d ** -0.5).requires_grad_()
wu = (torch.randn(F, d, device=dev) * d ** -0.5).requires_grad_()
wd = (torch.randn(d, F, device=dev) * F ** -0.5).requires_grad_()
def dense():
    y = (Fn.silu(x @ wg.t()) * (x @ wu.t())) @ wd.t()
    torch.autograd.grad(y, [x, wg, wu, wd], dy)
out["layers"]["dense-ffn (swiglu)"] = timeit(dense)
T, d, F, k = cfg["topk"]
x2 = torch.randn(T, d, device=dev, requires_grad=True); dy2 = torch.randn(T, d, device=dev)
w_up = (torch.randn(F, d, device=dev) * d ** -0.5).requires_grad_()
w_dn = (torch.randn(d, F, device=dev) * F ** -0.5).requires_grad_()
def topk():
    z = x2 @ w_up.t()
    m = z >= z.topk(k, dim=-1).values[:, -1:]
    y = (torch.relu(z) * m) @ w_dn.t()
    torch.autograd.grad(y, [x2, w_up, w_dn], dy2)
out["layers"]["topk-ffn (relu)"] = timeit(topk)
print(json.dumps(out))
`;

const python = process.env.MONET_PYTHON ?? 'python3';
const torchCfg = { sizes: SIZES, min_seconds: MIN_SECONDS, dense: [L.T, L.d, L.F], topk: [L.T, L.d, L.topF, L.k] };
const proc = spawnSync(python, ['-c', TORCH, JSON.stringify(torchCfg)], { encoding: 'utf8', timeout: 300_000 });
let torchNote: string;
if (proc.error || proc.status !== 0) {
  torchNote =
    `PyTorch not run: ` +
    `${proc.error?.message ?? `${python} exited ${proc.status}: ${proc.stderr.trim().split('\n').slice(-1)[0]}`}`;
} else {
  const res = JSON.parse(proc.stdout.trim().split('\n').slice(-1)[0]) as {
    error?: string;
    device?: string;
    torch?: string;
    matmul?: Record<string, number>;
    layers?: Record<string, number>;
  };
  if (res.error) torchNote = `PyTorch not run: ${res.error}`;
  else {
    torchNote = `PyTorch ${res.torch} float32, TF32 off, on ${res.device}`;
    for (const r of rows) r.torch = r.torchKey ? res.matmul?.[r.torchKey] : res.layers?.[r.what];
  }
}

// ------------------------------------------------------------------------------------------------- table

const ms = (s?: number) => (s === undefined ? '–' : (s * 1e3).toFixed(s < 0.01 ? 3 : 2));
const gf = (flops?: number, s?: number) =>
  flops === undefined || s === undefined ? '–' : (flops / s / 1e9).toFixed(0);
const lines = [
  ['what', 'shape', 'webgpu ms', 'GFLOP/s', 'torch ms', 'GFLOP/s', 'webgpu/torch rate'],
  ...rows.map((r) => [
    r.what,
    r.shape,
    ms(r.ours),
    gf(r.flops, r.ours),
    ms(r.torch),
    gf(r.flops, r.torch),
    r.torch === undefined ? '–' : `${((r.torch / r.ours) * 100).toFixed(0)}%`,
  ]),
];
const widths = lines[0].map((_, c) => Math.max(...lines.map((l) => l[c].length)));
console.log('');
console.log(`WebGPU job on ${gpu.description}${quick ? ' (--quick sizes)' : ''}`);
console.log(fixtureVerdict);
console.log(torchNote);
for (const l of lines) console.log(l.map((cell, c) => cell.padEnd(widths[c])).join('  '));
// On the device machine $OUT comes back to the caller: leave the figures there as JSON too.
if (process.env.OUT) {
  const file = join(process.env.OUT, 'gpu-job.json');
  writeFileSync(
    file,
    JSON.stringify({ device: gpu.description, quick, fixtures: fixtureVerdict, torch: torchNote, rows }, null, 1),
  );
  console.log(`wrote ${file}`);
}
dev.dispose();
