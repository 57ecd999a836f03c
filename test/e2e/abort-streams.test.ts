/**
 * Streams an app stops before their end, in real app servers (node:http and Express, child processes under
 * `tokenmeter/register`, exporting OTLP to a local receiver): `break`, `stream.controller.abort()`, the app's own
 * AbortSignal, a client that disconnects, `pipeline()` into the response, an abort before the first chunk and a
 * stream never read. The mock provider records what it really put on the wire before the connection closed;
 * the billed (estimated) output must match it within one chunk. Each case is a fresh process, so the estimate is
 * the first of the process: the tokenizer is not loaded yet, and loading it must not keep the provider
 * generating.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startMockProvider, type MockProvider, type SentStream } from '../../src/mock-provider/index.js';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../helpers/otlp-receiver.js';
import { assertBuilt, FIXTURES, ROOT } from './fixtures/run-app.js';

const CHUNKS = 10;
let mock: MockProvider;
let receiver: OtlpReceiver;

beforeAll(async () => {
  assertBuilt();
  // 400 words 40 ms apart: a 16 s answer, so a provider kept generating by a blocked event loop shows. (Chunks
  // closer together than the scheduling delays of a busy 2-core machine would make "within one chunk" flaky.)
  mock = await startMockProvider({ seed: 21, responseWords: 400, chunkDelayMillis: 40 });
  receiver = await startOtlpReceiver();
});
afterAll(async () => {
  await mock?.close();
  await receiver?.close();
});
beforeEach(() => {
  receiver.requests.length = 0;
  mock.reset();
});

interface App {
  child: ChildProcess;
  port: number;
  stderr: () => string;
  exited: Promise<number | null>;
}

async function startApp(env: Record<string, string>): Promise<App> {
  const childEnv: Record<string, string | undefined> = {
    ...process.env,
    MOCK_URL: mock.url,
    CHUNKS: String(CHUNKS),
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_SERVICE_NAME: 'e2e-abort',
    ...env,
  };
  delete childEnv.NODE_OPTIONS;
  const child = spawn(process.execPath, ['--expose-gc', '--import', 'tokenmeter/register', join(FIXTURES, 'abort-server.mjs')], {
    cwd: ROOT,
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', () => reject(new Error(`app exited before listening: ${stderr}`)));
  });
  return { child, port, stderr: () => stderr, exited };
}

/** GETs the app; with `leaveAfterWords` the client goes away once that many words of the answer arrived. */
function get(port: number, path: string, leaveAfterWords?: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
        if (leaveAfterWords !== undefined && body.trim().split(/\s+/).length >= leaveAfterWords) {
          req.destroy();
          resolve(body);
        }
      });
      res.on('end', () => resolve(body));
      res.on('error', () => resolve(body));
    });
    req.on('error', (err) => (leaveAfterWords === undefined ? reject(err) : resolve('')));
    req.end();
  });
}

