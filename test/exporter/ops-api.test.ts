import { mkdtempSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Decimal } from 'decimal.js';
import { afterEach, describe, expect, it } from 'vitest';
import { StaticFiles } from '../../src/exporter/static-files.js';
import { FakeClock, SimplePlans } from './fakes.js';
import { getJson, httpRequest, otlpJson, postOtlp, startTestExporter, type TestExporter } from './harness.js';

const running: TestExporter[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((e) => e.close()));
});
async function start(...args: Parameters<typeof startTestExporter>): Promise<TestExporter> {
  const e = await startTestExporter(...args);
  running.push(e);
  return e;
}

const NOW = new Date('2026-06-15T12:00:00Z');
const AT = BigInt(new Date('2026-06-15T11:00:00Z').getTime()) * 1_000_000n;

async function seeded(config = {}) {
  const plans = new SimplePlans(
    { free: { tokens: 50_000, requests: 10 }, pro: { tokens: 500_000, requests: 100, costUsd: new Decimal('0.01') }, team: {} },
    { vip: { plan: 'pro', limits: { tokens: 1000 } } },
  );
  const e = await start({ clock: new FakeClock(NOW), plans, config });
  const res = await postOtlp(
    e.otlpUrl,
    otlpJson(
      [
        { spanId: 'e000000000000001', user: 'alice', plan: 'pro', model: 'gpt-4o', input: 1000, output: 500 },
        { spanId: 'e000000000000002', user: 'alice', plan: 'pro', provider: 'anthropic', model: 'claude-sonnet-4-5', input: 2000, output: 100 },
        { spanId: 'e000000000000003', user: 'bob', model: 'gpt-4o', input: 40_000, output: 0 },
        { spanId: 'e000000000000004', user: 'vip', model: 'gpt-4o', input: 900, output: 0 },
        { spanId: 'e000000000000005', user: 'tom', plan: 'team', model: 'gpt-4o', input: 5, output: 0 },
      ],
      AT,
    ),
  );
  expect(res.status).toBe(200);
  return e;
}

