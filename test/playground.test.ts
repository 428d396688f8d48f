// The browser playground in a real browser: build the site, serve it on 127.0.0.1, drive it in headless Chromium
// (Debian's /usr/bin/chromium through playwright-core; WebGPU comes from Chromium's SwiftShader adapter) as a user
// would — buttons, form fields, keys — and check what the page shows:
//   1. the fixture check on WebGPU and on WASM, in the browser: every committed fixture passes on both;
//   2. training a Monet model a few steps: the loss is finite and falls;
//   3. the routing view: g1/g2 heatmaps with ink in them, the composite expert list, keyboard selection of tokens;
//   4. no request leaves the page's own origin; no uncaught page error;
//   5. threads: the served page is cross-origin isolated, so WASM runs on every core Chromium reports (the fixture
//      check and the WASM training above ran on them), and the same site served without the COOP/COEP headers
//      says, visibly, that WASM runs on one thread and why — and still trains.
// A full-page screenshot is saved to a temp folder (its path is printed) for a person to look at.
// Chromium missing: skipped with the reason outside CI, a failure under CI=true.

import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CHROMIUM, chromiumMissing, IN_CI, requireChromium, testUnless } from './skip.ts';
import { buildPlayground, servePlayground, ROOT } from '../playground/build.ts';
import { saveModel } from '../src/train/checkpoint.ts';
import { initParams } from '../src/train/init.ts';
import { getPreset } from '../src/train/presets.ts';

const browserTest = testUnless(chromiumMissing());

/** Flags: headless, no sandbox (containers), WebGPU on (unsafe = without an allow-list; SwiftShader when no GPU),
 *  and nothing that talks to the network on its own. */
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--disable-gpu-sandbox',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * WebGPU fixtures that fail in Chromium today, each with its reason (a listed gap, never a silent skip). Every other
 * fixture must pass; a failure that matches no entry fails the test. An entry that no longer matches any failure is
 * printed, so that it can be deleted once the backend is fixed. Empty: every fixture passes on WebGPU in Chromium
 * (the two former gaps, monetVdMix's 12 storage buffers and rope's on-GPU sin/cos, are fixed; docs/webgpu.md).
 */
const KNOWN_WEBGPU_GAPS: Array<{ match: RegExp; symptom: RegExp; reason: string }> = [];

function countFixtures(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) n += countFixtures(join(dir, e.name));
    else if (e.name.endsWith('.safetensors')) n++;
  }
  return n;
}

/** window.playground, as playground/main.ts sets it (read inside page.evaluate, in the page). */
interface PageState {
  webgpu: { ok: boolean; adapter?: string; why?: string; fallback?: boolean } | null;
  losses: number[];
  trainBackend: string;
  check: Record<
    string,
    { passed: number; failed: number; unsupported: number; unavailable?: string; failures: string[] }
  > | null;
  wasm: { threads: number; note: string | null } | null;
  routingRendered: boolean;
  generation: { plain: string; steered: string | null } | null;
  model: string;
  usage: Array<{ layer: number; units: number; dead: number; overloaded: number }> | null;
  errors: string[];
}

