/**
 * `tokenmeter export-meter` (issue 18, point 5): a closed period of the real embedded ledger as meter events, to a
 * file (per period: the values add up exactly to the period's total; the same keys and bytes on every run) and to a
 * local HTTP receiver that fails, throttles and deduplicates by Idempotency-Key (every line counted once), and the
 * flags' input boundary.
 */
import { createServer, type Server } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Decimal } from 'decimal.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLedger, type LedgerRecord } from '../../src/ledger/index.js';
import type { MeterEvent } from '../../src/report/index.js';
import { makeRecord } from '../ledger/fixtures.js';
import { cli } from './helpers.js';

const NOV = '2026-11-01T00:00:00.000Z';

function calls(): LedgerRecord[] {
  const out: LedgerRecord[] = [];
  for (let i = 0; i < 60; i++) {
    const priced = i % 7 !== 3;
    out.push(
      makeRecord({
        userId: `u${i % 5}`,
        plan: i % 4 === 0 ? 'pro' : 'free',
        periodStart: NOV,
        endTimeMillis: Date.parse(NOV) + i * 11 * 3_600_000,
        tokens: { input: 100 + i, output: 10 + i },
        costs: priced ? { input: `0.000${i + 1}7`, output: `0.00${i + 3}1` } : {},
        priced,
      }),
    );
  }
  return out;
}

