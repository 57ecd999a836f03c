/**
 * Differential fuzz: extraction and the ledger apply one text rule (src/usage/record-text.ts), so no record that
 * passes extraction is refused by the ledger. Random GenAI spans carrying hostile strings (NUL, other C0/C1
 * controls, bidi overrides, lone surrogates, reserved ids, over-long values) in every string field go through
 * the real extraction, plan resolver, calendar and price book; every record that comes out must pass the
 * ledger's strict check and commit to a real embedded ledger, and read back the same after a reopen.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { toLedgerRecord } from '../../src/exporter/pipeline.js';
import { extractUsage, type DecodedSpan } from '../../src/ingest/index.js';
import type { AttributeMap, AttributeValue } from '../../src/ingest/types.js';
import { openLedger, validateRecord, type Ledger } from '../../src/ledger/ledger.js';
import type { LedgerRecord } from '../../src/ledger/types.js';
import { BillingCalendar, PlanResolver } from '../../src/plans/index.js';
import { PriceBook } from '../../src/pricing/index.js';
import { hostileString } from '../ingest/hostile-strings.js';

const plans = new PlanResolver(undefined, {});
const calendar = new BillingCalendar({});
const planPort = {
  planFor: (u: string, p: string | undefined) => plans.planFor(u, p),
  limitsFor: (u: string, p: string) => plans.limitsFor(u, p),
  periodFor: (at: Date) => calendar.periodFor(at),
  planNames: () => plans.planNames(),
};
const book = PriceBook.load();
const NOW = Date.parse('2026-12-03T09:00:00Z');

const hex = (n: number) => fc.uint8Array({ minLength: n, maxLength: n }).map((b) => Buffer.from(b).toString('hex'));
const maybe = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined, freq: 4 });
const count = fc.oneof({ arbitrary: fc.nat({ max: 5000 }), weight: 10 }, fc.constant(-1), hostileString);
const attrValue: fc.Arbitrary<AttributeValue> = fc.oneof(hostileString, fc.integer(), fc.boolean());

/** Which convention a span follows decides which keys carry the strings. */
const conventions = fc.constantFrom('genai', 'openllmetry', 'vercel', 'openinference');

const spanArb = fc
  .record({
    convention: conventions,
    traceId: hex(16),
    spanId: hex(8),
    provider: maybe(fc.oneof(fc.constantFrom('openai', 'anthropic'), hostileString)),
    model: maybe(fc.oneof(fc.constantFrom('gpt-4o-mini', 'claude-sonnet-4-5'), hostileString)),
    user: maybe(hostileString),
    plan: maybe(fc.oneof(fc.constantFrom('free', 'pro', 'team'), hostileString)),
    feature: maybe(hostileString),
    operation: maybe(fc.oneof(fc.constant('chat'), hostileString)),
    tier: maybe(hostileString),
    input: count,
    output: count,
    extra: fc.array(fc.tuple(hostileString, attrValue), { maxLength: 2 }),
    scope: hostileString,
    endOffsetMillis: fc.integer({ min: -40 * 86_400_000, max: 40 * 86_400_000 }),
  })
  .map((s): DecodedSpan => {
    const a: AttributeMap = Object.create(null) as AttributeMap;
    for (const [k, v] of s.extra) a[k] = v;
    const set = (k: string, v: AttributeValue | undefined) => {
      if (v !== undefined) a[k] = v;
    };
    if (s.convention === 'vercel') {
      a['ai.operationId'] = 'ai.generateText.doGenerate';
      set('ai.model.provider', s.provider);
      set('ai.model.id', s.model);
      set('ai.telemetry.metadata.userId', s.user);
      set('ai.telemetry.metadata.plan', s.plan);
      set('ai.telemetry.functionId', s.feature);
      set('ai.usage.inputTokens', s.input);
      set('ai.usage.outputTokens', s.output);
    } else if (s.convention === 'openinference') {
      a['openinference.span.kind'] = 'LLM';
      set('llm.provider', s.provider);
      set('llm.model_name', s.model);
      set('user.id', s.user);
      set('tokenmeter.plan', s.plan);
      set('tokenmeter.feature', s.feature);
      set('llm.token_count.prompt', s.input);
      set('llm.token_count.completion', s.output);
    } else {
      set('gen_ai.operation.name', s.operation ?? 'chat');
      set('gen_ai.provider.name', s.provider);
      set('gen_ai.response.model', s.model);
      set(s.convention === 'openllmetry' ? 'traceloop.association.properties.user_id' : 'user.id', s.user);
      set('tokenmeter.plan', s.plan);
      set('tokenmeter.feature', s.feature);
      set('openai.response.service_tier', s.tier);
      set('gen_ai.usage.input_tokens', s.input);
      set('gen_ai.usage.output_tokens', s.output);
      if (s.convention === 'openllmetry') a['llm.request.type'] = 'chat';
    }
    const end = BigInt(NOW + s.endOffsetMillis) * 1_000_000n;
    return {
      traceId: s.traceId,
      spanId: s.spanId,
      parentSpanId: '',
      name: 'chat',
      kind: 3,
      startTimeUnixNano: end - 1_000_000n,
      endTimeUnixNano: end,
      attributes: a,
      statusCode: 0,
      statusMessage: '',
      resource: Object.create(null) as AttributeMap,
      scope: { name: s.convention === 'openllmetry' ? `@traceloop/${s.scope}` : s.scope, version: '', attributes: Object.create(null) as AttributeMap },
    };
  });

