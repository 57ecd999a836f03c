/**
 * Admission control, app side (issue 16), in process: the real OpenAI and Anthropic SDKs against the mock provider,
 * a real exporter (in-memory ledger) answering the reservations. A refused call rejects with UsageLimitError
 * through the SDK's own APIPromise and never reaches the provider; a granted call carries its reservation id; warn
 * sends and marks; checkUsage/remaining read the exporter; no unhandled rejection anywhere.
 */
import Anthropic, { APIPromise as AnthropicPromise } from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { createServer } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ATTR_RESERVATION_ID, ATTR_RESERVATION_REFUSED, ATTR_RESERVATION_WARNED } from '../../src/contract/names.js';
import { checkUsage, configureEnforcement, instrument, remaining, UsageLimitError, withUser } from '../../src/instrumentation/index.js';
import { captureWarnings } from '../../src/instrumentation/warn.js';
import { otlpJson, postOtlp, scrape, startTestExporter, type TestExporter } from '../exporter/harness.js';
import { useHarnessWithMock } from './harness.js';

const env = useHarnessWithMock({ seed: 16 });
let exporter: TestExporter;
let openai: OpenAI;
let anthropic: Anthropic;
const unhandled: unknown[] = [];
const onUnhandled = (e: unknown) => unhandled.push(e);

beforeAll(async () => {
  instrument(OpenAI);
  instrument(Anthropic);
  exporter = await startTestExporter();
  openai = new OpenAI({ apiKey: 'k', baseURL: `${env.mock.url}/v1`, maxRetries: 0 });
  anthropic = new Anthropic({ apiKey: 'k', baseURL: env.mock.url, maxRetries: 0 });
  process.on('unhandledRejection', onUnhandled);
});
afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  configureEnforcement({});
  await exporter.close();
});
afterEach(() => {
  configureEnforcement({});
  expect(unhandled).toEqual([]);
});

/** `used` calls of `user` committed at the exporter. */
let seeded = 0;
async function seed(user: string, used: number): Promise<void> {
  const spans = Array.from({ length: used }, () => ({ traceId: 'e'.repeat(32), spanId: (++seeded).toString(16).padStart(16, '0'), user, model: 'gpt-4o-mini', input: 10, output: 5 }));
  expect((await postOtlp(exporter.otlpUrl, otlpJson(spans))).status).toBe(200);
}
const messages = [{ role: 'user' as const, content: 'hello' }];

describe('enforce: block', () => {
  it('a call over the limit rejects with UsageLimitError through the SDK promise, and nothing is sent', async () => {
    configureEnforcement({ url: exporter.httpUrl, enforce: 'block' });
    await seed('full-user', 10);
    const p = withUser({ id: 'full-user', plan: 'free' }, () => anthropic.messages.create({ model: 'claude-haiku-4-5', max_tokens: 32, messages }));
    expect(p).toBeInstanceOf(AnthropicPromise);
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(UsageLimitError);
    expect(err).toMatchObject({ user: 'full-user', plan: 'free', limit: 'requests', used: 10, limitValue: 10, status: 429 });
    expect((err as UsageLimitError).retryAfter.getTime()).toBeGreaterThan(Date.now());
    expect(env.mock.requests).toHaveLength(0);
    const span = env.h.finished().at(-1)!;
    expect(span.attributes[ATTR_RESERVATION_REFUSED]).toBe('requests');
  });

  it('a call within the limit is sent once, carries its reservation id, and its span settles the hold', async () => {
    configureEnforcement({ url: exporter.httpUrl, enforce: 'block' });
    await seed('ok-user', 2);
    const res = await withUser({ id: 'ok-user', plan: 'free' }, () => openai.chat.completions.create({ model: 'gpt-4o-mini', max_tokens: 16, messages }));
    expect(res.choices.length).toBeGreaterThan(0);
    expect(env.mock.requests).toHaveLength(1);
    const span = env.h.finished().at(-1)!;
    expect(span.attributes[ATTR_RESERVATION_ID]).toMatch(/^r_[0-9a-f]{24}$/);
    // A stream is held back the same way.
    const stream = await withUser({ id: 'ok-user', plan: 'free' }, () => openai.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true }));
    let chunks = 0;
    for await (const _ of stream) chunks++;
    expect(chunks).toBeGreaterThan(0);
    expect(env.mock.requests).toHaveLength(2);
  });

  it('the refused spans are ignored at the exporter: no request is counted for a call that was never sent', async () => {
    configureEnforcement({ url: exporter.httpUrl, enforce: 'block' });
    await seed('ignored-user', 10);
    await withUser({ id: 'ignored-user', plan: 'free' }, () => openai.chat.completions.create({ model: 'gpt-4o-mini', messages })).catch(() => {});
    const span = env.h.finished().at(-1)!;
    const attrs = Object.entries(span.attributes).map(([k, v]) => [k, v]);
    // The span as the exporter would receive it.
    const body = {
      resourceSpans: [
        {
          resource: { attributes: [] },
          scopeSpans: [
            {
              spans: [
                {
                  traceId: span.spanContext().traceId,
                  spanId: span.spanContext().spanId,
                  name: span.name,
                  kind: 3,
                  startTimeUnixNano: '1',
                  endTimeUnixNano: String(BigInt(Date.now()) * 1_000_000n),
                  status: { code: 2 },
                  attributes: attrs.map(([k, v]) => ({ key: k, value: typeof v === 'number' ? { intValue: String(v) } : { stringValue: String(v) } })),
                },
              ],
            },
          ],
        },
      ],
    };
    expect((await postOtlp(exporter.otlpUrl, JSON.stringify(body))).status).toBe(200);
    expect([...exporter.ledger.records.values()].filter((r) => r.userId === 'ignored-user')).toHaveLength(10);
  });

  it('a call without a user is sent unchecked, said once', async () => {
    configureEnforcement({ url: exporter.httpUrl, enforce: 'block' });
    const said: string[] = [];
    const restore = captureWarnings(said);
    try {
      await openai.chat.completions.create({ model: 'gpt-4o-mini', messages });
      await openai.chat.completions.create({ model: 'gpt-4o-mini', messages });
    } finally {
      restore();
    }
    expect(env.mock.requests).toHaveLength(2);
    expect(said).toHaveLength(1);
    expect(said[0]).toMatch(/no user: wrap it in withUser/);
  });
});

