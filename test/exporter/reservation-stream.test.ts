/**
 * The reservations stream (issue 16, session 5): `GET /api/v1/reservations/stream` upgraded to newline-delimited
 * JSON. Decisions are the same as the HTTP form's (exactly 3 of 50 granted); the input boundary: wrong token, path,
 * method or protocol; lines that are not JSON, oversized, hostile or never finished (slow loris); a flood of lines;
 * a client that goes away mid-stream; the cap on streams; shutdown ending the streams.
 */
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_RESERVATION_STREAMS, MAX_STREAM_LINE_BYTES, RESERVATION_STREAM_PROTOCOL } from '../../src/exporter/reservation-stream.js';
import { FakeClock } from './fakes.js';
import { httpRequest, otlpJson, postOtlp, scrape, startTestExporter, type TestExporter } from './harness.js';

const running: TestExporter[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(running.splice(0).map((e) => e.close()));
});
async function start(...args: Parameters<typeof startTestExporter>): Promise<TestExporter> {
  const e = await startTestExporter(...args);
  running.push(e);
  return e;
}

const NOW = new Date('2026-06-15T12:00:00Z');
const TOKEN = 's3cret-token-0123456789';
const span = (n: number) => n.toString(16).padStart(16, '0');
const call = (user: string, n: number, extra: Record<string, unknown> = {}) => ({
  user,
  provider: 'openai',
  model: 'gpt-4o-mini',
  input_tokens: 100,
  max_output_tokens: 50,
  trace_id: 'a'.repeat(32),
  span_id: span(n),
  ...extra,
});

interface RawStream {
  status: number;
  head: string;
  socket: Socket;
  /** The next `n` lines from the exporter (rejects when the stream closes first). */
  lines(n: number): Promise<Record<string, unknown>[]>;
  closed: Promise<void>;
}

/** Opens a stream by hand: the upgrade request as written, then the lines. */
function open(e: TestExporter, o: { token?: string; path?: string; upgrade?: string; method?: string } = {}): Promise<RawStream> {
  const url = new URL(e.httpUrl);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname);
    sockets.push(socket);
    socket.setEncoding('utf8');
    let buf = '';
    let headDone = false;
    const got: Record<string, unknown>[] = [];
    const waiting: { n: number; resolve: (v: Record<string, unknown>[]) => void; reject: (e: Error) => void }[] = [];
    const serve = () => {
      while (waiting.length > 0 && got.length >= waiting[0]!.n) {
        const w = waiting.shift()!;
        w.resolve(got.splice(0, w.n));
      }
    };
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    void closed.then(() => {
      for (const w of waiting.splice(0)) w.reject(new Error(`stream closed with ${got.length} line(s) unread`));
    });
    socket.on('error', () => {});
    socket.on('data', (chunk: string) => {
      buf += chunk;
      if (!headDone) {
        const i = buf.indexOf('\r\n\r\n');
        if (i === -1) return;
        headDone = true;
        const head = buf.slice(0, i);
        buf = buf.slice(i + 4);
        const status = Number(head.split(' ')[1]);
        resolve({
          status,
          head: status === 101 ? head : `${head}\r\n\r\n${buf}`,
          socket,
          closed,
          lines: (n) =>
            new Promise((res, rej) => {
              waiting.push({ n, resolve: res, reject: rej });
              serve();
            }),
        });
      }
      let nl: number;
      while ((nl = buf.indexOf('\n')) !== -1) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          got.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          // Part of a refusal's body, not a stream line.
        }
      }
      serve();
    });
    socket.once('close', () => (headDone ? undefined : reject(new Error('closed before an answer'))));
    const headers = [`${o.method ?? 'GET'} ${o.path ?? '/api/v1/reservations/stream'} HTTP/1.1`, `host: ${url.host}`, 'connection: Upgrade', `upgrade: ${o.upgrade ?? RESERVATION_STREAM_PROTOCOL}`];
    if (o.token !== undefined) headers.push(`authorization: Bearer ${o.token}`);
    socket.write(`${headers.join('\r\n')}\r\n\r\n`);
  });
}

const send = (s: RawStream, lines: unknown[]) => s.socket.write(lines.map((l) => `${typeof l === 'string' ? l : JSON.stringify(l)}\n`).join(''));

async function seed(e: TestExporter, user: string, used: number): Promise<void> {
  const spans = Array.from({ length: used }, (_, i) => ({ traceId: 'b'.repeat(32), spanId: span(1000 + i), user, model: 'gpt-4o-mini', input: 10, output: 5 }));
  expect((await postOtlp(e.otlpUrl, otlpJson(spans, BigInt(NOW.getTime()) * 1_000_000n))).status).toBe(200);
}

