/**
 * `tokenmeter serve` as real processes: defaults with no config file, SIGTERM → exit 0, a restart keeps the period
 * gauges (embedded ledger), and two replicas sharing one PostgreSQL count a batch sent to both exactly once.
 * SIGKILL mid-ingest with a hostile span (NUL user id) in every batch: after a restart and the senders' retries,
 * every good span is counted exactly once and every hostile one rejected alone.
 */
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, httpRequest, otlpJson, postOtlp, scrape } from '../exporter/harness.js';
import { findPostgres, startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { spawnServe } from './serve-helpers.js';

const NOW_NANOS = () => BigInt(Date.now()) * 1_000_000n;

describe('tokenmeter serve (embedded ledger)', () => {
  it('runs on the defaults, stops on SIGTERM with exit 0, and a restart keeps the period gauges', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'tm-serve-'));
    // No config file, no TOKENMETER_STORAGE: the ledger goes to ./.tokenmeter/ledger in the working directory.
    const first = await spawnServe({}, [], cwd);
    expect(existsSync(join(cwd, '.tokenmeter', 'ledger'))).toBe(true);
    const res = await postOtlp(
      first.otlpUrl,
      otlpJson(
        [
          { spanId: '1000000000000001', user: 'restart-user', plan: 'pro', model: 'gpt-4o', input: 1234, output: 567 },
          { spanId: '1000000000000002', user: 'other-user', model: 'claude-sonnet-4-5', provider: 'anthropic', input: 10, output: 20 },
        ],
        NOW_NANOS(),
      ),
    );
    expect(res.status).toBe(200);
    expect((await httpRequest(`${first.httpUrl}/readyz`)).status).toBe(200);
    const before = (await scrape(first.httpUrl)).filter((l) => /^tokenmeter_(period|limit)_/.test(l)).sort();
    expect(before).toContain('tokenmeter_period_tokens{user="restart-user",plan="pro"} 1801');
    expect(await first.stop('SIGTERM')).toBe(0);
    expect(first.stderr()).toContain('stopped');

    const second = await spawnServe({}, [], cwd);
    try {
      const after = (await scrape(second.httpUrl)).filter((l) => /^tokenmeter_(period|limit)_/.test(l)).sort();
      expect(after).toEqual(before);
      const usage = await getJson(`${second.httpUrl}/api/v1/usage/restart-user`);
      expect(usage.json.cost_usd).toBe('0.008755');
    } finally {
      expect(await second.stop('SIGINT')).toBe(0);
    }
  });

  it('SIGKILL mid-ingest, one NUL span in every batch: after a restart and the retries, the good spans are billed exactly once', async () => {
    const storage = join(mkdtempSync(join(tmpdir(), 'tm-kill-')), 'ledger');
    const batches = Array.from({ length: 30 }, (_, b) =>
      otlpJson(
        Array.from({ length: 10 }, (_, i) => ({
          spanId: (0x6000000000000000n + BigInt(b * 10 + i)).toString(16),
          user: i === 9 ? `kill\u0000${b}` : `kill-${i % 3}`,
          model: 'gpt-4o',
          input: 1000,
          output: 0,
        })),
        NOW_NANOS(),
      ),
    );
    const first = await spawnServe({ TOKENMETER_STORAGE: storage });
    // Ten batches in flight when the process is killed: some acknowledged, some not.
    for (const b of batches.slice(0, 10)) postOtlp(first.otlpUrl, b).catch(() => {});
    await new Promise((r) => setTimeout(r, 50));
    await first.stop('SIGKILL');
    const second = await spawnServe({ TOKENMETER_STORAGE: storage });
    try {
      // The senders retry every batch they have no acknowledgement for; replaying acknowledged ones is harmless too.
      for (const b of batches) {
        const r = await postOtlp(second.otlpUrl, b);
        expect(r.status).toBe(200);
        expect(JSON.parse(r.body.toString()).partialSuccess.rejectedSpans).toBe('1');
      }
      for (let u = 0; u < 3; u++) {
        const usage = await getJson(`${second.httpUrl}/api/v1/usage/kill-${u}`);
        expect([usage.json.requests, usage.json.tokens.input, usage.json.cost_usd]).toEqual([90, 90_000, '0.225']);
      }
      const lines = await scrape(second.httpUrl);
      expect(lines).toContain('tokenmeter_rejected_spans_total{reason="invalid_attribute"} 30');
      expect(lines).toContain('tokenmeter_rejected_requests_total{reason="internal_error"} 0');
    } finally {
      await second.stop('SIGTERM');
    }
  });

  it('refuses an invalid configuration with exit code 2 and the problem named', async () => {
    await expect(spawnServe({ TOKENMETER_STORAGE: '/tmp/x', TOKENMETER_OTLP_PORT: 'port' })).rejects.toThrow(
      /environment variable TOKENMETER_OTLP_PORT: server\.otlp_port: expected an integer from 0 to 65535, got "port"/,
    );
  });
});

