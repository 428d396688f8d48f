// The WASM device's threads: N instances of the same kernels module over ONE shared WebAssembly.Memory — the
// calling thread and N − 1 workers (worker_threads in Node, Web Workers in browsers).
//
// A kernel call stays synchronous (the contract in src/backend/kernels.ts): the device splits a large kernel into
// parts — up to CHUNKS per thread — each a list of calls of the module's exports (`call(part, fn, …args)`);
// `end()` publishes the parts, and every thread — the calling one too — claims parts one at a time until none is
// left; `end()` returns when all parts are done. Parts write disjoint pieces of the outputs (rows, columns, heads:
// the split is in src/backend/wasm/device.ts), so which thread runs a part does not matter. A job with scratch
// (`begin(parts, stride)`) passes thread 0's block as its calls' last argument and each thread adds its own offset
// (tid · stride): scratch per thread, not per part, however many parts a job has.
// More parts than threads is what keeps a thread that is late from holding the others up: a worker that the
// operating system (or the hypervisor) has not scheduled, or that is still waking up, finds the parts it would have
// had already taken by the threads that were running, and joins for the ones left.
//
// Waiting: a worker that has finished spins on `wake` for up to WORKER_SPIN_MS before it sleeps in Atomics.wait,
// long enough to bridge most gaps between two jobs of a training step (the JavaScript and small kernels between
// them; a wake-up from sleep costs tens of microseconds, more on a virtual machine whose idle CPU was halted), short
// enough not to starve a thread that has work when the process gets less than a core per thread. The calling thread
// spins on `done` for up to CALLER_SPIN_MS before it sleeps.
//
// Signalling, in a small SharedArrayBuffer of int32 (CTL):
//   claim    the job's epoch (20 bits) and the next unclaimed part (12 bits); a thread claims part i by a
//            compare-exchange of (epoch, i) → (epoch, i + 1), so a thread still looking at an earlier job can never
//            claim a part of the current one
//   parts    number of parts of the current job (written before claim)
//   done     parts finished; the thread finishing the last one notifies the caller
//   wake     incremented for each job: idle workers spin on it (WORKER_SPIN_MS), then sleep in Atomics.wait
//   stride   the job's scratch stride in bytes (0: its calls take no per-thread scratch)
//   ready    workers that have instantiated the module (start-up)
//   quit     set by dispose(): workers return
//   error    1 + the thread whose call threw, with the export's index and the message's characters
// Each part has a mailbox of float64 words (BOX_WORDS): [number of calls, then per call: export index, number of
// arguments, arguments…]. Pointers, sizes and scalars all fit a float64 exactly; a wasm export receives them as it
// would from any JS call.

const CTL = {
  claim: 0,
  parts: 1,
  done: 2,
  wake: 3,
  ready: 4,
  quit: 5,
  error: 6,
  errorFn: 7,
  errorLen: 8,
  stride: 9,
  errorText: 16,
} as const;
/**
 * Counters each thread keeps for itself (ThreadPool.stats), STAT_WORDS int32 apart (64 bytes: no two threads
 * write the same cache line): parts it ran, and how often it found no job after spinning and went to sleep.
 */
const STAT = { parts: 0, sleeps: 1 } as const;
const STAT_WORDS = 16;
const ERROR_CHARS = 256;
const CTL_WORDS = CTL.errorText + ERROR_CHARS;
const BOX_WORDS = 512;
/** Parts per job at most (the claim word's 12 bits). */
const MAX_PARTS = 4095;
/** Parts per thread a job may have at most (device.ts decides how many a kernel gets). */
export const CHUNKS = 4;
/**
 * How long an idle worker spins before sleeping, and the calling thread waiting for the last parts (ms). Longer
 * spins save a few wake-ups per step on an idle machine, but where the process gets less than a core per thread
 * (a busy process in another session: Linux's autogroups share the CPUs between sessions, not threads) every
 * spinning microsecond is taken from the thread that has work (with 1 ms / 2 ms the default model's 2-thread step
 * became much slower than one thread's beside one such process).
 */
