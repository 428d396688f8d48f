// The playground's MonetLLM section in a real browser (headless Chromium through playwright-core, as
// test/playground.test.ts): the committed tiny folder test/data/hf/monet-vd-tiny is chosen through the folder input
// (nothing uploaded: no request leaves the page's origin), greedy generation from expected.json's prompt ids gives
// the greedy ids PyTorch computed — on WASM (auto passes Chromium's software WebGPU adapter by) and on WebGPU
// (SwiftShader) — and the routing of every token is drawn per router group.
// Chromium missing: skipped with the reason outside CI, a failure under CI=true.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildPlayground, servePlayground } from '../playground/build.ts';
import type { HfState } from '../playground/hf.ts';
import { CHROMIUM, chromiumMissing, IN_CI, requireChromium, testUnless } from './skip.ts';

const FOLDER = resolve('test/data/hf/monet-vd-tiny');
const ARGS = ['--headless', '--no-sandbox', '--enable-unsafe-webgpu', '--disable-gpu-sandbox', '--disable-quic'];

/** window.playground, as playground/main.ts sets it (read inside page.evaluate, in the page). */
interface PageState {
  webgpu: { ok: boolean; fallback?: boolean; why?: string } | null;
  hf: HfState | null;
  errors: string[];
}

const browserTest = testUnless(chromiumMissing());

browserTest(
  'playground: a MonetLLM folder from disk generates PyTorch’s greedy ids and shows its routing',
  async () => {
    requireChromium();
    const { chromium } = await import('playwright-core');
    const expected = JSON.parse(readFileSync(join(FOLDER, 'expected.json'), 'utf8')) as {
      prompt_ids: number[];
      greedy_ids: number[];
    };
    const work = mkdtempSync(join(tmpdir(), 'monet-playground-hf-'));
    const site = join(work, 'site');
    await buildPlayground(site, { quiet: true });
    const server = await servePlayground(site, 0);
    const origin = server.url.replace(/\/$/, '');
    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
    const outside: string[] = [];
    const pageErrors: string[] = [];
    try {
      const page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
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
      const gpu = (await state()).webgpu;
      if (!gpu?.ok && IN_CI) assert.unreachable(`no WebGPU adapter in Chromium: ${gpu?.why}`);

      const run = async (backend: 'auto' | 'webgpu') => {
        await page.selectOption('#hf-backend', backend);
        await page.setInputFiles('#hf-folder', FOLDER);
        await page.waitForSelector('#hf-status:is([data-state="done"], [data-state="error"])', { timeout: 60_000 });
        const loaded = await page.textContent('#hf-status');
        assert.is(await page.getAttribute('#hf-status', 'data-state'), 'done', `loading on ${backend}: ${loaded}`);
        console.log(`playground MonetLLM test: ${loaded}`);
        const s1 = (await state()).hf!;
        assert.is(s1.loaded?.folder, 'monet-vd-tiny');
        assert.is(s1.loaded?.tokenizer, false, 'the tiny folder has no tokenizer.json: prompts are ids');
        await page.fill('#hf-prompt-ids', expected.prompt_ids.join(', '));
        await page.fill('#hf-tokens', String(expected.greedy_ids.length));
        await page.fill('#hf-temperature', '0');
        await page.fill('#hf-rep', '1'); // the page's default 1.1 would change greedy picks (PyTorch's had none)
        await page.getByRole('button', { name: 'Continue the prompt', exact: true }).click();
        await page.waitForFunction(
          () => {
            const pg = Reflect.get(window, 'playground') as PageState;
            return (
              pg.hf?.routing !== null || document.querySelector('#hf-status')?.getAttribute('data-state') === 'error'
            );
          },
          undefined,
          { timeout: 60_000 },
        );
        const s2 = (await state()).hf!;
        assert.ok(s2.generation, `generation on ${backend}: ${await page.textContent('#hf-status')}`);
        assert.equal(s2.generation!.ids, expected.greedy_ids, `greedy ids on ${s2.loaded?.backend}`);
        // routing: 4 layers in router groups of 2, every token of prompt and output, drawn per group
        const T = expected.prompt_ids.length + expected.greedy_ids.length;
        assert.equal({ groups: s2.routing!.groups, tokens: s2.routing!.tokens }, { groups: 2, tokens: T });
        assert.ok(
          s2.routing!.top.every((t) => t !== null),
          'the chosen token has a top composite expert per group',
        );
        assert.is(await page.locator('#hf-strip button').count(), T);
        assert.is(await page.locator('#hf-groups canvas').count(), 4, 'router 1 and 2 maps of both groups');
        // choosing another token lists its experts
        await page.locator('#hf-strip button').first().click();
        assert.is((await state()).hf!.routing!.chosen, 0);
        assert.match((await page.textContent('#hf-groups')) ?? '', /group 1 \(layers 2–3\)[\s\S]*expert \(\d+, \d+\)/);
        return s2.loaded!.backend;
      };
      const auto = await run('auto');
      assert.match(auto, gpu?.ok && !gpu.fallback ? /^webgpu/ : /^wasm/);
      if (gpu?.ok) assert.match(await run('webgpu'), /^webgpu/);
      else console.log(`playground MonetLLM test: WebGPU not checked: ${gpu?.why}`);
      await page.locator('#hf').screenshot({ path: join(work, 'playground-hf.png') });
      console.log(`playground MonetLLM test: screenshot ${join(work, 'playground-hf.png')}`);
      assert.equal(outside, [], 'requests outside the page origin');
      assert.equal(pageErrors, [], 'uncaught page errors');
      assert.equal((await state()).errors, [], 'errors the page showed');
    } finally {
      await browser.close();
      await server.close();
      rmSync(site, { recursive: true, force: true });
    }
  },
);

test.run();