describe('enforce: warn and off', () => {
  it('warn sends the call and marks the would-be refusal; off (the default) asks nothing', async () => {
    configureEnforcement({ url: exporter.httpUrl });
    await seed('warn-user', 10);
    await withUser({ id: 'warn-user', plan: 'free', enforce: 'warn' }, () => openai.chat.completions.create({ model: 'gpt-4o-mini', messages }));
    expect(env.mock.requests).toHaveLength(1);
    expect(env.h.finished().at(-1)!.attributes[ATTR_RESERVATION_WARNED]).toBe('requests');
    const before = (await scrape(exporter.httpUrl)).filter((l) => l.startsWith('tokenmeter_reservations_total')).join('\n');
    await withUser({ id: 'warn-user', plan: 'free' }, () => openai.chat.completions.create({ model: 'gpt-4o-mini', messages }));
    // An invalid mode is ignored (the default, off, applies).
    await withUser({ id: 'warn-user', enforce: 'bogus' as never }, () => openai.chat.completions.create({ model: 'gpt-4o-mini', messages }));
    expect(env.mock.requests).toHaveLength(3);
    expect((await scrape(exporter.httpUrl)).filter((l) => l.startsWith('tokenmeter_reservations_total')).join('\n')).toBe(before);
  });
});

describe('checkUsage / remaining', () => {
  it('report what is left after usage and holds, and checkUsage rejects with the exhausted limit', async () => {
    configureEnforcement({ url: exporter.httpUrl });
    await seed('check-user', 4);
    const r = await remaining('check-user');
    expect(r).toMatchObject({ user: 'check-user', plan: 'free', requests: 6, tokens: 50_000 - 60 });
    expect(r.periodEnd).toBeInstanceOf(Date);
    await expect(checkUsage({ id: 'check-user' })).resolves.toMatchObject({ requests: 6 });
    await seed('spent-user', 10);
    const err = await checkUsage('spent-user').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageLimitError);
    expect(err).toMatchObject({ limit: 'requests', used: 10, limitValue: 10 });
    await expect(remaining('')).rejects.toThrow(/user id/);
  });
});