const WORKER_SPIN_MS = 0.2;
const CALLER_SPIN_MS = 0.2;

/**
 * The worker's program, as source text: a browser worker runs it from a Blob URL, a Node worker (`eval: true`) with
 * a line before it that gives it the browser's `self.onmessage` (src/backend/wasm/node.ts), so no bundler or
 * loader has to find a separate file. `start` receives the module, the memory and the shared buffers,
 * instantiates, counts itself ready, then claims parts of each job until `quit`. `claimParts` is the same
 * function the calling thread runs (ThreadPool.claimParts below), written once more here because a worker has
 * none of the bundle's code.
 */
export const WORKER_SOURCE = `'use strict';
const CTL = ${JSON.stringify(CTL)};
const STAT = ${JSON.stringify(STAT)};
function start(init) {
  const ctl = new Int32Array(init.ctl), box = new Float64Array(init.box), stat = new Int32Array(init.stat);
  const tid = init.tid, boxWords = init.boxWords, spinMs = init.spinMs, so = tid * ${STAT_WORDS};
  function fail(fn, err) {
    const text = String((err && err.message) || err).slice(0, ${ERROR_CHARS});
    for (let i = 0; i < text.length; i++) ctl[CTL.errorText + i] = text.charCodeAt(i);
    ctl[CTL.errorLen] = text.length;
    ctl[CTL.errorFn] = fn;
    Atomics.store(ctl, CTL.error, tid + 1);
  }
  let fns;
  try {
    const abort = (m, f, line, col) => { throw new Error('wasm kernels aborted at asm line ' + line + ':' + col); };
    const inst = new WebAssembly.Instance(init.module, { env: { memory: init.memory, abort } });
    fns = init.names.map((n) => inst.exports[n]);
  } catch (e) {
    fail(-1, e);
  }
  Atomics.add(ctl, CTL.ready, 1);
  if (!fns) return;
  const args = [];
  function runPart(i) {
    let o = i * boxWords + 1, fn = -1;
    const shift = tid * ctl[CTL.stride];
    try {
      for (let c = 0, n = box[i * boxWords]; c < n; c++) {
        fn = box[o];
        const na = box[o + 1];
        args.length = na;
        for (let a = 0; a < na; a++) args[a] = box[o + 2 + a];
        if (shift) args[na - 1] += shift;
        fns[fn].apply(null, args);
        o += 2 + na;
      }
    } catch (err) {
      fail(fn, err);
    }
  }
  function claimParts() {
    for (;;) {
      const w = Atomics.load(ctl, CTL.claim), n = Atomics.load(ctl, CTL.parts);
      if ((w & 4095) >= n) return;
      if (Atomics.compareExchange(ctl, CTL.claim, w, w + 1) !== w) continue;
      runPart(w & 4095);
      stat[so + STAT.parts]++;
      if (Atomics.add(ctl, CTL.done, 1) + 1 === n) Atomics.notify(ctl, CTL.done);
    }
  }
  let seen = Atomics.load(ctl, CTL.wake);
  for (;;) {
    let e = Atomics.load(ctl, CTL.wake);
    if (e === seen) {
      const t0 = performance.now();
      for (let i = 1; e === seen; i++) {
        e = Atomics.load(ctl, CTL.wake);
        if ((i & 255) === 0 && performance.now() - t0 > spinMs) break;
      }
    }
    if (e === seen) stat[so + STAT.sleeps]++;
    while (e === seen) {
      Atomics.wait(ctl, CTL.wake, seen);
      e = Atomics.load(ctl, CTL.wake);
    }
    seen = e;
    if (Atomics.load(ctl, CTL.quit)) return;
    claimParts();
  }
}
self.onmessage = (ev) => start(ev.data);
`;

