/**
 * Graceful shutdown of a `tokenmeter serve` process: SIGTERM while an OTLP request is in flight stops accepting new
 * connections, lets that request finish (body, commit, 200), then exits 0; the committed usage is in the ledger.
 */
import { mkdtempSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { getJson, otlpJson, postOtlp } from '../exporter/harness.js';
import { spawnServe } from './serve-helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('tokenmeter serve graceful shutdown', () => {
  it('SIGTERM with a request in flight: the request completes with 200, the process exits 0, the usage is committed', async () => {
    const storage = join(mkdtempSync(join(tmpdir(), 'tm-shutdown-')), 'ledger');
    const serve = await spawnServe({ TOKENMETER_STORAGE: storage });
    const body = otlpJson([{ spanId: '5000000000000001', user: 'inflight-user', model: 'gpt-4o', input: 2000, output: 200 }]);
    const { port } = new URL(serve.otlpUrl);

    // Send the headers and half the body; `Expect: 100-continue` tells us the server has the request in hand.
    const sock = connect(Number(port), '127.0.0.1');
    let got = '';
    sock.on('data', (d: Buffer) => (got += d.toString()));
    const closed = new Promise<void>((r) => sock.on('close', () => r()));
    sock.write(
      `POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n` +
        'Expect: 100-continue\r\nConnection: close\r\n\r\n',
    );
    for (let i = 0; i < 400 && !got.includes('100 Continue'); i++) await sleep(25);
    expect(got).toMatch(/^HTTP\/1\.1 100 Continue/);
    sock.write(body.subarray(0, 100));

    const exited = serve.stop('SIGTERM');
    for (let i = 0; i < 400 && !serve.stderr().includes('SIGTERM: finishing requests in flight'); i++) await sleep(25);
    expect(serve.stderr()).toContain('SIGTERM: finishing requests in flight');
    // Shutting down: new connections are refused.
    await expect(postOtlp(serve.otlpUrl, body)).rejects.toThrow();

    // write, not end: a client that half-closes its side gets its connection closed by Node before an async answer.
    sock.write(body.subarray(100));
    await closed;
    expect(got).toMatch(/HTTP\/1\.1 200 OK/);
    expect(got.endsWith('{}')).toBe(true);
    expect(await exited).toBe(0);

    // The acknowledged call is in the ledger.
    const again = await spawnServe({ TOKENMETER_STORAGE: storage });
    try {
      const usage = await getJson(`${again.httpUrl}/api/v1/usage/inflight-user`);
      expect(usage.json.requests).toBe(1);
      expect(usage.json.cost_usd).toBe('0.007');
    } finally {
      expect(await again.stop('SIGTERM')).toBe(0);
    }
  });
});
