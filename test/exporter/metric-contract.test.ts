/**
 * /metrics against DESIGN.md's metric table: every family, its kind and its label names exactly; the four
 * ingest outcomes; rejections by reason; and the per-user bound (max_users) keeping sums over users equal to the
 * per-plan totals.
 */
import { Decimal } from 'decimal.js';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeClock, SimplePlans } from './fakes.js';
import { getJson, otlpJson, postOtlp, scrape, startTestExporter, type GenAiSpanSpec, type TestExporter } from './harness.js';

const running: TestExporter[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((e) => e.close()));
});

/** DESIGN.md "Prometheus metrics": name → kind and label names. */
const DESIGN_TABLE: Record<string, { kind: 'counter' | 'gauge'; labels: string[] }> = {
  tokenmeter_tokens_total: { kind: 'counter', labels: ['plan', 'provider', 'model', 'type'] },
  tokenmeter_cost_usd_total: { kind: 'counter', labels: ['plan', 'provider', 'model', 'type'] },
  tokenmeter_requests_total: { kind: 'counter', labels: ['plan', 'provider', 'model', 'operation', 'outcome'] },
  tokenmeter_user_tokens_total: { kind: 'counter', labels: ['user', 'plan'] },
  tokenmeter_user_cost_usd_total: { kind: 'counter', labels: ['user', 'plan'] },
  tokenmeter_feature_cost_usd_total: { kind: 'counter', labels: ['feature', 'plan'] },
  tokenmeter_estimated_tokens_total: { kind: 'counter', labels: ['plan', 'provider', 'model'] },
  tokenmeter_unpriced_tokens_total: { kind: 'counter', labels: ['provider', 'model'] },
  tokenmeter_period_tokens: { kind: 'gauge', labels: ['user', 'plan'] },
  tokenmeter_period_requests: { kind: 'gauge', labels: ['user', 'plan'] },
  tokenmeter_period_cost_usd: { kind: 'gauge', labels: ['user', 'plan'] },
  tokenmeter_limit_tokens: { kind: 'gauge', labels: ['user', 'plan'] },
  tokenmeter_limit_requests: { kind: 'gauge', labels: ['user', 'plan'] },
  tokenmeter_limit_cost_usd: { kind: 'gauge', labels: ['user', 'plan'] },
  tokenmeter_period_end_timestamp_seconds: { kind: 'gauge', labels: ['plan'] },
  tokenmeter_ingested_spans_total: { kind: 'counter', labels: ['outcome'] },
};
/** Operational families beyond the table (exporter health), documented in src/contract/names.ts. */
const OPERATIONAL: Record<string, { kind: string; labels: string[] }> = {
  tokenmeter_rejected_spans_total: { kind: 'counter', labels: ['reason'] },
  tokenmeter_rejected_requests_total: { kind: 'counter', labels: ['reason'] },
  tokenmeter_ledger_commit_seconds: { kind: 'histogram', labels: [] },
  tokenmeter_ledger_up: { kind: 'gauge', labels: [] },
  tokenmeter_user_series: { kind: 'gauge', labels: [] },
  tokenmeter_user_overflow_total: { kind: 'counter', labels: [] },
  tokenmeter_build_info: { kind: 'gauge', labels: ['version', 'node_version'] },
  tokenmeter_otlp_requests_total: { kind: 'counter', labels: ['signal', 'code'] },
  tokenmeter_otlp_request_duration_seconds: { kind: 'histogram', labels: ['signal'] },
  tokenmeter_redated_spans_total: { kind: 'counter', labels: ['reason'] },
  // Issue 13: GenAI call spans without counts (billed, flagged), and the cost spans report themselves (never billed).
  tokenmeter_missing_usage_spans_total: { kind: 'counter', labels: ['source', 'reason'] },
  tokenmeter_reported_cost_usd_total: { kind: 'counter', labels: ['provider', 'model'] },
  tokenmeter_price_reload_total: { kind: 'counter', labels: ['outcome'] },
  tokenmeter_reservations_total: { kind: 'counter', labels: ['plan', 'outcome', 'limit'] },
  tokenmeter_user_refused_calls_total: { kind: 'counter', labels: ['user', 'plan'] },
  tokenmeter_reservations_expired_total: { kind: 'counter', labels: [] },
  tokenmeter_reservations_active: { kind: 'gauge', labels: [] },
  tokenmeter_reservation_streams: { kind: 'gauge', labels: [] },
  tokenmeter_reservation_actual_to_estimate_ratio: { kind: 'histogram', labels: [] },
};

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: string;
}
function parseSamples(lines: string[]): { kinds: Map<string, string>; samples: Sample[] } {
  const kinds = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of lines) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) kinds.set(type[1]!, type[2]!);
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-z_][a-z0-9_]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparsable sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-z_]+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: m[3]! });
  }
  return { kinds, samples };
}
const familyOf = (name: string, kinds: Map<string, string>) =>
  kinds.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '');

