/**
 * GET /api/v1/report against a hand-written ledger: at most MAX_CONCURRENT_REPORTS at once (429 + Retry-After
 * beyond), a ledger that cannot answer before the first line is a 503, one that fails mid-report cuts the body off
 * (no TOTAL line: never a short report that looks complete), and the bearer token guards it like the rest of the API.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_CONCURRENT_REPORTS } from '../../src/exporter/ops-handler.js';
import type { LedgerRecord } from '../../src/ledger/types.js';
import type { ReportCall } from '../../src/report/index.js';
import { httpRequest, startTestExporter, type TestExporter } from './harness.js';
import { LedgerDownError, MemoryLedger } from './fakes.js';

class ScanningLedger extends MemoryLedger {
  scanGate: Promise<void> | undefined;
  failAfter: number | undefined;
  calls: ReportCall[] = [];

  async *scanCalls(): AsyncGenerator<ReportCall> {
    if (this.scanGate) await this.scanGate;
    if (this.down) throw new LedgerDownError('connection refused');
    let n = 0;
    for (const c of this.calls) {
      if (this.failAfter !== undefined && n++ >= this.failAfter) throw new LedgerDownError('connection reset');
      yield c;
    }
  }
}

const running: TestExporter[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((e) => e.close()));
});

function call(day: number, cost: string): ReportCall {
  const end = Date.UTC(2026, 10, day, 12);
  return {
    userId: 'u1',
    plan: 'free',
    provider: 'openai',
    model: 'gpt-4o',
    usage: { input: 10, cache_read: 0, cache_write: 0, output: 1, reasoning: 0 },
    priced: true,
    estimated: false,
    totalCostUsd: cost,
    endTimeMillis: end,
    periodStart: '2026-11-01T00:00:00.000Z',
  } satisfies Partial<LedgerRecord> as ReportCall;
}

async function start(ledger: ScanningLedger, config = {}): Promise<TestExporter> {
  const { FakeClock } = await import('./fakes.js');
  const e = await startTestExporter({ ledger, clock: new FakeClock(new Date('2026-12-03T00:00:00Z')), config });
  running.push(e);
  return e;
}

describe('GET /api/v1/report', () => {
  it(`runs at most ${MAX_CONCURRENT_REPORTS} reports at once; more get 429 with Retry-After`, async () => {
    const ledger = new ScanningLedger();
    ledger.calls = [call(2, '0.1'), call(3, '0.2')];
    let release!: () => void;
    ledger.scanGate = new Promise<void>((r) => (release = r));
    const e = await start(ledger);
    const url = `${e.httpUrl}/api/v1/report?period=2026-11&by=day&format=csv`;
    const held = Array.from({ length: MAX_CONCURRENT_REPORTS }, () => httpRequest(url));
    // Let the held requests reach the ledger.
    await new Promise((r) => setTimeout(r, 200));
    const refused = await httpRequest(url);
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBe('5');
    release();
    for (const r of await Promise.all(held)) {
      expect(r.status).toBe(200);
      expect(r.body.toString().trim().split('\n').pop()).toBe('TOTAL,20,0,0,2,0,22,2,0,0.3');
    }
    expect((await httpRequest(url)).status).toBe(200);
  });

  it('a ledger down before the first line is a 503; one failing mid-report cuts the body off before TOTAL', async () => {
    const ledger = new ScanningLedger();
    ledger.calls = Array.from({ length: 20 }, (_, i) => call(1 + i, '0.01'));
    const e = await start(ledger);
    const url = `${e.httpUrl}/api/v1/report?period=2026-11&by=feature&format=csv`;
    ledger.down = true;
    const down = await httpRequest(url);
    expect(down.status).toBe(503);
    expect(down.headers['retry-after']).toBeDefined();
    ledger.down = false;
    ledger.failAfter = 5;
    const cut = await httpRequest(url).then(
      (r) => r.body.toString(),
      (err: Error) => `aborted: ${err.message}`,
    );
    expect(cut).not.toContain('TOTAL');
  });

  it('needs the bearer token when auth.api_token is set', async () => {
    const e = await start(new ScanningLedger(), { auth: { api_token: 'a-token-of-16-chars!' } });
    expect((await httpRequest(`${e.httpUrl}/api/v1/report?period=2026-11`)).status).toBe(401);
    const ok = await httpRequest(`${e.httpUrl}/api/v1/report?period=2026-11`, { headers: { authorization: 'Bearer a-token-of-16-chars!' } });
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body.toString()).total.requests).toBe(0);
  });
});
