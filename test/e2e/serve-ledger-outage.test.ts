/**
 * PostgreSQL stopped during ingest: the exporter answers 503 with Retry-After (never 200, nothing counted), and
 * once PostgreSQL is back the sender's retries make the totals exact — each span counted once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startExporter, type RunningExporter } from '../../src/exporter/index.js';
import { getJson, httpRequest, otlpJson, postOtlp, scrape } from '../exporter/harness.js';
import { findPostgres, startPostgres, type TestPostgres } from '../helpers/postgres.js';

const pgBin = findPostgres();

describe.skipIf(!pgBin)('ledger outage (PostgreSQL stopped and restarted)', () => {
  let pg: TestPostgres;
  let exporter: RunningExporter;
  beforeAll(async () => {
    pg = await startPostgres();
    const url = await pg.createDatabase('serve_outage');
    exporter = await startExporter({ storage: url, host: '127.0.0.1', otlpPort: 0, httpPort: 0, config: { ledger: { retry_after: '1s' } }, log: () => {} });
  });
  afterAll(async () => {
    await exporter?.close();
    await pg?.cleanup();
  });

  it('503 + Retry-After while down; retried batches are counted exactly once after the restart', async () => {
    const batches = Array.from({ length: 20 }, (_, b) =>
      otlpJson(
        Array.from({ length: 5 }, (_, i) => ({ spanId: (0x3000000000000000n + BigInt(b * 5 + i)).toString(16), user: `outage-${i}`, model: 'gpt-4o', input: 1000, output: 0 })),
        BigInt(Date.now()) * 1_000_000n,
      ),
    );
    const statuses: number[] = [];
    /** An OTLP sender: retries on 503 after Retry-After (shortened here), as the OTel exporters do. */
    const send = async (body: Buffer) => {
      for (let attempt = 0; attempt < 200; attempt++) {
        const r = await postOtlp(exporter.otlpUrl, body).catch(() => ({ status: 0, headers: {} as Record<string, string> }));
        statuses.push(r.status);
        if (r.status === 200) return;
        if (r.status === 503) expect(r.headers['retry-after']).toBe('1');
        await new Promise((res) => setTimeout(res, 100));
      }
      throw new Error('never accepted');
    };

    await Promise.all(batches.slice(0, 5).map(send));
    await pg.stop();
    const during = batches.slice(5, 15).map(send);
    // Let the senders meet the outage, then bring PostgreSQL back.
    await new Promise((r) => setTimeout(r, 1000));
    expect(statuses.filter((s) => s === 503).length).toBeGreaterThan(0);
    expect((await httpRequest(`${exporter.httpUrl}/readyz`)).status).toBe(503);
    expect((await httpRequest(`${exporter.httpUrl}/healthz`)).status).toBe(200);
    await pg.start();
    await Promise.all(during);
    await Promise.all(batches.slice(15).map(send));
    // Replays of already-committed batches change nothing.
    await Promise.all(batches.slice(0, 3).map(send));

    expect(statuses.every((s) => s === 200 || s === 503)).toBe(true);
    for (let i = 0; i < 5; i++) {
      const u = await getJson(`${exporter.httpUrl}/api/v1/usage/outage-${i}`);
      expect(u.json.requests).toBe(20);
      expect(u.json.tokens.input).toBe(20_000);
      expect(u.json.cost_usd).toBe('0.05');
    }
    const lines = await scrape(exporter.httpUrl);
    expect(lines).toContain('tokenmeter_ingested_spans_total{outcome="priced"} 100');
    expect(lines).toContain('tokenmeter_ingested_spans_total{outcome="duplicate"} 15');
    expect(lines).toContain('tokenmeter_tokens_total{plan="free",provider="openai",model="gpt-4o",type="input"} 100000');
    expect(lines).toContain('tokenmeter_period_tokens{user="outage-0",plan="free"} 20000');
    expect((await httpRequest(`${exporter.httpUrl}/readyz`)).status).toBe(200);
  });
});