const AT = BigInt(new Date('2026-07-10T11:00:00Z').getTime()) * 1_000_000n;

/** A body with GenAI spans plus one plain HTTP span (not GenAI: ignored). */
function bodyWithPlainSpan(spans: GenAiSpanSpec[]): Buffer {
  const req = JSON.parse(otlpJson(spans, AT).toString()) as { resourceSpans: { scopeSpans: { spans: unknown[] }[] }[] };
  req.resourceSpans[0]!.scopeSpans[0]!.spans.push({
    traceId: '0af7651916cd43dd8448eb211c80319c',
    spanId: 'ffff000000000001',
    name: 'GET /health',
    kind: 2,
    startTimeUnixNano: String(AT - 1_000_000n),
    endTimeUnixNano: String(AT),
    attributes: [{ key: 'http.request.method', value: { stringValue: 'GET' } }],
  });
  return Buffer.from(JSON.stringify(req));
}

describe('/metrics matches DESIGN.md', () => {
  it('every family with its kind and exact label names; the four outcomes; rejections by reason', async () => {
    const plans = new SimplePlans({ free: { tokens: 50_000, requests: 10 }, pro: { tokens: 500_000, requests: 100, costUsd: new Decimal('20') } });
    const e = await startTestExporter({ clock: new FakeClock(new Date('2026-07-10T12:00:00Z')), plans });
    running.push(e);
    const spans: GenAiSpanSpec[] = [
      { spanId: 'f000000000000001', user: 'ann', plan: 'pro', feature: 'chat', model: 'gpt-4o', input: 1000, output: 100 },
      { spanId: 'f000000000000002', user: 'ben', model: 'my-private-model', input: 10, output: 5 },
      { spanId: 'f000000000000003', user: 'ann', plan: 'pro', model: 'gpt-4o', input: 3, output: 2, extra: { 'tokenmeter.usage.estimated': true } },
      { spanId: 'f000000000000004', user: 'ben', model: 'gpt-4o', input: -1, output: 5 },
      { spanId: 'f000000000000005', user: 'ben', model: 'gpt-4o', input: Number.MAX_SAFE_INTEGER, output: 5 },
      { spanId: 'f000000000000006', user: 'ben', model: '', input: 1, output: 1 },
    ];
    const body = bodyWithPlainSpan(spans);
    expect((await postOtlp(e.otlpUrl, body)).status).toBe(200);
    expect((await postOtlp(e.otlpUrl, body)).status).toBe(200); // the same batch again: duplicates
    expect((await postOtlp(e.otlpUrl, '{', 'application/json')).status).toBe(400);

    const lines = await scrape(e.httpUrl);
    const { kinds, samples } = parseSamples(lines);
    const expected = { ...DESIGN_TABLE, ...OPERATIONAL };
    // Exactly the table's families plus the operational ones: nothing missing, nothing extra.
    expect([...kinds.keys()].filter((n) => n.startsWith('tokenmeter_')).sort()).toEqual(Object.keys(expected).sort());
    for (const [name, spec] of Object.entries(expected)) expect(kinds.get(name), name).toBe(spec.kind);
    // Plus the process and Node.js runtime metrics (prom-client's default metrics, their own names and labels).
    for (const s of samples) {
      if (!s.name.startsWith('tokenmeter_')) {
        expect(s.name, 'a runtime metric').toMatch(/^(process|nodejs)_/);
        continue;
      }
      const family = familyOf(s.name, kinds);
      const spec = expected[family];
      expect(spec, s.name).toBeDefined();
      const labels = Object.keys(s.labels).filter((l) => !(spec!.kind === 'histogram' && l === 'le'));
      expect(labels, `${s.name} labels`).toEqual(spec!.labels);
    }
    // Every table family has samples for this input.
    for (const name of Object.keys(DESIGN_TABLE)) expect(samples.some((s) => s.name === name), name).toBe(true);

    const value = (name: string, labels: Record<string, string>) =>
      samples.find((s) => s.name === name && JSON.stringify(s.labels) === JSON.stringify(labels))?.value;
    // One batch: 3 priced (one of them unpriced but metered), 3 rejected, 1 ignored; the replay: 3 duplicates,
    // and its 3 rejected and 1 ignored spans are counted again (they never reach the ledger's dedup).
    expect(value('tokenmeter_ingested_spans_total', { outcome: 'priced' })).toBe('3');
    expect(value('tokenmeter_ingested_spans_total', { outcome: 'duplicate' })).toBe('3');
    expect(value('tokenmeter_ingested_spans_total', { outcome: 'ignored' })).toBe('2');
    expect(value('tokenmeter_ingested_spans_total', { outcome: 'rejected' })).toBe('6');
    expect(value('tokenmeter_ingested_spans_total', { outcome: 'superseded' })).toBe('0');
    expect(samples.filter((s) => s.name === 'tokenmeter_rejected_spans_total').map((s) => `${s.labels.reason} ${s.value}`).sort()).toEqual([
      'implausible_usage 4',
      'missing_model 2',
    ]);
    expect(samples.filter((s) => s.name === 'tokenmeter_rejected_requests_total').map((s) => `${s.labels.reason} ${s.value}`)).toEqual(['internal_error 0', 'malformed 1']);
    expect(value('tokenmeter_unpriced_tokens_total', { provider: 'openai', model: 'my-private-model' })).toBe('15');
    expect(value('tokenmeter_estimated_tokens_total', { plan: 'pro', provider: 'openai', model: 'gpt-4o' })).toBe('5');
  });
});

