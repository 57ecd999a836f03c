/**
 * Issue 18, point 1 end to end: a real exporter (embedded ledger) receives calls through OTLP over November and
 * into December (a fake clock crosses the month); then `?period=2026-11` on the usage API, GET /api/v1/report and
 * the `tokenmeter report` command (dist/, a real process reading the ledger once the exporter stopped) agree to
 * the byte. Every new query parameter and flag gets malformed, hostile and out-of-range input. Needs `npm run build`.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Decimal } from 'decimal.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startExporter, type RunningExporter } from '../../src/exporter/index.js';
import { addDecimalStrings } from '../ledger/fixtures.js';
import { getJson, httpRequest, otlpJson, postOtlp } from '../exporter/harness.js';
import { BIN } from './serve-helpers.js';

const run = promisify(execFile);
const DAY = 86_400_000;

class Clock {
  constructor(public t: Date) {}
  now(): Date {
    return this.t;
  }
}

async function report(args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string; err: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, 'report', ...args], { env: { PATH: process.env.PATH ?? '', ...env }, maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, out: stdout, err: stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout, err: e.stderr };
  }
}

describe('reports of a past period: usage API, /api/v1/report and tokenmeter report agree', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tm-report-e2e-'));
  const storage = join(dir, 'ledger');
  const clock = new Clock(new Date('2026-11-02T10:00:00Z'));
  let e: RunningExporter;
  const apiCsv: Record<string, string> = {};
  const novemberCosts: string[] = [];
  let seq = 0;

  const send = async (user: string, feature: string, input: number, output: number) => {
    const spanId = `a${(++seq).toString(16).padStart(15, '0')}`;
    const end = BigInt(clock.now().getTime()) * 1_000_000n;
    const res = await postOtlp(e.otlpUrl, otlpJson([{ spanId, user, feature, provider: 'openai', model: 'gpt-4o-mini', input, output }], end));
    expect(res.status).toBe(200);
  };

  beforeAll(async () => {
    e = await startExporter({ storage, host: '127.0.0.1', otlpPort: 0, httpPort: 0, clock, log: () => {}, config: { ledger: { refresh_interval: '0s' } } });
    // November: 12 users over 6 days; then December.
    for (let d = 0; d < 6; d++) {
      clock.t = new Date(Date.parse('2026-11-02T10:00:00Z') + d * 5 * DAY);
      for (let u = 0; u < 12; u++) await send(`user-${u}`, u % 2 ? 'chat' : 'search', 1000 + 37 * u + d, 11 * u);
    }
    clock.t = new Date('2026-12-03T09:00:00Z');
    for (let u = 0; u < 5; u++) await send(`user-${u}`, 'chat', 999, 1);
    const list = await getJson(`${e.httpUrl}/api/v1/usage?period=2026-11&limit=10000`);
    for (const u of list.json.users) novemberCosts.push(u.cost_usd);
    for (const by of ['user', 'day', 'feature']) {
      apiCsv[by] = (await httpRequest(`${e.httpUrl}/api/v1/report?period=2026-11&by=${by}&format=csv`)).body.toString();
    }
  }, 120_000);

  afterAll(async () => {
    await e?.close();
  });

  it('GET /api/v1/usage?period=2026-11 lists November only; the current period is unchanged without it', async () => {
    const nov = await getJson(`${e.httpUrl}/api/v1/usage?period=2026-11`);
    expect(nov.status).toBe(200);
    expect(nov.json.period).toEqual({ start: '2026-11-01T00:00:00.000Z', end: '2026-12-01T00:00:00.000Z' });
    expect(nov.json.total).toBe(12);
    expect(nov.json.users.every((u: { requests: number }) => u.requests === 6)).toBe(true);
    const dec = await getJson(`${e.httpUrl}/api/v1/usage`);
    expect(dec.json.period.start).toBe('2026-12-01T00:00:00.000Z');
    expect(dec.json.total).toBe(5);
    const user = await getJson(`${e.httpUrl}/api/v1/usage/user-3?period=2026-11`);
    expect([user.status, user.json.requests, user.json.period.start]).toEqual([200, 6, '2026-11-01T00:00:00.000Z']);
    expect((await getJson(`${e.httpUrl}/api/v1/usage/user-3`)).json.requests).toBe(1);
  });

  it('GET /api/v1/report: per-user and per-day lines add up to the TOTAL line, which equals the usage API', async () => {
    const want = addDecimalStrings(novemberCosts);
    for (const by of ['user', 'day', 'feature']) {
      const rows = apiCsv[by]!.trim().split('\n').map((l) => l.split(','));
      const header = rows[0]!;
      const costCol = header.indexOf('cost_usd');
      const total = rows[rows.length - 1]!;
      expect(total[0]).toBe('TOTAL');
      expect(addDecimalStrings(rows.slice(1, -1).map((r) => r[costCol]!)), by).toBe(total[costCol]);
      expect(total[costCol], by).toBe(want);
    }
    expect(apiCsv.day!.split('\n').slice(1, 7).map((l) => l.split(',')[0])).toEqual(['2026-11-02', '2026-11-07', '2026-11-12', '2026-11-17', '2026-11-22', '2026-11-27']);
    const json = await getJson(`${e.httpUrl}/api/v1/report?period=2026-11&by=plan`);
    expect(json.json.period.status).toBe('closed');
    expect(json.json.total.cost_usd).toBe(want);
  });

  it('query parameters: malformed, hostile and out-of-range values get 400 naming the parameter', async () => {
    const bad: [string, RegExp][] = [
      ['/api/v1/usage?period=2026-13', /period must be a month written YYYY-MM with a month from 01 to 12/],
      ['/api/v1/usage?period=2026-00', /period .*01 to 12/],
      ['/api/v1/usage?period=2026-1', /period must be a month written YYYY-MM/],
      ['/api/v1/usage?period=26-11', /period must be a month written YYYY-MM/],
      ['/api/v1/usage?period=2026-11-01', /period must be a month written YYYY-MM/],
      ['/api/v1/usage?period=%00', /period must be a month/],
      ['/api/v1/usage?period=%27%3BDROP%20TABLE%20calls', /period must be a month/],
      [`/api/v1/usage?period=${'9'.repeat(5000)}`, /period must be a month written YYYY-MM \(e\.g\. 2026-11\), got "9{40}…"/],
      ['/api/v1/usage?period=1999-12', /period must be 2000-01 or later/],
      ['/api/v1/usage?period=2027-01', /period 2027-01 has not started yet/],
      ['/api/v1/usage?period=2026-11&period=2026-10', /period given twice/],
      ['/api/v1/usage/user-1?period=x', /period must be a month/],
      ['/api/v1/usage/user-1?period=2099-01', /has not started yet/],
      ['/api/v1/report?period=2026-11&by=users', /by must be one of user, plan, feature, model, provider, day/],
      ['/api/v1/report?period=2026-11&format=xlsx', /format must be one of table, csv, json/],
      ['/api/v1/report?period=2026-11&user=%1B%5B31m', /user: the user id/],
      ['/api/v1/report?period=2026-11&order=asc', /unknown query parameter "order"/],
      ['/api/v1/report?period=9999-99', /period .*01 to 12/],
    ];
    for (const [path, expected] of bad) {
      const r = await getJson(`${e.httpUrl}${path}`);
      expect(r.status, path.slice(0, 80)).toBe(400);
      expect(r.json.error, path.slice(0, 80)).toMatch(expected);
    }
  });

  it('tokenmeter report: refused with a pointer to the API while the exporter holds the ledger', async () => {
    const r = await report(['--storage', storage, '--period', '2026-11']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/held by a running exporter \(process \d+\): read the report from it with GET \/api\/v1\/report\?period=2026-11&by=user&format=table/);
  });

  it('tokenmeter report: the same bytes as the API once the exporter stopped, for every format', async () => {
    const fromApi: Record<string, string> = {};
    for (const f of ['table', 'json']) fromApi[f] = (await httpRequest(`${e.httpUrl}/api/v1/report?period=2026-11&by=model&format=${f}`)).body.toString();
    await e.close();
    const files = () => readdirSync(storage).map((f) => `${f} ${statSync(join(storage, f)).size}`).sort();
    const before = files();
    for (const by of ['user', 'day', 'feature']) {
      const r = await report(['--storage', storage, '--period', '2026-11', '--by', by, '--format', 'csv']);
      expect(r.err, by).toBe('');
      expect(r.out, by).toBe(apiCsv[by]);
    }
    for (const f of ['table', 'json']) expect((await report(['--storage', storage, '--period', '2026-11', '--by', 'model', '--format', f])).out, f).toBe(fromApi[f]);
    const one = await report(['--storage', storage, '--period', '2026-11', '--user', 'user-3', '--format', 'json']);
    const doc = JSON.parse(one.out);
    expect(doc.lines).toHaveLength(1);
    expect(doc.total.requests).toBe(6);
    // A report only reads: the ledger directory is as the exporter left it (no snapshot written, no file grown).
    // (The journal skips a snapshot on close when nothing changed anyway; this guards the read-only promise.)
    expect(files()).toEqual(before);
  });

  it('tokenmeter report: display currency from the configuration, converted exactly', async () => {
    const cfg = join(dir, 'eur.yaml');
    writeFileSync(cfg, `storage: ${JSON.stringify(storage)}\ndisplay: { currency: EUR, rates: { EUR: "0.5" } }\n`);
    const r = await report(['--config', cfg, '--period', '2026-11', '--by', 'plan', '--format', 'csv']);
    expect(r.err).toBe('');
    const rows = r.out.trim().split('\n').map((l) => l.split(','));
    expect(rows[0]!.at(-1)).toBe('cost_eur');
    const total = rows.at(-1)!;
    expect(total.at(-1)).toBe(new Decimal(total.at(-2)!).times('0.5').toFixed());
    // Converted lines add up exactly to the converted total too.
    expect(addDecimalStrings(rows.slice(1, -1).map((l) => l.at(-1)!))).toBe(total.at(-1));
  });

  it('tokenmeter report: every flag refuses malformed, hostile and out-of-range values (exit 2, naming the flag)', async () => {
    const cases: [string[], RegExp][] = [
      [['--period', '2026-13'], /--period must be a month written YYYY-MM with a month from 01 to 12/],
      [['--period', 'last-month'], /--period must be a month written YYYY-MM/],
      [['--period', '2099-01'], /--period 2099-01 has not started yet/],
      [['--period', '1970-01'], /--period must be 2000-01 or later/],
      [['--period', 'x'.repeat(10_000)], /--period must be a month .*got "x{40}…"/],
      [['--period'], /--period needs a value/],
      [['--by', 'customer'], /--by must be one of user, plan, feature, model, provider, day, got "customer"/],
      [['--format', 'pdf'], /--format must be one of table, csv, json/],
      [['--user', '\u001b[2J'], /--user: the user id/],
      [['--user', 'u'.repeat(300)], /--user: the user id/],
      [['--colour'], /unknown option --colour/],
      [['extra'], /unexpected argument "extra"/],
    ];
    for (const [args, expected] of cases) {
      const r = await report(['--storage', storage, ...args]);
      expect(r.code, args.join(' ').slice(0, 60)).toBe(2);
      expect(r.err, args.join(' ').slice(0, 60)).toMatch(expected);
    }
    const missing = await report(['--storage', join(dir, 'no-such-ledger'), '--period', '2026-11']);
    expect([missing.code, missing.err]).toEqual([2, expect.stringMatching(/no ledger at .*no-such-ledger/)]);
  });
});