describe('tokenmeter export-meter', () => {
  let dir: string;
  let config: string;
  const records = calls();
  const total = records.reduce((s, r) => s.plus(r.totalCostUsd), new Decimal(0)).toFixed();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tokenmeter-meter-'));
    const storage = join(dir, 'ledger');
    config = join(dir, 'tokenmeter.yaml');
    writeFileSync(config, `storage: ${JSON.stringify(storage)}\n`);
    const ledger = await openLedger(storage);
    await ledger.commit(records);
    await ledger.close();
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const lines = (text: string) => text.trim().split('\n').map((l) => JSON.parse(l) as MeterEvent);

  it('per period to a file: one event per user and plan, values add up to the total, the same bytes every run', async () => {
    const a = join(dir, 'a.jsonl');
    const r = await cli('export-meter', '--period', '2026-11', '--to-file', a, '--config', config);
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/request\(s\) had no price at the time/);
    const events = lines(readFileSync(a, 'utf8'));
    const pairs = new Set(records.map((x) => `${x.userId}|${x.plan}`));
    expect(events).toHaveLength(pairs.size);
    expect(new Set(events.map((e) => e.identifier)).size).toBe(events.length);
    expect(events.reduce((s, e) => s.plus(e.payload.value!), new Decimal(0)).toFixed()).toBe(total);
    expect(events.reduce((s, e) => s + Number(e.payload.requests), 0)).toBe(records.length);
    expect(events.reduce((s, e) => s + Number(e.payload.unpriced_requests), 0)).toBe(records.filter((x) => !x.priced).length);
    expect(events.every((e) => e.event_name === 'tokenmeter_usage' && e.timestamp === Date.parse('2026-12-01T00:00:00Z') / 1000 - 1)).toBe(true);
    const b = join(dir, 'b.jsonl');
    await cli('export-meter', '--period', '2026-11', '--to-file', b, '--config', config);
    expect(readFileSync(b, 'utf8')).toBe(readFileSync(a, 'utf8'));
  });

  it('per call: one event per call keyed by its trace and span id', async () => {
    const r = await cli('export-meter', '--period', '2026-11', '--per', 'call', '--to-file', '-', '--config', config);
    expect(r.code).toBe(0);
    const events = lines(r.out);
    expect(events.map((e) => e.identifier).sort()).toEqual(records.map((x) => `tm-call-${x.traceId}${x.spanId}`).sort());
    expect(events.filter((e) => e.payload.priced === 'true').reduce((s, e) => s.plus(e.payload.value!), new Decimal(0)).toFixed()).toBe(total);
  });

  describe('to a URL', () => {
    let server: Server;
    let url = '';
    const seen = new Map<string, MeterEvent>();
    let requests = 0;
    let failFirst = 0;
    let refuse = false;
    const auth: (string | undefined)[] = [];
    beforeAll(async () => {
      server = createServer((req, res) => {
        let body = '';
        req.on('data', (c: Buffer) => (body += c.toString()));
        req.on('end', () => {
          requests++;
          auth.push(req.headers.authorization);
          if (refuse) {
            res.writeHead(400).end('bad event');
            return;
          }
          if (failFirst > 0) {
            failFirst--;
            if (failFirst % 2 === 0) res.writeHead(503).end('later');
            else res.writeHead(429, { 'retry-after': '1' }).end();
            return;
          }
          const key = String(req.headers['idempotency-key']);
          const e = JSON.parse(body) as MeterEvent;
          expect(e.identifier).toBe(key);
          if (!seen.has(key)) seen.set(key, e);
          res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        });
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const addr = server.address();
      url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/v1/billing/meter_events`;
    });
    afterAll(async () => {
      delete process.env.TOKENMETER_METER_TOKEN;
      await new Promise<void>((r) => server.close(() => r()));
    });

    it('retries 503 and 429, sends the bearer token, and a repeated export is deduplicated by the receiver', async () => {
      process.env.TOKENMETER_METER_TOKEN = 'meter-secret';
      failFirst = 2;
      const r = await cli('export-meter', '--period', '2026-11', '--url', url, '--config', config);
      expect(r.code).toBe(0);
      expect(r.err).toMatch(/event\(s\) for 2026-11 delivered/);
      const pairs = new Set(records.map((x) => `${x.userId}|${x.plan}`)).size;
      expect(seen.size).toBe(pairs);
      expect(requests).toBe(pairs + 2);
      expect(auth.every((a) => a === 'Bearer meter-secret')).toBe(true);
      await cli('export-meter', '--period', '2026-11', '--url', url, '--config', config);
      expect(seen.size).toBe(pairs);
      expect([...seen.values()].reduce((s, e) => s.plus(e.payload.value!), new Decimal(0)).toFixed()).toBe(total);
    }, 30_000);

    it('a refused event stops the export with the receiver’s answer', async () => {
      refuse = true;
      try {
        const r = await cli('export-meter', '--period', '2026-11', '--url', url, '--config', config);
        expect(r.code).toBe(1);
        expect(r.err).toMatch(/the receiver refused event tm-2026-11-\w+ \(HTTP 400: bad event\)/);
      } finally {
        refuse = false;
      }
    });
  });

  it.each([
    [[], /--period is required/],
    [['--period', '2026-13', '--to-file', '-'], /period/],
    [['--period', '2026-11', '--per', 'day', '--to-file', '-'], /--per must be period or call/],
    [['--period', '2026-11'], /exactly one of --to-file F and --url U/],
    [['--period', '2026-11', '--to-file', 'x', '--url', 'http://127.0.0.1:1/'], /exactly one/],
    [['--period', '2026-11', '--url', 'ftp://127.0.0.1/x'], /http:\/\/ or https:\/\//],
    [['--period', '2026-11', '--url', 'not a url'], /http:\/\/ or https:\/\//],
    [['--period', '2026-11', '--url', `http://127.0.0.1/${'x'.repeat(3000)}`], /at most 2048/],
    [['--period', '2026-11', '--url', 'http://user:pw@127.0.0.1/'], /must not carry credentials/],
    [['--period', '2026-11', '--url', 'http://127.0.0.1:1/', '--attempts', '0'], /--attempts must be an integer from 1 to 20/],
    [['--period', '2026-11', '--url', 'http://127.0.0.1:1/', '--attempts', '21'], /--attempts must be/],
    [['--period', '2026-11', '--to-file', '-', '--attempts', '3'], /--attempts goes with --url/],
    [['--period', new Date().toISOString().slice(0, 7), '--to-file', '-'], /still open/],
    [['--period', '2026-11', '--to-file', '-', '--bogus'], /unknown option --bogus/],
  ])('refuses bad flags with a clear message (case %#)', async (args, message) => {
    const r = await cli('export-meter', ...(args as string[]), '--config', config);
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(message);
  });
});
