/**
 * The finalizer that ends unread streams must never touch a stream that is being read: `for await` holds only
 * the iterator, not the Stream object, so tokenmeter's iterator keeps the stream alive. Full garbage collections
 * run between the chunks of a stream reachable only through its iterator. (With openai 6 the stream also stays
 * reachable through the SDK's own objects, so this guards the behaviour rather than reproducing a failure.)
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import OpenAI from 'openai';
import { beforeAll, describe, expect, it } from 'vitest';
import { instrument } from '../../src/instrumentation/index.js';
import { captureWarnings } from '../../src/instrumentation/warn.js';
import { onlySpan, useHarnessWithMock } from './harness.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const env = useHarnessWithMock({ seed: 4, responseWords: 30 });
let openai: OpenAI;

beforeAll(() => {
  instrument(OpenAI);
  openai = new OpenAI({ apiKey: 'k', baseURL: env.mock.openaiBaseURL, maxRetries: 0 });
});

/** Full collections, with time for finalizers to run (they run as tasks of their own). */
async function collect(): Promise<void> {
  for (let i = 0; i < 2; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function iteratorOnly(): Promise<AsyncIterator<unknown>> {
  const stream = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Go on.' }], stream: true });
  return stream[Symbol.asyncIterator]();
}

describe('garbage collection while a stream is read', () => {
  it('neither closes nor ends the stream; the provider usage arrives', async () => {
    const lines: string[] = [];
    const restore = captureWarnings(lines);
    try {
      env.mock.setChunkDelay(5);
      // Only the iterator is kept (as a helper returning it, or a pipeline, would): the Stream object is
      // reachable through nothing else.
      const iterator = await iteratorOnly();
      let chunks = 0;
      while (!(await iterator.next()).done) {
        chunks++;
        await collect();
      }
      expect(chunks).toBeGreaterThan(30);
      expect(env.mock.streamsSent[0]).toMatchObject({ completed: true, clientClosed: false });
      const span = onlySpan(env.h);
      expect(span.attributes['tokenmeter.stream.end']).toBeUndefined();
      expect(span.attributes['tokenmeter.usage.estimated']).toBeUndefined();
      expect(span.attributes['gen_ai.usage.output_tokens']).toBe(env.mock.usageSent[0].usage.output);
      expect(lines).toEqual([]);
    } finally {
      restore();
    }
  });
});