describe('usage API', () => {
  it('GET /api/v1/usage/{user}: exact decimals, limits, remaining, ratios, by model', async () => {
    const e = await seeded({ display: { currency: 'EUR', rates: { EUR: '0.5' } } });
    const { status, json } = await getJson(`${e.httpUrl}/api/v1/usage/alice`);
    expect(status).toBe(200);
    expect(json.user).toBe('alice');
    expect(json.plan).toBe('pro');
    expect(json.period).toEqual({ start: '2026-06-01T00:00:00.000Z', end: '2026-07-01T00:00:00.000Z' });
    expect(json.tokens.total).toBe(3600);
    expect(json.requests).toBe(2);
    const gpt = json.by_model.find((m: { model: string }) => m.model === 'gpt-4o');
    expect(gpt).toEqual({ provider: 'openai', model: 'gpt-4o', tokens: { input: 1000, cache_read: 0, cache_write: 0, output: 500, reasoning: 0, total: 1500 }, requests: 1, estimated_requests: 0, cost_usd: '0.0075', unpriced_requests: 0 });
    const claude = json.by_model.find((m: { provider: string }) => m.provider === 'anthropic');
    expect(new Decimal(json.cost_usd).equals(new Decimal('0.0075').plus(claude.cost_usd))).toBe(true);
    expect(json.limits).toEqual({ tokens: 500000, requests: 100, cost_usd: '0.01' });
    expect(json.remaining.tokens).toBe(500000 - 3600);
    expect(json.remaining.requests).toBe(98);
    expect(json.ratios.requests).toBe(0.02);
    expect(json.cost_usd).toBe('0.015');
    expect(json.ratios).toEqual({ tokens: 0.0072, requests: 0.02, cost_usd: 1.5 });
    expect(json.remaining.cost_usd).toBe('0');
    // Exact converted amount, and its display form rounded to the currency's minor unit.
    expect(json.display).toEqual({ currency: 'EUR', amount: '0.0075', cost: '€0.01' });
    // Exactly issue 4's fields, no more: user, plan, period, tokens by type, requests, cost (+ display), limits,
    // remaining, ratio per limit, breakdown by model.
    // (+ unpriced_requests, issue 12: the requests whose model has no price, which cost_usd leaves out.)
    // (+ reserved and available, issue 16: what calls in flight hold, and what is left after them.)
    expect(Object.keys(json).sort()).toEqual(['available', 'by_model', 'cost_usd', 'display', 'estimated_requests', 'limits', 'period', 'plan', 'ratios', 'remaining', 'requests', 'reserved', 'tokens', 'unpriced_requests', 'user']);
    expect(Object.keys(json.remaining).sort()).toEqual(['cost_usd', 'requests', 'tokens']);
    // Equal cost ($0.0075 each): more tokens first.
    expect(json.by_model.map((m: { provider: string; model: string }) => `${m.provider}/${m.model}`)).toEqual(['anthropic/claude-sonnet-4-5', 'openai/gpt-4o']);
  });

  it('a user with no usage gets 200, zeros and the plan limits', async () => {
    const e = await seeded();
    const { status, json } = await getJson(`${e.httpUrl}/api/v1/usage/${encodeURIComponent('nobody@example.com')}`);
    expect(status).toBe(200);
    expect(json).toMatchObject({
      user: 'nobody@example.com',
      plan: 'free',
      tokens: { input: 0, cache_read: 0, cache_write: 0, output: 0, reasoning: 0, total: 0 },
      requests: 0,
      cost_usd: '0',
      limits: { tokens: 50000, requests: 10, cost_usd: null },
      remaining: { tokens: 50000, requests: 10, cost_usd: null },
      ratios: { tokens: 0, requests: 0, cost_usd: null },
      by_model: [],
    });
    expect(json.display).toBeUndefined();
    const vip = await getJson(`${e.httpUrl}/api/v1/usage/vip`);
    expect(vip.json.plan).toBe('pro');
    expect(vip.json.limits.tokens).toBe(1000);
    expect(vip.json.remaining.tokens).toBe(100);
  });

  it('GET /api/v1/usage lists users by how close they are to a limit, filtered by plan and min_ratio', async () => {
    const e = await seeded();
    const all = await getJson(`${e.httpUrl}/api/v1/usage`);
    expect(all.status).toBe(200);
    // alice has spent $0.015 of a $0.01 budget (ratio 1.5), vip 900 of 1000 tokens (0.9), bob 40k of 50k (0.8).
    expect(all.json.users.map((u: { user: string }) => u.user)).toEqual(['alice', 'vip', 'bob', 'tom']);
    expect(all.json.users[0]).toMatchObject({ max_ratio: 1.5, cost_usd: '0.015', ratios: { cost_usd: 1.5 } });
    expect(all.json.users[1].max_ratio).toBe(0.9);
    expect(all.json.users[3]).toMatchObject({ user: 'tom', plan: 'team', max_ratio: null, limits: { tokens: null, requests: null, cost_usd: null } });
    const bob = all.json.users.find((u: { user: string }) => u.user === 'bob');
    expect(bob.max_ratio).toBe(0.8);
    const pro = await getJson(`${e.httpUrl}/api/v1/usage?plan=pro`);
    expect(pro.json.users.map((u: { user: string }) => u.user)).toEqual(['alice', 'vip']);
    // Every plan with usage, whatever the filter (the status page offers them all).
    expect(pro.json.plans).toEqual(['free', 'pro', 'team']);
    expect(pro.json.total).toBe(2);
    const near = await getJson(`${e.httpUrl}/api/v1/usage?min_ratio=0.85`);
    expect(near.json.users.map((u: { user: string }) => u.user)).toEqual(['alice', 'vip']);
    const over = await getJson(`${e.httpUrl}/api/v1/usage?min_ratio=1`);
    expect(over.json.users.map((u: { user: string }) => u.user)).toEqual(['alice']);
    const alice = await getJson(`${e.httpUrl}/api/v1/usage/alice`);
    expect(alice.json.remaining.cost_usd).toBe('0');
    const limited = await getJson(`${e.httpUrl}/api/v1/usage?limit=1`);
    expect(limited.json.users).toHaveLength(1);
    expect(limited.json.total).toBe(4);
  });

  it('GET /api/v1/summary: totals, by provider, by model for the period', async () => {
    const e = await seeded();
    const { status, json } = await getJson(`${e.httpUrl}/api/v1/summary`);
    expect(status).toBe(200);
    expect(json.period.start).toBe('2026-06-01T00:00:00.000Z');
    expect(json.totals.requests).toBe(5);
    expect(json.totals.tokens.total).toBe(1500 + 2100 + 40000 + 900 + 5);
    expect(json.by_provider.map((p: { provider: string }) => p.provider).sort()).toEqual(['anthropic', 'openai']);
    const gpt = json.by_model.find((m: { model: string }) => m.model === 'gpt-4o');
    expect(gpt.requests).toBe(4);
    expect(gpt.cost_usd).toBe(new Decimal(41905).times('2.5').div(1e6).plus(new Decimal(500).times(10).div(1e6)).toFixed());
    const sum = json.by_provider.reduce((acc: Decimal, p: { cost_usd: string }) => acc.plus(p.cost_usd), new Decimal(0));
    expect(sum.toFixed()).toBe(json.totals.cost_usd);
  });

  it('unpriced usage is never $0: cost_usd null when wholly unpriced, unpriced_requests counted everywhere', async () => {
    const e = await start({ clock: new FakeClock(NOW), plans: new SimplePlans({ free: { tokens: 50_000, requests: 10, costUsd: new Decimal('1') } }) });
    const res = await postOtlp(
      e.otlpUrl,
      otlpJson(
        [
          { spanId: 'f000000000000001', user: 'ursula', model: 'my-private-model', input: 700, output: 300 },
          { spanId: 'f000000000000002', user: 'ursula', model: 'my-private-model', input: 70, output: 30 },
          { spanId: 'f000000000000003', user: 'mixed', model: 'my-private-model', input: 10, output: 0 },
          { spanId: 'f000000000000004', user: 'mixed', model: 'gpt-4o', input: 1000, output: 500 },
        ],
        AT,
      ),
    );
    expect(res.status).toBe(200);
    const ursula = (await getJson(`${e.httpUrl}/api/v1/usage/ursula`)).json;
    expect(ursula).toMatchObject({ tokens: { total: 1100 }, requests: 2, cost_usd: null, unpriced_requests: 2 });
    expect(ursula.by_model).toEqual([
      { provider: 'openai', model: 'my-private-model', tokens: { input: 770, cache_read: 0, cache_write: 0, output: 330, reasoning: 0, total: 1100 }, requests: 2, estimated_requests: 0, cost_usd: null, unpriced_requests: 2 },
    ]);
    // A budget ratio counts priced usage only (the same as the tokenmeter_period_cost_usd gauge and its alert).
    expect(ursula.ratios.cost_usd).toBe(0);
    const mixed = (await getJson(`${e.httpUrl}/api/v1/usage/mixed`)).json;
    expect(mixed).toMatchObject({ requests: 2, cost_usd: '0.0075', unpriced_requests: 1 });

    const list = (await getJson(`${e.httpUrl}/api/v1/usage`)).json;
    const row = (u: string) => list.users.find((x: { user: string }) => x.user === u);
    expect(row('ursula')).toMatchObject({ cost_usd: null, unpriced_requests: 2, tokens: { total: 1100 } });
    expect(row('mixed')).toMatchObject({ cost_usd: '0.0075', unpriced_requests: 1 });

    const summary = (await getJson(`${e.httpUrl}/api/v1/summary`)).json;
    expect(summary.totals).toMatchObject({ requests: 4, cost_usd: '0.0075', unpriced_requests: 3 });
    expect(summary.by_provider).toEqual([expect.objectContaining({ provider: 'openai', requests: 4, cost_usd: '0.0075', unpriced_requests: 3 })]);
    const model = (m: string) => summary.by_model.find((x: { model: string }) => x.model === m);
    expect(model('my-private-model')).toMatchObject({ requests: 3, cost_usd: null, unpriced_requests: 3, tokens: { total: 1110 } });
    expect(model('gpt-4o')).toMatchObject({ cost_usd: '0.0075', unpriced_requests: 0 });
    // Nowhere in the three answers does unpriced usage read as a zero cost.
    // (`reserved` is money held by calls in flight, not the cost of usage: an exact 0 when nothing is held.)
    expect(ursula.reserved).toEqual({ tokens: 0, requests: 0, cost_usd: '0' });
    for (const body of [{ ...ursula, reserved: undefined }, list, summary]) expect(JSON.stringify(body)).not.toContain('"cost_usd":"0"');
  });

  it('rejects bad queries with 400 and a JSON error', async () => {
    const e = await seeded();
    const bad = [
      '/api/v1/usage?min_ratio=abc',
      '/api/v1/usage?min_ratio=-1',
      '/api/v1/usage?min_ratio=1e3',
      '/api/v1/usage?min_ratio=NaN',
      '/api/v1/usage?min_ratio=0.5&min_ratio=0.6',
      '/api/v1/usage?plan=%22%3E%3Cscript%3E',
      '/api/v1/usage?limit=0',
      '/api/v1/usage?limit=2.5',
      '/api/v1/usage?bogus=1',
      `/api/v1/usage/${'x'.repeat(300)}`,
      '/api/v1/usage/%E0%A4%A',
      '/api/v1/usage/a%0Ab',
      '/api/v1/usage/alice?x=1',
      '/api/v1/summary?x=1',
    ];
    for (const path of bad) {
      const r = await getJson(`${e.httpUrl}${path}`);
      expect(r.status, path).toBe(400);
      expect(typeof r.json.error, path).toBe('string');
    }
    expect((await getJson(`${e.httpUrl}/api/v1/nothing`)).status).toBe(404);
    expect((await httpRequest(`${e.httpUrl}/api/v1/usage`, { method: 'POST' })).status).toBe(405);
  });

  it('one rule for user ids at ingest and on /api/v1/usage/{user}: what ingest accepts can be looked up, what it rejects is 400', async () => {
    const e = await start({ clock: new FakeClock(NOW) });
    const ids = ['ok-user', 'bidi\u202Eid', 'zero\u200Bwidth', 'é😀', 'u'.repeat(256), 'nul\u0000', 'bell\u0007', 'c1\u0085', 'del\u007f', 'lone\ud800', 'u'.repeat(257)];
    let n = 0;
    for (const id of ids) {
      n++;
      const spanId = `ab${n.toString(16).padStart(14, '0')}`;
      const res = await postOtlp(e.otlpUrl, otlpJson([{ spanId, user: id, model: 'gpt-4o', input: 10, output: 0 }], AT));
      expect(res.status).toBe(200);
      const accepted = JSON.parse(res.body.toString()).partialSuccess === undefined;
      // A lone surrogate has no UTF-8 form: sent as its (invalid) three-byte encoding.
      const path = id.startsWith('lone') ? 'lone%ED%A0%80' : encodeURIComponent(id);
      const api = await getJson(`${e.httpUrl}/api/v1/usage/${path}`);
      expect([JSON.stringify(id), api.status]).toEqual([JSON.stringify(id), accepted ? 200 : 400]);
      if (accepted) expect(api.json.requests).toBe(1);
    }
    // Reserved ids are refused at ingest (they are the exporter's own series) but can be looked up.
    for (const id of ['__overflow__', 'anonymous']) {
      const res = await postOtlp(e.otlpUrl, otlpJson([{ spanId: `ac${(n++).toString(16).padStart(14, '0')}`, user: id, model: 'gpt-4o', input: 10, output: 0 }], AT));
      expect(JSON.parse(res.body.toString()).partialSuccess.errorMessage).toContain('reserved');
      expect((await getJson(`${e.httpUrl}/api/v1/usage/${id}`)).status).toBe(200);
    }
  });

  it('requires the API bearer token when configured', async () => {
    const e = await seeded({ auth: { api_token: 'api-token-0123456789' } });
    expect((await getJson(`${e.httpUrl}/api/v1/usage/alice`)).status).toBe(401);
    expect((await getJson(`${e.httpUrl}/api/v1/summary`, { authorization: 'Bearer wrong-token-0123456789' })).status).toBe(401);
    expect((await getJson(`${e.httpUrl}/api/v1/summary`, { authorization: 'Bearer api-token-0123456789' })).status).toBe(200);
    expect((await getJson(`${e.httpUrl}/api/v1/usage`, { authorization: 'bearer api-token-0123456789' })).status).toBe(200);
    // Same length, one character off; a prefix; the token in another scheme; an empty bearer.
    for (const authorization of ['Bearer api-token-0123456788', 'Bearer api-token-012345678', 'Basic api-token-0123456789', 'Bearer ', 'api-token-0123456789']) {
      expect((await getJson(`${e.httpUrl}/api/v1/usage`, { authorization })).status, authorization).toBe(401);
    }
    // The 401 tells a client (and the status page) how to authenticate.
    const denied = await getJson(`${e.httpUrl}/api/v1/usage`);
    expect(denied.headers['www-authenticate']).toMatch(/^Bearer /);
    expect(denied.json.error).toBe('missing or wrong bearer token');
    expect(denied.json.hint).toContain('/#token=');
    // The status page itself (static files, no data) is still served; it brings the token from its #token= fragment.
    const page = await httpRequest(`${e.httpUrl}/`);
    expect(page.status).toBe(200);
    expect(page.headers['referrer-policy']).toBe('no-referrer');
    // Health and metrics stay open (Prometheus and orchestrators).
    expect((await httpRequest(`${e.httpUrl}/metrics`)).status).toBe(200);
    expect((await httpRequest(`${e.httpUrl}/healthz`)).status).toBe(200);
  });

  it('answers 503 + Retry-After when the ledger is down', async () => {
    const e = await seeded();
    e.ledger.down = true;
    const r = await getJson(`${e.httpUrl}/api/v1/usage/alice`);
    expect(r.status).toBe(503);
    expect(r.headers['retry-after']).toBe('5');
    // /metrics never reads the ledger: still served, from memory.
    const m = await httpRequest(`${e.httpUrl}/metrics`);
    expect(m.status).toBe(200);
    expect(m.body.toString()).toContain('tokenmeter_period_tokens{user="alice",plan="pro"} 3600');
  });
});

