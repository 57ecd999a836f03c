/**
 * Issue 14, point 3: a user has one plan per period for limits (src/exporter/period-plan.ts). An unconfigured user
 * splitting calls across free, pro and team used to be seen at 0.9 / 0.09 / 0.0225 by `?min_ratio=`, the
 * (user, plan) gauges and so every alert, while `/api/v1/usage/{user}` said 2.7. And users folded into
 * `__overflow__` by max_users had no limit gauges at all. Real exporter, embedded ledger, default plans.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Decimal } from 'decimal.js';
import { afterEach, describe, expect, it } from 'vitest';
import { startExporter, type RunningExporter } from '../../src/exporter/index.js';
import { PriceBook } from '../../src/pricing/index.js';
import { getJson, otlpJson, postOtlp, scrape } from '../exporter/harness.js';

const running: RunningExporter[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((e) => e.close()));
});
async function start(storage: string, config = {}): Promise<RunningExporter> {
  const e = await startExporter({ storage, host: '127.0.0.1', otlpPort: 0, httpPort: 0, log: () => {}, config: { ledger: { refresh_interval: '0s' }, ...config } });
  running.push(e);
  return e;
}
const book = PriceBook.load();
function cost(input: number, output: number): Decimal {
  const p = book.priceStrings({ provider: 'openai', model: 'gpt-4o-mini', usage: { input, cache_read: 0, cache_write: 0, output, reasoning: 0 }, at: new Date() });
  if (!p.priced) throw new Error('gpt-4o-mini must be priced');
  return new Decimal(p.totalUsd);
}
let seq = 0;
const sid = () => `7${(++seq).toString(16).padStart(15, '0')}`;
const gauges = (lines: string[], user: string) => lines.filter((l) => /^tokenmeter_(period|limit)_/.test(l) && l.includes(`user="${user}"`)).sort();

describe('one plan per user and period for limits', () => {
  it('9 calls each as free, pro and team: gauges, ?min_ratio= and the user API agree on free at ratio 2.7; after a restart too', async () => {
    const storage = join(mkdtempSync(join(tmpdir(), 'tm-plans-')), 'ledger');
    const e = await start(storage);
    const spans = ['free', 'pro', 'team'].flatMap((plan) => Array.from({ length: 9 }, () => ({ spanId: sid(), user: 'splitter', plan, model: 'gpt-4o-mini', input: 1000, output: 100 })));
    expect((await postOtlp(e.otlpUrl, otlpJson(spans))).status).toBe(200);
    const expectedCost = cost(1000, 100).times(27).toFixed();

    const user = await getJson(`${e.httpUrl}/api/v1/usage/splitter`);
    expect(user.json.plan).toBe('free');
    expect([user.json.requests, user.json.tokens.total, user.json.cost_usd]).toEqual([27, 29_700, expectedCost]);
    expect(user.json.ratios.requests).toBe(2.7);

    const list = await getJson(`${e.httpUrl}/api/v1/usage?min_ratio=1`);
    expect(list.json.users).toHaveLength(1);
    expect(list.json.users[0]).toMatchObject({ user: 'splitter', plan: 'free', requests: 27, cost_usd: expectedCost, max_ratio: 2.7 });
    expect((await getJson(`${e.httpUrl}/api/v1/usage?plan=pro`)).json.users).toEqual([]);

    const want = [
      'tokenmeter_limit_requests{user="splitter",plan="free"} 10',
      'tokenmeter_limit_tokens{user="splitter",plan="free"} 50000',
      `tokenmeter_period_cost_usd{user="splitter",plan="free"} ${expectedCost}`,
      'tokenmeter_period_requests{user="splitter",plan="free"} 27',
      'tokenmeter_period_tokens{user="splitter",plan="free"} 29700',
    ];
    const lines = await scrape(e.httpUrl);
    expect(gauges(lines, 'splitter')).toEqual(want);
    // The counters keep the plan each call was billed under.
    for (const plan of ['free', 'pro', 'team']) expect(lines).toContain(`tokenmeter_user_tokens_total{user="splitter",plan="${plan}"} 9900`);

    await e.close();
    const again = await start(storage);
    expect(gauges(await scrape(again.httpUrl), 'splitter')).toEqual(want);
  });

  it('past max_users, a user over a limit still has their own limit and period gauges; sums over users stay exact', async () => {
    const storage = join(mkdtempSync(join(tmpdir(), 'tm-plans-')), 'ledger');
    const e = await start(storage, { limits: { max_users: 2 } });
    const small = ['a1', 'a2', 'a3', 'a4'].map((u) => ({ spanId: sid(), user: u, model: 'gpt-4o-mini', input: 10, output: 0 }));
    await postOtlp(e.otlpUrl, otlpJson(small));
    // `heavy` arrives after the bound is reached, with 12 calls: over the free plan's 10 requests.
    const heavy = Array.from({ length: 12 }, () => ({ spanId: sid(), user: 'heavy', model: 'gpt-4o-mini', input: 100, output: 0 }));
    await postOtlp(e.otlpUrl, otlpJson(heavy));
    for (const lines of [await scrape(e.httpUrl), (await e.refresh(), await scrape(e.httpUrl))]) {
      expect(gauges(lines, 'heavy')).toEqual([
        'tokenmeter_limit_requests{user="heavy",plan="free"} 10',
        'tokenmeter_limit_tokens{user="heavy",plan="free"} 50000',
        `tokenmeter_period_cost_usd{user="heavy",plan="free"} ${cost(100, 0).times(12).toFixed()}`,
        'tokenmeter_period_requests{user="heavy",plan="free"} 12',
        'tokenmeter_period_tokens{user="heavy",plan="free"} 1200',
      ]);
      // Exact sums over users (the overflow included), counters and gauges.
      const sum = (prefix: string) => lines.filter((l) => l.startsWith(prefix)).reduce((s, l) => s.plus(l.split(' ')[1]!), new Decimal(0)).toFixed();
      expect(sum('tokenmeter_period_tokens{')).toBe('1240');
      expect(sum('tokenmeter_period_requests{')).toBe('16');
      expect(sum('tokenmeter_period_cost_usd{')).toBe(cost(10, 0).times(4).plus(cost(100, 0).times(12)).toFixed());
      expect(sum('tokenmeter_user_tokens_total{')).toBe('1240');
    }
    // The API and the ledger know it too.
    const list = await getJson(`${e.httpUrl}/api/v1/usage?min_ratio=1`);
    expect(list.json.users.map((u: { user: string }) => u.user)).toEqual(['heavy']);
  });
});
