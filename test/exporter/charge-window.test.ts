/**
 * Issue 14, point 2: the billing period and the price date came from the span's end time, which the client sets.
 * Backdated calls left the current period (and its limits), calls dated before their model's catalog entry were
 * stored at cost 0, future dates landed in 2028 or 2554. The rule now (DESIGN.md, docs/configuration): a call whose
 * end time is in [arrival − ingest.late_arrival_window, arrival + ingest.clock_skew] is charged to the period and
 * price of its end time (capped at the arrival), any other to those of its arrival; the end time is kept.
 * Through the real OTLP server (fake clock, in-memory ledger, real decoders and price book).
 */
import { Decimal } from 'decimal.js';
import { afterEach, describe, expect, it } from 'vitest';
import { chargeInstant, toLedgerRecord } from '../../src/exporter/pipeline.js';
import { PriceBook } from '../../src/pricing/index.js';
import { FakeClock, SimplePlans } from './fakes.js';
import { getJson, otlpJson, postOtlp, scrape, startTestExporter, type TestExporter } from './harness.js';

const running: TestExporter[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((e) => e.close()));
});

const H = 3_600_000;
const DAY = 24 * H;
const nanos = (ms: number) => BigInt(ms) * 1_000_000n;
const book = PriceBook.load({
  overrides: [{ provider: 'acme', model: 'acme-1', effective_from: '2026-12-01', prices_usd_per_mtok: { input: '1', output: '2' } }],
});

async function start(at: string, config = {}): Promise<{ e: TestExporter; clock: FakeClock }> {
  const clock = new FakeClock(new Date(at));
  const e = await startTestExporter({ clock, pricing: book, config, plans: new SimplePlans({ free: { tokens: 50_000, requests: 10 } }) });
  running.push(e);
  return { e, clock };
}

let seq = 0;
const sid = () => (++seq).toString(16).padStart(16, '0');

function gpt4oMini(input: number, output: number, at: Date): string {
  const p = book.priceStrings({ provider: 'openai', model: 'gpt-4o-mini', usage: { input, cache_read: 0, cache_write: 0, output, reasoning: 0 }, at });
  if (!p.priced) throw new Error('gpt-4o-mini must be priced');
  return p.totalUsd;
}

function sample(lines: string[], prefix: string): string | undefined {
  return lines.find((l) => l.startsWith(prefix + ' '))?.split(' ')[1];
}

