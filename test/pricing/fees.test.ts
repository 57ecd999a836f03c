/**
 * Per-call fees (web search, search grounding): table cases worked out by hand from the catalog's rates
 * (USD per 1,000 calls): fee = calls × rate / 1,000, exact; total = the five token costs + the fees.
 */
import { describe, it, expect } from 'vitest';
import { PriceBook, PriceCatalogError } from '../../src/pricing/index.js';
import type { ServiceTier, ToolCalls } from '../../src/pricing/index.js';
import type { Usage } from '../../src/usage/usage.js';
import { u, M } from './helpers.js';

const NOW = new Date('2026-11-24T12:00:00Z');

interface Case {
  name: string;
  provider: string;
  model: string;
  usage: Usage;
  toolCalls: ToolCalls;
  tier?: ServiceTier;
  speed?: 'fast';
  processing?: 'regional';
  /** Token costs total, fee total, grand total. */
  tokens: string;
  fee: string;
  total: string;
}

const cases: Case[] = [
  // Anthropic: $10 per 1,000 searches (usage.server_tool_use.web_search_requests).
  { name: 'claude-sonnet-4-6, 3 web searches', provider: 'anthropic', model: 'claude-sonnet-4-6', usage: u(10000, 0, 0, 1000), toolCalls: { web_search: 3 }, tokens: '0.045', fee: '0.03', total: '0.075' },
  { name: 'claude-opus-4-8 batch: the fee is not halved', provider: 'anthropic', model: 'claude-opus-4-8', tier: 'batch', usage: u(M, 0, 0, 0), toolCalls: { web_search: 1 }, tokens: '2.5', fee: '0.01', total: '2.51' },
  { name: 'claude-opus-4-6 fast mode x6 and regional x1.1: the fee is not multiplied', provider: 'anthropic', model: 'claude-opus-4-6', speed: 'fast', processing: 'regional', usage: u(1000), toolCalls: { web_search: 7 }, tokens: '0.033', fee: '0.07', total: '0.103' },
  { name: 'claude-haiku-4-5 on Bedrock, 1,000 searches', provider: 'aws.bedrock', model: 'anthropic.claude-haiku-4-5-20251001-v1:0', usage: u(0), toolCalls: { web_search: 1000 }, tokens: '0', fee: '10', total: '10' },
  { name: 'zero searches: no fee line', provider: 'anthropic', model: 'claude-sonnet-4-6', usage: u(1000), toolCalls: { web_search: 0 }, tokens: '0.003', fee: '', total: '0.003' },
  // OpenAI: web_search $10 / 1k; web_search_preview $25 / 1k on gpt-4o / gpt-4.1 families, $10 on reasoning models.
  { name: 'gpt-5.5 web_search x2', provider: 'openai', model: 'gpt-5.5', usage: u(1000, 0, 0, 100), toolCalls: { web_search: 2 }, tokens: '0.008', fee: '0.02', total: '0.028' },
  { name: 'gpt-4o web_search_preview x2 at $25', provider: 'openai', model: 'gpt-4o', usage: u(1000, 0, 0, 100), toolCalls: { web_search_preview: 2 }, tokens: '0.0035', fee: '0.05', total: '0.0535' },
  { name: 'gpt-4.1-mini both tools', provider: 'openai', model: 'gpt-4.1-mini', usage: u(1000), toolCalls: { web_search: 1, web_search_preview: 1 }, tokens: '0.0004', fee: '0.035', total: '0.0354' },
  { name: 'o3 web_search_preview at $10', provider: 'openai', model: 'o3', usage: u(0), toolCalls: { web_search_preview: 3 }, tokens: '0', fee: '0.03', total: '0.03' },
  { name: 'gpt-6.1-terra flex: the fee is not halved', provider: 'openai', model: 'gpt-6.1-terra', tier: 'flex', usage: u(100000), toolCalls: { web_search: 5 }, tokens: '0.05', fee: '0.05', total: '0.1' },
  // Gemini grounding with Google Search: Gemini 3.x $14 per 1,000 queries; Gemini 2.5 $35 per 1,000 grounded prompts.
  { name: 'gemini-3.1-pro-preview, 4 grounding queries', provider: 'gcp.gemini', model: 'gemini-3.1-pro-preview', usage: u(1000, 0, 0, 1000), toolCalls: { search_grounding: 4 }, tokens: '0.014', fee: '0.056', total: '0.07' },
  { name: 'gemini-2.5-flash: once per grounded prompt, whatever the queries', provider: 'gcp.vertex_ai', model: 'gemini-2.5-flash', usage: u(1000, 0, 0, 1000), toolCalls: { search_grounding: 4 }, tokens: '0.0028', fee: '0.035', total: '0.0378' },
];

