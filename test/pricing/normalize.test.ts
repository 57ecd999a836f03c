import { describe, it, expect } from 'vitest';
import { PriceBook, normalizeModelId, catalogProviderFor, parseServiceTier } from '../../src/pricing/index.js';

describe('model id normalisation', () => {
  it.each([
    ['GPT-4o', 'gpt-4o'],
    ['openai/gpt-4o', 'gpt-4o'],
    ['anthropic.claude-3-5-haiku-20241022-v1:0', 'claude-3-5-haiku-20241022'],
    ['us.anthropic.claude-sonnet-4-5-20250929-v1:0', 'claude-sonnet-4-5-20250929'],
    ['arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-opus-4-1-20250805-v1:0', 'claude-opus-4-1-20250805'],
    ['claude-3-5-haiku@20241022', 'claude-3-5-haiku'],
    ['projects/p/locations/us-central1/publishers/google/models/gemini-2.5-pro', 'gemini-2.5-pro'],
    ['claude-sonnet-4-5[1m]', 'claude-sonnet-4-5'],
    ['  gpt-5  ', 'gpt-5'],
  ])('%s → %s', (raw, expected) => {
    expect(normalizeModelId(raw)).toBe(expected);
  });

  it('normalizeModel gives catalog names for labels and keeps unknown names', () => {
    const book = PriceBook.load();
    expect(book.normalizeModel('aws.bedrock', 'eu.anthropic.claude-3-5-haiku-20241022-v1:0')).toEqual({ provider: 'anthropic', model: 'claude-3-5-haiku', known: true });
    expect(book.normalizeModel('gcp.vertex_ai', 'gemini-2.5-flash')).toEqual({ provider: 'google', model: 'gemini-2.5-flash', known: true });
    expect(book.normalizeModel('openai', 'gpt-4o-mini-2024-07-18')).toEqual({ provider: 'openai', model: 'gpt-4o-mini', known: true });
    expect(book.normalizeModel('OpenAI', 'My-Deployment')).toEqual({ provider: 'openai', model: 'my-deployment', known: false });
    expect(book.normalizeModel(undefined, 'something')).toEqual({ provider: 'unknown', model: 'something', known: false });
  });

  it('maps OTel provider names', () => {
    expect(catalogProviderFor('gcp.gemini')).toBe('google');
    expect(catalogProviderFor('azure.ai.openai')).toBe('openai');
    expect(catalogProviderFor('mistral_ai')).toBe('mistral');
    expect(catalogProviderFor('aws.bedrock')).toBeUndefined();
  });

  it('parses service tiers as providers report them', () => {
    expect(parseServiceTier('default')).toBe('standard');
    expect(parseServiceTier('flex')).toBe('flex');
    expect(parseServiceTier('scale')).toBe('priority');
    expect(parseServiceTier('turbo')).toBeUndefined();
  });

  it('the lookup memo stays bounded', () => {
    const book = PriceBook.load({ lookupCacheSize: 8 });
    for (let i = 0; i < 100; i++) book.normalizeModel(['openai', 'anthropic', undefined][i % 3], `unknown-${i}`);
    // provider → model → resolution
    const memo = (book as unknown as { memo: Map<string, Map<string, unknown>> }).memo;
    const entries = [...memo.values()].reduce((n, models) => n + models.size, 0);
    expect(entries).toBeLessThanOrEqual(8);
    expect(entries).toBeGreaterThan(0);
    expect(book.normalizeModel('openai', 'gpt-4o').known).toBe(true);
  });
});