browserTest('playground: fixture check on WebGPU and WASM, training, routing view, in headless Chromium', async () => {
  requireChromium();
  const { chromium } = await import('playwright-core');
  const work = mkdtempSync(join(tmpdir(), 'monet-playground-'));
  const site = join(work, 'site');
  const built = await buildPlayground(site, { quiet: true });
  assert.ok(built.files > 5, `build wrote ${built.files} files`);
  const server = await servePlayground(site, 0);
  const origin = server.url.replace(/\/$/, '');
  const context = await chromium.launchPersistentContext(join(work, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width: 1366, height: 900 },
  });
  const outside: string[] = [];
  const pageErrors: string[] = [];
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    // Everything must come from the page's own folder: record (and refuse) any other request.
    await page.route('**/*', (route) => {
      const u = route.request().url();
      if (u.startsWith(`${origin}/`) || u.startsWith('data:') || u.startsWith('blob:')) return route.continue();
      outside.push(u);
      return route.abort();
    });
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(server.url);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 30_000 });
    const state = () => page.evaluate(() => Reflect.get(window, 'playground') as PageState);
    const s0 = await state();
    const gpuOk = !!s0.webgpu?.ok;
    if (!gpuOk) {
      const why = `no WebGPU adapter in Chromium: ${s0.webgpu?.why}`;
      if (IN_CI) assert.unreachable(why);
      console.log(`playground test: ${why}; the WebGPU column is checked as unavailable`);
    } else
      console.log(
        `playground test: WebGPU adapter in Chromium: ` +
          `${s0.webgpu?.adapter}${s0.webgpu?.fallback ? ' (fallback)' : ''}`,
      );
    assert.match((await page.textContent('#backend-status')) ?? '', gpuOk ? /WebGPU adapter/ : /No WebGPU/);
    // served with COOP/COEP: shared memory, so WASM runs on every core the browser reports
    const cores = await page.evaluate(() => navigator.hardwareConcurrency);
    assert.ok(await page.evaluate(() => crossOriginIsolated), 'the page is cross-origin isolated');
    assert.is(s0.wasm?.threads, cores, 'WASM threads = navigator.hardwareConcurrency');
    console.log(`playground test: ${await page.textContent('#threads-note')}`);

    // ---- 1. fixture check, both backends
    const nFixtures = countFixtures(join(ROOT, 'fixtures'));
    await page.getByRole('button', { name: /Run the fixture check/ }).click();
    await page.waitForSelector('#check-summary:is([data-state="done"], [data-state="failed"], [data-state="error"])', {
      timeout: 120_000,
    });
    const s1 = await state();
    const summary = await page.textContent('#check-summary');
    console.log(`playground test: ${summary}`);
    assert.ok(s1.check, 'check results exposed');
    const wasm = s1.check!.wasm;
    assert.is(wasm.unavailable, undefined, `wasm unavailable: ${wasm.unavailable}`);
    assert.equal(wasm.failures, [], 'wasm failures');
    assert.is(wasm.passed, nFixtures, 'every fixture passes on WASM');
    const gpu = s1.check!.webgpu;
    if (gpuOk) {
      assert.is(gpu.unavailable, undefined, `webgpu unavailable: ${gpu.unavailable}`);
      const listed = (f: string, g: (typeof KNOWN_WEBGPU_GAPS)[number]) =>
        g.match.test(f.split(':')[0]) && g.symptom.test(f);
      const unexplained = gpu.failures.filter((f) => !KNOWN_WEBGPU_GAPS.some((g) => listed(f, g)));
      assert.equal(unexplained, [], 'WebGPU failures that are not listed gaps');
      for (const g of KNOWN_WEBGPU_GAPS) {
        const hit = gpu.failures.filter((f) => listed(f, g)).length;
        console.log(
          hit
            ? `playground test: known WebGPU gap (${hit} fixtures): ${g.reason}`
            : `playground test: listed WebGPU gap ${g.match} no longer fails: remove it from KNOWN_WEBGPU_GAPS`,
        );
      }
      assert.is(gpu.passed + gpu.failures.length, nFixtures, 'every fixture ran on WebGPU');
      if (KNOWN_WEBGPU_GAPS.length === 0) assert.is(gpu.passed, nFixtures, 'every fixture passes on WebGPU');
    } else assert.ok(gpu.unavailable, 'WebGPU reported as unavailable when there is no adapter');
    assert.is(await page.locator('#check-table tbody tr').count(), nFixtures, 'one table row per fixture');
    if (!gpuOk) assert.is(await page.locator('#check-table td.fail').count(), 0, 'no failed cell in the table');

    // ---- 2. train a few steps: Monet-HD on WebGPU (when there is an adapter), then Monet-VD on auto
    const trainRun = async (model: string, backend: string, steps: number) => {
      await page.getByLabel('Model', { exact: true }).selectOption(model);
      await page.getByLabel('Backend', { exact: true }).selectOption(backend);
      await page.getByLabel('Steps', { exact: true }).fill(String(steps));
      await page.getByRole('button', { name: 'Train', exact: true }).click();
      await page.waitForSelector('#train-status[data-state="running"]', { timeout: 10_000 });
      await page.waitForSelector('#train-status:is([data-state="done"], [data-state="error"])', { timeout: 120_000 });
      assert.is(
        await page.getAttribute('#train-status', 'data-state'),
        'done',
        `training ${model} on ${backend}: ${await page.textContent('#train-status')}`,
      );
      const s = await state();
      const L = s.losses;
      console.log(
        `playground test: ${model} trained ${L.length} steps on ${s.trainBackend} (${backend}): loss ` +
          `${L[0]?.toFixed(3)} → ${L[L.length - 1]?.toFixed(3)}, ${await page.textContent('#stat-tps')} tokens/s`,
      );
      assert.is(L.length, steps);
      assert.ok(L.every(Number.isFinite), 'every loss is finite');
      // A fresh byte model starts near ln 256 ≈ 5.55; a few AdamW steps must bring the average clearly down.
      const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
      assert.ok(Math.abs(L[0] - Math.log(256)) < 0.5, `first loss ${L[0]} near ln 256`);
      assert.ok(
        mean(L.slice(-4)) < mean(L.slice(0, 4)) - 0.1,
        `loss falls: first 4 steps ${mean(L.slice(0, 4))}, last 4 ${mean(L.slice(-4))}`,
      );
      return s.trainBackend;
    };
    if (gpuOk) assert.match(await trainRun('monet-hd', 'webgpu', 8), /^webgpu/);
    // auto skips a software fallback adapter (SwiftShader) for WASM, and uses a hardware one
    const autoBackend = await trainRun('monet-vd', 'auto', 24);
    if (cores > 1) {
      // the WASM fixture check above and this run used the threads
      assert.is((await state()).wasm?.threads, cores, 'the WASM device ran on every core');
      if (/^wasm/.test(autoBackend)) assert.match(autoBackend, new RegExp(`, ${cores} threads\\)$`));
    }
    assert.match(autoBackend, gpuOk && !s0.webgpu?.fallback ? /^webgpu/ : /^wasm/);
    assert.match((await page.textContent('#stat-backend')) ?? '', /^(wasm|webgpu)/);

    // ---- 3. routing view
    await page.getByLabel('Text to analyse').fill('The jury said the city was ready.');
    await page.getByRole('button', { name: 'Analyse' }).click();
    await page.waitForSelector('#inspect-status:is([data-state="done"], [data-state="error"])', { timeout: 60_000 });
    assert.is(
      await page.getAttribute('#inspect-status', 'data-state'),
      'done',
      `analyse: ${await page.textContent('#inspect-status')}`,
    );
    assert.ok(await page.isVisible('#routing-view'), 'routing view shown for a Monet model');
    const H = 2; // moe_heads of the playground's Monet models (playground/models.ts)
    assert.is(await page.locator('#heatmaps canvas').count(), 2 * H, 'a g1 and a g2 heatmap per head');
    // Each heatmap must have ink: at least one cell coloured (non-white) by a routing weight.
    const inked = await page.evaluate(() =>
      Array.from(document.querySelectorAll<HTMLCanvasElement>('#heatmaps canvas')).map((c) => {
        const d = c.getContext('2d')!.getImageData(26, 0, c.width - 26, c.height - 20).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i] < 200 && d[i + 2] > 150) n++;
        return n;
      }),
    );
    assert.ok(
      inked.every((n) => n > 0),
      `every heatmap shows routing weights (blue pixels per map: ${inked})`,
    );
    assert.ok((await page.locator('#composite-list li').count()) > 0, 'top composite experts listed');
    // colour legends beside the maps, the usage summary per layer, the model named
    assert.ok(await page.isVisible('#routing-legend .ramp'), 'colour legend of the routing maps');
    assert.ok(await page.isVisible('#composite-legend .ramp'), 'colour legend of the composite map');
    const usage = (await state()).usage;
    assert.equal(
      usage?.map((u) => [u.layer, u.units]),
      [
        [0, 64],
        [1, 64],
      ],
      'usage row per layer: 8 × 8 composite experts',
    );
    assert.ok(
      usage!.every((u) => u.dead >= 0 && u.dead <= u.units && u.overloaded <= u.units - u.dead),
      JSON.stringify(usage),
    );
    assert.ok(await page.isVisible('#usage-view'), 'usage table shown');
    assert.match((await state()).model, /monet-vd model trained in this tab \(24 steps/);
    assert.match((await page.getAttribute('link[rel="icon"]', 'href')) ?? '', /^data:image\/svg\+xml,/);
    assert.match((await page.textContent('#composite-list')) ?? '', /expert \(\d+, \d+\)/);
    assert.ok((await state()).routingRendered);
    // keyboard: the token strip moves with the arrow keys
    const tokens = page.locator('#token-strip button');
    assert.is(await tokens.count(), 'The jury said the city was ready.'.length);
    await tokens.nth(2).click();
    await page.keyboard.press('ArrowRight');
    assert.is(await tokens.nth(3).getAttribute('aria-pressed'), 'true', 'ArrowRight selects the next token');
    assert.match((await page.textContent('#composite-h')) ?? '', /character 4/);

    const shot = join(work, 'playground.png');
    await page.screenshot({ path: shot, fullPage: true });
    await page.locator('#routing-view').screenshot({ path: join(work, 'playground-routing.png') });
    console.log(`playground test: screenshots ${shot}, ${join(work, 'playground-routing.png')}`);

    // ---- 4. TopK: neuron activations and steering (keyboard only: Tab/Enter/Space, no mouse)
    await trainRun('topk', 'wasm', 24);
    // a new model clears what the previous one drew
    assert.not.ok(await page.isVisible('#routing-view'), 'the Monet routing is gone after training a new model');
    assert.is(await page.locator('#heatmaps canvas').count(), 0, 'old heatmaps removed');
    assert.is(await page.locator('#token-strip button').count(), 0, 'old token strip removed');
    assert.not.ok(await page.isVisible('#usage-view'), 'old usage summary hidden');
    assert.is((await state()).usage, null);
    await page.getByRole('button', { name: 'Analyse' }).click();
    await page.waitForSelector('#inspect-status:is([data-state="done"], [data-state="error"])', { timeout: 60_000 });
    assert.ok(await page.isVisible('#neuron-view'), 'neuron view shown for a TopK model');
    assert.not.ok(await page.isVisible('#routing-view'), 'no routing view for a TopK model');
    // Layer 0 is the TopK layer: exactly k = 16 neurons are non-zero per token (playground/models.ts).
    assert.match((await page.textContent('#neuron-h')) ?? '', /16 of 256 non-zero/);
    const steerButtons = page.getByRole('button', { name: /^Steer with neuron \d+ of layer 0$/ });
    assert.ok((await steerButtons.count()) > 0, 'active neurons listed with Steer buttons');
    await steerButtons.first().focus();
    await page.keyboard.press('Enter');
    assert.is(await page.evaluate(() => document.activeElement?.id), 'steer-delta', 'Steer moves focus to δ');
    const neuron = await page.inputValue('#steer-neuron');
    await page.getByLabel('Characters', { exact: true }).fill('40');
    await page.getByRole('button', { name: 'Generate' }).press('Enter');
    await page.waitForFunction(() => (Reflect.get(window, 'playground') as PageState).generation !== null, null, {
      timeout: 60_000,
    });
    const gen = (await state()).generation!;
    console.log(
      `playground test: plain ${JSON.stringify(gen.plain)}; neuron ${neuron} pushed ${JSON.stringify(gen.steered)}`,
    );
    assert.is(new TextEncoder().encode(gen.plain).length >= 30, true, 'plain sample generated');
    assert.ok(
      gen.steered !== null && gen.steered !== gen.plain,
      'pushing the neuron changes the text drawn with the same seed',
    );
    const shot2 = join(work, 'playground-topk.png');
    await page.locator('#inspect').screenshot({ path: shot2 });
    console.log(`playground test: screenshot ${shot2}`);

    // ---- 5. a run folder's checkpoint through the file input: the CLI's `tiny` preset (Monet-VD 2 × 16, E = 4)
    const run = join(work, 'run');
    mkdirSync(run);
    const tiny = getPreset('tiny').config;
    const init = initParams(tiny, 5);
    saveModel(run, tiny, 'bytes', init.params, init.state);
    await page.locator('#load-panel summary').click();
    await page.setInputFiles('#ckpt-files', [join(run, 'config.json')]);
    await page.waitForSelector('#ckpt-status[data-state="error"]');
    assert.match(
      (await page.textContent('#ckpt-status')) ?? '',
      /expected two files, config\.json and model\.safetensors/,
    );
    await page.setInputFiles('#ckpt-files', [join(run, 'config.json'), join(run, 'model.safetensors')]);
    await page.waitForSelector('#ckpt-status[data-state="done"]');
    assert.match((await page.textContent('#inspect-model')) ?? '', /model\.safetensors \+ config\.json/);
    assert.not.ok(await page.isVisible('#neuron-view'), 'the TopK neurons are gone after loading a checkpoint');
    assert.is(await page.textContent('#gen-plain'), '', 'old samples cleared');
    // with run.json the page names the run
    writeFileSync(join(run, 'run.json'), JSON.stringify({ options: { name: 'tiny-run' }, step: 7 }));
    await page.setInputFiles('#ckpt-files', [
      join(run, 'config.json'),
      join(run, 'model.safetensors'),
      join(run, 'run.json'),
    ]);
    await page.waitForFunction(() =>
      /run tiny-run \(step 7\)/.test(document.getElementById('inspect-model')!.textContent!),
    );
    await page.getByRole('button', { name: 'Analyse' }).click();
    await page.waitForSelector('#inspect-status:is([data-state="done"], [data-state="error"])', { timeout: 60_000 });
    assert.match(
      (await page.textContent('#inspect-status')) ?? '',
      /16 characters analysed \(the model sees at most 16\)/,
    );
    assert.is(
      await page.locator('#heatmaps canvas').count(),
      2 * (tiny.moe_heads ?? 0),
      'routing heatmaps of the loaded model',
    );
    // the file-input error above was intended
    await page.evaluate(() => {
      (Reflect.get(window, 'playground') as PageState).errors.length = 0;
    });

    assert.equal(outside, [], 'no request outside the page origin');
    assert.equal(pageErrors, [], 'no uncaught page errors');
    assert.equal((await state()).errors, [], 'no error shown on the page');

    // ---- 6. the same site without the isolation headers: one thread, said on the page, and WASM still trains
    const plain = await servePlayground(site, 0, '127.0.0.1', { isolate: false });
    try {
      const p2 = await context.newPage();
      p2.on('pageerror', (e) => pageErrors.push(e.message));
      await p2.goto(plain.url);
      await p2.waitForSelector('body[data-ready="true"]', { timeout: 30_000 });
      assert.not.ok(await p2.evaluate(() => crossOriginIsolated), 'not isolated without the headers');
      const note = (await p2.textContent('#threads-note')) ?? '';
      assert.ok(await p2.isVisible('#threads-note'), 'the one-thread note is visible');
      assert.match(note, /1 thread instead of \d+: .*(SharedArrayBuffer|cross-origin isolated)/);
      await p2.getByLabel('Model', { exact: true }).selectOption('monet-vd');
      await p2.getByLabel('Backend', { exact: true }).selectOption('wasm');
      await p2.getByLabel('Steps', { exact: true }).fill('4');
      await p2.getByRole('button', { name: 'Train', exact: true }).click();
      await p2.waitForSelector('#train-status:is([data-state="done"], [data-state="error"])', { timeout: 60_000 });
      const s2 = await p2.evaluate(() => Reflect.get(window, 'playground') as PageState);
      assert.is(
        await p2.getAttribute('#train-status', 'data-state'),
        'done',
        (await p2.textContent('#train-status')) ?? '',
      );
      assert.match(s2.trainBackend, /^wasm \(.*, 1 thread\)$/);
      assert.is(s2.losses.length, 4);
      assert.equal(pageErrors, [], 'no uncaught page errors without isolation');
      console.log(`playground test: without COOP/COEP: ${note}`);
    } finally {
      await plain.close();
    }
  } finally {
    await context.close();
    await server.close();
    rmSync(join(work, 'profile'), { recursive: true, force: true });
    rmSync(site, { recursive: true, force: true });
  }
});

test.run();