describe('per-call fees (hand-computed from the catalog rates)', () => {
  const book = PriceBook.load();
  it.each(cases)('$name', (c) => {
    const r = book.priceStrings({ provider: c.provider, model: c.model, usage: c.usage, at: NOW, serviceTier: c.tier, speed: c.speed, processing: c.processing, toolCalls: c.toolCalls });
    if (!r.priced) throw new Error(`unpriced: ${r.reason}`);
    const tokens = Object.values(r.costUsd).reduce((s, v) => s + Number(v), 0);
    expect(Number(c.tokens)).toBeCloseTo(tokens, 12); // the exact check is the total below
    expect(r.feeCostUsd ?? '').toBe(c.fee);
    expect(r.totalUsd).toBe(c.total);
    const d = book.price({ provider: c.provider, model: c.model, usage: c.usage, at: NOW, serviceTier: c.tier, speed: c.speed, processing: c.processing, toolCalls: c.toolCalls });
    if (!d.priced) throw new Error('unpriced');
    // The Decimal result agrees, and the parts add up exactly to the total.
    let sum = d.feeCostUsd ?? d.totalUsd.minus(d.totalUsd);
    for (const v of Object.values(d.costUsd)) sum = sum.plus(v);
    expect(sum.toFixed()).toBe(c.total);
    expect(d.totalUsd.toFixed()).toBe(c.total);
  });

  it('says which fee it charged, with the rate and the count', () => {
    const r = book.priceStrings({ provider: 'openai', model: 'gpt-4.1', usage: u(10), at: NOW, toolCalls: { web_search: 4, web_search_preview: 1 } });
    if (!r.priced) throw new Error('unpriced');
    expect(r.fees).toEqual([
      { kind: 'web_search', calls: 4, billed: 4, usdPer1000: '10', costUsd: '0.04' },
      { kind: 'web_search_preview', calls: 1, billed: 1, usdPer1000: '25', costUsd: '0.025' },
    ]);
  });

  it('a call without tool calls has no fee fields (the common path is unchanged)', () => {
    const r = book.priceStrings({ provider: 'anthropic', model: 'claude-sonnet-4-6', usage: u(10), at: NOW });
    if (!r.priced) throw new Error('unpriced');
    expect(r.feeCostUsd).toBeUndefined();
    expect(r.fees).toBeUndefined();
  });
});

describe('per-call fees: calls the entry has no fee for, and hostile counts', () => {
  const book = PriceBook.load();
  it('calls of a kind the entry has no fee for make the call unpriced, never a 0 fee', () => {
    const r = book.priceStrings({ provider: 'anthropic', model: 'claude-sonnet-4-6', usage: u(10), at: NOW, toolCalls: { search_grounding: 2 } });
    expect(r).toMatchObject({ priced: false, model: 'claude-sonnet-4-6' });
    if (!r.priced) expect(r.reason).toBe('model claude-sonnet-4-6 has no search_grounding fee (price 2026-03-13), and the call reports 2 search_grounding calls');
    const nano = book.priceStrings({ provider: 'openai', model: 'gpt-4.1-nano', usage: u(10), at: NOW, toolCalls: { web_search: 1 } });
    expect(nano.priced).toBe(false);
  });

  it.each([-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, '3' as unknown as number, null as unknown as number])(
    'a count of %s is invalid usage: unpriced with a clear reason',
    (n) => {
      const r = book.priceStrings({ provider: 'anthropic', model: 'claude-sonnet-4-6', usage: u(10), at: NOW, toolCalls: { web_search: n } });
      expect(r.priced).toBe(false);
      if (!r.priced) expect(r.reason).toBe('invalid usage: tool_calls.web_search must be a non-negative integer');
    },
  );

  it('a huge but valid count is priced exactly (no float rounding)', () => {
    const r = book.priceStrings({ provider: 'anthropic', model: 'claude-sonnet-4-6', usage: u(0), at: NOW, toolCalls: { web_search: Number.MAX_SAFE_INTEGER } });
    if (!r.priced) throw new Error('unpriced');
    expect(r.feeCostUsd).toBe('90071992547409.91');
    expect(r.totalUsd).toBe('90071992547409.91');
  });
});