/** What the pool needs from a worker, in Node (worker_threads) and in browsers (Web Workers). */
export interface WorkerLike {
  postMessage(message: unknown): void;
  terminate(): unknown;
}
/**
 * Starts a worker running `source`; `onError` receives a failure to start (a browser refusing Blob workers, a
 * syntax error). The Node loader passes one built on worker_threads; browsers get spawnBrowserWorker.
 */
export type SpawnWorker = (source: string, onError: (e: Error) => void) => WorkerLike;

/** Web Workers from a Blob URL (no separate file to serve). */
export const spawnBrowserWorker: SpawnWorker = (source, onError) => {
  const url = URL.createObjectURL(new Blob([source], { type: 'text/javascript' }));
  const w = new Worker(url);
  w.onerror = (e) => onError(new Error(e.message || 'worker failed to start'));
  return w;
};

/** Whether this engine can share a WebAssembly.Memory between threads (browsers: only when cross-origin isolated). */
export function sharedMemorySupported(): { ok: true } | { ok: false; why: string } {
  if (typeof SharedArrayBuffer === 'undefined')
    return {
      ok: false,
      why:
        'SharedArrayBuffer is not available (a page needs the Cross-Origin-Opener-Policy: same-origin and ' +
        'Cross-Origin-Embedder-Policy: require-corp headers)',
    };
  const g = globalThis as { crossOriginIsolated?: boolean };
  if (g.crossOriginIsolated === false)
    return { ok: false, why: 'the page is not cross-origin isolated (COOP/COEP headers missing)' };
  return { ok: true };
}

export interface PoolOptions {
  threads: number;
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  /** The calling thread's instance of `module`. */
  instance: WebAssembly.Instance;
  spawn: SpawnWorker;
  /** False on a browser's main thread, where Atomics.wait is not allowed: the pool then spins while it waits. */
  canBlock: boolean;
}

type ExportFn = (...args: number[]) => unknown;

/**
 * What the pool has done since it started (cumulative: take two and subtract to see one step or one kernel).
 * Parts and sleeps are counted by each thread; the times are the calling thread's, in ms.
 */
export interface ThreadStats {
  /** Jobs run in more than one part (a kernel that ran whole on the calling thread is not a job). */
  jobs: number;
  /** Parts of those jobs. */
  parts: number;
  /** Parts each thread ran: [calling thread, worker 1, …]. */
  partsBy: number[];
  /** Times each worker found no job after spinning and slept (each costs a wake-up on the next job). */
  sleeps: number[];
  /** Jobs whose parts the calling thread ran all by itself (no worker claimed one in time). */
  jobsAlone: number;
  /** The calling thread inside jobs: running parts, and waiting for the other threads' parts after its own. */
  runMs: number;
  waitMs: number;
}

export class ThreadPool {
  readonly threads: number;
  /** The exports a job may call, by index (the same list in every thread). */
  readonly names: string[];
  private readonly fns: ExportFn[];
  private readonly canBlock: boolean;
  private readonly used: Int32Array; // words filled in each part's mailbox after its count
  private parts = 0; // parts of the job being built; 1 = calls run at once on this thread
  private stride = 0; // the job's scratch stride (see begin)
  private epoch = 0;
  private disposed = false;
  private readonly counts = { jobs: 0, parts: 0, callerParts: 0, jobsAlone: 0, runMs: 0, waitMs: 0 };

  private constructor(
    opts: PoolOptions,
    private readonly workers: WorkerLike[],
    private readonly ctl: Int32Array,
    private readonly box: Float64Array,
    private readonly stat: Int32Array,
  ) {
    this.threads = opts.threads;
    this.canBlock = opts.canBlock;
    this.names = exportNames(opts.instance);
    const ex = opts.instance.exports as Record<string, ExportFn>;
    this.fns = this.names.map((n) => ex[n]);
    this.used = new Int32Array(Math.min(MAX_PARTS, CHUNKS * opts.threads));
  }

