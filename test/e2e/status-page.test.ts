/**
 * The status page in a real browser (Debian's chromium driven by playwright-core) against a real exporter on a
 * temp ledger, fed known usage as OTLP spans: the figures shown equal the usage API's, sorting and the plan filter
 * work, hostile user ids stay text, and the screenshot in the README (docs/status-page.png) is taken here.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { requireBinary } from '../helpers/binaries.js';
import { startExporter, type RunningExporter } from '../../src/exporter/exporter.js';
import { ATTR_FEATURE, ATTR_PLAN, ATTR_USER_ID, GENAI } from '../../src/contract/names.js';
import { usageToGenAiAttributes, type Usage } from '../../src/usage/index.js';
import { formatInt, formatUsd } from '../../src/demo/format.js';
import type { SummaryResponse, UsageResponse } from '../../src/demo/usage-api.js';

const chromiumPath = requireBinary('chromium', ['/usr/bin/chromium']);
// docs/status-page.png (the README's) is rewritten only on request, so that a test run leaves the checkout clean:
//   UPDATE_SCREENSHOT=1 npx vitest run test/e2e/status-page.test.ts
const README_SCREENSHOT = fileURLToPath(new URL('../../docs/status-page.png', import.meta.url));
const SCREENSHOT = process.env.UPDATE_SCREENSHOT === '1' || !existsSync(README_SCREENSHOT)
  ? README_SCREENSHOT
  : fileURLToPath(new URL('../../test-results/status-page.png', import.meta.url));

interface Call {
  user: string;
  plan: string;
  provider: 'openai' | 'anthropic';
  model: string;
  usage: Usage;
  feature?: string;
}

const u = (input: number, cache_read: number, cache_write: number, output: number, reasoning: number): Usage => ({ input, cache_read, cache_write, output, reasoning });
const HOSTILE_USER = '<img src=x onerror="window.__pwned=1">';

/** Known usage: some users near or over their plan's limits (free: 50,000 tokens / 10 requests; pro: 500,000 / 100). */
function calls(): Call[] {
  const out: Call[] = [];
  const add = (n: number, c: Call) => {
    for (let i = 0; i < n; i++) out.push(c);
  };
  add(12, { user: 'ada', plan: 'free', provider: 'openai', model: 'gpt-4o-mini', usage: u(900, 1200, 0, 300, 0), feature: 'chat' });
  add(3, { user: 'bea', plan: 'free', provider: 'anthropic', model: 'claude-3-5-haiku-20241022', usage: u(4000, 8000, 2048, 900, 0) });
  add(2, { user: 'bea', plan: 'free', provider: 'openai', model: 'gpt-4o-mini', usage: u(1500, 0, 0, 250, 0) });
  add(85, { user: 'cyrus', plan: 'pro', provider: 'openai', model: 'o4-mini', usage: u(1200, 2400, 0, 350, 900), feature: 'summarise' });
  add(4, { user: 'dora', plan: 'pro', provider: 'anthropic', model: 'claude-sonnet-4-20250514', usage: u(60_000, 20_000, 30_000, 4_000, 0) });
  add(20, { user: 'emil', plan: 'team', provider: 'anthropic', model: 'claude-sonnet-4-20250514', usage: u(8_000, 40_000, 0, 2_500, 0) });
  add(6, { user: 'fay', plan: 'team', provider: 'openai', model: 'gpt-4o', usage: u(2_000, 0, 0, 800, 0) });
  return out;
}

function otlpJson(cs: Call[]): unknown {
  const now = BigInt(Date.now()) * 1_000_000n;
  const attr = (key: string, v: string | number) =>
    typeof v === 'number' ? { key, value: { intValue: String(v) } } : { key, value: { stringValue: v } };
  const spans = cs.map((c, i) => {
    const attrs: Record<string, string | number> = {
      [GENAI.operationName]: 'chat',
      [GENAI.providerName]: c.provider,
      [GENAI.requestModel]: c.model,
      [GENAI.responseModel]: c.model,
      [ATTR_USER_ID]: c.user,
      [ATTR_PLAN]: c.plan,
      ...usageToGenAiAttributes(c.usage),
    };
    if (c.feature) attrs[ATTR_FEATURE] = c.feature;
    return {
      traceId: randomBytes(16).toString('hex'),
      spanId: randomBytes(8).toString('hex'),
      name: `chat ${c.model}`,
      kind: 3,
      startTimeUnixNano: String(now - BigInt(cs.length - i) * 1_000_000n),
      endTimeUnixNano: String(now - BigInt(cs.length - i) * 1_000_000n + 500_000n),
      attributes: Object.entries(attrs).map(([k, v]) => attr(k, v)),
      status: { code: 0 },
    };
  });
  return {
    resourceSpans: [
      {
        resource: { attributes: [attr('service.name', 'status-page-test')] },
        scopeSpans: [{ scope: { name: 'status-page-test' }, spans }],
      },
    ],
  };
}

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  return (await res.json()) as T;
}

