/**
 * Issue 16's guarantees with real processes: two app processes (`node --import tokenmeter/register`, the real
 * OpenAI SDK, TOKENMETER_ENFORCE=block) against a real exporter and the mock provider. A free user with 3 requests
 * left sends 50 concurrent calls: exactly 3 reach the provider, 47 reject with UsageLimitError through the SDK's own
 * promise, and the ledger shows 10. The same with two exporters sharing one real PostgreSQL, and with the exporter
 * unreachable (fail open / fail closed: never a hang, never an unhandled rejection).
 */
import { mkdtempSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startExporter, type RunningExporter } from '../../src/exporter/index.js';
import { writeFileSync } from 'node:fs';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { getJson, httpRequest, otlpJson, postOtlp, scrape } from '../exporter/harness.js';
import { findPostgres, startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { runApp, useE2eServers, type AppRun } from './fixtures/run-app.js';
import { spawnServe } from './serve-helpers.js';

const e2e = useE2eServers(16);
const running: RunningExporter[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((e) => e.close()));
});
async function start(storage: string, config = {}): Promise<RunningExporter> {
  const e = await startExporter({ storage, host: '127.0.0.1', otlpPort: 0, httpPort: 0, log: (l) => process.env.TM_DEBUG && console.error(l), config: { ledger: { refresh_interval: '0s' }, ...config } });
  running.push(e);
  return e;
}

/** `used` calls of `user` committed this period. */
async function seed(e: { otlpUrl: string }, user: string, used: number): Promise<void> {
  const spans = Array.from({ length: used }, (_, i) => ({ traceId: 'c'.repeat(32), spanId: (0x7000 + i).toString(16).padStart(16, '0'), user, model: 'gpt-4o-mini', input: 10, output: 5 }));
  expect((await postOtlp(e.otlpUrl, otlpJson(spans, BigInt(Date.now()) * 1_000_000n))).status).toBe(200);
}

function app(exporter: { otlpUrl: string; httpUrl: string }, extra: Record<string, string> = {}): Promise<AppRun> {
  return runApp({
    nodeArgs: ['--import', 'tokenmeter/register'],
    file: 'enforce-app.mjs',
    env: {
      MOCK_URL: e2e.mock.url,
      OTEL_EXPORTER_OTLP_ENDPOINT: exporter.otlpUrl,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_SERVICE_NAME: 'enforce-app',
      TOKENMETER_URL: exporter.httpUrl,
      TOKENMETER_ENFORCE: 'block',
      CALLS: '25',
      // Correctness, not speed, is tested here: on a loaded 2-core CI machine two cold processes and an exporter
      // in the test's own process can take longer than the 250 ms default (fail-open would then be what is tested).
      TOKENMETER_ENFORCE_TIMEOUT_MS: '10000',
      ...extra,
    },
  });
}

async function waitFor<T>(read: () => Promise<T>, ok: (v: T) => boolean, millis = 15_000): Promise<T> {
  const end = Date.now() + millis;
  for (;;) {
    const v = await read();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
}

function outcome(runs: AppRun[]) {
  const outs = runs.map((r) => {
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/unhandled|Unhandled/);
    return JSON.parse(r.stdout) as { ok: number; limited: number; other: string[]; sdkPromise: boolean; limitErrors: Record<string, unknown>[] };
  });
  return {
    ok: outs.reduce((n, o) => n + o.ok, 0),
    limited: outs.reduce((n, o) => n + o.limited, 0),
    other: outs.flatMap((o) => o.other),
    sdkPromise: outs.every((o) => o.sdkPromise),
    firstError: outs.flatMap((o) => o.limitErrors)[0],
  };
}

