/**
 * `ledger.retention` and `ledger.dedup_window` on the real pipeline and embedded ledger, with an injected clock:
 * a replay inside the dedup window is a duplicate (counted once); per-call records older than the retention are
 * pruned (a replay after that is new), while the period totals are kept.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startExporter } from '../../src/exporter/index.js';
import { ManualClock } from '../../src/plans/index.js';
import { otlpJson, postOtlp, scrape } from '../exporter/harness.js';

const nanos = (iso: string) => BigInt(Date.parse(iso)) * 1_000_000n;

describe('ledger retention (real ledger, injected clock)', () => {
  it('keeps call records for the configured retention, then prunes them and keeps the period totals', async () => {
    const storage = join(mkdtempSync(join(tmpdir(), 'tm-retention-')), 'ledger');
    const clock = new ManualClock('2026-03-10T12:00:00Z');
    const opts = { storage, host: '127.0.0.1', otlpPort: 0, httpPort: 0, clock, log: () => {}, config: { ledger: { retention: '3d', dedup_window: '1d', refresh_interval: '0s' } } };
    const body = otlpJson([{ spanId: '6000000000000001', user: 'kept', model: 'gpt-4o', input: 100, output: 10 }], nanos('2026-03-10T11:00:00Z'));
    const run = async (at: string, expected: { outcome: string; periodTokens: number }) => {
      clock.set(at);
      const e = await startExporter(opts);
      try {
        expect((await postOtlp(e.otlpUrl, body)).status).toBe(200);
        const lines = await scrape(e.httpUrl);
        expect(lines, at).toContain(`tokenmeter_ingested_spans_total{outcome="${expected.outcome}"} 1`);
        expect(lines, at).toContain(`tokenmeter_period_tokens{user="kept",plan="free"} ${expected.periodTokens}`);
      } finally {
        await e.close();
      }
    };
    await run('2026-03-10T12:00:00Z', { outcome: 'priced', periodTokens: 110 });
    // Inside the dedup window (1d): the replay is a duplicate. (Past the window the embedded ledger forgets the id,
    // though the call record stays for the retention: the window is how long ids are remembered.)
    await run('2026-03-10T20:00:00Z', { outcome: 'duplicate', periodTokens: 110 });
    // Past the retention: pruned at start; the period total survived the prune, and the replay is counted as new.
    await run('2026-03-14T12:00:00Z', { outcome: 'priced', periodTokens: 220 });
  });
});