describe.skipIf(!chromiumPath)('status page (chromium)', () => {
  let dir: string;
  let exporter: RunningExporter;
  let browser: Browser;
  let page: Page;
  let usage: UsageResponse;
  let summary: SummaryResponse;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tokenmeter-status-page-'));
    exporter = await startExporter({ storage: join(dir, 'ledger'), host: '127.0.0.1', otlpPort: 0, httpPort: 0, log: () => {} });
    const res = await fetch(`${exporter.otlpUrl}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(otlpJson(calls())),
    });
    expect(res.status).toBe(200);
    usage = await getJson(`${exporter.httpUrl}/api/v1/usage`);
    summary = await getJson(`${exporter.httpUrl}/api/v1/summary`);
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: chromiumPath,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 1000 }, deviceScaleFactor: 1 });
    await page.goto(`${exporter.httpUrl}/`);
    await page.waitForSelector('body[data-loaded="true"]');
  });

  afterAll(async () => {
    await browser?.close();
    await exporter?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function rows() {
    return page.$$eval('[data-testid=user-row]', (trs) =>
      trs.map((tr) => {
        const q = (id: string) => tr.querySelector(`[data-testid=${id}]`);
        return {
          user: q('user-name')!.textContent,
          plan: q('user-plan')!.textContent,
          tokensText: q('tokens-used')!.textContent,
          tokens: q('tokens-used')!.getAttribute('data-value'),
          tokensLimit: q('tokens-limit')!.textContent,
          requests: q('requests-used')!.getAttribute('data-value'),
          requestsText: q('requests-used')!.textContent,
          cost: q('cost-used')!.getAttribute('data-value'),
          costText: q('cost-used')!.textContent,
          maxRatio: q('user-max-ratio')!.textContent,
          tokensBar: q('tokens-bar')?.getAttribute('aria-valuenow') ?? null,
          requestsLevel: q('requests-used')!.closest('td')!.getAttribute('data-level'),
        };
      }),
    );
  }

  it('saves the README screenshot', async () => {
    mkdirSync(join(SCREENSHOT, '..'), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
  });

  it('shows every user with exactly the usage API figures, highest use first', async () => {
    const shown = await rows();
    expect(usage.users).toHaveLength(6);
    expect(shown.map((r) => r.user)).toEqual(usage.users.map((x) => x.user));
    for (const [i, api] of usage.users.entries()) {
      const r = shown[i];
      expect(r.plan).toBe(api.plan);
      expect(r.tokens).toBe(String(api.tokens.total));
      expect(r.tokensText).toBe(formatInt(api.tokens.total));
      expect(r.tokensLimit).toBe(api.limits.tokens === null ? ' · no limit' : ` / ${formatInt(api.limits.tokens)}`);
      expect(r.requests).toBe(String(api.requests));
      expect(r.requestsText).toBe(formatInt(api.requests));
      expect(r.cost).toBe(api.cost_usd);
      expect(r.costText).toBe(formatUsd(api.cost_usd));
      expect(r.maxRatio).toBe(api.max_ratio === null ? '—' : `${Math.round(api.max_ratio * 100)}%`);
      if (api.ratios.tokens !== null) expect(r.tokensBar).toBe(String(Math.round(api.ratios.tokens * 100)));
    }
    // ada made 12 requests on the free plan (limit 10): over, in red.
    const ada = shown.find((r) => r.user === 'ada')!;
    expect(ada.requests).toBe('12');
    expect(ada.requestsLevel).toBe('over');
    expect(shown.find((r) => r.user === 'cyrus')!.requestsLevel).toBe('near');
  });

  it('shows totals, spend by model and by provider as the summary API reports them', async () => {
    expect(await page.textContent('[data-testid=total-cost]')).toBe(formatUsd(summary.totals.cost_usd));
    expect(await page.textContent('[data-testid=total-tokens]')).toBe(formatInt(summary.totals.tokens.total));
    expect(await page.textContent('[data-testid=total-requests]')).toBe(formatInt(summary.totals.requests));
    const models = await page.$$eval('[data-testid=model-row]', (trs) =>
      trs.map((tr) => ({
        key: `${tr.getAttribute('data-provider')}/${tr.getAttribute('data-model')}`,
        cost: tr.querySelector('[data-testid=model-cost]')!.getAttribute('data-value'),
        requests: tr.querySelector('[data-testid=model-requests]')!.textContent,
        input: tr.querySelector('[data-testid=model-input]')!.textContent,
        cacheRead: tr.querySelector('[data-testid=model-cache_read]')!.textContent,
        reasoning: tr.querySelector('[data-testid=model-reasoning]')!.textContent,
      })),
    );
    expect(models).toHaveLength(summary.by_model.length);
    for (const m of summary.by_model) {
      const r = models.find((x) => x.key === `${m.provider}/${m.model}`)!;
      expect(r.cost).toBe(m.cost_usd);
      expect(r.requests).toBe(formatInt(m.requests));
      expect(r.input).toBe(formatInt(m.tokens.input));
      expect(r.cacheRead).toBe(formatInt(m.tokens.cache_read));
      expect(r.reasoning).toBe(formatInt(m.tokens.reasoning));
    }
    const providers = await page.$$eval('[data-testid=provider-row]', (trs) => trs.map((tr) => tr.getAttribute('data-provider')));
    expect(providers.sort()).toEqual(summary.by_provider.map((p) => p.provider).sort());
    expect(await page.textContent('[data-testid=time-left]')).toMatch(/^\d+(d \d+h|h \d+m|m \d+s)$/);
  });

  it('keeps a hostile user id as text', async () => {
    const res = await fetch(`${exporter.otlpUrl}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(otlpJson([{ user: HOSTILE_USER, plan: 'free', provider: 'openai', model: 'gpt-4o-mini', usage: u(10, 0, 0, 5, 0) }])),
    });
    expect(res.status).toBe(200);
    await page.reload();
    await page.waitForSelector('body[data-loaded="true"]');
    expect((await rows()).some((r) => r.user === HOSTILE_USER)).toBe(true);
    expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
    expect(await page.$('[data-testid=users-body] img')).toBeNull();
  });

  it('sorts by a column header, both ways, and announces the order', async () => {
    await page.click('[data-testid=sort-user]');
    const asc = (await rows()).map((r) => r.user!);
    expect(asc).toEqual([...asc].sort((a, b) => a.localeCompare(b)));
    expect(await page.getAttribute('th[data-sort=user]', 'aria-sort')).toBe('ascending');
    await page.click('[data-testid=sort-user]');
    expect((await rows()).map((r) => r.user)).toEqual([...asc].reverse());
    expect(await page.getAttribute('th[data-sort=user]', 'aria-sort')).toBe('descending');

    await page.click('[data-testid=sort-tokens]');
    const tokens = (await rows()).map((r) => Number(r.tokens));
    expect(tokens).toEqual([...tokens].sort((a, b) => b - a));
    expect(await page.getAttribute('th[data-sort=user]', 'aria-sort')).toBe('none');
  });

  it('filters by plan', async () => {
    const options = await page.$$eval('[data-testid=plan-filter] option', (os) => os.map((o) => (o as HTMLOptionElement).value));
    expect(options).toEqual(['', 'free', 'pro', 'team']);
    await page.selectOption('[data-testid=plan-filter]', 'free');
    const free = await rows();
    expect(free.map((r) => r.user).sort()).toEqual([...usage.users.filter((x) => x.plan === 'free').map((x) => x.user), HOSTILE_USER].sort());
    await page.selectOption('[data-testid=plan-filter]', 'team');
    expect((await rows()).every((r) => r.plan === 'team')).toBe(true);
    await page.selectOption('[data-testid=plan-filter]', '');
    expect(await rows()).toHaveLength(usage.users.length + 1); // + the hostile user
  });

  it('refreshes itself from the API', async () => {
    // One more call for fay; the page picks it up on its next refresh (every 5 s) without a reload.
    const res = await fetch(`${exporter.otlpUrl}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(otlpJson([{ user: 'fay', plan: 'team', provider: 'openai', model: 'gpt-4o', usage: u(100, 0, 0, 10, 0) }])),
    });
    expect(res.status).toBe(200);
    await page.waitForFunction(() => document.querySelector('[data-user="fay"] [data-testid=requests-used]')?.getAttribute('data-value') === '7', null, {
      timeout: 15_000,
    });
  });

  it('shows the calls refused by admission control under a user\'s requests', async () => {
    // ada is over her request limit: two calls refused before they were sent.
    for (let i = 0; i < 2; i++) {
      const r = await fetch(`${exporter.httpUrl}/api/v1/reservations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ user: 'ada', provider: 'openai', model: 'gpt-4o', input_tokens: 10, max_output_tokens: 10 }),
      });
      const answer = await r.json();
      expect(answer, JSON.stringify(answer)).toMatchObject({ granted: false, limit: 'requests' });
    }
    await page.waitForFunction(() => document.querySelector('[data-user="ada"] [data-testid=user-refused]')?.textContent === ' · 2 refused', null, {
      timeout: 15_000,
    });
    expect(await page.$$('[data-testid=user-refused]')).toHaveLength(1);
  });

  it('shows bidi and control characters in ids escaped, and long ids cut with the whole id in the title', async () => {
    const spoof = 'adm\u202Enimda'; // displays as "admadmin" reversed: a spoofed id
    const long = `${'x'.repeat(60)}-tail`;
    const res = await fetch(`${exporter.otlpUrl}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(
        otlpJson([
          { user: spoof, plan: 'free', provider: 'openai', model: 'gpt-4o-mini', usage: u(10, 0, 0, 5, 0) },
          { user: `zw\u200Bsp\u2066`, plan: 'free', provider: 'openai', model: 'gpt-4o-mini', usage: u(10, 0, 0, 5, 0) },
          { user: long, plan: 'free', provider: 'openai', model: 'gpt-4o-mini', usage: u(10, 0, 0, 5, 0) },
        ]),
      ),
    });
    expect(res.status).toBe(200);
    await page.reload();
    await page.waitForSelector('body[data-loaded="true"]');
    const cell = (user: string) =>
      page.$eval(`[data-testid=user-row][data-user="${user}"] [data-testid=user-name]`, (th) => ({ text: th.textContent, title: th.getAttribute('title') }));
    expect(await cell(spoof)).toEqual({ text: 'adm\\u{202E}nimda', title: null });
    expect(await cell('zw\u200Bsp\u2066')).toEqual({ text: 'zw\\u{200B}sp\\u{2066}', title: null });
    expect(await cell(long)).toEqual({ text: `${'x'.repeat(39)}…`, title: long });
    // The table stays within the page: the long id does not push the columns off screen.
    const width = await page.evaluate(() => document.querySelector('[data-testid=users-body]')!.closest('table')!.getBoundingClientRect().right);
    expect(width).toBeLessThanOrEqual(1280);
  });
});

describe.skipIf(!chromiumPath)('status page with an API token (chromium)', () => {
  const API_TOKEN = 'status-page-secret-token';
  let dir: string;
  let exporter: RunningExporter;
  let browser: Browser;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tokenmeter-status-page-token-'));
    exporter = await startExporter({
      config: { auth: { api_token: API_TOKEN } },
      storage: join(dir, 'ledger'),
      host: '127.0.0.1',
      otlpPort: 0,
      httpPort: 0,
      log: () => {},
    });
    const res = await fetch(`${exporter.otlpUrl}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(otlpJson(calls().slice(0, 3))),
    });
    expect(res.status).toBe(200);
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: chromiumPath,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
  });

  afterAll(async () => {
    await browser?.close();
    await exporter?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('says how to give the token when the API answers 401', async () => {
    const page = await browser.newPage();
    await page.goto(`${exporter.httpUrl}/`);
    await page.waitForFunction(() => document.querySelector('[data-testid=status]')?.textContent?.includes('#token='));
    expect(await page.$$('[data-testid=user-row]')).toHaveLength(0);
    await page.close();
  });

  it('sends the token from the URL fragment, then drops it from the address bar', async () => {
    const page = await browser.newPage();
    await page.goto(`${exporter.httpUrl}/#token=${API_TOKEN}`);
    await page.waitForSelector('body[data-loaded="true"]');
    expect(await page.$$eval('[data-testid=user-row]', (trs) => trs.map((tr) => tr.getAttribute('data-user')))).toEqual(['ada']);
    expect(new URL(page.url()).hash).toBe('');
    // A reload in the same tab keeps working from sessionStorage.
    await page.reload();
    await page.waitForSelector('body[data-loaded="true"]');
    await page.close();
  });
});