describe('admission control across two app processes (embedded ledger)', () => {
  it('3 requests left, 50 concurrent calls: exactly 3 reach the provider, 47 UsageLimitError, the ledger shows 10', async () => {
    const e = await start(join(mkdtempSync(join(tmpdir(), 'tm-enforce-')), 'ledger'));
    await seed(e, 'limited', 7);
    // Each app asks over its reservations stream (one upgraded connection), none in the HTTP form.
    const httpForm: string[] = [];
    const onRequest = (m: unknown) => {
      const url = (m as { request: { url?: string } }).request.url ?? '';
      if (url.startsWith('/api/v1/reservations')) httpForm.push(url);
    };
    subscribe('http.server.request.start', onRequest);
    let o: ReturnType<typeof outcome>;
    try {
      o = outcome(await Promise.all([app(e), app(e)]));
    } finally {
      unsubscribe('http.server.request.start', onRequest);
    }
    expect(httpForm).toEqual([]);
    expect(e2e.mock.requests).toHaveLength(3);
    expect([o.ok, o.limited, o.other]).toEqual([3, 47, []]);
    expect(o.sdkPromise).toBe(true);
    expect(o.firstError).toMatchObject({ error: 'usage_limit_exceeded', user: 'limited', plan: 'free', limit: 'requests', used: 10, limit_value: 10, status: 429, retryAfterIsDate: true });
    // The apps flushed their spans at exit: the 3 calls are in the ledger, their holds settled, refusals not counted.
    const usage = await waitFor(
      () => getJson(`${e.httpUrl}/api/v1/usage/limited`),
      (u) => u.json.requests === 10 && u.json.reserved.requests === 0,
    );
    expect(usage.json).toMatchObject({ requests: 10, reserved: { requests: 0, tokens: 0 }, available: { requests: 0 } });
  }, 60_000);

  it('the exporter does not answer: fail open sends every call (one warning), fail closed refuses every call; no hang', async () => {
    // Accepts connections and never answers.
    const sockets: Socket[] = [];
    const silent: Server = createServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as { port: number }).port;
    const e = await start(join(mkdtempSync(join(tmpdir(), 'tm-enforce-')), 'ledger'));
    try {
      const open = await app({ otlpUrl: e.otlpUrl, httpUrl: `http://127.0.0.1:${port}` }, { CALLS: '5', APP_USER: 'open-user', TOKENMETER_ENFORCE_TIMEOUT_MS: '250' });
      const o = outcome([open]);
      expect([o.ok, o.limited, o.other]).toEqual([5, 0, []]);
      expect(open.stderr.match(/usage limits could not be checked/g)).toHaveLength(1);
      expect(e2e.mock.requests).toHaveLength(5);
      const closed = await app({ otlpUrl: e.otlpUrl, httpUrl: `http://127.0.0.1:${port}` }, { CALLS: '5', APP_USER: 'closed-user', TOKENMETER_ENFORCE_FAIL: 'closed', TOKENMETER_ENFORCE_TIMEOUT_MS: '250' });
      const c = outcome([closed]);
      expect([c.ok, c.limited, c.other]).toEqual([0, 5, []]);
      expect(c.firstError).toMatchObject({ limit: 'unavailable', status: 503 });
      expect(e2e.mock.requests).toHaveLength(5);
      // Both runs ended (no hang: each call waited at most the 250 ms timeout), exit code 0, no unhandled rejection.
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
    }
  }, 60_000);
});