describe('status page', () => {
  it('serves index.html, .js and .css with their content types and nothing outside the folder', async () => {
    const root = mkdtempSync(join(tmpdir(), 'tm-static-'));
    const page = join(root, 'page');
    mkdirSync(page);
    writeFileSync(join(page, 'index.html'), '<!doctype html><title>t</title>');
    writeFileSync(join(page, 'app.js'), 'console.log(1)');
    writeFileSync(join(page, 'style.css'), 'body{}');
    writeFileSync(join(page, '.env'), 'SECRET=1');
    writeFileSync(join(page, 'notes.txt'), 'x');
    writeFileSync(join(root, 'secret.css'), 'secret');
    symlinkSync(join(root, 'secret.css'), join(page, 'link.css'));
    const files = new StaticFiles(page);
    expect((await files.get('/'))?.contentType).toBe('text/html; charset=utf-8');
    expect((await files.get('/app.js'))?.contentType).toBe('text/javascript; charset=utf-8');
    expect((await files.get('/style.css'))?.contentType).toBe('text/css; charset=utf-8');
    for (const p of ['/../secret.css', '/%2e%2e/secret.css', '/..%2fsecret.css', '/link.css', '/.env', '/notes.txt', '/%00.css', '/a\\..\\secret.css', '//etc/passwd', '/%E0%A4%A']) {
      expect(await files.get(p), p).toBeUndefined();
    }
  });

  it('is served at GET / by the exporter when the folder exists', async () => {
    const e = await start();
    const r = await httpRequest(`${e.httpUrl}/`);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
    expect((await httpRequest(`${e.httpUrl}/../../package.json`)).status).toBe(404);
  });
});