const dir = mkdtempSync(join(tmpdir(), 'tm-agree-'));
let ledger: Ledger | undefined;
afterAll(async () => {
  await ledger?.close();
});

describe('extraction and the ledger agree on every record', () => {
  it('no record that extraction accepts is refused by the ledger (strict and trusted checks, real commit, reopen)', async () => {
    ledger = await openLedger(join(dir, 'ledger'));
    const committed: LedgerRecord[] = [];
    let accepted = 0;
    let rejected = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(spanArb, { minLength: 1, maxLength: 8 }), async (spans) => {
        const batch: LedgerRecord[] = [];
        for (const span of spans) {
          const r = extractUsage(span);
          if (r.kind !== 'usage') {
            if (r.kind === 'rejected') rejected++;
            continue;
          }
          accepted++;
          const rec = toLedgerRecord(r.record, planPort, book);
          expect(() => validateRecord(rec, 0)).not.toThrow();
          expect(() => validateRecord(rec, 0, 'trusted')).not.toThrow();
          batch.push(rec);
        }
        // The real ledger's commit: refuses nothing extraction accepted.
        const result = await ledger!.commit(batch);
        committed.push(...result.committed);
      }),
      { seed: 1414, numRuns: 500 },
    );
    // Both sides of the property were exercised.
    expect(accepted).toBeGreaterThan(100);
    expect(rejected).toBeGreaterThan(100);

    // What the ledger holds reads back the same after a reopen (no string changed on its way to disk).
    const periods = [...new Set(committed.map((r) => r.periodStart))];
    const before = new Map<string, unknown>();
    for (const p of periods) before.set(p, await ledger.loadPeriodRollups(p));
    await ledger.close();
    ledger = await openLedger(join(dir, 'ledger'));
    for (const p of periods) expect(sortRollups(await ledger.loadPeriodRollups(p))).toEqual(sortRollups(before.get(p) as never[]));
    const users = new Set(committed.map((r) => r.userId));
    for (const p of periods) for (const r of await ledger.loadPeriodRollups(p)) expect(users.has(r.userId)).toBe(true);
  });
});

function sortRollups<T extends { userId: string; plan: string }>(rows: T[]): T[] {
  return [...rows].sort((a, b) => (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : a.plan < b.plan ? -1 : a.plan > b.plan ? 1 : 0));
}