describe('holds survive an exporter restart (embedded ledger)', () => {
  it('kill -9 between grant and settle: after the restart the limit still holds, the span settles its hold once, the other hold expires once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tm-enforce-restart-'));
    const configFile = join(dir, 'tokenmeter.yaml');
    writeFileSync(configFile, `storage: "${join(dir, 'ledger')}"\nreservations:\n  ttl: 6s\nledger:\n  refresh_interval: 0s\n`);
    const serve = () => spawnServe({ TOKENMETER_CONFIG: configFile });
    const trace = 'e'.repeat(32);
    const reserve = (httpUrl: string, n: number) =>
      httpRequest(`${httpUrl}/api/v1/reservations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ user: 'restart', provider: 'openai', model: 'gpt-4o-mini', input_tokens: 10, max_output_tokens: 10, trace_id: trace, span_id: n.toString(16).padStart(16, '0') }),
      }).then((r) => JSON.parse(r.body.toString('utf8')));
    const usage = async (httpUrl: string) => (await getJson(`${httpUrl}/api/v1/usage/restart`)).json;
    const metric = async (httpUrl: string, name: string) => (await scrape(httpUrl)).find((l) => l.startsWith(`${name} `));

    const a = await serve();
    await seed(a, 'restart', 8);
    expect((await reserve(a.httpUrl, 1)).granted).toBe(true);
    expect((await reserve(a.httpUrl, 2)).granted).toBe(true);
    expect(await reserve(a.httpUrl, 3)).toMatchObject({ granted: false, limit: 'requests', used: 10 });
    await a.stop('SIGKILL');

    // Restarted on the same directory: the two holds are still there, so the limit still holds.
    const b = await serve();
    try {
      expect(b.stderr()).toMatch(/reservations: 2 hold\(s\) still active after the restart, 0 expired meanwhile/);
      expect(await usage(b.httpUrl)).toMatchObject({ requests: 8, reserved: { requests: 2, tokens: 40 } });
      expect(await reserve(b.httpUrl, 3)).toMatchObject({ granted: false, limit: 'requests', used: 10 });
      // Call 1's span arrives after the restart, and a retry of it: committed once, its hold settled once.
      const body = otlpJson([{ traceId: trace, spanId: '0000000000000001', user: 'restart', model: 'gpt-4o-mini', input: 12, output: 7 }], BigInt(Date.now()) * 1_000_000n);
      expect((await postOtlp(b.otlpUrl, body)).status).toBe(200);
      expect((await postOtlp(b.otlpUrl, body)).status).toBe(200);
      expect(await usage(b.httpUrl)).toMatchObject({ requests: 9, reserved: { requests: 1, tokens: 20 } });
      expect(await metric(b.httpUrl, 'tokenmeter_reservation_actual_to_estimate_ratio_count')).toBe('tokenmeter_reservation_actual_to_estimate_ratio_count 1');
      expect(await reserve(b.httpUrl, 4)).toMatchObject({ granted: false, limit: 'requests', used: 10 });
      // Call 2 never reports: its hold stops counting after the TTL (6 s from its grant, before the restart), once.
      const freed = await waitFor(
        () => usage(b.httpUrl),
        (u) => u.reserved.requests === 0,
        15_000,
      );
      expect(freed).toMatchObject({ requests: 9, reserved: { requests: 0 } });
      expect(await waitFor(() => metric(b.httpUrl, 'tokenmeter_reservations_expired_total'), (l) => l === 'tokenmeter_reservations_expired_total 1')).toBe('tokenmeter_reservations_expired_total 1');
      expect((await reserve(b.httpUrl, 5)).granted).toBe(true);
    } finally {
      await b.stop('SIGKILL');
    }

    // Killed again with hold 5 active; down longer than its TTL: the next start counts it expired, once.
    await new Promise((r) => setTimeout(r, 6_500));
    const c = await serve();
    try {
      expect(c.stderr()).toMatch(/reservations: 0 hold\(s\) still active after the restart, 1 expired meanwhile/);
      expect(await waitFor(() => metric(c.httpUrl, 'tokenmeter_reservations_expired_total'), (l) => l === 'tokenmeter_reservations_expired_total 1')).toBe('tokenmeter_reservations_expired_total 1');
      expect(await usage(c.httpUrl)).toMatchObject({ requests: 9, reserved: { requests: 0 } });
    } finally {
      await c.stop('SIGTERM');
    }
    // Settled and expired holds are not loaded (nor counted) again.
    const d = await serve();
    try {
      expect(d.stderr()).not.toMatch(/hold\(s\) still active/);
      expect(await metric(d.httpUrl, 'tokenmeter_reservations_expired_total')).toBe('tokenmeter_reservations_expired_total 0');
      expect(await usage(d.httpUrl)).toMatchObject({ requests: 9, reserved: { requests: 0 }, available: { requests: 1 } });
    } finally {
      await d.stop('SIGTERM');
    }
  }, 90_000);
});

describe.skipIf(findPostgres() === undefined)('admission control with two exporters on one PostgreSQL', () => {
  let pg: TestPostgres;
  beforeAll(async () => {
    pg = await startPostgres();
  }, 60_000);
  afterAll(async () => {
    await pg?.cleanup();
  });

  it('calls split between two exporters: the same limits hold (3 of 50 reach the provider, the ledger shows 10)', async () => {
    const url = await pg.createDatabase('enforce_two');
    const a = await start(url);
    const b = await start(url);
    await seed(a, 'shared', 7);
    const o = outcome(await Promise.all([app(a, { APP_USER: 'shared' }), app(b, { APP_USER: 'shared' })]));
    expect(e2e.mock.requests).toHaveLength(3);
    expect([o.ok, o.limited, o.other]).toEqual([3, 47, []]);
    for (const e of [a, b]) {
      const usage = await waitFor(
        () => getJson(`${e.httpUrl}/api/v1/usage/shared`),
        (u) => u.json.requests === 10 && u.json.reserved.requests === 0,
      );
      expect(usage.json).toMatchObject({ requests: 10, reserved: { requests: 0 } });
    }
  }, 90_000);

  it('an exporter killed between grant and settle: the span, sent to the other replica (twice), is counted once and settles its hold; an unsettled hold expires after the TTL', async () => {
    const url = await pg.createDatabase('enforce_kill');
    const dir = mkdtempSync(join(tmpdir(), 'tm-enforce-kill-'));
    const configFile = join(dir, 'tokenmeter.yaml');
    writeFileSync(configFile, `storage: "${url}"\nreservations:\n  ttl: 2s\nledger:\n  refresh_interval: 0s\n`);
    const a = await spawnServe({ TOKENMETER_CONFIG: configFile });
    const b = await start(url, { reservations: { ttl: '2s' } });
    await seed(b, 'kill', 8);
    const trace = 'd'.repeat(32);
    const reserve = (httpUrl: string, n: number) =>
      httpRequest(`${httpUrl}/api/v1/reservations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ user: 'kill', provider: 'openai', model: 'gpt-4o-mini', input_tokens: 10, max_output_tokens: 10, trace_id: trace, span_id: n.toString(16).padStart(16, '0') }),
      }).then((r) => JSON.parse(r.body.toString('utf8')));
    expect((await reserve(a.httpUrl, 1)).granted).toBe(true);
    expect((await reserve(a.httpUrl, 2)).granted).toBe(true);
    // The holds granted by A count on B too: 8 used + 2 held.
    expect(await reserve(b.httpUrl, 3)).toMatchObject({ granted: false, limit: 'requests', used: 10 });
    await a.stop('SIGKILL');
    // Call 1 ends; its span reaches B, and a retry of it again.
    const body = otlpJson([{ traceId: trace, spanId: '0000000000000001', user: 'kill', model: 'gpt-4o-mini', input: 12, output: 7 }], BigInt(Date.now()) * 1_000_000n);
    expect((await postOtlp(b.otlpUrl, body)).status).toBe(200);
    expect((await postOtlp(b.otlpUrl, body)).status).toBe(200);
    const after = (await getJson(`${b.httpUrl}/api/v1/usage/kill`)).json;
    expect(after).toMatchObject({ requests: 9, reserved: { requests: 1, tokens: 20 } });
    // Call 2 never reports (its app died too): its hold stops counting after the TTL and is counted as expired.
    const freed = await waitFor(
      () => getJson(`${b.httpUrl}/api/v1/usage/kill`),
      (u) => u.json.reserved.requests === 0,
      10_000,
    );
    expect(freed.json).toMatchObject({ requests: 9, reserved: { requests: 0 } });
    expect(await reserve(b.httpUrl, 4)).toMatchObject({ granted: true });
    const expired = await waitFor(
      () => scrape(b.httpUrl),
      (lines) => lines.includes('tokenmeter_reservations_expired_total 1'),
      10_000,
    );
    expect(expired).toContain('tokenmeter_reservations_expired_total 1');
  }, 90_000);
});
