// Helpers shared by the benny suites: one-at-a-time asynchronous cases, and the figures we keep from a summary.
//
// Why `serial`: benny prepares every case of a suite concurrently (Promise.all) and calls an asynchronous case
// function two or three times while preparing it, without awaiting every call (it only inspects what comes back).
// A WebGPU case enqueues work and awaits the queue, so overlapping calls would time each other's work. `serial`
// chains every call of every wrapped function onto one promise: a call starts only when the previous one has ended.

import b from 'benny';

let tail: Promise<unknown> = Promise.resolve();

/** `fn`, but each call waits for every earlier call of any serialised function to finish first. */
export function serial<T>(fn: () => Promise<T>): () => Promise<T> {
  return () => {
    const run = tail.then(fn, fn);
    tail = run.catch(() => undefined);
    return run;
  };
}

/** Per-case benny options: the least we accept (samples) and the time we are willing to spend (seconds). */
export interface CaseBudget {
  minSamples: number;
  maxTime: number;
}

/**
 * What we keep of one benny case: seconds per call (median, mean, and the fastest sample: on a machine shared with
 * other work the fastest sample is the least disturbed one), relative margin of error (%), samples.
 */
export interface Timing {
  name: string;
  median: number;
  mean: number;
  min: number;
  rme: number;
  samples: number;
}

type Summary = Parameters<NonNullable<Parameters<typeof b.complete>[0]>>[0];

/** The timings of a finished suite (details are seconds per call; benny's `ops` is rounded to an integer). */
export function timings(summary: Summary): Timing[] {
  return summary.results.map((r) => ({
    name: r.name,
    median: r.details.median,
    mean: r.details.mean,
    min: r.details.min,
    rme: r.details.relativeMarginOfError,
    samples: r.samples,
  }));
}

/**
 * Best CPU time (ms) of `fn` over `rounds` calls, by this process's CPU time (process.cpuUsage: user + system).
 * Our CPU backends and the peers timed this way run on one thread, so their CPU time is their compute time; unlike
 * wall time it leaves out the slices the process waited while other work held the cores (this machine is shared).
 * For several functions pass them together: rounds interleave them, so all see the same cache and memory state.
 */
export function cpuBest(fns: [string, () => void][], rounds: number): Map<string, number> {
  const best = new Map<string, number>();
  for (let r = 0; r < rounds; r++) {
    for (const [name, fn] of fns) {
      const u0 = process.cpuUsage();
      fn();
      const u = process.cpuUsage(u0);
      best.set(name, Math.min(best.get(name) ?? Infinity, (u.user + u.system) / 1000));
    }
  }
  return best;
}

/**
 * Runs one benny suite of `cases` ([name, fn, budget]) one after another and returns their timings. Sync functions
 * are timed as they are; async ones must already be wrapped in `serial`.
 */
export async function runSuite(title: string, cases: [string, () => unknown, CaseBudget][]): Promise<Timing[]> {
  let out: Timing[] = [];
  await b.suite(
    title,
    ...cases.map(([name, fn, budget]) => b.add(name, fn as () => void, budget)),
    b.cycle(),
    b.complete((s) => {
      out = timings(s);
    }),
  );
  return out;
}
