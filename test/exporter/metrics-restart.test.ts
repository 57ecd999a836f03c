/**
 * A restarted (or newly added) exporter replica exposes every counter series the ledger knows at 0 before its first
 * call, so Prometheus' increase() counts all of that replica's growth (issue 19, point 4). Real exporter, real
 * embedded ledger on disk, real price book.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startExporter, type RunningExporter } from '../../src/exporter/index.js';
import { otlpJson, postOtlp, scrape } from './harness.js';

const dirs: string[] = [];
const running: RunningExporter[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((e) => e.close()));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function start(storage: string): Promise<RunningExporter> {
  const e = await startExporter({
    config: { plans: { free: { default: true, limits: { tokens: 1_000_000 } }, pro: { limits: { tokens: 5_000_000 } } } },
    storage,
    host: '127.0.0.1',
    otlpPort: 0,
    httpPort: 0,
    log: () => {},
  });
  running.push(e);
  return e;
}

const samples = (lines: string[], prefix: string) => lines.filter((l) => l.startsWith(prefix)).sort();

describe('series primed at 0 after a restart', () => {
  it('exposes the ledger\'s (plan, provider, model, type) series at 0, then counts from there', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tokenmeter-restart-'));
    dirs.push(dir);
    const storage = join(dir, 'ledger');
    const first = await start(storage);
    const body = otlpJson([
      { spanId: 'b000000000000001', user: 'alice', plan: 'pro', model: 'gpt-4o', input: 1000, output: 500, cacheRead: 200 },
      { spanId: 'b000000000000002', user: 'bob', model: 'a-model-without-a-price', input: 70, output: 30 },
      { spanId: 'b000000000000003', user: 'carol', model: 'gpt-4o-mini', input: 10, output: 5, extra: { 'tokenmeter.usage.estimated': true } },
    ]);
    expect((await postOtlp(first.otlpUrl, body)).status).toBe(200);
    const before = await scrape(first.httpUrl);
    expect(before).toContain('tokenmeter_tokens_total{plan="pro",provider="openai",model="gpt-4o",type="input"} 800');
    await first.close();
    running.splice(running.indexOf(first), 1);

    // The replacement: same ledger, fresh process state. Nothing sent yet.
    const second = await start(storage);
    const lines = await scrape(second.httpUrl);
    const tokens = samples(lines, 'tokenmeter_tokens_total{');
    // Every model the ledger has usage of, under every plan, for the token types it used, at 0.
    for (const plan of ['free', 'pro']) {
      for (const type of ['input', 'cache_read', 'output']) {
        expect(tokens).toContain(`tokenmeter_tokens_total{plan="${plan}",provider="openai",model="gpt-4o",type="${type}"} 0`);
        expect(lines).toContain(`tokenmeter_cost_usd_total{plan="${plan}",provider="openai",model="gpt-4o",type="${type}"} 0`);
      }
      expect(tokens).toContain(`tokenmeter_tokens_total{plan="${plan}",provider="openai",model="a-model-without-a-price",type="input"} 0`);
      expect(lines).toContain(`tokenmeter_estimated_tokens_total{plan="${plan}",provider="openai",model="gpt-4o-mini"} 0`);
    }
    // Types a model never used, and cost series of an unpriced model, are not invented.
    expect(tokens.some((l) => l.includes('model="gpt-4o",type="reasoning"'))).toBe(false);
    expect(lines.some((l) => l.startsWith('tokenmeter_cost_usd_total{') && l.includes('a-model-without-a-price'))).toBe(false);
    expect(lines).toContain('tokenmeter_unpriced_tokens_total{provider="openai",model="a-model-without-a-price"} 0');
    // Every primed counter is at 0; the per-user counters of this period's users too.
    for (const l of [...tokens, ...samples(lines, 'tokenmeter_cost_usd_total{'), ...samples(lines, 'tokenmeter_user_tokens_total{')]) {
      expect(l.endsWith(' 0'), l).toBe(true);
    }
    expect(lines).toContain('tokenmeter_user_tokens_total{user="alice",plan="pro"} 0');
    // The gauges still carry the ledger's exact totals.
    expect(lines).toContain('tokenmeter_period_tokens{user="alice",plan="pro"} 1500');

    // The next call counts from 0 on the primed series.
    const more = otlpJson([{ spanId: 'b000000000000004', user: 'alice', plan: 'pro', model: 'gpt-4o', input: 100, output: 1 }]);
    expect((await postOtlp(second.otlpUrl, more)).status).toBe(200);
    const after = await scrape(second.httpUrl);
    expect(after).toContain('tokenmeter_tokens_total{plan="pro",provider="openai",model="gpt-4o",type="input"} 100');
    expect(after).toContain('tokenmeter_tokens_total{plan="pro",provider="openai",model="gpt-4o",type="output"} 1');
  });

  it('a fresh ledger primes nothing (no invented series)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tokenmeter-restart-'));
    dirs.push(dir);
    const e = await start(join(dir, 'ledger'));
    const lines = await scrape(e.httpUrl);
    expect(samples(lines, 'tokenmeter_tokens_total{')).toEqual([]);
    expect(samples(lines, 'tokenmeter_cost_usd_total{')).toEqual([]);
  });
});

describe("period gauges from the journal ledger's live rows (CommitResult.touched)", () => {
  it("equal the ledger's totals after every commit: what a restarted exporter reads from the ledger, and the sums sent", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tokenmeter-restart-'));
    dirs.push(dir);
    const storage = join(dir, 'ledger');
    const first = await start(storage);
    const r1 = otlpJson([
      { spanId: 'c000000000000001', user: 'alice', plan: 'pro', model: 'gpt-4o', input: 1000, output: 500 },
      { spanId: 'c000000000000002', user: 'bob', model: 'gpt-4o-mini', input: 70, output: 30 },
      { spanId: 'c000000000000003', user: 'alice', plan: 'pro', model: 'gpt-4o-mini', input: 3, output: 1 },
    ]);
    const requests = [
      r1,
      otlpJson([{ spanId: 'c000000000000004', user: 'alice', plan: 'pro', model: 'gpt-4o', input: 10, output: 5 }, { spanId: 'c000000000000005', user: 'carol', model: 'gpt-4o', input: 1, output: 1 }]),
      r1, // every span a duplicate: nothing changes
      // alice billed under a second plan: her gauges sum both, under her one plan for limits.
      otlpJson([{ spanId: 'c000000000000006', user: 'alice', plan: 'free', model: 'gpt-4o-mini', input: 7, output: 0 }]),
      otlpJson([{ spanId: 'c000000000000007', user: 'bob', model: 'gpt-4o-mini', input: 1, output: 1 }]),
    ];
    const tokens = [
      { alice: 1504, bob: 100 },
      { alice: 1519, bob: 100, carol: 2 },
      { alice: 1519, bob: 100, carol: 2 },
      { alice: 1526, bob: 100, carol: 2 },
      { alice: 1526, bob: 102, carol: 2 },
    ];
    const period = (lines: string[]) => lines.filter((l) => /^tokenmeter_period_(tokens|requests|cost_usd)\{/.test(l)).sort();
    let last: string[] = [];
    for (const [k, body] of requests.entries()) {
      expect((await postOtlp(first.otlpUrl, body)).status).toBe(200);
      last = period(await scrape(first.httpUrl));
      const shown = Object.fromEntries(last.filter((l) => l.startsWith('tokenmeter_period_tokens{')).map((l) => [/user="([^"]*)"/.exec(l)![1], Number(l.split(' ')[1])]));
      expect(shown).toEqual(tokens[k]);
    }
    expect(last).toContain('tokenmeter_period_requests{user="alice",plan="free"} 4');
    await first.close();
    running.splice(running.indexOf(first), 1);
    // A fresh process reads every total from the ledger (loadPeriodRollups, not the commits' rows): the same gauges.
    const second = await start(storage);
    expect(period(await scrape(second.httpUrl))).toEqual(last);
  });
});