async function until<T>(what: string, fn: () => T | undefined, timeoutMillis = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMillis;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

async function stopApp(app: App): Promise<void> {
  app.child.kill('SIGTERM');
  expect(await app.exited).toBe(0);
}

function chatSpans(): ReceivedSpan[] {
  return receiver.spans().filter((s) => s.attributes['gen_ai.operation.name'] === 'chat');
}

/** The one stream the mock served, once the connection has ended. */
function oneStream(): Promise<SentStream> {
  return until('the provider to finish the stream', () => (mock.streamsSent.length > 0 ? mock.streamsSent[0] : undefined));
}

function expectBilledWithinOneChunk(span: ReceivedSpan, sent: SentStream): void {
  const billed = Number(span.attributes['gen_ai.usage.output_tokens']);
  // The provider stopped soon after the app stopped reading: far from the whole answer.
  expect(sent.completed).toBe(false);
  expect(sent.eventsSent).toBeLessThan(sent.eventsTotal / 4);
  expect(billed).toBeLessThanOrEqual(sent.outputTokensSent);
  expect(billed).toBeGreaterThanOrEqual(sent.outputTokensSent - sent.maxEventTokens);
  expect(span.attributes['tokenmeter.usage.estimated']).toBe(true);
  expect(span.attributes['tokenmeter.usage.incomplete']).toBe(true);
  expect(Number(span.attributes['gen_ai.usage.input_tokens'])).toBeGreaterThan(0);
}

const SERVERS = ['node:http', 'express'] as const;

describe.each(SERVERS)('aborted streams billed to the chunk in a %s server (first estimate of the process)', (server) => {
  const env = (mode: string, provider = 'openai'): Record<string, string> => ({ MODE: mode, SERVER: server === 'express' ? 'express' : 'http', PROVIDER: provider });

  it.each([
    ['break', 'openai'],
    ['break', 'anthropic'],
    ['controller', 'openai'],
    ['signal', 'openai'],
  ] as const)('the app stops reading with %s (%s)', async (mode, provider) => {
    const app = await startApp(env(mode, provider));
    const body = await get(app.port, '/');
    const read = (JSON.parse(body.trim().split('\n').pop()!) as { read: string }).read;
    const sent = await oneStream();
    await sleep(100);
    await stopApp(app);
    expect(app.stderr()).toBe('');
    // What the app read is what the provider sent, up to the chunk in flight.
    expect(sent.textSent.startsWith(read)).toBe(true);
    const [span] = chatSpans();
    expect(chatSpans()).toHaveLength(1);
    expect(span.attributes['tokenmeter.stream.end']).toBe(mode === 'break' ? 'break' : 'abort');
    expectBilledWithinOneChunk(span, sent);
  });

  it.each(['disconnect', 'pipeline'] as const)('the client goes away mid-answer (%s)', async (mode) => {
    const app = await startApp(env(mode));
    await get(app.port, '/', CHUNKS);
    const sent = await oneStream();
    expect(sent.clientClosed).toBe(true);
    await sleep(100);
    await stopApp(app);
    expect(app.stderr()).toBe('');
    const spans = chatSpans();
    expect(spans).toHaveLength(1);
    expect(['abort', 'break']).toContain(spans[0].attributes['tokenmeter.stream.end']);
    expectBilledWithinOneChunk(spans[0], sent);
  });

  it('a stream aborted before its first chunk is flagged incomplete, its prompt estimated', async () => {
    const app = await startApp(env('first'));
    await get(app.port, '/');
    const sent = await oneStream();
    await sleep(100);
    await stopApp(app);
    expect(app.stderr()).toBe('');
    const [span] = chatSpans();
    expect(span.attributes['tokenmeter.stream.end']).toBe('abort');
    // The app read nothing, so nothing is claimed for the output; what the provider produced before the close
    // reached it (a chunk or two) is not known to the app: the span says so instead of pretending it was 0.
    expect(span.attributes['gen_ai.usage.output_tokens']).toBe(0);
    expect(span.attributes['tokenmeter.usage.estimated']).toBe(true);
    expect(span.attributes['tokenmeter.usage.incomplete']).toBe(true);
    expect(Number(span.attributes['gen_ai.usage.input_tokens'])).toBeGreaterThan(0);
    expect(sent.completed).toBe(false);
    expect(sent.eventsSent).toBeLessThan(CHUNKS);
  });

  it('a stream the app never reads ends when it is garbage-collected: connection closed, estimated, flagged, warned once', async () => {
    const app = await startApp(env('unread'));
    await get(app.port, '/');
    expect(await get(app.port, '/gc')).toBe('collected\n');
    const sent = await oneStream();
    expect(sent.clientClosed).toBe(true);
    await sleep(100);
    await stopApp(app);
    const [span] = chatSpans();
    expect(span.attributes['tokenmeter.stream.end']).toBe('unread');
    expect(span.attributes['tokenmeter.usage.estimated']).toBe(true);
    expect(span.attributes['tokenmeter.usage.incomplete']).toBe(true);
    // Nothing was read, so nothing is claimed for the output; the provider's part is flagged, not guessed.
    expect(span.attributes['gen_ai.usage.output_tokens']).toBe(0);
    expect(sent.eventsSent).toBeLessThan(sent.eventsTotal);
    expect(app.stderr().match(/tokenmeter: warning: a streamed LLM response was dropped/g)).toHaveLength(1);
  });
});
