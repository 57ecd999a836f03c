/**
 * The status page in a real browser (Debian's chromium, playwright-core) against a real exporter on a temp embedded
 * ledger, at 5,000+ users and with a model that has no price: the USERS tile shows the API's total ("top 1,000 of
 * 5,005"), unpriced usage shows as unpriced (tokens and a mark, never $0) in the page and in the usage API, and the
 * alerts panel lists what the alert rules would fire.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startExporter, type RunningExporter } from '../../src/exporter/exporter.js';
import { ATTR_PLAN, ATTR_USER_ID, GENAI } from '../../src/contract/names.js';
import { requireBinary } from '../helpers/binaries.js';

const chromiumPath = requireBinary('chromium', ['/usr/bin/chromium']);
const USERS = 5000;
const UNPRICED_MODEL = 'my-private-model';

interface Call {
  user: string;
  plan?: string;
  model: string;
  input: number;
  output: number;
}

function otlpBody(calls: Call[]): string {
  const now = BigInt(Date.now()) * 1_000_000n;
  const attr = (key: string, v: string | number) => (typeof v === 'number' ? { key, value: { intValue: String(v) } } : { key, value: { stringValue: v } });
  return JSON.stringify({
    resourceSpans: [
      {
        resource: { attributes: [attr('service.name', 'status-page-scale-test')] },
        scopeSpans: [
          {
            scope: { name: 'test' },
            spans: calls.map((c) => ({
              traceId: randomBytes(16).toString('hex'),
              spanId: randomBytes(8).toString('hex'),
              name: `chat ${c.model}`,
              kind: 3,
              startTimeUnixNano: String(now - 1_000_000n),
              endTimeUnixNano: String(now),
              attributes: [
                attr(GENAI.operationName, 'chat'),
                attr(GENAI.providerName, 'openai'),
                attr(GENAI.requestModel, c.model),
                attr(GENAI.responseModel, c.model),
                attr(GENAI.inputTokens, c.input),
                attr(GENAI.outputTokens, c.output),
                attr(ATTR_USER_ID, c.user),
                attr(ATTR_PLAN, c.plan ?? 'free'),
              ],
              status: { code: 0 },
            })),
          },
        ],
      },
    ],
  });
}

/** 5,000 free-plan users (limit 10 requests): 10 over it (11 calls), 20 near it (9 calls), the rest 1 call; plus
 * ursula, whose 3 calls are all to a model with no price, mia, with one priced and one unpriced call, and three
 * team-plan users. */
function calls(): Call[] {
  const out: Call[] = [];
  for (let i = 0; i < USERS; i++) {
    const n = i < 10 ? 11 : i < 30 ? 9 : 1;
    for (let k = 0; k < n; k++) out.push({ user: `user-${String(i).padStart(4, '0')}`, model: 'gpt-4o', input: 1000, output: 100 });
  }
  for (let k = 0; k < 3; k++) out.push({ user: 'ursula', model: UNPRICED_MODEL, input: 700, output: 300 });
  out.push({ user: 'mia', model: 'gpt-4o', input: 1000, output: 100 }, { user: 'mia', model: UNPRICED_MODEL, input: 50, output: 5 });
  // Three team-plan users far from their limits: none of them is in the top 1,000.
  for (const user of ['tara', 'theo', 'tim']) out.push({ user, plan: 'team', model: 'gpt-4o', input: 1000, output: 100 });
  return out;
}