describe('a hostile or broken exporter answer', () => {
  it('is never trusted past its shape: bad statuses, oversized, non-JSON or malformed answers fail open; only a well-formed refusal refuses', async () => {
    const answers: [number, string][] = [
      [500, '{"error":"boom"}'],
      [200, 'not json'],
      [200, JSON.stringify({ granted: 'yes' })],
      [200, JSON.stringify({ granted: true, pad: 'x'.repeat(100_000) })],
      [200, JSON.stringify({ granted: false, user: 'h', plan: 'free', limit: 'requests'.repeat(10), used: 1, limit_value: 1, retry_after: 'x' })],
      [200, JSON.stringify({ granted: false, user: 'h', plan: 'free', limit: 'requests', used: 1, limit_value: 1, retry_after: 'not a date' })],
    ];
    let next = 0;
    const server = createServer((req, res) => {
      req.resume();
      const [status, body] = answers[Math.min(next++, answers.length - 1)]!;
      res.writeHead(status, { 'content-type': 'application/json' }).end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const said: string[] = [];
    const restore = captureWarnings(said);
    try {
      configureEnforcement({ url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, enforce: 'block', stream: false });
      for (let i = 0; i < 5; i++) await withUser({ id: 'hostile-user' }, () => openai.chat.completions.create({ model: 'gpt-4o-mini', messages }));
      expect(env.mock.requests).toHaveLength(5);
      expect(said).toHaveLength(1);
      expect(said[0]).toMatch(/usage limits could not be checked/);
      const err = await withUser({ id: 'hostile-user' }, () => openai.chat.completions.create({ model: 'gpt-4o-mini', messages })).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UsageLimitError);
      // A well-formed refusal is a refusal; an unreadable date becomes a near one.
      expect(err).toMatchObject({ limit: 'requests', plan: 'free', used: 1, limitValue: 1 });
      expect((err as UsageLimitError).retryAfter.getTime()).toBeGreaterThan(Date.now());
      expect(env.h.finished().at(-1)!.attributes[ATTR_RESERVATION_REFUSED]).toBe('requests');
      expect(env.mock.requests).toHaveLength(5);
    } finally {
      restore();
      server.close();
    }
  });
});

describe('batched reservations', () => {
  /** A stand-in exporter answering reservations as the real one does (single form and batches), recording bodies. */
  async function fakeExporter(answer: (item: any) => unknown, delayMillis = 0) {
    const bodies: unknown[] = [];
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        bodies.push(body);
        const out = JSON.stringify(Array.isArray(body) ? body.map(answer) : answer(body));
        setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end(out), delayMillis);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return { bodies, server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}` };
  }
  const refusal = (item: { user: string }) => ({ granted: false, user: item.user, plan: 'free', limit: 'requests', used: 10, limit_value: 10, retry_after: '2027-01-01T00:00:00.000Z' });

  it('calls started in the same turn go to the exporter as one request, and each call gets its own answer', async () => {
    const f = await fakeExporter((item) =>
      item.user === 'refused-user' ? refusal(item) : item.user === 'bad-item' ? { error: '[1] input_tokens: too big', status: 400 } : { granted: true, id: `r_${item.user}` },
    );
    const said: string[] = [];
    const restore = captureWarnings(said);
    try {
      configureEnforcement({ url: f.url, enforce: 'block', stream: false });
      const users = ['batch-a', 'bad-item', 'refused-user', 'batch-b', 'batch-c'];
      const sentBefore = env.mock.requests.length;
      const results = await Promise.allSettled(users.map((id) => withUser({ id }, () => openai.chat.completions.create({ model: 'gpt-4o-mini', messages }))));
      // One HTTP request carried all five reservations, in the order the calls were made.
      expect(f.bodies).toHaveLength(1);
      expect((f.bodies[0] as { user: string }[]).map((b) => b.user)).toEqual(users);
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
      expect((results[2] as PromiseRejectedResult).reason).toBeInstanceOf(UsageLimitError);
      expect((results[2] as PromiseRejectedResult).reason).toMatchObject({ user: 'refused-user', limit: 'requests' });
      // The item the exporter could not decide fails open alone (said once); the refused call was never sent.
      expect(env.mock.requests.length - sentBefore).toBe(4);
      expect(said).toHaveLength(1);
      expect(said[0]).toMatch(/usage limits could not be checked.*HTTP 400: \[1\] input_tokens/);
      const ids = env.h
        .finished()
        .slice(-5)
        .map((s) => s.attributes[ATTR_RESERVATION_ID])
        .filter((x) => x !== undefined)
        .sort();
      expect(ids).toEqual(['r_batch-a', 'r_batch-b', 'r_batch-c']);
      // A call alone is sent in the single form (an object), which exporters without batches understand too.
      await withUser({ id: 'alone' }, () => openai.chat.completions.create({ model: 'gpt-4o-mini', messages }));
      expect(f.bodies).toHaveLength(2);
      expect(Array.isArray(f.bodies[1])).toBe(false);
      expect(f.bodies[1]).toMatchObject({ user: 'alone', model: 'gpt-4o-mini', enforce: 'block' });
    } finally {
      restore();
      f.server.close();
    }
  });

  it('a batch answered too late: every call in it fails closed (or open) on its own timeout; no hang', async () => {
    const f = await fakeExporter((item) => ({ granted: true, id: `r_${item.user}` }), 1500);
    const said: string[] = [];
    const restore = captureWarnings(said);
    try {
      configureEnforcement({ url: f.url, enforce: 'block', stream: false, fail: 'closed', timeoutMillis: 100 });
      const sentBefore = env.mock.requests.length;
      const closed = await Promise.allSettled([1, 2, 3].map((i) => withUser({ id: `late-${i}` }, () => openai.chat.completions.create({ model: 'gpt-4o-mini', messages }))));
      expect(f.bodies).toHaveLength(1);
      expect(closed.every((r) => r.status === 'rejected' && r.reason instanceof UsageLimitError && r.reason.limit === 'unavailable')).toBe(true);
      expect(env.mock.requests.length).toBe(sentBefore);
      configureEnforcement({ url: f.url, enforce: 'block', stream: false, fail: 'open', timeoutMillis: 100 });
      const open = await Promise.allSettled([1, 2, 3].map((i) => withUser({ id: `late-open-${i}` }, () => openai.chat.completions.create({ model: 'gpt-4o-mini', messages }))));
      expect(open.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);
      expect(env.mock.requests.length).toBe(sentBefore + 3);
      expect(said).toHaveLength(1);
      expect(said[0]).toMatch(/no answer within 100 ms/);
    } finally {
      restore();
      f.server.closeAllConnections();
      f.server.close();
    }
  });

  it('an exporter without the batch form (400 to an array): the calls are asked for again one by one, and later ones go single', async () => {
    let arrays = 0;
    const singles: string[] = [];
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        if (Array.isArray(body)) {
          arrays++;
          res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'body: Invalid input: expected object, received array' }));
          return;
        }
        singles.push(body.user);
        const answer = body.user === 'old-refused' ? refusal(body) : { granted: true, id: `r_${body.user}` };
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const said: string[] = [];
    const restore = captureWarnings(said);
    try {
      configureEnforcement({ url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, enforce: 'block', stream: false });
      for (const round of [1, 2]) {
        const users = [`old-${round}-a`, 'old-refused', `old-${round}-b`];
        const sentBefore = env.mock.requests.length;
        const r = await Promise.allSettled(users.map((id) => withUser({ id }, () => openai.chat.completions.create({ model: 'gpt-4o-mini', messages }))));
        expect(r.map((x) => x.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
        expect((r[1] as PromiseRejectedResult).reason).toBeInstanceOf(UsageLimitError);
        expect(env.mock.requests.length).toBe(sentBefore + 2);
        expect(env.h.finished().slice(-3).map((s) => s.attributes[ATTR_RESERVATION_ID]).filter(Boolean).sort()).toEqual([`r_old-${round}-a`, `r_old-${round}-b`]);
      }
      // One batch was tried; everything else went in the single form, and nothing failed open.
      expect(arrays).toBe(1);
      expect(singles).toHaveLength(6);
      expect(said).toEqual([]);
    } finally {
      restore();
      server.close();
    }
  });

  it('a broken batch answer (wrong length, not an array, an error status) fails every call in it, open', async () => {
    const answers = [JSON.stringify([{ granted: true, id: 'r_1' }]), JSON.stringify({ granted: true, id: 'r_x' }), JSON.stringify({ error: 'the ledger is unavailable' })];
    let n = 0;
    const server = createServer((req, res) => {
      req.resume();
      const i = n++;
      res.writeHead(i === 2 ? 503 : 200, { 'content-type': 'application/json' }).end(answers[Math.min(i, 2)]);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const said: string[] = [];
    const restore = captureWarnings(said);
    try {
      configureEnforcement({ url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, enforce: 'block', stream: false });
      for (let round = 0; round < 3; round++) {
        const sentBefore = env.mock.requests.length;
        const r = await Promise.allSettled([1, 2].map((i) => withUser({ id: `broken-${round}-${i}` }, () => openai.chat.completions.create({ model: 'gpt-4o-mini', messages }))));
        expect(r.map((x) => x.status)).toEqual(['fulfilled', 'fulfilled']);
        expect(env.mock.requests.length).toBe(sentBefore + 2);
        const spans = env.h.finished().slice(-2);
        expect(spans.every((s) => s.attributes[ATTR_RESERVATION_ID] === undefined)).toBe(true);
      }
      expect(n).toBe(3);
      expect(said[0]).toMatch(/a batch of 2 without 2 answers/);
    } finally {
      restore();
      server.close();
    }
  });
});