describe('which period and price a call is charged to', () => {
  it('chargeInstant: inside the window the end time (capped at the arrival), outside it the arrival', () => {
    const w = { lateArrivalMillis: 6 * H, clockSkewMillis: 5 * 60_000 };
    const now = Date.parse('2026-12-10T12:00:00Z');
    expect(chargeInstant(now - 6 * H, now, w)).toEqual({ atMillis: now - 6 * H });
    expect(chargeInstant(now - 6 * H - 1, now, w)).toEqual({ atMillis: now, redated: 'late' });
    expect(chargeInstant(now + 5 * 60_000, now, w)).toEqual({ atMillis: now });
    expect(chargeInstant(now + 5 * 60_000 + 1, now, w)).toEqual({ atMillis: now, redated: 'future' });
    expect(chargeInstant(now + 1000, now, w)).toEqual({ atMillis: now });
  });

  it('a free user at their limit backdating 100 calls by 35 days: all charged to this period, at today\'s price; event time kept', async () => {
    const { e, clock } = await start('2026-12-10T12:00:00Z');
    const now = clock.now().getTime();
    // At the limit first (10 requests).
    await postOtlp(e.otlpUrl, otlpJson(Array.from({ length: 10 }, () => ({ spanId: sid(), user: 'frank', model: 'gpt-4o-mini', input: 100, output: 0 })), nanos(now - 60_000)));
    const back = now - 35 * DAY;
    const res = await postOtlp(
      e.otlpUrl,
      otlpJson(Array.from({ length: 100 }, () => ({ spanId: sid(), user: 'frank', model: 'gpt-4o-mini', input: 100_000, output: 1000 })), nanos(back)),
    );
    expect(res.status).toBe(200);
    const u = await getJson(`${e.httpUrl}/api/v1/usage/frank`);
    expect(u.json.period.start).toBe('2026-12-01T00:00:00.000Z');
    expect(u.json.requests).toBe(110);
    expect(u.json.tokens.total).toBe(10 * 100 + 100 * 101_000);
    const expected = new Decimal(gpt4oMini(100, 0, clock.now())).times(10).plus(new Decimal(gpt4oMini(100_000, 1000, clock.now())).times(100));
    expect(u.json.cost_usd).toBe(expected.toFixed());
    expect(u.json.ratios.requests).toBe(11);
    const lines = await scrape(e.httpUrl);
    expect(sample(lines, 'tokenmeter_period_requests{user="frank",plan="free"}')).toBe('110');
    expect(sample(lines, 'tokenmeter_redated_spans_total{reason="late"}')).toBe('100');
    // The span's own end time is kept on the record (reporting), the period is the arrival's.
    const rec = [...e.ledger.records.values()].find((r) => r.endTimeMillis === back);
    expect(rec?.periodStart).toBe('2026-12-01T00:00:00.000Z');
  });

  it('future dates (2028, 2554, the largest int64) are charged to now', async () => {
    const { e, clock } = await start('2026-12-10T12:00:00Z');
    for (const end of [nanos(Date.parse('2028-01-01T00:00:00Z')), nanos(Date.parse('2554-07-21T00:00:00Z')), 2n ** 63n - 1n]) {
      expect((await postOtlp(e.otlpUrl, otlpJson([{ spanId: sid(), user: 'fiona', model: 'gpt-4o-mini', input: 1000, output: 10 }], end))).status).toBe(200);
    }
    const u = await getJson(`${e.httpUrl}/api/v1/usage/fiona`);
    expect([u.json.requests, u.json.tokens.total]).toEqual([3, 3030]);
    expect(u.json.cost_usd).toBe(new Decimal(gpt4oMini(1000, 10, clock.now())).times(3).toFixed());
    for (const r of e.ledger.records.values()) expect(r.periodStart).toBe('2026-12-01T00:00:00.000Z');
    expect(sample(await scrape(e.httpUrl), 'tokenmeter_redated_spans_total{reason="future"}')).toBe('3');
  });

  it('period rollover: a call that ended 30 min before midnight and arrives 2 h after it stays in its own month; one 7 h old moves to the new one', async () => {
    const { e } = await start('2026-12-01T02:00:00Z');
    const lateOk = Date.parse('2026-11-30T23:30:00Z');
    const tooLate = Date.parse('2026-11-30T19:00:00Z');
    await postOtlp(e.otlpUrl, otlpJson([{ spanId: 'a1a1a1a1a1a1a1a1', user: 'rita', model: 'gpt-4o-mini', input: 500, output: 5 }], nanos(lateOk)));
    await postOtlp(e.otlpUrl, otlpJson([{ spanId: 'a2a2a2a2a2a2a2a2', user: 'rita', model: 'gpt-4o-mini', input: 700, output: 7 }], nanos(tooLate)));
    const byId = new Map([...e.ledger.records.values()].map((r) => [r.spanId, r]));
    expect(byId.get('a1a1a1a1a1a1a1a1')?.periodStart).toBe('2026-11-01T00:00:00.000Z');
    expect(byId.get('a2a2a2a2a2a2a2a2')?.periodStart).toBe('2026-12-01T00:00:00.000Z');
    // The current period's gauges and API see exactly the one charged to December.
    const u = await getJson(`${e.httpUrl}/api/v1/usage/rita`);
    expect([u.json.requests, u.json.tokens.total]).toEqual([1, 707]);
  });

  it('clock skew at the rollover: a call dated 2 min ahead of a clock at 23:59 is charged to the current month, not the next', async () => {
    const { e } = await start('2026-11-30T23:59:00Z');
    await postOtlp(e.otlpUrl, otlpJson([{ spanId: 'a3a3a3a3a3a3a3a3', user: 'sam', model: 'gpt-4o-mini', input: 100, output: 1 }], nanos(Date.parse('2026-12-01T00:01:00Z'))));
    expect([...e.ledger.records.values()][0]?.periodStart).toBe('2026-11-01T00:00:00.000Z');
    const u = await getJson(`${e.httpUrl}/api/v1/usage/sam`);
    expect(u.json.requests).toBe(1);
  });

  it('configurable windows: with late_arrival_window 1h a call 2 h old is charged to its arrival', async () => {
    const { e } = await start('2026-12-10T12:00:00Z', { ingest: { late_arrival_window: '1h', clock_skew: '10s' } });
    await postOtlp(e.otlpUrl, otlpJson([{ spanId: 'a4a4a4a4a4a4a4a4', user: 'tia', model: 'gpt-4o-mini', input: 1, output: 1 }], nanos(Date.parse('2026-12-10T10:00:00Z'))));
    await postOtlp(e.otlpUrl, otlpJson([{ spanId: 'a5a5a5a5a5a5a5a5', user: 'tia', model: 'gpt-4o-mini', input: 1, output: 1 }], nanos(Date.parse('2026-12-10T12:00:30Z'))));
    expect(sample(await scrape(e.httpUrl), 'tokenmeter_redated_spans_total{reason="late"}')).toBe('1');
    expect(sample(await scrape(e.httpUrl), 'tokenmeter_redated_spans_total{reason="future"}')).toBe('1');
  });

  it('a call dated before its model\'s catalog entry is priced at its arrival, never stored at cost 0', async () => {
    const { e } = await start('2026-12-01T03:00:00Z');
    // Inside the late window but before acme-1's effective_from (2026-12-01): unpriced at its end time.
    await postOtlp(
      e.otlpUrl,
      otlpJson([{ spanId: 'a6a6a6a6a6a6a6a6', user: 'uma', provider: 'acme', model: 'acme-1', input: 1_000_000, output: 1_000_000 }], nanos(Date.parse('2026-11-30T23:00:00Z'))),
    );
    // Backdated far before the entry: charged to the arrival.
    await postOtlp(
      e.otlpUrl,
      otlpJson([{ spanId: 'a7a7a7a7a7a7a7a7', user: 'uma', provider: 'acme', model: 'acme-1', input: 1_000_000, output: 0 }], nanos(Date.parse('2025-01-01T00:00:00Z'))),
    );
    const recs = [...e.ledger.records.values()];
    expect(recs.map((r) => [r.spanId, r.priced, r.totalCostUsd])).toEqual([
      ['a6a6a6a6a6a6a6a6', true, '3'],
      ['a7a7a7a7a7a7a7a7', true, '1'],
    ]);
    // The first stays in November (its end time is inside the window), at the price of its arrival.
    expect(recs[0]?.periodStart).toBe('2026-11-01T00:00:00.000Z');
    expect(sample(await scrape(e.httpUrl), 'tokenmeter_unpriced_tokens_total{provider="acme",model="acme-1"}')).toBeUndefined();
  });

  it('toLedgerRecord keeps the span end time while charging another instant', () => {
    const plans = new SimplePlans();
    const rec = toLedgerRecord(
      {
        traceId: '0af7651916cd43dd8448eb211c80319c',
        spanId: 'b7ad6b7169203331',
        endTimeMillis: Date.parse('2020-01-01T00:00:00Z'),
        provider: 'openai',
        rawModel: 'gpt-4o-mini',
        operation: 'chat',
        usage: { input: 10, cache_read: 0, cache_write: 0, output: 0, reasoning: 0 },
        estimated: false,
        userId: 'u',
        outcome: 'success',
        source: 'tokenmeter',
      },
      plans,
      book,
      undefined,
      Date.parse('2026-12-10T12:00:00Z'),
    );
    expect(rec.endTimeMillis).toBe(Date.parse('2020-01-01T00:00:00Z'));
    expect(rec.periodStart).toBe('2026-12-01T00:00:00.000Z');
  });
});
