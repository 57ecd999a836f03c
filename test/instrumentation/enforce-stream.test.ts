/**
 * Admission control over the reservations stream (issue 16, session 5), app side: the real OpenAI SDK against the
 * mock provider, a real exporter in process. Calls travel the stream once it is open, with the same guarantees as
 * the HTTP form (exactly 3 of 50 reach the provider); an exporter without the stream (404) gets the HTTP form and is
 * not asked again on every call; a silent, hostile or restarting exporter fails each call open or closed on its own
 * timeout, never a hang and never an unhandled rejection; tokenmeter's own requests make no span.
 */
import OpenAI from 'openai';
import { isTracingSuppressed } from '@opentelemetry/core';
import { context } from '@opentelemetry/api';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { createServer, type ClientRequest, type IncomingMessage, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ATTR_RESERVATION_ID, ATTR_RESERVATION_UNAVAILABLE, ATTR_USER_ID } from '../../src/contract/names.js';
import { configureEnforcement, instrument, UsageLimitError, withUser } from '../../src/instrumentation/index.js';
import { enforcementSettings, reservationStreamOpen, RESERVATION_STREAM_PROTOCOL } from '../../src/instrumentation/enforce.js';
import { captureWarnings } from '../../src/instrumentation/warn.js';
import { otlpJson, postOtlp, scrape, startTestExporter, type TestExporter } from '../exporter/harness.js';
import { useHarnessWithMock } from './harness.js';

const env = useHarnessWithMock({ seed: 1616 });
let exporter: TestExporter;
let openai: OpenAI;
const unhandled: unknown[] = [];
const onUnhandled = (e: unknown) => unhandled.push(e);
const servers: Server[] = [];
const sockets = new Set<Socket>();

/** Requests this process made to a reservations endpoint, and whether tracing was suppressed for each. */
const exporterRequests: { path: string; suppressed: boolean }[] = [];
const onRequest = (m: unknown) => {
  const req = (m as { request: ClientRequest }).request;
  if (req.path.startsWith('/api/v1/reservations')) exporterRequests.push({ path: req.path, suppressed: isTracingSuppressed(context.active()) });
};

beforeAll(async () => {
  instrument(OpenAI);
  exporter = await startTestExporter();
  openai = new OpenAI({ apiKey: 'k', baseURL: `${env.mock.url}/v1`, maxRetries: 0 });
  process.on('unhandledRejection', onUnhandled);
  subscribe('http.client.request.start', onRequest);
});
afterAll(async () => {
  unsubscribe('http.client.request.start', onRequest);
  process.off('unhandledRejection', onUnhandled);
  configureEnforcement({});
  for (const s of sockets) s.destroy();
  for (const s of servers) s.close();
  await exporter.close();
});
afterEach(() => {
  configureEnforcement({});
  expect(unhandled).toEqual([]);
});

const messages = [{ role: 'user' as const, content: 'hello' }];
const ask = (user: string) => withUser({ id: user, plan: 'free' }, () => openai.chat.completions.create({ model: 'gpt-4o-mini', max_tokens: 16, messages }));
const outcome = (p: Promise<unknown>) =>
  p.then(
    () => 'sent' as const,
    (e: unknown) => e,
  );

let seeded = 0;
async function seed(e: TestExporter, user: string, used: number): Promise<void> {
  const spans = Array.from({ length: used }, () => ({ traceId: 'f'.repeat(32), spanId: (++seeded).toString(16).padStart(16, '0'), user, model: 'gpt-4o-mini', input: 10, output: 5 }));
  expect((await postOtlp(e.otlpUrl, otlpJson(spans))).status).toBe(200);
}

