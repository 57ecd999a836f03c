/**
 * Issue 14, point 5: with the open-file limit at 1024, 1,100 idle sockets made every OTLP request and /healthz
 * fail until they closed (~59 s). Now the OTLP port's connections are capped below the file limit (the operations
 * port keeps its own descriptors), and idle connections are closed after `server.headers_timeout`.
 */
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { OPS_MAX_CONNECTIONS, RESERVED_FILES, openFileLimit, otlpConnectionCap } from '../../src/exporter/connections.js';
import { startExporter } from '../../src/exporter/index.js';
import { httpRequest, otlpJson, postOtlp, scrape, startTestExporter, type TestExporter } from './harness.js';

const running: TestExporter[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(running.splice(0).map((e) => e.close()));
});

/** Opens `n` idle TCP connections (no byte sent) and resolves once each is connected. */
async function idleSockets(url: string, n: number): Promise<{ open: Socket[]; closed: Promise<void>[] }> {
  const { hostname, port } = new URL(url);
  const open: Socket[] = [];
  const closed: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const s = connect({ host: hostname, port: Number(port) });
    s.on('error', () => {});
    sockets.push(s);
    open.push(s);
    closed.push(new Promise((r) => s.once('close', () => r())));
    await new Promise<void>((r) => s.once('connect', () => r()).once('close', () => r()));
  }
  return { open, closed };
}

describe('connection cap and timeouts', () => {
  it('reads the soft open-file limit; the default cap leaves RESERVED_FILES free; a configured cap above that is refused, naming the option', () => {
    expect(openFileLimit('Limit  Soft Limit  Hard Limit  Units\nMax open files            1024                 4096                 files\n')).toBe(1024);
    expect(openFileLimit('Max open files            unlimited            unlimited            files\n')).toBeUndefined();
    expect(otlpConnectionCap(undefined, 1024)).toBe(1024 - RESERVED_FILES);
    expect(otlpConnectionCap(undefined, 1_000_000)).toBe(16_384);
    expect(otlpConnectionCap(500, 1024)).toBe(500);
    expect(() => otlpConnectionCap(1000, 1024)).toThrow(/server\.max_connections \(1000\) must be at most the open-file limit \(1024\) minus 128/);
    expect(() => otlpConnectionCap(undefined, 100)).toThrow(/open-file limit of this process \(100\) is too low/);
    expect(RESERVED_FILES).toBeGreaterThan(OPS_MAX_CONNECTIONS);
  });

  it('startExporter refuses a max_connections the file limit cannot hold', async () => {
    const limit = openFileLimit();
    if (limit === undefined) return; // not Linux: nothing to check against
    await expect(startExporter({ config: { server: { max_connections: limit } }, otlpPort: 0, httpPort: 0, host: '127.0.0.1', storage: '/nonexistent/never-opened', log: () => {} })).rejects.toThrow(
      /server\.max_connections/,
    );
  });

  it('60 idle sockets against a cap of 40: /healthz and /metrics still answer, the excess is closed and counted; idle ones close after headers_timeout, then OTLP works', async () => {
    const e = await startTestExporter({ config: { server: { max_connections: 40, headers_timeout: '1s' } } });
    running.push(e);
    const { closed } = await idleSockets(e.otlpUrl, 60);
    // The operations port is not starved.
    expect((await httpRequest(`${e.httpUrl}/healthz`)).status).toBe(200);
    const lines = await scrape(e.httpUrl);
    const dropped = Number(lines.find((l) => l.startsWith('tokenmeter_rejected_requests_total{reason="too_many_connections"}'))?.split(' ')[1]);
    expect(dropped).toBe(20);
    // The idle sockets are closed by the server (headers_timeout), not held for a minute.
    await Promise.all(closed);
    const r = await postOtlp(e.otlpUrl, otlpJson([{ spanId: 'f100000000000001', user: 'after-flood', model: 'gpt-4o', input: 10, output: 0 }]));
    expect(r.status).toBe(200);
  });
});
