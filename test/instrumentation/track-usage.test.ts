import Anthropic from '@anthropic-ai/sdk';
import { Decimal } from 'decimal.js';
import OpenAI from 'openai';
import { beforeAll, describe, expect, it } from 'vitest';
import { instrument, trackUsage, withUser } from '../../src/instrumentation/index.js';
import type { MockProvider } from '../../src/mock-provider/index.js';
import { PriceBook } from '../../src/pricing/index.js';
import { addUsage, zeroUsage, type Usage } from '../../src/usage/index.js';
import { useHarnessWithMock } from './harness.js';

const messages = [{ role: 'user' as const, content: 'Plan the next step.' }];
let mock: MockProvider;
let openai: OpenAI;
let anthropic: Anthropic;

const env = useHarnessWithMock({ seed: 21 });

beforeAll(() => {
  ({ mock } = env);
  instrument(OpenAI);
  instrument(Anthropic);
  openai = new OpenAI({ apiKey: 'k', baseURL: mock.openaiBaseURL, maxRetries: 0 });
  anthropic = new Anthropic({ apiKey: 'k', baseURL: mock.url, maxRetries: 0 });
});

function sum(us: Usage[]): Usage {
  return us.reduce((a, b) => addUsage(a, b), zeroUsage());
}

/** The cost the pricing engine gives each call the mock answered, summed exactly. */
function expectedCost(models: Array<{ provider: string; model: string }>): string {
  const book = PriceBook.load();
  let total = new Decimal(0);
  for (const [i, s] of mock.usageSent.entries()) {
    const r = book.price({ provider: models[i].provider, model: models[i].model, usage: s.usage, at: new Date() });
    if (!r.priced) throw new Error(`test model ${s.model} is not in the catalog`);
    total = total.plus(r.totalUsd);
  }
  return total.toFixed();
}

describe('trackUsage', () => {
  it('sums the usage, requests and exact cost of every call of an agent loop', async () => {
    const totals = await trackUsage(async () => {
      let steps = 0;
      for (let i = 0; i < 3; i++) {
        await openai.chat.completions.create({ model: 'gpt-4o-mini', messages });
        steps++;
      }
      const stream = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true });
      for await (const _ of stream) {
        // drain
      }
      await anthropic.messages.stream({ model: 'claude-haiku-4-5', max_tokens: 64, messages }).finalMessage();
      return steps + 2;
    });
    expect(totals.result).toBe(5);
    expect(totals.requests).toBe(5);
    expect(mock.usageSent.length).toBe(5);
    expect(totals.usage).toEqual(sum(mock.usageSent.map((s) => s.usage)));
    expect(totals.estimatedRequests).toBe(0);
    expect(totals.unpricedRequests).toBe(0);
    const models = [...Array(4).fill({ provider: 'openai', model: 'gpt-4o-mini' }), { provider: 'anthropic', model: 'claude-haiku-4-5' }];
    expect(totals.costUsd).toBe(expectedCost(models));
    expect(new Decimal(totals.costUsd).greaterThan(0)).toBe(true);
    expect(totals.calls.map((c) => c.model)).toEqual(['gpt-4o-mini', 'gpt-4o-mini', 'gpt-4o-mini', 'gpt-4o-mini', 'claude-haiku-4-5']);
  });

  it('keeps concurrent scopes apart and counts nested scopes in their parents', async () => {
    const [a, b] = await Promise.all([
      trackUsage(async () => {
        await openai.chat.completions.create({ model: 'gpt-4o-mini', messages });
        const inner = await trackUsage(() => withUser({ id: 'nested' }, () => openai.chat.completions.create({ model: 'gpt-4o-mini', messages })));
        expect(inner.requests).toBe(1);
        return inner;
      }),
      trackUsage(async () => {
        await anthropic.messages.create({ model: 'claude-haiku-4-5', max_tokens: 16, messages });
      }),
    ]);
    expect(a.requests).toBe(2);
    expect(b.requests).toBe(1);
    expect(b.calls[0].provider).toBe('anthropic');
    const inner = a.result;
    expect(a.usage.input).toBeGreaterThan(inner.usage.input);
    expect(a.calls[1]).toEqual(inner.calls[0]);
  });

  it('reports unknown models as unpriced instead of free, and failed calls', async () => {
    const totals = await trackUsage(async () => {
      await openai.chat.completions.create({ model: 'my-finetune-xyz', messages });
      mock.failNext(1, 500);
      await openai.chat.completions.create({ model: 'gpt-4o-mini', messages }).catch(() => undefined);
    });
    expect(totals.requests).toBe(2);
    expect(totals.unpricedRequests).toBe(1);
    expect(totals.failedRequests).toBe(1);
    expect(totals.calls[0].costUsd).toBeUndefined();
    // The failed call has no usage: zero tokens, priced at zero.
    expect(totals.calls[1].usage).toEqual(zeroUsage());
    expect(totals.costUsd).toBe('0');
    expect(totals.usage).toEqual(mock.usageSent[0].usage);
  });

  it('propagates what fn throws', async () => {
    await expect(trackUsage(async () => {
      throw new Error('app failure');
    })).rejects.toThrow('app failure');
  });
});
