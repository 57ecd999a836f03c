/**
 * `tokenmeter serve` started while its PostgreSQL ledger is down: it starts anyway (no exit), answers 503 with
 * Retry-After on OTLP and the usage API, /readyz 503 and tokenmeter_ledger_up 0; it keeps retrying to open and
 * migrate the ledger in the background, becomes ready once PostgreSQL is up (no restart), loads the period gauges
 * of what was committed before, and the senders' retries give exact totals.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, httpRequest, otlpJson, postOtlp, scrape } from '../exporter/harness.js';
import { findPostgres, startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { spawnServe, type ServeProcess } from './serve-helpers.js';

const pgBin = findPostgres();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` (bounded) until it returns true. */
async function eventually(what: string, check: () => Promise<boolean>, attempts = 240, everyMillis = 250): Promise<void> {
  for (let i = 0; i < attempts; i++) {
    if (await check().catch(() => false)) return;
    await sleep(everyMillis);
  }
  throw new Error(`never happened: ${what}`);
}

describe.skipIf(!pgBin)('serve with PostgreSQL down at start', () => {
  let pg: TestPostgres;
  let url: string;
  let config: string;
  const started: ServeProcess[] = [];
  beforeAll(async () => {
    pg = await startPostgres();
    url = await pg.createDatabase('serve_down_at_start');
    const dir = mkdtempSync(join(tmpdir(), 'tm-down-'));
    config = join(dir, 'tokenmeter.yaml');
    // No periodic refresh: the period gauges after the outage can only come from the load when the ledger opens.
    writeFileSync(config, 'ledger:\n  retry_after: 1s\n  refresh_interval: 0s\n');
  });
  afterAll(async () => {
    await Promise.all(started.map((s) => s.stop('SIGKILL')));
    await pg?.cleanup();
  });

  it('starts anyway, answers 503 + Retry-After, and becomes ready with exact totals once PostgreSQL is up', async () => {
    const env = { TOKENMETER_STORAGE: url };
    const now = BigInt(Date.now()) * 1_000_000n;

    // Usage committed before the outage, by an earlier exporter process.
    const seed = await spawnServe(env, ['--config', config]);
    started.push(seed);
    const seeded = await postOtlp(seed.otlpUrl, otlpJson([{ spanId: '4000000000000001', user: 'early-user', model: 'gpt-4o', input: 1000, output: 100 }], now));
    expect(seeded.status).toBe(200);
    expect(await seed.stop('SIGTERM')).toBe(0);

    await pg.stop();
    const serve = await spawnServe(env, ['--config', config]);
    started.push(serve);

    const batches = Array.from({ length: 6 }, (_, b) =>
      otlpJson(
        Array.from({ length: 4 }, (_, i) => ({ spanId: (0x4100000000000000n + BigInt(b * 4 + i)).toString(16), user: `late-${i}`, model: 'gpt-4o', input: 500, output: 0 })),
        now,
      ),
    );
    // While PostgreSQL is down: alive, not ready, 503 + Retry-After everywhere the ledger is needed.
    expect((await httpRequest(`${serve.httpUrl}/healthz`)).status).toBe(200);
    const ready = await getJson(`${serve.httpUrl}/readyz`);
    expect(ready.status).toBe(503);
    expect(ready.json.error).toMatch(/not reachable/);
    const refused = await postOtlp(serve.otlpUrl, batches[0]!);
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('1');
    expect(JSON.parse(refused.body.toString('utf8'))).toEqual({ code: 14, message: 'the ledger is unavailable; retry later' });
    const api = await getJson(`${serve.httpUrl}/api/v1/usage/early-user`);
    expect(api.status).toBe(503);
    expect(api.headers['retry-after']).toBe('1');
    let lines = await scrape(serve.httpUrl);
    expect(lines).toContain('tokenmeter_ledger_up 0');
    expect(lines.some((l) => l.startsWith('tokenmeter_period_tokens{'))).toBe(false);
    expect(lines).toContain('tokenmeter_rejected_requests_total{reason="ledger_unavailable"} 1');

    // Senders keep retrying on 503 while PostgreSQL comes back.
    const statuses: number[] = [];
    const send = async (body: Buffer) => {
      for (let attempt = 0; attempt < 400; attempt++) {
        const r = await postOtlp(serve.otlpUrl, body);
        statuses.push(r.status);
        if (r.status === 200) return;
        expect(r.status).toBe(503);
        expect(r.headers['retry-after']).toBe('1');
        await sleep(100);
      }
      throw new Error('never accepted');
    };
    const sending = Promise.all(batches.map(send));
    await sleep(1500);
    expect(serve.child.exitCode).toBeNull();
    await pg.start();
    await eventually('/readyz 200', async () => (await httpRequest(`${serve.httpUrl}/readyz`)).status === 200);
    await sending;
    // Replays after the outage are duplicates.
    await Promise.all(batches.slice(0, 2).map(send));
    expect(statuses.filter((s) => s === 503).length).toBeGreaterThan(0);

    // The gauges loaded from the ledger on open include what the earlier process committed (no traffic for it here).
    await eventually('period gauges loaded', async () => (await scrape(serve.httpUrl)).includes('tokenmeter_period_tokens{user="early-user",plan="free"} 1100'));
    lines = await scrape(serve.httpUrl);
    expect(lines).toContain('tokenmeter_ledger_up 1');
    expect(lines).toContain('tokenmeter_period_requests{user="early-user",plan="free"} 1');
    expect(lines).toContain('tokenmeter_period_cost_usd{user="early-user",plan="free"} 0.0035');
    for (let i = 0; i < 4; i++) {
      expect(lines).toContain(`tokenmeter_period_tokens{user="late-${i}",plan="free"} 3000`);
      const u = await getJson(`${serve.httpUrl}/api/v1/usage/late-${i}`);
      expect(u.status).toBe(200);
      expect(u.json.requests).toBe(6);
      expect(u.json.tokens.input).toBe(3000);
      expect(u.json.cost_usd).toBe('0.0075');
    }
    expect(lines).toContain('tokenmeter_ingested_spans_total{outcome="priced"} 24');
    expect(lines).toContain('tokenmeter_ingested_spans_total{outcome="duplicate"} 8');
    expect(lines).toContain('tokenmeter_tokens_total{plan="free",provider="openai",model="gpt-4o",type="input"} 12000');
    expect(serve.stderr()).toMatch(/ledger is unavailable .*retrying in the background/);
    expect(await serve.stop('SIGTERM')).toBe(0);
  });
});