/** A fake exporter: `onUpgrade` gets the upgraded socket (undefined: no stream, the request handler answers). */
async function fakeExporter(handler: (req: IncomingMessage, body: string, res: import('node:http').ServerResponse) => void, onUpgrade?: (socket: Socket) => void): Promise<{ url: string; upgrades: () => number }> {
  let upgrades = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handler(req, Buffer.concat(chunks).toString('utf8'), res));
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  if (onUpgrade) {
    server.on('upgrade', (_req, socket: Socket) => {
      upgrades++;
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: ${RESERVATION_STREAM_PROTOCOL}\r\n\r\n`);
      onUpgrade(socket);
    });
  }
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, upgrades: () => upgrades };
}

describe('enforce over the reservations stream', () => {
  it('the first call opens the stream and every call travels it: 50 concurrent calls with 3 requests left, exactly 3 reach the provider', async () => {
    configureEnforcement({ url: exporter.httpUrl, enforce: 'block' });
    const before = exporterRequests.length;
    expect(await outcome(ask('stream-warm'))).toBe('sent');
    expect(reservationStreamOpen()).toBe(true);
    await seed(exporter, 'stream-user', 7);
    const sentBefore = env.mock.requests.length;
    const outcomes = await Promise.all(Array.from({ length: 50 }, () => outcome(ask('stream-user'))));
    expect(outcomes.filter((o) => o === 'sent')).toHaveLength(3);
    expect(outcomes.filter((o) => o instanceof UsageLimitError && o.limit === 'requests')).toHaveLength(47);
    expect(env.mock.requests.length - sentBefore).toBe(3);
    // One request in all (the upgrade); no reservation went in the HTTP form.
    expect(exporterRequests.slice(before).map((r) => r.path)).toEqual(['/api/v1/reservations/stream']);
    const granted = env.h.finished().filter((s) => s.attributes[ATTR_USER_ID] === 'stream-user' && s.attributes[ATTR_RESERVATION_ID] !== undefined);
    expect(granted).toHaveLength(3);
    expect((await scrape(exporter.httpUrl)).find((l) => l.startsWith('tokenmeter_reservation_streams '))).toBe('tokenmeter_reservation_streams 1');
  });

  it('is on by default; TOKENMETER_ENFORCE_STREAM=false (or configureEnforcement({ stream: false })) turns it off', () => {
    for (const [env, stream] of [
      [{}, true],
      [{ TOKENMETER_ENFORCE_STREAM: 'false' }, false],
      [{ TOKENMETER_ENFORCE_STREAM: ' OFF ' }, false],
      [{ TOKENMETER_ENFORCE_STREAM: '0' }, false],
      [{ TOKENMETER_ENFORCE_STREAM: 'true' }, true],
    ] as const) {
      configureEnforcement({});
      expect(enforcementSettings(env).stream, JSON.stringify(env)).toBe(stream);
    }
    configureEnforcement({ stream: false });
    expect(enforcementSettings({ TOKENMETER_ENFORCE_STREAM: 'true' }).stream).toBe(false);
  });

  it("tokenmeter's own requests to the exporter make no span (tracing suppressed), the stream's upgrade included", async () => {
    configureEnforcement({ url: exporter.httpUrl, enforce: 'block' });
    await ask('no-span-1');
    configureEnforcement({ url: exporter.httpUrl, enforce: 'block', stream: false });
    await ask('no-span-2');
    expect(exporterRequests.length).toBeGreaterThanOrEqual(2);
    expect(exporterRequests.every((r) => r.suppressed)).toBe(true);
  });

  it('an exporter without the stream (404, as before this version): calls go in the HTTP form and the stream is not asked for again on every call', async () => {
    let streamAsks = 0;
    const f = await fakeExporter((req, body, res) => {
      if (req.url === '/api/v1/reservations/stream') {
        streamAsks++;
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"no API endpoint at /api/v1/reservations/stream"}');
        return;
      }
      const r = JSON.parse(body) as { user: string };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ granted: true, id: `r_${r.user}` }));
    });
    const said: string[] = [];
    const restore = captureWarnings(said);
    try {
      configureEnforcement({ url: f.url, enforce: 'block' });
      for (let i = 0; i < 5; i++) expect(await outcome(ask(`old-${i}`))).toBe('sent');
      expect(streamAsks).toBe(1);
      expect(env.h.finished().at(-1)!.attributes[ATTR_RESERVATION_ID]).toBe('r_old-4');
      expect(said).toEqual([]);
    } finally {
      restore();
    }
  });

  it('a stream that never answers: each call fails closed (or open) on its own timeout, no hang; the silent stream is dropped', async () => {
    const upgraded: Socket[] = [];
    const ended = new Set<Socket>();
    const f = await fakeExporter(
      (_req, _body, res) => res.writeHead(503).end(),
      (s) => {
        s.on('error', () => {});
        upgraded.push(s);
        for (const ev of ['end', 'close']) s.once(ev, () => ended.add(s));
        s.resume();
      },
    );
    configureEnforcement({ url: f.url, enforce: 'block', fail: 'closed', timeoutMillis: 150 });
    const sentBefore = env.mock.requests.length;
    const t0 = Date.now();
    const closed = await Promise.all([1, 2, 3].map((i) => outcome(ask(`silent-${i}`))));
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(closed.every((o) => o instanceof UsageLimitError && o.limit === 'unavailable')).toBe(true);
    expect(env.mock.requests.length).toBe(sentBefore);
    expect(upgraded).toHaveLength(1);
    // The calls on the stream got nothing back in time: the app dropped it (another is opened after a backoff).
    await expect.poll(() => ended.has(upgraded[0]!)).toBe(true);
    const said: string[] = [];
    const restore = captureWarnings(said);
    try {
      configureEnforcement({ url: f.url, enforce: 'block', fail: 'open', timeoutMillis: 150 });
      expect(await outcome(ask('silent-open'))).toBe('sent');
      expect(env.h.finished().at(-1)!.attributes[ATTR_RESERVATION_UNAVAILABLE]).toBe(true);
      expect(said).toHaveLength(1);
    } finally {
      restore();
    }
  });

  it('a hostile stream (non-JSON lines, unknown ids, a refusal without its figures, an endless line) is never trusted: calls fail open, nothing throws', async () => {
    let n = 0;
    const f = await fakeExporter(
      (_req, _body, res) => res.writeHead(503).end(),
      (s) => {
        let buf = '';
        s.on('error', () => {});
        s.on('data', (c: Buffer) => {
          buf += c.toString('utf8');
          let nl: number;
          while ((nl = buf.indexOf('\n')) !== -1) {
            const { id } = JSON.parse(buf.slice(0, nl)) as { id: number };
            buf = buf.slice(nl + 1);
            const k = n++;
            if (k === 0) s.write('not json\n{"id":"x"}\nnull\n[]\n');
            else if (k === 1) s.write(`{"id":${id + 1000},"answer":{"granted":false,"limit":"requests","plan":"free","used":1,"limit_value":1}}\n`);
            else if (k === 2) s.write(`{"id":${id},"answer":{"granted":false,"limit":"everything"}}\n`);
            else if (k === 3) s.write(`{"id":${id},"answer":{"granted":"yes"}}\n`);
            else s.write('x'.repeat(200_000));
          }
        });
      },
    );
    const said: string[] = [];
    const restore = captureWarnings(said);
    try {
      configureEnforcement({ url: f.url, enforce: 'block', timeoutMillis: 150 });
      const sentBefore = env.mock.requests.length;
      for (let i = 0; i < 5; i++) expect(await outcome(ask(`hostile-${i}`))).toBe('sent');
      expect(env.mock.requests.length - sentBefore).toBe(5);
      expect(said).toHaveLength(1);
      expect(said[0]).toMatch(/usage limits could not be checked/);
    } finally {
      restore();
    }
  });

  it('the exporter restarts under the stream: calls in between fail open on their own, and the stream comes back to the new exporter', async () => {
    const first = await startTestExporter();
    const port = Number(new URL(first.httpUrl).port);
    configureEnforcement({ url: first.httpUrl, enforce: 'block', timeoutMillis: 200 });
    expect(await outcome(ask('restart-1'))).toBe('sent');
    expect(reservationStreamOpen()).toBe(true);
    const pending = outcome(ask('restart-2'));
    await first.close();
    expect(await pending).toBe('sent');
    await expect.poll(() => reservationStreamOpen()).toBe(false);
    const down = await outcome(ask('restart-down'));
    expect(down).toBe('sent');
    expect(env.h.finished().at(-1)!.attributes[ATTR_RESERVATION_UNAVAILABLE]).toBe(true);
    const second = await startTestExporter({ config: { server: { http_port: port } } });
    try {
      // Asked again after the backoff (100 ms, doubling): a few calls later the stream is back.
      await expect
        .poll(async () => {
          await ask('restart-back');
          return reservationStreamOpen();
        }, { timeout: 5000, interval: 100 })
        .toBe(true);
      await seed(second, 'restart-limit', 10);
      const refused = await outcome(ask('restart-limit'));
      expect(refused).toBeInstanceOf(UsageLimitError);
    } finally {
      configureEnforcement({});
      await second.close();
    }
  });
});
