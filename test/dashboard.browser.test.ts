// The dashboard in a real headless Chromium (Debian's, driven by playwright-core), against the
// real controller process (the production bundle, as `npm start` runs it) with simulated
// hosts: each a real executor process over in-memory drivers. Each test saves a screenshot
// under test/output/dashboard/.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Browser, type BrowserContext, type ConsoleMessage, type Page, chromium } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { REPO_ROOT, api, startController, type ControllerProcess } from './support/controller-process.ts';
import { CHROMIUM_PATH, missing } from './support/requirements.ts';

// page.evaluate() callbacks run in the page; this file is checked without the DOM library.
declare const document: any;
declare const window: any;
declare const sessionStorage: any;
declare const navigator: any;

const ADMIN_TOKEN = 'cda_dashboard-test-token-0123456789';
const OUTPUT_DIR = path.join(REPO_ROOT, 'test', 'output', 'dashboard');
/** The controller's default heartbeat: a host whose executor is gone must be offline within it. */
const HEARTBEAT_INTERVAL_MS = 10_000;
/** How long a live change may take to show: the stream's 200 ms gathering plus rendering. */
const LIVE_MS = 5_000;

/** A host's row in the host table, read as text. */
async function rowText(page: Page, host: string): Promise<string> {
  return (await page.locator(`tr[data-host="${host}"]`).innerText()).replace(/\s+/g, ' ');
}

/** What the graph library holds: each node's label and classes, and each edge's. */
async function graph(page: Page): Promise<{ nodes: Array<{ id: string; label: string; classes: string }>; edges: Array<{ id: string; classes: string }> }> {
  return page.evaluate(() => {
    const cy = (document.querySelector('.graph') as any)._cyreg.cy;
    return {
      nodes: cy.nodes().map((n: any) => ({ id: n.id(), label: n.data('label'), classes: n.classes().join(' ') })),
      edges: cy.edges().map((e: any) => ({ id: e.id(), classes: e.classes().join(' ') })),
    };
  });
}

/** Clicks a host's node on the canvas, where the graph drew it. */
async function clickNode(page: Page, host: string): Promise<void> {
  const point = await page.evaluate((id) => {
    const box = document.querySelector('.graph')!.getBoundingClientRect();
    const node = (document.querySelector('.graph') as any)._cyreg.cy.getElementById(id);
    const p = node.renderedPosition();
    return { x: box.left + p.x, y: box.top + p.y };
  }, `host:${host}`);
  await page.mouse.click(point.x, point.y);
}

