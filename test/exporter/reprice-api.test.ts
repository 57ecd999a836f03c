/**
 * POST /api/v1/reprice (issue 18): the exporter that holds an embedded ledger re-prices through it. Against the real
 * journal ledger: the body's input boundary (method, content type, size, JSON, fields, dates), the bearer token, a
 * dry run by default that writes nothing, `apply: true` only with auth.api_token configured, then the applied
 * re-pricing in the period gauge, the usage API and the report, and a second run with nothing to do.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Decimal } from 'decimal.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/index.js';
import { displayMoney, ingestDecoders } from '../../src/exporter/adapters.js';
import { startExporter, type ExporterPorts, type RunningExporter } from '../../src/exporter/index.js';
import { MAX_REPRICE_BODY_BYTES } from '../../src/exporter/ops-handler.js';
import type { LedgerPort } from '../../src/exporter/ports.js';
import { extractUsage } from '../../src/ingest/index.js';
import { JournalLedger } from '../../src/ledger/journal-ledger.js';
import type { LedgerRecord } from '../../src/ledger/index.js';
import { PriceBook } from '../../src/pricing/index.js';
import { hex } from '../ledger/fixtures.js';
import { FakeClock, SimplePlans } from './fakes.js';
import { httpRequest, scrape } from './harness.js';

const TOKEN = 'api-token-0123456789';
const WRONG = PriceBook.load({ overrides: [{ provider: 'openai', model: 'gpt-4o', prices_usd_per_mtok: { input: '25', output: '10' } }] });
const FIXED = PriceBook.load({ overrides: [{ provider: 'openai', model: 'gpt-4o', prices_usd_per_mtok: { input: '2.5', output: '10' } }] });

function call(day: number, userId: string, input: number): LedgerRecord {
  const endTimeMillis = Date.UTC(2026, 10, day, 9);
  const usage = { input, cache_read: 0, cache_write: 0, output: 40, reasoning: 0 };
  const p = WRONG.priceStrings({ provider: 'openai', model: 'gpt-4o-2024-08-06', usage, at: new Date(endTimeMillis) });
  if (!p.priced) throw new Error('priced');
  return {
    traceId: hex(16), spanId: hex(8), endTimeMillis, provider: 'openai', rawModel: 'gpt-4o-2024-08-06', operation: 'chat', usage, estimated: false,
    userId, outcome: 'success', source: 'tokenmeter', plan: 'free', periodStart: '2026-11-01T00:00:00.000Z', model: p.model, priced: true,
    priceId: p.priceId, costUsd: p.costUsd, totalCostUsd: p.totalUsd,
  };
}

function port(ledger: JournalLedger): LedgerPort {
  return {
    commit: (records) => ledger.commit(records),
    ping: () => ledger.ping(),
    loadPeriodRollups: (s, o) => ledger.loadPeriodRollups(s, o),
    userModelUsage: (u, s) => ledger.userModelUsage(u, s),
    periodModelUsage: (s) => ledger.periodModelUsage(s),
    scanCalls: (f) => ledger.scanCalls(f),
    scanPeriodRollups: (s, o) => ledger.scanPeriodRollups(s, o),
    repriceAudits: (s) => ledger.repriceAudits(s),
    applyReprice: (r) => ledger.applyReprice(r),
    scanCallRange: (f) => ledger.scanCalls(f),
    close: () => ledger.close(),
  };
}

async function start(ledger: JournalLedger, auth: boolean): Promise<RunningExporter> {
  const config = validateConfig({ server: { host: '127.0.0.1', otlp_port: 0, http_port: 0 }, ...(auth ? { auth: { api_token: TOKEN } } : {}) }, 'test');
  const ports: ExporterPorts<unknown> = {
    ledger: port(ledger),
    plans: new SimplePlans(),
    pricing: FIXED,
    decoders: ingestDecoders(config.limits.max_decompressed_bytes),
    extract: extractUsage as ExporterPorts<unknown>['extract'],
    isUnavailable: () => false,
    display: displayMoney(config),
  };
  return startExporter({ resolvedConfig: config, ports, clock: new FakeClock(new Date('2026-11-20T00:00:00Z')), log: () => {} });
}

describe('POST /api/v1/reprice', () => {
  let dir: string;
  let ledger: JournalLedger;
  let e: RunningExporter;
  const calls = [call(2, 'ann', 10_000), call(5, 'ann', 333), call(7, 'bob', 1)];
  const expected = calls.map((c) => {
    const p = FIXED.priceStrings({ provider: 'openai', model: c.rawModel, usage: c.usage, at: new Date(c.endTimeMillis) });
    return p.priced ? p.totalUsd : 'unpriced';
  });
  const annNow = new Decimal(expected[0]!).plus(expected[1]!).toFixed();
  const total = calls.reduce((s, c, i) => s.plus(expected[i]!).minus(c.totalCostUsd), new Decimal(0)).toFixed();
  const post = (body: unknown, headers: Record<string, string> = { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` }) =>
    httpRequest(`${e.httpUrl}/api/v1/reprice`, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const json = (r: { body: Buffer }) => JSON.parse(r.body.toString()) as Record<string, unknown>;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tokenmeter-reprice-api-'));
    ledger = await JournalLedger.open(dir, { clock: new FakeClock(new Date('2026-11-20T00:00:00Z')) });
    await ledger.commit(calls);
    e = await start(ledger, true);
  });
  afterAll(async () => {
    await e?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it.each([
    ['GET', undefined, undefined, 405, /use POST/],
    ['POST', 'text/plain', '{"from":"2026-11-01"}', 415, /application\/json/],
    ['POST', 'application/json', 'x'.repeat(MAX_REPRICE_BODY_BYTES + 1), 413, /./],
    ['POST', 'application/json', '{"from":', 400, /not valid JSON/],
    ['POST', 'application/json', '[1,2]', 400, /JSON object/],
    ['POST', 'application/json', '"2026-11-01"', 400, /JSON object/],
    ['POST', 'application/json', '{}', 400, /from is required/],
    ['POST', 'application/json', '{"from":"2026-11-01","sql":"drop table"}', 400, /unknown field "sql"/],
    ['POST', 'application/json', '{"from":20261101}', 400, /from must be a string/],
    ['POST', 'application/json', '{"from":"2026-11-31"}', 400, /not a calendar date/],
    ['POST', 'application/json', '{"from":"2026-11-05","to":"2026-11-01"}', 400, /to must be after from/],
    ['POST', 'application/json', '{"from":"2026-11-01","apply":"yes"}', 400, /apply must be true or false/],
    ['POST', 'application/json', '{"from":"2026-11-01","by":"\\u001b[2J"}', 400, /by must be/],
    ['POST', 'application/json', `{"from":"2026-11-01","model":"${'m'.repeat(400)}"}`, 400, /model must be/],
  ])('%s %s %#: %i', async (method, type, body, status, message) => {
    const headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` };
    if (type) headers['content-type'] = type;
    const r = await httpRequest(`${e.httpUrl}/api/v1/reprice`, { method, headers, ...(body !== undefined ? { body } : {}) });
    expect(r.status).toBe(status);
    if (status !== 413) expect(json(r).error).toMatch(message);
    expect(await ledger.repriceAudits()).toEqual([]);
  });

  it('needs the bearer token', async () => {
    for (const authorization of [undefined, 'Bearer wrong-token-0123456789', `Basic ${TOKEN}`]) {
      const r = await post({ from: '2026-11-01', apply: true }, { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) });
      expect(r.status).toBe(401);
    }
    expect(await ledger.repriceAudits()).toEqual([]);
  });

  it('is a dry run by default, then applies: gauge, usage API and report show the new cost; a second run has nothing to do', async () => {
    const dry = await post({ from: '2026-11-01', to: '2026-11-30' });
    expect(dry.status).toBe(200);
    expect(json(dry)).toMatchObject({ dry_run: true, calls: 3, delta_usd: total });
    expect(await ledger.repriceAudits()).toEqual([]);

    const applied = await post({ from: '2026-11-01', to: '2026-11-30', apply: true, by: 'ops' });
    expect(applied.status).toBe(200);
    const body = json(applied) as { dry_run: boolean; calls: number; delta_usd: string; audit: { id: string; by: string } };
    expect(body).toMatchObject({ dry_run: false, calls: 3, delta_usd: total, audit: { by: 'ops (api)' } });
    expect((await ledger.repriceAudits()).map((a) => a.id)).toEqual([body.audit.id]);

    const gauge = (await scrape(e.httpUrl)).find((l) => l.startsWith('tokenmeter_period_cost_usd{') && l.includes('user="ann"'));
    expect(gauge?.split(' ').pop()).toBe(String(Number(annNow)));
    const usage = await httpRequest(`${e.httpUrl}/api/v1/usage/ann`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(JSON.stringify(json(usage))).toContain(`"${annNow}"`);
    const report = await httpRequest(`${e.httpUrl}/api/v1/report?period=2026-11&format=table`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(report.body.toString()).toContain(`by ops (api), audit id ${body.audit.id}: 3 call(s), ${total} USD`);

    const again = await post({ from: '2026-11-01', to: '2026-11-30', apply: true });
    expect(json(again)).toMatchObject({ dry_run: true, calls: 0, delta_usd: '0' });
    expect(await ledger.repriceAudits()).toHaveLength(1);
  });

  it('after a restart of the exporter (snapshot written on close, read at open) the period gauge has the re-priced cost', async () => {
    await e.close();
    ledger = await JournalLedger.open(dir, { clock: new FakeClock(new Date('2026-11-20T00:00:00Z')) });
    e = await start(ledger, true);
    const gauge = (await scrape(e.httpUrl)).find((l) => l.startsWith('tokenmeter_period_cost_usd{') && l.includes('user="ann"'));
    expect(gauge?.split(' ').pop()).toBe(String(Number(annNow)));
    expect(await ledger.repriceAudits()).toHaveLength(1);
  });

  it('without auth.api_token configured, a dry run is answered and apply is refused (403)', async () => {
    const dir2 = mkdtempSync(join(tmpdir(), 'tokenmeter-reprice-api2-'));
    const l2 = await JournalLedger.open(dir2, { clock: new FakeClock(new Date('2026-11-20T00:00:00Z')) });
    await l2.commit([call(3, 'cy', 5000)]);
    const open = await start(l2, false);
    try {
      const headers = { 'content-type': 'application/json' };
      const url = `${open.httpUrl}/api/v1/reprice`;
      expect((await httpRequest(url, { method: 'POST', headers, body: '{"from":"2026-11-01"}' })).status).toBe(200);
      const refused = await httpRequest(url, { method: 'POST', headers, body: '{"from":"2026-11-01","apply":true}' });
      expect(refused.status).toBe(403);
      expect(await l2.repriceAudits()).toEqual([]);
    } finally {
      await open.close();
      rmSync(dir2, { recursive: true, force: true });
    }
  });
});
