/**
 * The tokenizer is built off the request path: `loadEstimator` fills the same table js-tiktoken's constructor
 * would, in slices between event-loop turns, and a synchronous estimate in between finishes it. This file must
 * be the only user of the estimator in its module graph (vitest isolates files), so it starts unloaded.
 */
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { estimateTokens, estimatorReady, loadEstimator } from '../../src/usage/index.js';

const require = createRequire(import.meta.url);

function reference(name: string): { rankMap: Map<string, number> } {
  const { Tiktoken } = require('js-tiktoken/lite');
  const ranks = require(`js-tiktoken/ranks/${name}`);
  return new Tiktoken(ranks.default ?? ranks);
}

describe('loadEstimator', () => {
  it('builds o200k between event-loop turns, and then counts exactly as the js-tiktoken encoder', async () => {
    expect(estimatorReady('gpt-4o')).toBe(false);
    let turns = 0;
    const ticker = setInterval(() => turns++, 0);
    const loading = loadEstimator('gpt-4o');
    // Asking again joins the same build.
    expect(loadEstimator('claude-sonnet-5')).toBe(loading);
    await loading;
    clearInterval(ticker);
    expect(estimatorReady('gpt-4o')).toBe(true);
    // The event loop kept running while the table was built (one uninterrupted build would give 0 or 1 turns).
    expect(turns).toBeGreaterThan(10);
    const ref = reference('o200k_base');
    const texts = ['hello world', 'Ünïcödé 日本語 🎉🎉', JSON.stringify({ a: [1, 2, 3], b: 'x'.repeat(300) }), 'The quick brown fox. '.repeat(40), ' \n\n\t '];
    for (const t of texts) expect(estimateTokens(t, 'gpt-4o')).toBe((ref as any).encode(t, [], []).length);
  });

  it('a synchronous estimate during the build finishes it; the pending load then resolves', async () => {
    expect(estimatorReady('gpt-4')).toBe(false);
    const loading = loadEstimator('gpt-4');
    await new Promise((r) => setImmediate(r));
    const ref = reference('cl100k_base');
    const text = 'Counting tokens of an older model family, mid-build.';
    expect(estimateTokens(text, 'gpt-4')).toBe((ref as any).encode(text, [], []).length);
    expect(estimatorReady('gpt-4')).toBe(true);
    await expect(loading).resolves.toBeUndefined();
  });
});
