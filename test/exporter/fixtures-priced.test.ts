/**
 * The fixture spans of every instrumentation convention (test/fixtures/otlp), made by the real OTel JS SDK and
 * serializer, sent over loopback to the exporter and priced to exact decimal strings. Each expected cost is
 * computed by hand from the catalog's list prices (USD per million tokens), shown next to it.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Attributes } from '@opentelemetry/api';
import { Decimal } from 'decimal.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonBody, makeSpans, protobufBody } from '../ingest/otel-spans.js';
import { postOtlp, startTestExporter, type TestExporter } from './harness.js';

interface Fixture {
  convention: string;
  scope?: string;
  spans: { name: string; scope?: string; attributes: Attributes; error?: string; expect: { kind: string } }[];
}
const FIXTURE_DIR = join(import.meta.dirname, '..', 'fixtures', 'otlp');
const fixtures = readdirSync(FIXTURE_DIR)
  .filter((f) => f.endsWith('.json'))
  .map((f) => JSON.parse(readFileSync(join(FIXTURE_DIR, f), 'utf8')) as Fixture);

const SONNET_45 = '0.00591'; // 100 × $3 + 1200 × $0.30 + 200 × $3.75 + 300 × $15
const O4_MINI = '0.0031625'; // 500 × $1.10 + 1500 × $0.275 + (180 + 320 reasoning) × $4.40
/** Per convention, the cost of each usage span in fixture order (`unpriced` = no catalog price, never free). */
const EXPECTED: Record<string, string[]> = {
  openinference: [SONNET_45, O4_MINI],
  openllmetry: [
    SONNET_45,
    '0.00035344', // claude-3-5-haiku: 12 × $0.80 + 2048 × $0.08 + 45 × $4
    SONNET_45,
    '0.001664', // gpt-4.1: 176 × $2 + 1024 × $0.50 + 100 × $8
  ],
  'otel-genai': [
    '0.000009', // gpt-4o-mini: 24 × $0.15 + 9 × $0.60
    '0.00158125', // o4-mini at the flex tier (half price): 500 × $0.55 + 1500 × $0.1375 + 500 × $2.20
    '0.00054', // gemini-2.5-flash: 800 × $0.30 + 120 × $2.50
    '0.00000016', // text-embedding-3-small: 8 × $0.02
  ],
  tokenmeter: [
    'unpriced', // sonnet 4.5 at Anthropic's priority tier: the catalog has no priority price, so unpriced (never guessed)
    '0.000275', // gpt-4o: 42 × $2.50 + 17 × $10
  ],
  'vercel-ai': [
    '0.0003675', // gpt-4o-mini: 500 × $0.15 + 1500 × $0.075 + 300 × $0.60
    SONNET_45,
    '0.000925', // gemini-2.5-flash: 1000 × $0.30 + (200 + 50 reasoning) × $2.50
    'unpriced', // o3-mini is not in the shipped catalog
    '0.00000024', // text-embedding-3-small: 12 × $0.02
  ],
};

describe('fixture spans of every convention, priced through the exporter', () => {
  let e: TestExporter;
  beforeAll(async () => {
    e = await startTestExporter();
  });
  afterAll(async () => {
    await e.close();
  });

  it('has an expectation for every convention', () => {
    expect(fixtures.map((f) => f.convention).sort()).toEqual(Object.keys(EXPECTED).sort());
  });

  for (const fixture of fixtures) {
    for (const encoding of ['protobuf', 'json'] as const) {
      it(`${fixture.convention} (${encoding})`, async () => {
        const sdkSpans = makeSpans(fixture.spans.map((s) => ({ name: s.name, attributes: s.attributes, error: s.error, scope: s.scope ?? fixture.scope })));
        const body = encoding === 'protobuf' ? protobufBody(sdkSpans) : jsonBody(sdkSpans);
        const res = await postOtlp(e.otlpUrl, body, encoding === 'protobuf' ? 'application/x-protobuf' : 'application/json');
        expect(res.status).toBe(200);
        const costs: string[] = [];
        fixture.spans.forEach((s, i) => {
          const { traceId, spanId } = sdkSpans[i]!.spanContext();
          const rec = e.ledger.records.get(`${traceId}/${spanId}`);
          if (s.expect.kind !== 'usage') {
            expect(rec, s.name).toBeUndefined();
            return;
          }
          expect(rec, s.name).toBeDefined();
          costs.push(rec!.priced ? rec!.totalCostUsd : 'unpriced');
          // The per-type costs add up exactly to the total.
          if (rec!.priced) expect(Object.values(rec!.costUsd).reduce((a, c) => a.plus(c), new Decimal(0)).toFixed()).toBe(rec!.totalCostUsd);
        });
        expect(costs).toEqual(EXPECTED[fixture.convention]);
      });
    }
  }
});
