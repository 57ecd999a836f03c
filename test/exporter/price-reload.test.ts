/**
 * Issue 18, point 4 in process: `pricing.reload_interval` re-reads the prices on a timer through the same
 * validation as SIGHUP; an unchanged source is not swapped, a failing one is logged once per distinct error (not
 * every interval) and counted every time. The SIGHUP path of the real `tokenmeter serve` is in
 * test/e2e/serve-price-reload.test.ts.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { validateConfig } from '../../src/config/index.js';
import { displayMoney, ingestDecoders } from '../../src/exporter/adapters.js';
import { loadPricing, startExporter, type ExporterPorts, type LoadedPricing, type RunningExporter } from '../../src/exporter/index.js';
import { extractUsage } from '../../src/ingest/index.js';
import { getJson, otlpJson, postOtlp, scrape } from './harness.js';
import { LedgerDownError, MemoryLedger, SimplePlans } from './fakes.js';

const running: RunningExporter[] = [];
afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(running.splice(0).map((e) => e.close()));
});

const overrides = (rate: string) => [{ provider: 'acme', model: 'acme-large', prices_usd_per_mtok: { input: rate, output: '0' } }];

async function start(load: () => LoadedPricing, logs: string[]): Promise<RunningExporter> {
  const config = validateConfig(
    { server: { host: '127.0.0.1', otlp_port: 0, http_port: 0 }, ledger: { refresh_interval: '0s' }, pricing: { overrides: overrides('2'), reload_interval: '10s' } },
    'test',
  );
  const initial = loadPricing(config.pricing);
  const ports: ExporterPorts<unknown> = {
    ledger: new MemoryLedger(),
    plans: new SimplePlans(),
    pricing: initial.pricing,
    pricingFingerprint: initial.fingerprint,
    decoders: ingestDecoders(config.limits.max_decompressed_bytes) as ExporterPorts<unknown>['decoders'],
    extract: (s) => extractUsage(s as never),
    isUnavailable: (err) => err instanceof LedgerDownError,
    display: displayMoney(config),
  };
  const e = await startExporter({ resolvedConfig: config, ports, loadPricing: load, log: (l) => logs.push(l) });
  running.push(e);
  return e;
}

const reloadCounts = async (e: RunningExporter) =>
  Object.fromEntries(
    (await scrape(e.httpUrl)).flatMap((l) => {
      const m = /^tokenmeter_price_reload_total\{outcome="(\w+)"\} (\S+)$/.exec(l);
      return m ? [[m[1]!, Number(m[2])]] : [];
    }),
  );

let seq = 0;
async function callCost(e: RunningExporter, user: string): Promise<string> {
  const spanId = `9${(++seq).toString(16).padStart(15, '0')}`;
  expect((await postOtlp(e.otlpUrl, otlpJson([{ spanId, user, provider: 'acme', model: 'acme-large', input: 1_000_000, output: 0 }]))).status).toBe(200);
  return (await getJson(`${e.httpUrl}/api/v1/usage/${user}`)).json.cost_usd as string;
}

describe('pricing.reload_interval', () => {
  it('reloads on the interval: unchanged is not swapped, a change applies, a failure keeps the old prices and is logged once', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    let source: () => LoadedPricing = () => loadPricing({ overrides: overrides('2'), reload_interval: 10_000 });
    const logs: string[] = [];
    const e = await start(() => source(), logs);

    vi.advanceTimersByTime(10_000);
    expect(await reloadCounts(e)).toEqual({ success: 0, unchanged: 1, failure: 0 });
    expect(logs.filter((l) => l.includes('interval'))).toEqual([]);

    source = () => loadPricing({ overrides: overrides('3'), reload_interval: 10_000 });
    vi.advanceTimersByTime(10_000);
    expect(await reloadCounts(e)).toEqual({ success: 1, unchanged: 1, failure: 0 });
    expect(await callCost(e, 'a')).toBe('3');

    source = () => loadPricing({ overrides: overrides('-3'), reload_interval: 10_000 });
    vi.advanceTimersByTime(30_000);
    expect(await reloadCounts(e)).toEqual({ success: 1, unchanged: 1, failure: 3 });
    // Three failures, one log line: the same error is not repeated every interval.
    expect(logs.filter((l) => l.includes('refused'))).toHaveLength(1);
    expect(logs.find((l) => l.includes('refused'))).toMatch(/^interval: the new prices were refused, the prices in use stay: .*input/);
    expect(await callCost(e, 'b')).toBe('3');
  });

  it('reloadPrices without a price source is a counted failure, never a crash', async () => {
    const config = validateConfig({ server: { host: '127.0.0.1', otlp_port: 0, http_port: 0 }, ledger: { refresh_interval: '0s' } }, 'test');
    const initial = loadPricing(config.pricing);
    const e = await startExporter({
      resolvedConfig: config,
      ports: {
        ledger: new MemoryLedger(),
        plans: new SimplePlans(),
        pricing: initial.pricing,
        decoders: ingestDecoders(config.limits.max_decompressed_bytes) as ExporterPorts<unknown>['decoders'],
        extract: (s) => extractUsage(s as never),
        isUnavailable: () => false,
        display: displayMoney(config),
      },
      log: () => {},
    });
    running.push(e);
    expect(e.reloadPrices('SIGHUP')).toEqual({ outcome: 'failure', error: 'this exporter was started without a price source to reload from' });
    expect((await reloadCounts(e)).failure).toBe(1);
  });
});
