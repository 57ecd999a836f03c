import { describe, it, expect } from 'vitest';
import { PriceBook, PriceCatalogError, priceOverridesSchema } from '../../src/pricing/index.js';
import { u, M } from './helpers.js';

describe('configured price overrides', () => {
  const book = PriceBook.load({
    overrides: [
      // A negotiated rate for gpt-4o from 2026-01-01, with a second dated step.
      { provider: 'openai', model: 'gpt-4o', effective_from: '2026-01-01', prices_usd_per_mtok: { input: '2.00', cache_read: '1.00', output: '8.00' }, source: 'contract #42' },
      { provider: 'openai', model: 'gpt-4o', effective_from: '2026-07-01', prices_usd_per_mtok: { input: '1.80', cache_read: '0.90', output: '7.20' } },
      // A fine-tune, priced per its own rates, reached through its exact id.
      { provider: 'openai', model: 'ft:gpt-4o-mini-2024-07-18:acme::abc123', prices_usd_per_mtok: { input: '0.30', output: '1.20' } },
      // A self-hosted model at 0.
      { provider: 'vllm', model: 'llama-3.1-70b', aliases: ['meta-llama/llama-3.1-70b-instruct'], prices_usd_per_mtok: { input: '0', output: '0' } },
    ],
  });

  it('takes precedence over the catalog from its effective_from, for every alias of the model', () => {
    const r = book.price({ provider: 'openai', model: 'gpt-4o-2024-08-06', usage: u(M, M, 0, M), at: new Date('2026-02-01') });
    expect(r.priced).toBe(true);
    if (!r.priced) return;
    expect(r.origin).toBe('override');
    expect(r.totalUsd.toFixed()).toBe('11');
    expect(r.priceId).toBe('override:openai/gpt-4o@2026-01-01');
    expect(r.source).toBe('contract #42');
  });

  it('changes at the override’s date boundary and leaves earlier calls on the catalog price', () => {
    const before = book.price({ provider: 'openai', model: 'gpt-4o', usage: u(M), at: new Date('2025-12-31T23:59:59.999Z') });
    const first = book.price({ provider: 'openai', model: 'gpt-4o', usage: u(M), at: new Date('2026-01-01T00:00:00Z') });
    const last = book.price({ provider: 'openai', model: 'gpt-4o', usage: u(M), at: new Date('2026-06-30T23:59:59Z') });
    const second = book.price({ provider: 'openai', model: 'gpt-4o', usage: u(M), at: new Date('2026-07-01T00:00:00Z') });
    expect([before, first, last, second].map((r) => (r.priced ? `${r.origin}:${r.totalUsd.toFixed()}` : r.reason))).toEqual([
      'catalog:2.5',
      'override:2',
      'override:2',
      'override:1.8',
    ]);
  });

  it('prices a fine-tune', () => {
    const r = book.price({ provider: 'openai', model: 'ft:gpt-4o-mini-2024-07-18:acme::abc123', usage: u(M, 0, 0, M), at: new Date() });
    expect(r.priced && r.totalUsd.toFixed()).toBe('1.5');
  });

  it('prices a self-hosted model at exactly 0 and labels it', () => {
    const r = book.price({ provider: 'vllm', model: 'meta-llama/Llama-3.1-70B-Instruct', usage: u(12345, 0, 0, 678), at: new Date() });
    expect(r.priced).toBe(true);
    if (!r.priced) return;
    expect(r.totalUsd.toFixed()).toBe('0');
    expect(r.model).toBe('llama-3.1-70b');
    expect(r.provider).toBe('vllm');
    expect(book.normalizeModel('vllm', 'llama-3.1-70b')).toEqual({ provider: 'vllm', model: 'llama-3.1-70b', known: true });
  });

  it('a custom provider’s override does not leak to another provider', () => {
    expect(book.price({ provider: 'ollama', model: 'llama-3.1-70b', usage: u(1), at: new Date() }).priced).toBe(false);
  });

  it('rejects an invalid override with the entry and field named', () => {
    expect(() => PriceBook.load({ overrides: [{ provider: 'openai', model: 'gpt-4o', prices_usd_per_mtok: { input: 'cheap' } }] })).toThrow(
      /price overrides\[0\] \(openai\/gpt-4o\): prices_usd_per_mtok\.input/,
    );
    expect(() => PriceBook.load({ overrides: [{ provider: 'openai', model: 'GPT-4o', prices_usd_per_mtok: { input: '1' } }] })).toThrow(PriceCatalogError);
    expect(priceOverridesSchema.safeParse([{ provider: 'x', model: 'y', prices_usd_per_mtok: { input: '0' } }]).success).toBe(true);
  });
});