describe('per-call fees in the schema and in overrides', () => {
  const catalog = (fees: unknown) => ({
    schema_version: 1,
    entries: [
      {
        provider: 'google',
        model: 'gemini-test',
        effective_from: '2026-01-01',
        prices_usd_per_mtok: { input: '1.00', output: '2.00' },
        fees,
        source: 'https://example.invalid/pricing',
        source_date: '2026-01-01',
      },
    ],
  });

  it('per_request: once per request that used the tool, whatever the number of calls', () => {
    const book = PriceBook.load({ catalog: catalog({ search_grounding: { usd_per_1000: '35.00', per_request: true } }) });
    const r = book.priceStrings({ provider: 'gcp.gemini', model: 'gemini-test', usage: u(0), at: NOW, toolCalls: { search_grounding: 4 } });
    if (!r.priced) throw new Error('unpriced');
    expect(r.fees).toEqual([{ kind: 'search_grounding', calls: 4, billed: 1, usdPer1000: '35', costUsd: '0.035' }]);
    expect(r.totalUsd).toBe('0.035');
  });

  it('usd_per_call is the same fee written per call', () => {
    const book = PriceBook.load({ catalog: catalog({ search_grounding: { usd_per_call: '0.014' } }) });
    const r = book.priceStrings({ provider: 'gcp.gemini', model: 'gemini-test', usage: u(1000, 0, 0, 1000), at: NOW, toolCalls: { search_grounding: 3 } });
    if (!r.priced) throw new Error('unpriced');
    expect(r.feeCostUsd).toBe('0.042');
    expect(r.totalUsd).toBe('0.045');
  });

  it.each([
    [{ web_search: { usd_per_1000: '10', usd_per_call: '0.01' } }, 'fees.web_search: a fee needs exactly one of usd_per_1000 or usd_per_call'],
    [{ web_search: {} }, 'fees.web_search: a fee needs exactly one of usd_per_1000 or usd_per_call'],
    [{ web_search: { usd_per_1000: 10 } }, 'fees.web_search.usd_per_1000: must be a quoted decimal string'],
    [{ web_search: { usd_per_1000: '-1' } }, 'fees.web_search.usd_per_1000: must be a non-negative decimal string'],
    [{ web_search: { usd_per_1000: '10', source: 'http://x.test' } }, 'fees.web_search.source: must be an https URL'],
    [{ image_search: { usd_per_1000: '10' } }, 'fees: Unrecognized key'],
  ])('rejects a malformed fee %j with an error naming the entry and the field', (fees, message) => {
    expect(() => PriceBook.load({ catalog: catalog(fees) })).toThrow(PriceCatalogError);
    expect(() => PriceBook.load({ catalog: catalog(fees) })).toThrow(`price catalog entries[0] (google/gemini-test): ${message}`);
  });

  it('a configured override may set a negotiated fee', () => {
    const book = PriceBook.load({
      overrides: [{ provider: 'anthropic', model: 'claude-sonnet-4-6', prices_usd_per_mtok: { input: '3.00', output: '15.00' }, fees: { web_search: { usd_per_1000: '8.00' } } }],
    });
    const r = book.priceStrings({ provider: 'anthropic', model: 'claude-sonnet-4-6', usage: u(0), at: NOW, toolCalls: { web_search: 10 } });
    if (!r.priced) throw new Error('unpriced');
    expect(r.origin).toBe('override');
    expect(r.feeCostUsd).toBe('0.08');
  });
});