  /** Starts threads − 1 workers, each with its own instance of the module on the shared memory. */
  static async start(opts: PoolOptions): Promise<ThreadPool> {
    const n = opts.threads;
    if (n > MAX_PARTS) throw new Error(`wasm threads: at most ${MAX_PARTS} threads, asked for ${n}`);
    // one thread shares nothing (and a page without cross-origin isolation has no SharedArrayBuffer)
    const Buffer = n > 1 ? SharedArrayBuffer : ArrayBuffer;
    const ctl = new Int32Array(new Buffer(4 * CTL_WORDS));
    const box = new Float64Array(new Buffer(8 * BOX_WORDS * Math.min(MAX_PARTS, CHUNKS * n)));
    const stat = new Int32Array(new Buffer(4 * STAT_WORDS * n));
    const workers: WorkerLike[] = [];
    let startError: Error | null = null;
    const names = exportNames(opts.instance);
    for (let t = 1; t < n; t++) {
      const w = opts.spawn(WORKER_SOURCE, (e) => {
        startError ??= e;
      });
      workers.push(w);
      w.postMessage({
        module: opts.module,
        memory: opts.memory,
        ctl: ctl.buffer,
        box: box.buffer,
        stat: stat.buffer,
        tid: t,
        names,
        boxWords: BOX_WORDS,
        spinMs: WORKER_SPIN_MS,
      });
    }
    const pool = new ThreadPool(opts, workers, ctl, box, stat);
    const t0 = Date.now();
    while (Atomics.load(ctl, CTL.ready) < n - 1 && !startError && Date.now() - t0 < 60_000)
      await new Promise((r) => setTimeout(r, 2));
    const failed = startError ?? pool.takeError();
    if (failed || Atomics.load(ctl, CTL.ready) < n - 1) {
      pool.dispose();
      throw new Error(
        `wasm threads: ${n - 1} worker(s) did not start: ${failed ? failed.message : 'no answer within 60 s'}`,
      );
    }
    return pool;
  }

  /** Most parts a job may have (CHUNKS per thread). */
  get maxParts(): number {
    return this.used.length;
  }

  /**
   * Starts a job of `parts` parts (at most maxParts); with one part, calls run at once on this thread. With a
   * `stride` > 0 the last argument of every call of the job is a scratch address for thread 0: the thread that
   * runs the call adds tid · stride to it.
   */
  begin(parts: number, stride = 0): void {
    if (parts > this.maxParts)
      throw new Error(`wasm threads: ${parts} parts for ${this.threads} threads (at most ${this.maxParts})`);
    this.parts = this.threads === 1 ? 1 : Math.max(1, parts);
    this.stride = stride;
    if (this.parts > 1) this.used.fill(0, 0, this.parts);
  }

  /** Part `part` of the current job runs export `fn` with these arguments. */
  call(part: number, fn: number, ...args: number[]): void {
    if (this.parts === 1) {
      this.fns[fn](...args);
      return;
    }
    if (!(part >= 0 && part < this.parts))
      throw new Error(`wasm threads: part ${part} out of range [0, ${this.parts})`);
    const base = part * BOX_WORDS;
    let o = base + 1 + this.used[part];
    if (o + 2 + args.length > base + BOX_WORDS)
      throw new Error(`wasm threads: part ${part} of the job exceeds its mailbox (${BOX_WORDS} words)`);
    this.box[o++] = fn;
    this.box[o++] = args.length;
    for (const a of args) this.box[o++] = a;
    this.used[part] = o - base - 1;
  }