// A browser on 2 shared cores: one page load and a few live updates can take most of the default 30 s.
describe.skipIf(missing('chromium'))('dashboard in headless Chromium (needs chromium)', { timeout: 90_000 }, () => {
  let dir: string;
  let controller: ControllerProcess;
  let call: ReturnType<typeof api>;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const executors = new Map<string, ChildProcess>();
  let problems: string[] = [];

  function startExecutor(host: string, token: string): void {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/sim-executor-process.ts', controller.url, token], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    child.once('exit', (code, signal) => {
      if (signal !== 'SIGKILL') console.warn(`executor of ${host} exited (${code ?? signal}): ${output}`);
    });
    executors.set(host, child);
  }

  async function waitOnline(host: string): Promise<void> {
    await vi.waitFor(async () => expect((await call('GET', `/v1/hosts/${host}`)).body.status).toBe('online'), { timeout: 60_000, interval: 100 });
  }

  async function signIn(p: Page): Promise<void> {
    await p.goto(`${controller.url}/ui#token=${ADMIN_TOKEN}`);
    await expect.poll(() => p.locator('.connection').innerText(), { timeout: LIVE_MS }).toBe('live');
  }

  beforeAll(async () => {
    // The suite runs what `npm start` runs: the bundles, with the dashboard built from the sources now.
    execFileSync(process.execPath, ['scripts/build.mjs'], { cwd: REPO_ROOT, stdio: 'inherit' });
    mkdirSync(OUTPUT_DIR, { recursive: true });
    dir = mkdtempSync(path.join(tmpdir(), 'crossdock-dashboard-'));
    controller = await startController({ dbFile: path.join(dir, 'crossdock.db'), adminToken: ADMIN_TOKEN, bundle: true });
    await vi.waitFor(() => expect(controller.output()).toContain(`dashboard: ${controller.url}/ui\n`));
    call = api(controller.url, ADMIN_TOKEN);
    for (const [i, name] of ['h1', 'h2', 'h3'].entries()) {
      const { status, body } = await call('POST', '/v1/hosts', { name, address: `198.51.100.${11 + i}` });
      expect(status).toBe(201);
      // h3 never connects: it stays pending.
      if (name !== 'h3') startExecutor(name, body.token);
    }
    await Promise.all([waitOnline('h1'), waitOnline('h2')]);
    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: ['--no-sandbox'] });
  });

  afterAll(async () => {
    await browser?.close();
    for (const child of executors.values()) child.kill('SIGKILL');
    await controller?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(async () => {
    problems = [];
    // The controller serves HTTPS with this test run's own CA, which Chromium's store does not
    // hold (Node's processes trust it through NODE_EXTRA_CA_CERTS); the pages are what is tested here.
    context = await browser.newContext({ viewport: { width: 1280, height: 900 }, ignoreHTTPSErrors: true });
    page = await context.newPage();
    page.on('console', (message: ConsoleMessage) => {
      if (message.type() === 'error' || message.type() === 'warning') problems.push(`${message.type()}: ${message.text()}`);
    });
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  });

  afterEach(async (test) => {
    const name = test.task.name.replace(/[^a-z0-9]+/gi, '-').toLowerCase();
    await page.screenshot({ path: path.join(OUTPUT_DIR, `${name}.png`), fullPage: true }).catch(() => {});
    await context.close();
    expect(problems, 'the browser console stays clean').toEqual([]);
  });

  it('refuses a wrong token, saying so, and signs in with the right one', async () => {
    await page.goto(`${controller.url}/ui`);
    await page.getByLabel('Admin token').fill('cda_not-the-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.locator('#login-error').innerText()).toMatch(/^Wrong token: the controller refused it/);
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    // The 401 is the check the page makes; it is not a page error.
    problems = problems.filter((p) => !p.includes('401'));

    await page.getByLabel('Admin token').fill(ADMIN_TOKEN);
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('.connection').innerText(), { timeout: LIVE_MS }).toBe('live');
    expect(await page.evaluate(() => sessionStorage.getItem('crossdock.adminToken'))).toBe(ADMIN_TOKEN);
    expect(await context.cookies()).toEqual([]);

    // A link with the token in its fragment signs in, and the token leaves the address bar at once.
    const second = await context.newPage();
    await signIn(second);
    expect(second.url()).toBe(`${controller.url}/ui`);
    await second.close();
  });

  it('shows every host with its status, as text and on the graph', async () => {
    await signIn(page);
    await expect.poll(() => rowText(page, 'h3')).toContain('pending');
    expect(await rowText(page, 'h1')).toMatch(/^h1 online 198\.51\.100\.11 10\.100\.0\.0\/24 applied/);
    expect(await rowText(page, 'h2')).toMatch(/^h2 online 198\.51\.100\.12 10\.100\.1\.0\/24 applied/);
    expect(await rowText(page, 'h3')).toMatch(/^h3 pending 198\.51\.100\.13 10\.100\.2\.0\/24 pending/);
    expect(await page.locator('.host-table [role=status]').innerText()).toBe('3 hosts: 2 online, 0 offline, 1 pending');

    const g = await graph(page);
    expect(g.nodes.map((n) => [n.id, n.classes]).sort()).toEqual([
      ['host:h1', 'host online'],
      ['host:h2', 'host online'],
      ['host:h3', 'host pending'],
    ]);
    expect(g.nodes.find((n) => n.id === 'host:h1')!.label).toBe('h1 · online\n198.51.100.11\n10.100.0.0/24');
    // h1-h2 both applied; every pair with h3 waits for it.
    expect(Object.fromEntries(g.edges.map((e) => [e.id, e.classes]))).toEqual({ 'pair:h1|h2': 'applied', 'pair:h1|h3': 'pending', 'pair:h2|h3': 'pending' });
    expect(await page.locator('.graph').getAttribute('aria-label')).toContain('3 hosts: 2 online, 0 offline, 1 pending');

    // Clicking a host on the picture opens its detail, with the plan and its jobs.
    await clickNode(page, 'h1');
    const detail = page.locator('section.detail');
    await expect.poll(() => detail.locator('#detail-title').innerText()).toBe('h1 online');
    await expect.poll(() => detail.locator('pre.plan').innerText(), { timeout: LIVE_MS }).toBe('# nothing to do: the host has what it should');
    expect(await detail.locator('.facts').innerText()).toMatch(/Generation\s+desired (\d+), applied \1/);
    await expect.poll(() => detail.locator('li.job').count()).toBeGreaterThan(0);
    await detail.locator('li.job summary').first().click();
    await expect.poll(() => detail.locator('li.job ol.results li').count()).toBeGreaterThan(0);
    expect(await detail.locator('li.job ol.results li .result-meta').first().innerText()).toMatch(/^ok · \d+ ms$/);
  });

  it('is usable from the keyboard and at phone width', async () => {
    await signIn(page);
    await page.locator('tr[data-host="h2"] button').focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => page.evaluate(() => document.activeElement?.id)).toBe('detail-title');
    await page.keyboard.press('Escape');
    await expect.poll(() => page.locator('section.detail').isHidden()).toBe(true);
    expect(await page.evaluate(() => document.activeElement?.closest('tr')?.dataset.host)).toBe('h2');

    await page.setViewportSize({ width: 390, height: 844 });
    await expect.poll(() => page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    expect(await rowText(page, 'h1')).toContain('online');
  });

  it('turns a host offline, without a reload, when its executor dies', async () => {
    await signIn(page);
    await page.evaluate(() => ((window as any).notReloaded = true));
    await expect.poll(() => rowText(page, 'h2')).toContain('online');
    const killedAt = Date.now();
    executors.get('h2')!.kill('SIGKILL');
    await expect.poll(() => rowText(page, 'h2'), { timeout: HEARTBEAT_INTERVAL_MS, interval: 50 }).toContain('offline');
    console.log(`h2 shown offline ${Date.now() - killedAt} ms after its executor was killed`);
    expect((await graph(page)).nodes.find((n) => n.id === 'host:h2')!.classes).toBe('host offline');
    expect(await page.evaluate(() => (window as any).notReloaded)).toBe(true);
  });

  it('registers a host and shows its token once, with a command line that works', async () => {
    await signIn(page);
    await context.grantPermissions(['clipboard-read', 'clipboard-write']);
    await page.getByRole('button', { name: 'Register host' }).click();
    const dialog = page.locator('dialog[open]');
    await dialog.getByLabel('Name').fill('h4');
    await dialog.getByLabel('Address').fill('198.51.100.14');
    await dialog.getByRole('button', { name: 'Register' }).click();
    const command = await dialog.getByRole('textbox', { name: 'executor command line for h4' }).inputValue();
    // The controller's join line (POST /v1/hosts answers with it), shown as it is.
    expect(command).toMatch(
      new RegExp(
        `^node crossdock-executor\\.mjs install --controller ${controller.url} --token cdh_[A-Za-z0-9_-]{43} --ca-fingerprint ${controller.caFingerprint}$`,
      ),
    );
    const token = command.split(' ').at(-3)!;
    await dialog.getByRole('button', { name: 'Copy command' }).click();
    await expect.poll(() => dialog.locator('.copy-status').innerText()).toBe('Copied.');
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(command);
    await page.screenshot({ path: path.join(OUTPUT_DIR, 'register-token-shown.png') });

    // The token starts the host's executor: h4 comes online on the page.
    startExecutor('h4', token);
    await expect.poll(() => rowText(page, 'h4'), { timeout: 20_000 }).toMatch(/^h4 online 198\.51\.100\.14 10\.100\.3\.0\/24/);

    await dialog.getByRole('button', { name: 'Done' }).click();
    await expect.poll(() => page.locator('dialog').count()).toBe(0);
    await page.locator('tr[data-host="h4"] button').click();
    await expect.poll(() => page.locator('#detail-title').innerText()).toBe('h4 online');
    expect(await page.content()).not.toContain(token);
  });

  it('allocates a subnet and shows it on the topology', async () => {
    await signIn(page);
    await clickNode(page, 'h1');
    const detail = page.locator('section.detail');
    await detail.getByLabel('Docker network').fill('backend');
    await detail.getByRole('button', { name: 'Allocate subnet' }).click();
    const { body } = await call('GET', '/v1/subnets?host=h1');
    const added = body.items.find((s: any) => s.network === 'backend');
    expect(added).toBeDefined();
    await expect
      .poll(async () => (await graph(page)).nodes.find((n) => n.id === 'host:h1')!.label)
      .toBe(`h1 · online\n198.51.100.11\n10.100.0.0/24\n${added.cidr}`);
    await expect.poll(() => rowText(page, 'h1')).toContain(added.cidr);
    expect(await detail.locator(`li[data-subnet="${added.cidr}"]`).innerText()).toContain('network backend');
    await expect.poll(() => page.locator('tr[data-pool="default"] .bar-text').innerText()).toContain('5 of 256 allocated');
  });

  it("shows the API's message next to the field when an allocation is refused", async () => {
    await signIn(page);
    await page.locator('tr[data-host="h1"] button').click();
    const detail = page.locator('section.detail');
    const before = (await call('GET', '/v1/subnets')).body.items.length;
    // h2 holds 10.100.1.0/24.
    await detail.getByLabel('CIDR').fill('10.100.1.0/24');
    await detail.getByLabel('Docker network').fill('frontend');
    await detail.getByRole('button', { name: 'Allocate subnet' }).click();
    const error = detail.locator('[data-field-error="cidr"]');
    await expect.poll(() => error.isVisible()).toBe(true);
    // The same request, straight to the API: the page shows its words.
    const refused = await call('POST', '/v1/subnets', { host: 'h1', pool: 'default', cidr: '10.100.1.0/24', network: 'frontend' });
    expect(refused.body.error.code).toBe('SUBNET_OVERLAP');
    expect(await error.innerText()).toBe(`${refused.body.error.message} (${refused.body.error.code})`);
    expect(await detail.getByLabel('CIDR').getAttribute('aria-invalid')).toBe('true');
    expect((await call('GET', '/v1/subnets')).body.items.length).toBe(before);
    // The refused request is logged by the browser as a failed resource (409): expected here.
    problems = problems.filter((p) => !p.includes('409'));
  });

  it('deletes a host after a confirmation that names what goes with it', async () => {
    const notFound: string[] = [];
    page.on('response', (response) => {
      if (response.status() === 404) notFound.push(new URL(response.url()).pathname);
    });
    await signIn(page);
    await page.locator('tr[data-host="h3"] button').click();
    await page.locator('section.detail').getByRole('button', { name: 'Delete host' }).click();
    const dialog = page.locator('dialog[open]');
    const text = (await dialog.innerText()).replace(/\s+/g, ' ');
    expect(text).toContain('This deletes h3 (198.51.100.13)');
    expect(text).toContain('releases its subnet 10.100.2.0/24');
    expect(text).toContain('from the 3 other hosts');
    await dialog.getByRole('button', { name: 'Delete h3' }).click();
    await expect.poll(() => page.locator('tr[data-host="h3"]').count()).toBe(0);
    expect((await graph(page)).nodes.map((n) => n.id)).not.toContain('host:h3');
    expect(await page.locator('section.detail').isHidden()).toBe(true);
    expect((await call('GET', '/v1/hosts/h3')).status).toBe(404);
    // A refresh of h3's open detail (its plan, its jobs) in flight as it was deleted answers 404,
    // and the browser logs each as a failed resource: only those, and only for h3, are expected.
    expect(
      notFound.every((p) => p.startsWith('/v1/hosts/h3') || p.startsWith('/v1/jobs')),
      notFound.join(', '),
    ).toBe(true);
    let expected404s = notFound.length;
    problems = problems.filter((p) => !(p.includes('status of 404') && expected404s-- > 0));
  });
});