const streamsGauge = async (e: TestExporter) => Number((await scrape(e.httpUrl)).find((l) => l.startsWith('tokenmeter_reservation_streams '))?.split(' ')[1]);

describe('reservations stream', () => {
  it('50 reservations on one stream for a user with 3 requests left: exactly 3 granted, each answer under its own id', async () => {
    const e = await start({ clock: new FakeClock(NOW) });
    await seed(e, 'u1', 7);
    const s = await open(e);
    expect(s.status).toBe(101);
    expect(await streamsGauge(e)).toBe(1);
    send(
      s,
      Array.from({ length: 50 }, (_, i) => ({ id: 100 + i, reservation: call('u1', i + 1) })),
    );
    const answers = await s.lines(50);
    expect(answers.map((a) => a.id).sort((x, y) => Number(x) - Number(y))).toEqual(Array.from({ length: 50 }, (_, i) => 100 + i));
    const granted = answers.filter((a) => (a.answer as { granted: boolean }).granted);
    expect(granted).toHaveLength(3);
    expect(answers.find((a) => !(a.answer as { granted: boolean }).granted)!.answer).toEqual({
      granted: false,
      user: 'u1',
      plan: 'free',
      limit: 'requests',
      used: 10,
      limit_value: 10,
      retry_after: '2026-07-01T00:00:00.000Z',
    });
    // The same decision as the HTTP form: the HTTP form now refuses too.
    const r = await httpRequest(`${e.httpUrl}/api/v1/reservations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(call('u1', 99)) });
    expect(JSON.parse(r.body.toString('utf8')).granted).toBe(false);
    s.socket.end();
    await s.closed;
  });

  it('the upgrade is refused with a plain HTTP answer: no or wrong token (401), wrong path (404), method (405) or protocol (400); a plain GET gets 426', async () => {
    const e = await start({ clock: new FakeClock(NOW), config: { auth: { api_token: TOKEN } } });
    for (const [o, status] of [
      [{}, 401],
      [{ token: 'wrong-token-0123456789' }, 401],
      [{ token: TOKEN, path: '/api/v1/reservations/stream?x=1' }, 404],
      [{ token: TOKEN, path: '/metrics' }, 404],
      [{ token: TOKEN, method: 'POST' }, 405],
      [{ token: TOKEN, upgrade: 'websocket' }, 400],
    ] as const) {
      const s = await open(e, o);
      expect(s.status, JSON.stringify(o)).toBe(status);
      expect(s.head).toMatch(/"error":"/);
      await s.closed;
    }
    const plain = await httpRequest(`${e.httpUrl}/api/v1/reservations/stream`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(plain.status).toBe(426);
    expect(plain.headers.upgrade).toBe(RESERVATION_STREAM_PROTOCOL);
    const ok = await open(e, { token: TOKEN });
    expect(ok.status).toBe(101);
    send(ok, [{ id: 1, reservation: call('u2', 1) }]);
    expect((await ok.lines(1))[0]).toMatchObject({ id: 1, answer: { granted: true } });
  });

  it('hostile reservations get their own 400 and the stream goes on; a line that is not a JSON object with an id closes it, saying why', async () => {
    const e = await start({ clock: new FakeClock(NOW) });
    const s = await open(e);
    send(s, [
      { id: 1, reservation: { ...call('h', 1), extra: 1 } },
      { id: 2, reservation: JSON.parse('{"__proto__":{"granted":true},"user":"h"}') },
      { id: 3, reservation: call('h', 3, { input_tokens: 1e300 }) },
      { id: 4, reservation: 'not an object' },
      { id: 5, reservation: call('h', 5), more: true },
      { id: 6, reservation: call('', 6) },
      `{"id":7,"reservation":${'['.repeat(1000)}${']'.repeat(1000)}}`,
      '',
      '\r',
      { id: 8, reservation: call('h', 8) },
    ]);
    const answers = await s.lines(8);
    const byId = new Map(answers.map((a) => [a.id, a]));
    for (const id of [1, 2, 3, 4, 5, 6, 7]) expect(byId.get(id), `id ${id}`).toMatchObject({ status: 400, error: expect.any(String) });
    expect(byId.get(8)).toMatchObject({ answer: { granted: true } });
    for (const bad of ['not json', '[1,2]', '{"id":-1,"reservation":{}}', '{"id":"7","reservation":{}}', '{"reservation":{}}', '{"id":1e300,"reservation":{}}']) {
      const t = await open(e);
      send(t, [bad]);
      const [last] = await t.lines(1);
      expect(last, bad).toMatchObject({ id: null, status: 400 });
      await t.closed;
    }
    // The exporter is fine.
    expect((await httpRequest(`${e.httpUrl}/healthz`)).status).toBe(200);
  });

  it('an oversized line (with or without its newline) is refused with 413 and the stream closed, without buffering it', async () => {
    const e = await start({ clock: new FakeClock(NOW) });
    for (const tail of ['\n', '']) {
      const s = await open(e);
      s.socket.write(`{"id":1,"reservation":{"user":"${'x'.repeat(MAX_STREAM_LINE_BYTES)}"}}${tail}`);
      const [last] = await s.lines(1);
      expect(last).toMatchObject({ id: null, status: 413 });
      await s.closed;
    }
    // A megabyte in one go is cut off at the limit too.
    const big = await open(e);
    big.socket.write('x'.repeat(1024 * 1024));
    expect((await big.lines(1))[0]).toMatchObject({ id: null, status: 413 });
    await big.closed;
  });

  it('a flood of lines is answered in full, the stream read as the answers go out, and the API stays responsive', async () => {
    const e = await start({ clock: new FakeClock(NOW) });
    const s = await open(e);
    const n = 5000;
    const answered = s.lines(n);
    send(
      s,
      Array.from({ length: n }, (_, i) => ({ id: i, reservation: call(`f${i}`, i + 1) })),
    );
    expect((await httpRequest(`${e.httpUrl}/healthz`)).status).toBe(200);
    const answers = await answered;
    expect(new Set(answers.map((a) => a.id)).size).toBe(n);
    expect(answers.every((a) => (a.answer as { granted?: boolean } | undefined)?.granted === true)).toBe(true);
  });

  it('a line never finished (slow loris) closes the stream after server.headers_timeout; an idle stream stays open', async () => {
    const e = await start({ clock: new FakeClock(NOW), config: { server: { headers_timeout: '1s' } } });
    const idle = await open(e);
    const s = await open(e);
    s.socket.write('{"id":1,"reser');
    const t0 = Date.now();
    const drip = setInterval(() => s.socket.write('x'), 200);
    try {
      const [last] = await s.lines(1);
      expect(last).toMatchObject({ id: null, status: 408 });
      expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
      await s.closed;
    } finally {
      clearInterval(drip);
    }
    send(idle, [{ id: 1, reservation: call('idle', 1) }]);
    expect((await idle.lines(1))[0]).toMatchObject({ id: 1, answer: { granted: true } });
  });

  it('a client that goes away mid-stream: the exporter carries on and the stream is gone from the gauge', async () => {
    const e = await start({ clock: new FakeClock(NOW) });
    const s = await open(e);
    send(
      s,
      Array.from({ length: 200 }, (_, i) => ({ id: i, reservation: call('gone', i + 1) })),
    );
    s.socket.destroy();
    await s.closed;
    await expect.poll(() => streamsGauge(e)).toBe(0);
    const t = await open(e);
    send(t, [{ id: 1, reservation: call('after', 1) }]);
    expect((await t.lines(1))[0]).toMatchObject({ id: 1, answer: { granted: true } });
  });

  it(`at most ${MAX_RESERVATION_STREAMS} streams at once: the next gets 503 (the app uses the HTTP form); a closed one frees its place`, async () => {
    const e = await start({ clock: new FakeClock(NOW) });
    const streams = await Promise.all(Array.from({ length: MAX_RESERVATION_STREAMS }, () => open(e)));
    expect(streams.every((s) => s.status === 101)).toBe(true);
    const over = await open(e);
    expect(over.status).toBe(503);
    expect(over.head).toMatch(/retry-after: 30/i);
    expect(await streamsGauge(e)).toBe(MAX_RESERVATION_STREAMS);
    streams[0]!.socket.destroy();
    await streams[0]!.closed;
    await expect.poll(() => streamsGauge(e)).toBe(MAX_RESERVATION_STREAMS - 1);
    expect((await open(e)).status).toBe(101);
  });

  it("shutdown ends every stream, and close() does not wait for the app's side to close it", async () => {
    const e = await startTestExporter({ clock: new FakeClock(NOW) });
    const s = await open(e);
    send(s, [{ id: 1, reservation: call('bye', 1) }]);
    expect((await s.lines(1))[0]).toMatchObject({ id: 1, answer: { granted: true } });
    // The app never ends its side; the exporter's close still completes and the stream is closed.
    await e.close();
    await s.closed;
    expect(s.socket.destroyed).toBe(true);
  });
});