  /** Runs the job: publishes its parts, claims and runs parts until none is left, waits for the others' parts. */
  end(): void {
    if (this.parts === 1) return;
    if (this.disposed) throw new Error('wasm threads: used after dispose()');
    const n = this.parts;
    for (let i = 0; i < n; i++) this.box[i * BOX_WORDS] = this.callsIn(i);
    const ctl = this.ctl;
    this.epoch = (this.epoch + 1) & 0xfffff;
    Atomics.store(ctl, CTL.parts, n);
    Atomics.store(ctl, CTL.stride, this.stride);
    Atomics.store(ctl, CTL.done, 0);
    Atomics.store(ctl, CTL.claim, this.epoch << 12);
    Atomics.add(ctl, CTL.wake, 1);
    Atomics.notify(ctl, CTL.wake);
    const t0 = performance.now();
    let own: unknown = null;
    let mine = 0;
    for (;;) {
      const w = Atomics.load(ctl, CTL.claim);
      if ((w & 4095) >= n) break;
      if (Atomics.compareExchange(ctl, CTL.claim, w, w + 1) !== w) continue;
      mine++;
      try {
        this.runPart(w & 4095);
      } catch (e) {
        own ??= e;
      }
      Atomics.add(ctl, CTL.done, 1);
    }
    const t1 = performance.now();
    let d = Atomics.load(ctl, CTL.done);
    for (let i = 1; d < n; i++) {
      d = Atomics.load(ctl, CTL.done);
      if ((i & 255) === 0 && performance.now() - t1 > CALLER_SPIN_MS) break;
    }
    while (d < n) {
      if (this.canBlock) Atomics.wait(ctl, CTL.done, d);
      d = Atomics.load(ctl, CTL.done);
    }
    const c = this.counts;
    c.jobs++;
    c.parts += n;
    c.callerParts += mine;
    if (mine === n) c.jobsAlone++;
    c.runMs += t1 - t0;
    c.waitMs += performance.now() - t1;
    this.parts = 0;
    const err = this.takeError();
    if (own) throw own;
    if (err) throw err;
  }

  private callsIn(part: number): number {
    const base = part * BOX_WORDS;
    let calls = 0;
    for (let o = base + 1; o < base + 1 + this.used[part]; o += 2 + this.box[o + 1]) calls++;
    return calls;
  }

  private runPart(i: number): void {
    const box = this.box;
    let o = i * BOX_WORDS + 1;
    for (let c = 0, n = box[i * BOX_WORDS]; c < n; c++) {
      const fn = box[o];
      const na = box[o + 1];
      this.fns[fn](...box.subarray(o + 2, o + 2 + na));
      o += 2 + na;
    }
  }

  /** What the pool has done so far (see ThreadStats). */
  stats(): ThreadStats {
    const c = this.counts;
    const partsBy = [c.callerParts];
    const sleeps: number[] = [];
    for (let t = 1; t < this.threads; t++) {
      partsBy.push(Atomics.load(this.stat, t * STAT_WORDS + STAT.parts));
      sleeps.push(Atomics.load(this.stat, t * STAT_WORDS + STAT.sleeps));
    }
    return { jobs: c.jobs, parts: c.parts, partsBy, sleeps, jobsAlone: c.jobsAlone, runMs: c.runMs, waitMs: c.waitMs };
  }

  /** The error a worker recorded (and clears it), or null. */
  private takeError(): Error | null {
    const who = Atomics.load(this.ctl, CTL.error);
    if (!who) return null;
    const fn = this.ctl[CTL.errorFn];
    const text = String.fromCharCode(
      ...this.ctl.subarray(CTL.errorText, CTL.errorText + Math.min(this.ctl[CTL.errorLen], ERROR_CHARS)),
    );
    Atomics.store(this.ctl, CTL.error, 0);
    const where = fn >= 0 ? `kernel export '${this.names[fn]}'` : 'instantiating the kernels module';
    return new Error(`wasm thread ${who - 1}: ${where} failed: ${text}`);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    Atomics.store(this.ctl, CTL.quit, 1);
    Atomics.add(this.ctl, CTL.wake, 1);
    Atomics.notify(this.ctl, CTL.wake);
    for (const w of this.workers) w.terminate();
  }
}

/** The module's function exports, sorted (the same list in every thread, so an index names the same export). */
function exportNames(instance: WebAssembly.Instance): string[] {
  return Object.keys(instance.exports)
    .filter((k) => typeof (instance.exports as Record<string, unknown>)[k] === 'function')
    .sort();
}
