import { describe, expect, it } from 'vitest';
import { PriceBook, processingScope } from '../../src/pricing/index.js';
import type { Usage } from '../../src/usage/index.js';

/*
 * Amazon Nova and Meta Llama as Amazon Bedrock prices them (catalog provider `bedrock`): every spelling of a
 * Bedrock model id a span may carry resolves to the entry, and calls price to hand-computed exact decimals.
 */

const book = PriceBook.load();
const AT = new Date('2026-11-24T12:00:00Z');

function price(id: string, usage: Usage): { model: string; provider: string; totalUsd: string; costUsd: Record<string, string> } {
  const processing = processingScope({ provider: 'aws.bedrock', rawModel: id });
  const r = book.priceStrings({ provider: 'aws.bedrock', model: id, usage, at: AT, processing });
  if (!r.priced) throw new Error(`${id}: unpriced: ${r.reason}`);
  return { model: r.model, provider: r.provider, totalUsd: r.totalUsd, costUsd: { ...r.costUsd } };
}

// 10,000 uncached input, 2,000 cache reads, 1,000 output.
const NOVA_CALL: Usage = { input: 10_000, cache_read: 2_000, cache_write: 0, output: 1_000, reasoning: 0 };
// 10,000 input, 1,000 output (Llama on Bedrock has no prompt cache).
const LLAMA_CALL: Usage = { input: 10_000, cache_read: 0, cache_write: 0, output: 1_000, reasoning: 0 };

describe('Bedrock model ids resolve to the bedrock entries', () => {
  it.each([
    ['amazon.nova-pro-v1:0', 'nova-pro'],
    ['us.amazon.nova-pro-v1:0', 'nova-pro'],
    ['eu.amazon.nova-pro-v1:0', 'nova-pro'],
    ['apac.amazon.nova-micro-v1:0', 'nova-micro'],
    ['global.amazon.nova-2-lite-v1:0', 'nova-2-lite'],
    ['arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0', 'nova-lite'],
    ['arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-premier-v1:0', 'nova-premier'],
    ['meta.llama3-3-70b-instruct-v1:0', 'llama3-3-70b-instruct'],
    ['us.meta.llama4-maverick-17b-instruct-v1:0', 'llama4-maverick-17b-instruct'],
    ['us.meta.llama4-scout-17b-instruct-v1:0', 'llama4-scout-17b-instruct'],
    ['arn:aws:bedrock:us-west-2:123456789012:inference-profile/us.meta.llama3-2-90b-instruct-v1:0', 'llama3-2-90b-instruct'],
    ['meta.llama3-1-8b-instruct-v1:0', 'llama3-1-8b-instruct'],
  ])('%s is %s', (id, model) => {
    expect(book.normalizeModel('aws.bedrock', id)).toEqual({ provider: 'bedrock', model, known: true });
  });

  it('a Llama id of another host is not priced at Bedrock rates', () => {
    expect(book.normalizeModel('groq', 'llama-3.3-70b-versatile').known).toBe(false);
    expect(book.normalizeModel('together', 'meta-llama/Llama-3.3-70B-Instruct-Turbo').known).toBe(false);
  });
});

describe('Bedrock-hosted prices, computed by hand', () => {
  it.each([
    // 10,000 x 0.80 + 2,000 x 0.20 + 1,000 x 3.20 (per Mtok) = 8,000 + 400 + 3,200 micro-dollars
    ['us.amazon.nova-pro-v1:0', NOVA_CALL, '0.0116', { input: '0.008', cache_read: '0.0004', output: '0.0032' }],
    // 10,000 x 0.035 + 2,000 x 0.00875 + 1,000 x 0.14 = 350 + 17.5 + 140
    ['amazon.nova-micro-v1:0', NOVA_CALL, '0.0005075', { input: '0.00035', cache_read: '0.0000175', output: '0.00014' }],
    // 10,000 x 0.06 + 2,000 x 0.015 + 1,000 x 0.24 = 600 + 30 + 240
    ['eu.amazon.nova-lite-v1:0', NOVA_CALL, '0.00087', { input: '0.0006', cache_read: '0.00003', output: '0.00024' }],
    // 10,000 x 2.50 + 2,000 x 0.625 + 1,000 x 12.50 = 25,000 + 1,250 + 12,500
    ['us.amazon.nova-premier-v1:0', NOVA_CALL, '0.03875', { input: '0.025', cache_read: '0.00125', output: '0.0125' }],
    // Nova 2 Lite through a global inference profile: the list price. 3,000 + 150 + 2,500
    ['global.amazon.nova-2-lite-v1:0', NOVA_CALL, '0.00565', { input: '0.003', cache_read: '0.00015', output: '0.0025' }],
    // ... and through a geographic profile: 1.1x. 3,300 + 165 + 2,750
    ['us.amazon.nova-2-lite-v1:0', NOVA_CALL, '0.006215', { input: '0.0033', cache_read: '0.000165', output: '0.00275' }],
    // 10,000 x 0.72 + 1,000 x 0.72 = 7,200 + 720
    ['us.meta.llama3-3-70b-instruct-v1:0', LLAMA_CALL, '0.00792', { input: '0.0072', output: '0.00072' }],
    // 10,000 x 0.24 + 1,000 x 0.97 = 2,400 + 970
    ['us.meta.llama4-maverick-17b-instruct-v1:0', LLAMA_CALL, '0.00337', { input: '0.0024', output: '0.00097' }],
    // 10,000 x 0.17 + 1,000 x 0.66 = 1,700 + 660
    ['us.meta.llama4-scout-17b-instruct-v1:0', LLAMA_CALL, '0.00236', { input: '0.0017', output: '0.00066' }],
    // 10,000 x 0.22 + 1,000 x 0.22 = 2,200 + 220
    ['meta.llama3-1-8b-instruct-v1:0', LLAMA_CALL, '0.00242', { input: '0.0022', output: '0.00022' }],
  ] as const)('%s', (id, usage, total, parts) => {
    const r = price(id, usage);
    expect(r.provider).toBe('bedrock');
    expect(r.costUsd).toMatchObject(parts);
    expect(r.totalUsd).toBe(total);
  });

  it('a call before the earliest confirmed date is unpriced, never guessed', () => {
    const r = book.priceStrings({ provider: 'aws.bedrock', model: 'us.amazon.nova-pro-v1:0', usage: NOVA_CALL, at: new Date('2026-01-01T00:00:00Z') });
    expect(r.priced).toBe(false);
  });

  it('Bedrock batch is not catalogued: a batch call is unpriced', () => {
    const r = book.priceStrings({ provider: 'aws.bedrock', model: 'amazon.nova-pro-v1:0', usage: NOVA_CALL, at: AT, serviceTier: 'batch' });
    expect(r.priced).toBe(false);
  });
});
