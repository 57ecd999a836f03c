/**
 * PostgreSQL stopped during ingest: the exporter answers 503 with Retry-After (never 200, nothing counted), and
 * once PostgreSQL is back the sender's retries make the totals exact — each span counted once.
 * A full disk under the embedded ledger (commits fail, pings and reads answer): /readyz and ledger_up follow the
 * commits, not the ping; the failures are logged, rate-limited, with their cause.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/index.js';
import { createPorts } from '../../src/exporter/adapters.js';
import { LedgerUnavailableError } from '../../src/ledger/index.js';
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

describe('disk full under the embedded ledger (commits fail while pings and reads answer)', () => {
  it('/readyz 503 and ledger_up 0 while commits fail, also across a refresh; logged once with the cause; exact after recovery', async () => {
    const storage = join(mkdtempSync(join(tmpdir(), 'tm-diskfull-')), 'ledger');
    const config = validateConfig({ storage, server: { host: '127.0.0.1', otlp_port: 0, http_port: 0 }, ledger: { retry_after: '1s', refresh_interval: '0s' } }, 'test');
    const clock = { now: () => new Date() };
    const logs: string[] = [];
    const ports = await createPorts(config, clock);
    let diskFull = false;
    const commit = ports.ledger.commit.bind(ports.ledger);
    // What the journal ledger throws when its write or fdatasync meets ENOSPC (journal-ledger.ts #append).
    ports.ledger.commit = (records, onDurable) =>
      diskFull
        ? Promise.reject(
            new LedgerUnavailableError('ledger unavailable (commit): cannot write the journal: ENOSPC: no space left on device, write', {
              cause: Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }),
            }),
          )
        : commit(records, onDurable);
    const e = await startExporter({ resolvedConfig: config, ports, clock, log: (l) => logs.push(l) });
    try {
      let n = 0;
      const batch = () => otlpJson(Array.from({ length: 4 }, () => ({ spanId: (0x5000000000000000n + BigInt(n++)).toString(16), user: 'disk', model: 'gpt-4o', input: 1000, output: 0 })));
      expect((await postOtlp(e.otlpUrl, batch())).status).toBe(200);
      expect((await httpRequest(`${e.httpUrl}/readyz`)).status).toBe(200);

      diskFull = true;
      const pending = Array.from({ length: 5 }, batch);
      for (const body of pending) {
        const r = await postOtlp(e.otlpUrl, body);
        expect(r.status).toBe(503);
        expect(r.headers['retry-after']).toBe('1');
      }
      const ready = await httpRequest(`${e.httpUrl}/readyz`);
      expect(ready.status).toBe(503);
      expect(JSON.parse(ready.body.toString())).toMatchObject({ status: 'ledger commits failing' });
      expect(await scrape(e.httpUrl)).toContain('tokenmeter_ledger_up 0');
      // A periodic refresh reads the ledger successfully: that must not make it look up.
      await e.refresh();
      expect(await scrape(e.httpUrl)).toContain('tokenmeter_ledger_up 0');
      expect((await httpRequest(`${e.httpUrl}/readyz`)).status).toBe(503);
      expect((await httpRequest(`${e.httpUrl}/healthz`)).status).toBe(200);
      const failures = logs.filter((l) => l.startsWith('ledger commit failed'));
      expect(failures).toHaveLength(1);
      expect(failures[0]).toContain('ENOSPC');

      diskFull = false;
      for (const body of pending) expect((await postOtlp(e.otlpUrl, body)).status).toBe(200);
      expect((await httpRequest(`${e.httpUrl}/readyz`)).status).toBe(200);
      expect(await scrape(e.httpUrl)).toContain('tokenmeter_ledger_up 1');
      expect(logs.some((l) => l.startsWith('ledger commits succeed again (4 more failed'))).toBe(true);
      const u = await getJson(`${e.httpUrl}/api/v1/usage/disk`);
      expect([u.json.requests, u.json.tokens.input, u.json.cost_usd]).toEqual([24, 24_000, '0.06']);
    } finally {
      await e.close();
    }
  });
});