describe('max_users', () => {
  it('past the bound, sums over users still equal the per-plan totals and the ledger', async () => {
    const e = await startTestExporter({ clock: new FakeClock(new Date('2026-07-10T12:00:00Z')), config: { limits: { max_users: 3 } } });
    running.push(e);
    const plans = ['free', 'pro', 'team'];
    const spans: GenAiSpanSpec[] = Array.from({ length: 40 }, (_, i) => ({
      spanId: (0xe100000000000000n + BigInt(i)).toString(16),
      user: `user-${i % 11}`,
      plan: plans[i % 11 % 3]!,
      model: i % 2 ? 'gpt-4o' : 'claude-sonnet-4-5',
      provider: i % 2 ? 'openai' : 'anthropic',
      input: 100 + i * 37,
      output: 11 * i,
    }));
    // Two requests so both the per-call overflow path and the rollups are exercised.
    expect((await postOtlp(e.otlpUrl, otlpJson(spans.slice(0, 25), AT))).status).toBe(200);
    expect((await postOtlp(e.otlpUrl, otlpJson(spans.slice(25), AT))).status).toBe(200);

    const check = async () => {
      const { samples } = parseSamples(await scrape(e.httpUrl));
      const sum = (name: string, plan: string, filter: (s: Sample) => boolean = () => true) =>
        samples.filter((s) => s.name === name && s.labels.plan === plan && filter(s)).reduce((a, s) => a.plus(s.value), new Decimal(0)).toFixed();
      expect(samples.filter((s) => s.name === 'tokenmeter_period_tokens' && s.labels.user !== '__overflow__')).toHaveLength(3);
      expect(samples.some((s) => s.labels.user === '__overflow__')).toBe(true);
      const list = await getJson(`${e.httpUrl}/api/v1/usage?limit=100`);
      for (const plan of plans) {
        const fromLedger = (list.json.users as { plan: string; tokens: { total: number }; requests: number; cost_usd: string }[]).filter((u) => u.plan === plan);
        const ledgerTokens = fromLedger.reduce((a, u) => a + u.tokens.total, 0);
        const ledgerRequests = fromLedger.reduce((a, u) => a + u.requests, 0);
        const ledgerCost = fromLedger.reduce((a, u) => a.plus(u.cost_usd), new Decimal(0)).toFixed();
        const expectedTokens = spans.filter((s) => s.plan === plan).reduce((a, s) => a + s.input + s.output, 0);
        expect(ledgerTokens, plan).toBe(expectedTokens);
        expect(sum('tokenmeter_user_tokens_total', plan), plan).toBe(String(expectedTokens));
        expect(sum('tokenmeter_tokens_total', plan), plan).toBe(String(expectedTokens));
        expect(sum('tokenmeter_period_tokens', plan), plan).toBe(String(ledgerTokens));
        expect(sum('tokenmeter_period_requests', plan), plan).toBe(String(ledgerRequests));
        expect(sum('tokenmeter_period_cost_usd', plan), plan).toBe(ledgerCost);
        expect(sum('tokenmeter_user_cost_usd_total', plan), plan).toBe(ledgerCost);
        expect(sum('tokenmeter_cost_usd_total', plan), plan).toBe(ledgerCost);
      }
    };
    await check();
    // A full reload from the ledger (periodic refresh, or a restart) gives the same sums.
    await e.refresh();
    await check();
  });
});
