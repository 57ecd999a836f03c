/**
 * Month rollover with an injected clock, on the real pipeline and embedded ledger: at the boundary the period
 * gauges restart from zero and last month's users disappear; after a restart in the new month the gauges come
 * back from the ledger for the new month only.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startExporter } from '../../src/exporter/index.js';
import { ManualClock } from '../../src/plans/index.js';
import { getJson, otlpJson, postOtlp, scrape } from '../exporter/harness.js';

const nanos = (iso: string) => BigInt(Date.parse(iso)) * 1_000_000n;
const periodLines = async (url: string) => (await scrape(url)).filter((l) => /^tokenmeter_period_(tokens|requests|cost_usd|end_timestamp_seconds)\{/.test(l));

describe('billing period rollover (real ledger, injected clock)', () => {
  it('restarts the period gauges at the month boundary and after a restart', async () => {
    const storage = join(mkdtempSync(join(tmpdir(), 'tm-rollover-')), 'ledger');
    const clock = new ManualClock('2026-01-31T23:59:00Z');
    const opts = { storage, host: '127.0.0.1', otlpPort: 0, httpPort: 0, clock, log: () => {}, config: { ledger: { refresh_interval: '0s' } } };
    const first = await startExporter(opts);
    try {
      expect((await postOtlp(first.otlpUrl, otlpJson([{ spanId: '4000000000000001', user: 'jan', plan: 'pro', model: 'gpt-4o', input: 100, output: 10 }], nanos('2026-01-31T23:58:00Z')))).status).toBe(200);
      expect(await periodLines(first.httpUrl)).toEqual(
        expect.arrayContaining(['tokenmeter_period_tokens{user="jan",plan="pro"} 110', 'tokenmeter_period_end_timestamp_seconds{plan="pro"} 1769904000']),
      );
      clock.set('2026-02-01T00:00:05Z');
      const feb = await periodLines(first.httpUrl);
      expect(feb.filter((l) => l.includes('user='))).toEqual([]);
      expect(feb).toContain('tokenmeter_period_end_timestamp_seconds{plan="pro"} 1772323200');
      expect((await postOtlp(first.otlpUrl, otlpJson([{ spanId: '4000000000000002', user: 'feb', model: 'gpt-4o', input: 7, output: 0 }], nanos('2026-02-01T00:00:01Z')))).status).toBe(200);
      const usage = await getJson(`${first.httpUrl}/api/v1/usage/jan`);
      expect(usage.json.period.start).toBe('2026-02-01T00:00:00.000Z');
      expect(usage.json.requests).toBe(0);
    } finally {
      await first.close();
    }
    const second = await startExporter(opts);
    try {
      const lines = await periodLines(second.httpUrl);
      expect(lines.filter((l) => l.includes('user='))).toEqual([
        'tokenmeter_period_tokens{user="feb",plan="free"} 7',
        'tokenmeter_period_requests{user="feb",plan="free"} 1',
        'tokenmeter_period_cost_usd{user="feb",plan="free"} 0.0000175',
      ]);
    } finally {
      await second.close();
    }
  });
});