const pgBin = findPostgres();

describe.skipIf(!pgBin)('two exporter processes sharing one PostgreSQL', () => {
  let pg: TestPostgres;
  let url: string;
  beforeAll(async () => {
    pg = await startPostgres();
    url = await pg.createDatabase('serve_replicas');
  });
  afterAll(async () => {
    await pg?.cleanup();
  });

  it('count a batch sent to both (and twice to one) exactly once', async () => {
    const a = await spawnServe({ TOKENMETER_STORAGE: url, TOKENMETER_REFRESH_INTERVAL: '1s' });
    const b = await spawnServe({ TOKENMETER_STORAGE: url, TOKENMETER_REFRESH_INTERVAL: '1s' });
    try {
      const spans = Array.from({ length: 50 }, (_, i) => ({
        spanId: (0x2000000000000000n + BigInt(i)).toString(16),
        user: `replica-user-${i % 5}`,
        model: 'gpt-4o',
        input: 1000,
        output: 100,
      }));
      const body = otlpJson(spans, NOW_NANOS());
      const results = await Promise.all([postOtlp(a.otlpUrl, body), postOtlp(b.otlpUrl, body), postOtlp(a.otlpUrl, body)]);
      expect(results.map((r) => r.status)).toEqual([200, 200, 200]);

      for (const e of [a, b]) {
        const u = await getJson(`${e.httpUrl}/api/v1/usage/replica-user-0`);
        expect(u.json.requests).toBe(10);
        // 10 × (1000 × 2.5 + 100 × 10) / 1e6
        expect(u.json.cost_usd).toBe('0.035');
        const summary = await getJson(`${e.httpUrl}/api/v1/summary`);
        expect(summary.json.totals.requests).toBe(50);
      }
      // Counters sum across replicas to exactly one count per span; the rest are duplicates.
      const priced = async (httpUrl: string, outcome: string) =>
        Number((await scrape(httpUrl)).find((l) => l.startsWith(`tokenmeter_ingested_spans_total{outcome="${outcome}"} `))!.split(' ')[1]);
      expect((await priced(a.httpUrl, 'priced')) + (await priced(b.httpUrl, 'priced'))).toBe(50);
      expect((await priced(a.httpUrl, 'duplicate')) + (await priced(b.httpUrl, 'duplicate'))).toBe(100);
      // Period gauges (max across replicas) agree once both have refreshed.
      await new Promise((r) => setTimeout(r, 1500));
      const gauge = async (httpUrl: string) => (await scrape(httpUrl)).find((l) => l.startsWith('tokenmeter_period_requests{user="replica-user-3",plan="free"} '));
      expect(await gauge(a.httpUrl)).toBe('tokenmeter_period_requests{user="replica-user-3",plan="free"} 10');
      expect(await gauge(b.httpUrl)).toBe('tokenmeter_period_requests{user="replica-user-3",plan="free"} 10');
    } finally {
      expect(await a.stop()).toBe(0);
      expect(await b.stop()).toBe(0);
    }
  });
});
