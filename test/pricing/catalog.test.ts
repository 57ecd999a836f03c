import { readFileSync } from 'node:fs';
import { describe, it, expect } from 'vitest';
import { parse } from 'yaml';
import { DEFAULT_CATALOG_PATH, PriceBook, PriceCatalogError, catalogSchema } from '../../src/pricing/index.js';
import { effectiveDateMillis } from '../../src/pricing/catalog-schema.js';
import { u } from './helpers.js';

const doc = parse(readFileSync(DEFAULT_CATALOG_PATH, 'utf8')) as {
  entries: { provider: string; model: string; aliases?: string[]; match_prefixes?: string[]; effective_from: string }[];
};

describe('shipped price catalog', () => {
  it('validates against the schema', () => {
    expect(catalogSchema.safeParse(doc).success).toBe(true);
  });

  it('no two entries claim the same model id (or prefix) at the same date', () => {
    const claims = new Map<string, string>();
    const clashes: string[] = [];
    for (const e of doc.entries) {
      const t = effectiveDateMillis(e.effective_from);
      // Ids are global across providers so that a span without a provider still resolves unambiguously.
      const keys = [...new Set([e.model, ...(e.aliases ?? [])])].map((id) => `id:${id}@${t}`);
      keys.push(...(e.match_prefixes ?? []).map((p) => `prefix:${p}@${t}`));
      for (const k of keys) {
        const who = `${e.provider}/${e.model}@${e.effective_from}`;
        const prev = claims.get(k);
        if (prev !== undefined) clashes.push(`${k} claimed by ${prev} and ${who}`);
        claims.set(k, who);
      }
    }
    expect(clashes).toEqual([]);
  });

  it('no match prefix reaches another model’s exact id', () => {
    const exact = new Map<string, string>();
    for (const e of doc.entries) for (const id of [e.model, ...(e.aliases ?? [])]) exact.set(id, e.model);
    const bad: string[] = [];
    for (const e of doc.entries) {
      for (const p of e.match_prefixes ?? []) {
        for (const [id, model] of exact) if (id.startsWith(p) && model !== e.model) bad.push(`${p} (${e.model}) reaches ${id} (${model})`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('covers at least 40 models from all five providers, each with a source and date', () => {
    const book = PriceBook.load();
    const models = new Set(book.entries.map((e) => `${e.provider}/${e.model}`));
    expect(models.size).toBeGreaterThanOrEqual(40);
    expect(new Set(book.entries.map((e) => e.provider))).toEqual(new Set(['openai', 'anthropic', 'google', 'mistral', 'deepseek', 'xai', 'bedrock']));
    for (const e of book.entries) {
      expect(e.source, e.model).toMatch(/^https:\/\//);
      expect(e.sourceDate, e.model).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    }
    // Every family the foundation issue names.
    for (const required of [
      'openai/gpt-4o', 'openai/gpt-4o-mini', 'openai/gpt-4.1', 'openai/gpt-4.1-mini', 'openai/gpt-4.1-nano',
      'openai/gpt-5', 'openai/gpt-5-mini', 'openai/gpt-5-nano', 'openai/o3', 'openai/o4-mini',
      'openai/text-embedding-3-small', 'openai/text-embedding-3-large',
      'anthropic/claude-3-5-haiku', 'anthropic/claude-sonnet-4-5', 'anthropic/claude-haiku-4-5', 'anthropic/claude-opus-4-5',
      'google/gemini-2.5-pro', 'google/gemini-2.5-flash', 'google/gemini-2.5-flash-lite',
      'mistral/mistral-large-2512', 'mistral/mistral-medium-2508', 'mistral/mistral-small-2506',
      'deepseek/deepseek-chat', 'deepseek/deepseek-reasoner',
    ]) {
      expect(models.has(required), required).toBe(true);
    }
    // The Gemini 2.5 Pro long-context tier and every service tier the issue names are modelled.
    expect(book.entries.find((e) => e.model === 'gemini-2.5-pro')?.raw.context_tiers?.[0]?.above_input_tokens).toBe(200000);
    const tiers = new Set(book.entries.flatMap((e) => Object.keys(e.raw.service_tiers ?? {})));
    expect(tiers).toEqual(new Set(['batch', 'flex', 'priority']));
  });

  it('every shipped entry says how sure its source is', () => {
    const book = PriceBook.load();
    const missing = book.entries.filter((e) => e.raw.source_confidence === undefined).map((e) => e.priceId);
    expect(missing).toEqual([]);
  });

  it('Anthropic entries carry 5-minute and 1-hour cache-write rates', () => {
    const book = PriceBook.load();
    for (const e of book.entries.filter((x) => x.provider === 'anthropic')) {
      expect(e.raw.prices_usd_per_mtok.cache_write, e.model).toBeDefined();
      expect(e.raw.prices_usd_per_mtok.cache_write_1h, e.model).toBeDefined();
    }
  });

  it('is parsed once per process (cached default catalog)', () => {
    const a = PriceBook.load();
    const b = PriceBook.load();
    expect(a.entries[0]).toBe(b.entries[0]);
  });
});

describe('catalog validation errors name the entry and field', () => {
  const good = {
    provider: 'openai',
    model: 'x-model',
    effective_from: '2025-01-01',
    prices_usd_per_mtok: { input: '1.00', output: '2.00' },
    source: 'https://example.com/pricing',
    source_date: '2025-01-01',
  };
  const load = (entries: unknown[]) => () => PriceBook.load({ catalog: { schema_version: 1, entries } });

  it('a price written as a YAML number', () => {
    expect(load([{ ...good, prices_usd_per_mtok: { input: 2.5 } }])).toThrow(/entries\[0\] \(openai\/x-model\): prices_usd_per_mtok\.input: must be a quoted decimal string/);
  });
  it('a negative price', () => {
    expect(load([good, { ...good, model: 'y', prices_usd_per_mtok: { input: '-1' } }])).toThrow(/entries\[1\] \(openai\/y\): prices_usd_per_mtok\.input/);
  });
  it('an impossible date', () => {
    expect(load([{ ...good, effective_from: '2025-02-30' }])).toThrow(/effective_from/);
  });
  it('an unknown field', () => {
    expect(load([{ ...good, price: '1' }])).toThrow(PriceCatalogError);
  });
  it('a context tier with both or neither of above_input_tokens / from_input_tokens', () => {
    const p = { input: '2.00' };
    expect(load([{ ...good, context_tiers: [{ above_input_tokens: 10, from_input_tokens: 10, prices_usd_per_mtok: p }] }])).toThrow(/context_tiers\.0: a context tier needs exactly one/);
    expect(load([{ ...good, context_tiers: [{ prices_usd_per_mtok: p }] }])).toThrow(/exactly one/);
    expect(load([{ ...good, context_tiers: [{ from_input_tokens: 1, prices_usd_per_mtok: p }] }])).toThrow(/from_input_tokens/);
  });
  it('two context tiers with the same threshold, however written', () => {
    const p = { input: '2.00' };
    expect(load([{ ...good, context_tiers: [{ above_input_tokens: 9, prices_usd_per_mtok: p }, { from_input_tokens: 10, prices_usd_per_mtok: p }] }])).toThrow(/same threshold/);
  });
  it('a malformed peak rule', () => {
    const peak = (over: object) => ({ ...good, peak: { windows_utc: [{ from: '01:00', to: '04:00' }], prices_usd_per_mtok: { input: '2.00' }, ...over } });
    expect(load([peak({ windows_utc: [{ from: '04:00', to: '01:00' }] })])).toThrow(/peak\.windows_utc\.0: a window must end after it starts/);
    expect(load([peak({ windows_utc: [{ from: '1:00', to: '04:00' }] })])).toThrow(/peak\.windows_utc\.0\.from: must be HH:MM/);
    expect(load([peak({ windows_utc: [{ from: '23:00', to: '24:01' }] })])).toThrow(/peak\.windows_utc\.0\.to/);
    expect(load([peak({ windows_utc: [] })])).toThrow(/peak\.windows_utc/);
    expect(load([peak({ days_utc: ['monday'] })])).toThrow(/peak\.days_utc/);
    expect(load([peak({ prices_usd_per_mtok: { input: 2 } })])).toThrow(/peak\.prices_usd_per_mtok\.input: must be a quoted decimal/);
    expect(load([{ ...peak({}), context_tiers: [{ above_input_tokens: 10, prices_usd_per_mtok: { input: '1.00' } }] }])).toThrow(/peak: time-of-day pricing cannot be combined with context_tiers/);
  });
  it('a peak window ending 24:00 covers the last minute of the day; days_utc limits the weekdays', () => {
    const book = PriceBook.load({
      catalog: { schema_version: 1, entries: [{ ...good, peak: { windows_utc: [{ from: '22:00', to: '24:00' }], days_utc: ['sat'], prices_usd_per_mtok: { input: '5.00', output: '2.00' } } }] },
    });
    const at = (iso: string) => book.price({ model: 'x-model', usage: u(1_000_000), at: new Date(iso) });
    const sat = at('2025-06-07T23:59:59Z'); // a Saturday
    const fri = at('2025-06-06T23:59:59Z');
    const early = at('2025-06-07T21:59:59Z');
    expect(sat.priced && [sat.totalUsd.toFixed(), sat.pricePeriod]).toEqual(['5', 'peak']);
    expect(fri.priced && [fri.totalUsd.toFixed(), fri.pricePeriod]).toEqual(['1', 'off_peak']);
    expect(early.priced && [early.totalUsd.toFixed(), early.pricePeriod]).toEqual(['1', 'off_peak']);
    // Peak rules reprice the standard tier only: no batch price is listed, so a batch call stays unpriced.
    expect(book.price({ model: 'x-model', usage: u(1), at: new Date('2025-06-07T23:00:00Z'), serviceTier: 'batch' }).priced).toBe(false);
  });
  it('a malformed multiplier', () => {
    for (const [multipliers, field] of [
      [{ fast: 6 }, /multipliers\.fast: must be a quoted decimal string/],
      [{ fast: '0' }, /multipliers\.fast: must be greater than 0/],
      [{ regional: '-1.1' }, /multipliers\.regional/],
      [{ regional: '1.1', turbo: '2' }, /multipliers/],
    ] as const) {
      expect(load([{ ...good, multipliers }])).toThrow(field);
    }
  });
  it('a bad retired_from or source_confidence', () => {
    expect(load([{ ...good, retired_from: '2026-13-01' }])).toThrow(/retired_from/);
    expect(load([{ ...good, source_confidence: 'rumour' }])).toThrow(/source_confidence/);
  });
  it('from_input_tokens: a prompt of exactly N tokens takes the tier', () => {
    const book = PriceBook.load({ catalog: { schema_version: 1, entries: [{ ...good, context_tiers: [{ from_input_tokens: 10, prices_usd_per_mtok: { input: '3.00', output: '2.00' } }] }] } });
    const at = new Date('2025-06-01');
    const nine = book.price({ model: 'x-model', usage: u(9), at });
    const ten = book.price({ model: 'x-model', usage: u(10), at });
    expect(nine.priced && [nine.totalUsd.toFixed(), nine.contextTier]).toEqual(['0.000009', undefined]);
    expect(ten.priced && [ten.totalUsd.toFixed(), ten.contextTier]).toEqual(['0.00003', 'from 10 input tokens']);
  });
  it('an unknown provider', () => {
    expect(load([{ ...good, provider: 'acme' }])).toThrow(/provider/);
  });
  it('a non-https source', () => {
    expect(load([{ ...good, source: 'http://example.com' }])).toThrow(/source/);
  });
  it('two entries claiming one id at the same date', () => {
    expect(load([good, { ...good, model: 'other', aliases: ['x-model'] }])).toThrow(/id 'x-model' is claimed by/);
  });
  it('a catalog file that is not YAML', () => {
    expect(() => PriceBook.load({ catalogPath: '/nonexistent/catalog.yaml' })).toThrow(/cannot read price catalog/);
  });
  it('a hostile document (not an object) is rejected', () => {
    expect(() => PriceBook.load({ catalog: 'entries: []' })).toThrow(PriceCatalogError);
    expect(() => PriceBook.load({ catalog: { schema_version: 1, entries: new Array(10_001).fill(good) } })).toThrow(PriceCatalogError);
  });
  it('a valid custom catalog prices', () => {
    const book = PriceBook.load({ catalog: { schema_version: 1, entries: [good] } });
    const r = book.price({ model: 'X-Model', usage: u(1_000_000, 0, 0, 1_000_000), at: new Date('2025-06-01') });
    expect(r.priced && r.totalUsd.toFixed()).toBe('3');
  });
});
