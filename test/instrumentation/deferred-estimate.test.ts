/**
 * The first estimate of a process does not block: a call whose provider sent no usage ends once the tokenizer is
 * built in the background, with the time it really ended; trackUsage waits for it; the exit flush ends it at once.
 * The provider is a canned fetch (no mock server: the mock counts with the tokenizer and would load it).
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { settleEstimatesNow } from '../../src/instrumentation/call.js';
import { instrument, trackUsage } from '../../src/instrumentation/index.js';
import { estimatorReady } from '../../src/usage/index.js';
import { createHarness, type Harness } from './harness.js';

const PIECES = ['Deferred', ' estimates', ' keep', ' the', ' loop', ' free', '.'];

function sse(model: string): Response {
  const events = PIECES.map((p, i) => ({ id: 'chatcmpl-canned', object: 'chat.completion.chunk', created: 1, model, choices: [{ index: 0, delta: i === 0 ? { role: 'assistant', content: p } : { content: p }, finish_reason: null }] }));
  const body = `${events.map((e) => `data: ${JSON.stringify(e)}\n\n`).join('')}data: [DONE]\n\n`;
  return new Response(body, { status: 200, headers: { 'content-type': 'text/event-stream' } });
}

let h: Harness;
let client: OpenAI;

beforeAll(async () => {
  h = await createHarness();
  instrument(OpenAI);
  // An OpenAI-compatible server that ignores include_usage: every streamed call needs an estimate.
  client = new OpenAI({ apiKey: 'k', baseURL: 'http://127.0.0.1:9/v1', maxRetries: 0, fetch: async (_url, init) => sse(JSON.parse(String(init?.body)).model) });
});
afterAll(async () => {
  await h.shutdown();
});

async function readAll(model: string): Promise<number> {
  const stream = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }], stream: true });
  for await (const chunk of stream) void chunk;
  return Date.now();
}

describe('the first estimate of a process', () => {
  it('ends the call after the tokenizer is built, with the real end time; trackUsage waits for it', async () => {
    expect(estimatorReady('gpt-4o-mini')).toBe(false);
    let loopEnd = 0;
    const totals = await trackUsage(async () => {
      loopEnd = await readAll('gpt-4o-mini');
      // The stream has ended for the app, but not for tokenmeter: the tokenizer is still being built.
      expect(h.finished()).toHaveLength(0);
    });
    expect(estimatorReady('gpt-4o-mini')).toBe(true);
    expect(totals.requests).toBe(1);
    expect(totals.estimatedRequests).toBe(1);
    expect(totals.usage.output).toBeGreaterThan(0);
    const [span] = h.finished();
    expect(span.attributes['tokenmeter.usage.estimated']).toBe(true);
    expect(span.attributes['gen_ai.usage.output_tokens']).toBe(totals.usage.output);
    // A stream read to its end is estimated but complete.
    expect(span.attributes['tokenmeter.usage.incomplete']).toBeUndefined();
    const endMillis = span.endTime[0] * 1000 + span.endTime[1] / 1e6;
    expect(endMillis).toBeLessThanOrEqual(loopEnd + 1);
    h.reset();
  });

  it('settleEstimatesNow ends a waiting call at once (the exit flush)', async () => {
    // gpt-4 counts with cl100k, which nothing has built yet.
    expect(estimatorReady('gpt-4')).toBe(false);
    await readAll('gpt-4');
    expect(h.finished()).toHaveLength(0);
    settleEstimatesNow();
    const [span] = h.finished();
    expect(span.attributes['tokenmeter.usage.estimated']).toBe(true);
    expect(Number(span.attributes['gen_ai.usage.output_tokens'])).toBeGreaterThan(0);
  });
});
