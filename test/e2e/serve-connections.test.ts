/**
 * Issue 14, point 5, as reported: `tokenmeter serve` under an open-file limit, flooded with more idle sockets than
 * the limit on its OTLP port. /healthz and /metrics keep answering (the OTLP port is capped below the limit), the
 * flood is counted, the idle sockets are closed after headers_timeout, and OTLP works again with exact totals.
 */
import { mkdtempSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { getJson, httpRequest, otlpJson, postOtlp, scrape } from '../exporter/harness.js';
import { spawnServe, type ServeProcess } from './serve-helpers.js';

const sockets: Socket[] = [];
let serve: ServeProcess | undefined;
afterAll(async () => {
  for (const s of sockets) s.destroy();
  await serve?.stop();
});

describe('idle-socket flood under an open-file limit of 512', () => {
  it('600 idle sockets: /healthz and /metrics answer throughout; the sockets are closed within headers_timeout; OTLP counts exactly after', async () => {
    const storage = join(mkdtempSync(join(tmpdir(), 'tm-conn-')), 'ledger');
    serve = await spawnServe({ TOKENMETER_STORAGE: storage }, [], undefined, 512);
    const { hostname, port } = new URL(serve.otlpUrl);
    const closed: Promise<void>[] = [];
    for (let i = 0; i < 600; i++) {
      const s = connect({ host: hostname, port: Number(port) });
      s.on('error', () => {});
      sockets.push(s);
      closed.push(new Promise((r) => s.once('close', () => r())));
      await new Promise<void>((r) => s.once('connect', () => r()).once('close', () => r()));
    }
    expect((await httpRequest(`${serve.httpUrl}/healthz`)).status).toBe(200);
    const lines = await scrape(serve.httpUrl);
    // 512 - 128 reserved = 384 OTLP connections at most; the rest were closed on arrival and counted. How many
    // arrive past the cap depends on how fast this loop runs against headers_timeout closing the idle ones (a
    // loaded machine, or another Node line, connects slower): at least one, and never more than 384 held at once.
    const dropped = Number(lines.find((l) => l.startsWith('tokenmeter_rejected_requests_total{reason="too_many_connections"}'))?.split(' ')[1]);
    expect(dropped).toBeGreaterThan(0);
    // The server closes a socket past the cap as it accepts it; this process sees that close a moment later (CI
    // once counted 414 before the FINs were read). Wait up to 1 s for them, a tenth of headers_timeout, so idle
    // sockets the server really holds are still open when counted.
    const held = () => sockets.filter((s) => !s.destroyed && !s.readableEnded).length;
    for (const until = Date.now() + 1000; held() > 384 && Date.now() < until; ) await new Promise((r) => setTimeout(r, 20));
    expect(held()).toBeLessThanOrEqual(384);
    await Promise.all(closed);
    expect(serve.child.exitCode).toBeNull();
    const r = await postOtlp(serve.otlpUrl, otlpJson([{ spanId: 'f200000000000001', user: 'post-flood', model: 'gpt-4o', input: 1000, output: 0 }]));
    expect(r.status).toBe(200);
    const u = await getJson(`${serve.httpUrl}/api/v1/usage/post-flood`);
    expect([u.json.requests, u.json.tokens.total, u.json.cost_usd]).toEqual([1, 1000, '0.0025']);
  });
});
