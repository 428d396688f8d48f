// Tests that cannot run on this machine (no WebGPU adapter, no Chromium, a backend not in this build) are registered
// as skipped tests with the reason printed: they count in uvu's "Skipped: N" and in CI's verdict line, never as
// tests that returned early and "passed". What CI installs (Mesa's WebGPU adapter, Chromium) is required under
// CI=true: there a missing one is not a reason to skip, and the test runs and fails with the error.
import { existsSync } from 'node:fs';
import { test } from 'uvu';

type Handler = Parameters<typeof test>[1];

/** CI=true: nothing that CI provides may be skipped. */
export const IN_CI = process.env.CI === 'true';

/**
 * `test` when `why` is null; otherwise the test is registered as skipped and `SKIP <name>: <why>` is printed. How to
 * make each skipped test run is in the README (Tests).
 */
export function testUnless(why: string | null): (name: string, fn: Handler) => void {
  return (name, fn) => {
    if (why === null) {
      test(name, fn);
      return;
    }
    console.log(`SKIP ${name}: ${why}`);
    test.skip(name, fn);
  };
}

/** Chromium for the browser tests: $MONET_CHROMIUM, or Debian's /usr/bin/chromium. */
export const CHROMIUM = process.env.MONET_CHROMIUM || '/usr/bin/chromium';

/** Why the browser tests cannot run here, or null when they can (under CI=true always null: they must run). */
export function chromiumMissing(): string | null {
  if (existsSync(CHROMIUM) || IN_CI) return null;
  return `${CHROMIUM} not found (apt-get install chromium, or set MONET_CHROMIUM)`;
}

/** First line of a browser test: under CI=true a missing Chromium fails here, with what to install. */
export function requireChromium(): void {
  if (!existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} not found: CI must run the browser tests (apt-get install chromium)`);
}