describe.skipIf(!chromiumPath)('status page at 5,000 users and with an unpriced model (chromium)', () => {
  let dir: string;
  let exporter: RunningExporter;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tokenmeter-status-page-scale-'));
    exporter = await startExporter({ storage: join(dir, 'ledger'), host: '127.0.0.1', otlpPort: 0, httpPort: 0, log: () => {} });
    const all = calls();
    for (let i = 0; i < all.length; i += 1000) {
      const res = await fetch(`${exporter.otlpUrl}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: otlpBody(all.slice(i, i + 1000)) });
      expect(res.status).toBe(200);
    }
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: chromiumPath,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    await page.goto(`${exporter.httpUrl}/`);
    await page.waitForSelector('body[data-loaded="true"]', { timeout: 30_000 });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await exporter?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the USERS tile shows the API total, and says the list is the top 1,000 of it', async () => {
    const api = (await (await fetch(`${exporter.httpUrl}/api/v1/usage`)).json()) as { total: number; users: unknown[] };
    expect(api.total).toBe(USERS + 5);
    expect(api.users).toHaveLength(1000);
    expect(await page.textContent('[data-testid=total-users]')).toBe('5,005');
    expect(await page.textContent('[data-testid=total-users-note]')).toBe('top 1,000 of 5,005 listed');
    expect(await page.isVisible('[data-testid=total-users-note]')).toBe(true);
    expect(await page.textContent('[data-testid=users-truncated]')).toContain('Showing the top 1,000 of 5,005 users');
    expect(await page.$$('[data-testid=user-row]')).toHaveLength(1000);
  });

  it('the plan filter offers every plan and lists that plan\'s users from the API, not from the top 1,000', async () => {
    const options = await page.$$eval('[data-testid=plan-filter] option', (os) => os.map((o) => (o as HTMLOptionElement).value));
    expect(options).toEqual(['', 'free', 'team']);
    await page.selectOption('[data-testid=plan-filter]', 'team');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=user-row]').length === 3);
    expect(await page.$$eval('[data-testid=user-row]', (trs) => trs.map((tr) => tr.getAttribute('data-user')).sort())).toEqual(['tara', 'theo', 'tim']);
    expect(await page.isVisible('[data-testid=users-truncated]')).toBe(false);
    // It stays so across the page's own refresh (every 5 s).
    const before = await page.textContent('[data-testid=status]');
    await page.waitForFunction((b) => document.querySelector('[data-testid=status]')?.textContent !== b, before, { timeout: 15_000 });
    expect(await page.$$('[data-testid=user-row]')).toHaveLength(3);
    await page.selectOption('[data-testid=plan-filter]', 'free');
    await page.waitForFunction(() => document.querySelector('[data-testid=users-truncated]')?.textContent?.includes('of 5,002 users on plan free'));
    expect(await page.$$('[data-testid=user-row]')).toHaveLength(1000);
    await page.selectOption('[data-testid=plan-filter]', '');
    expect(await page.$$('[data-testid=user-row]')).toHaveLength(1000);
  });

  it('shows unpriced usage as unpriced with its tokens, never $0, and the API says so explicitly', async () => {
    const cell = (user: string) =>
      page.$eval(`[data-testid=user-row][data-user="${user}"]`, (tr) => {
        const cost = tr.querySelector('[data-testid=cost-used]')!;
        return {
          cost: cost.textContent,
          unpriced: cost.getAttribute('data-unpriced'),
          marked: cost.classList.contains('unpriced'),
          title: cost.getAttribute('title'),
          tokens: tr.querySelector('[data-testid=tokens-used]')!.textContent,
        };
      });
    expect(await cell('ursula')).toEqual({ cost: 'unpriced', unpriced: '3', marked: true, title: expect.stringContaining('cost unknown (not $0)'), tokens: '3,000' });
    expect(await cell('mia')).toMatchObject({ cost: '$0.0035 + unpriced', unpriced: '1', marked: true, tokens: '1,155' });
    expect(await cell('user-0000')).toMatchObject({ cost: '$0.0385', unpriced: null, marked: false });

    const model = await page.$eval(`[data-testid=model-row][data-model="${UNPRICED_MODEL}"]`, (tr) => ({
      cost: tr.querySelector('[data-testid=model-cost]')!.textContent,
      requests: tr.querySelector('[data-testid=model-requests]')!.textContent,
      input: tr.querySelector('[data-testid=model-input]')!.textContent,
    }));
    expect(model).toEqual({ cost: 'unpriced', requests: '4', input: '2,150' });
    expect(await page.textContent('[data-testid=total-cost-note]')).toBe('+ 4 unpriced requests (cost unknown)');
    expect(await page.textContent('[data-testid=providers-body] [data-testid=provider-cost]')).toMatch(/^\$[\d,.]+ \+ unpriced$/);
    expect(await page.textContent('body')).not.toContain('$0.0000');

    const ursula = (await (await fetch(`${exporter.httpUrl}/api/v1/usage/ursula`)).json()) as Record<string, unknown>;
    expect(ursula).toMatchObject({ cost_usd: null, unpriced_requests: 3, requests: 3, tokens: { total: 3000 } });
    const summary = await (await fetch(`${exporter.httpUrl}/api/v1/summary`)).text();
    expect(JSON.parse(summary).totals.unpriced_requests).toBe(4);
    expect(summary).toContain(`"model":"${UNPRICED_MODEL}"`);
    expect(summary).not.toContain('"cost_usd":"0"');
  });

  it('has an alerts panel: the unpriced model and every user over or near a limit, most severe first', async () => {
    const alerts = await page.$$eval('[data-testid=alert]', (lis) => lis.map((li) => ({ name: li.getAttribute('data-alert'), user: li.getAttribute('data-user'), text: li.textContent })));
    expect(alerts[0]).toMatchObject({ name: 'TokenmeterUnpricedModel' });
    expect(alerts[0]!.text).toContain(`openai/${UNPRICED_MODEL} has no price: 4 requests, 3,055 tokens this period, cost unknown`);
    const over = alerts.filter((a) => a.name === 'TokenmeterUserOverRequestLimit').map((a) => a.user);
    expect(over.sort()).toEqual(Array.from({ length: 10 }, (_, i) => `user-${String(i).padStart(4, '0')}`));
    expect(alerts.find((a) => a.user === 'user-0000')!.text).toContain('user-0000 (free): requests at 110% of the limit');
    const near = alerts.filter((a) => a.name === 'TokenmeterUserNearRequestLimit');
    expect(near).toHaveLength(20);
    // Warnings before infos.
    expect(alerts.findIndex((a) => a.name === 'TokenmeterUserNearRequestLimit')).toBeGreaterThan(alerts.findIndex((a) => a.name === 'TokenmeterUserOverRequestLimit'));
    expect(await page.textContent('[data-testid=alerts-count]')).toBe('(31)');
    expect(await page.isVisible('[data-testid=alerts-empty]')).toBe(false);
  });
});
