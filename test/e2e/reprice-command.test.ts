/**
 * Issue 18, point 3 end to end: a real exporter (embedded ledger) priced November's gpt-4o-mini calls with a wrong
 * override. While it runs, `tokenmeter reprice` (dist/, a real process) refuses the held ledger and names
 * POST /api/v1/reprice, which answers a dry run; after the exporter stopped, the command asks on a terminal and applies the corrected
 * prices once answered "y", and `tokenmeter report` of the closed period says it was re-priced, by exactly the difference.
 * Needs `npm run build`.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Decimal } from 'decimal.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startExporter, type RunningExporter } from '../../src/exporter/index.js';
import { PriceBook } from '../../src/pricing/index.js';
import { httpRequest, otlpJson, postOtlp } from '../exporter/harness.js';
import { BIN } from './serve-helpers.js';

const run = promisify(execFile);
const TOKEN = 'api-token-0123456789';
const WRONG = [{ provider: 'openai', model: 'gpt-4o-mini', prices_usd_per_mtok: { input: '1.5', output: '6' } }];
const FIXED = [{ provider: 'openai', model: 'gpt-4o-mini', prices_usd_per_mtok: { input: '0.15', output: '0.6' } }];

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH ?? '' } });
    return { code: 0, out: stdout, err: stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout, err: e.stderr };
  }
}

/** Runs the command on a pseudo-terminal (util-linux script(1)), typing `answer`; stdout and stderr both in `out`. */
function onTerminal(args: string[], answer: string): Promise<{ code: number; out: string }> {
  const command = [process.execPath, BIN, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qec', command, '/dev/null'], { env: { PATH: process.env.PATH ?? '', TERM: 'dumb' } });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, out }));
    // Typed once the question is there (a pseudo-terminal may drop input that arrives before the reader).
    const wait = setInterval(() => {
      if (out.includes('[y/N]')) {
        clearInterval(wait);
        child.stdin.write(answer);
      }
    }, 50);
    child.on('close', () => clearInterval(wait));
  });
}

describe('tokenmeter reprice end to end', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tm-reprice-e2e-'));
  const storage = join(dir, 'ledger');
  const config = join(dir, 'tokenmeter.yaml');
  const clock = { t: new Date('2026-11-03T10:00:00Z'), now() { return this.t; } };
  let e: RunningExporter | undefined;
  const sent: { input: number; output: number; at: Date }[] = [];

  beforeAll(async () => {
    e = await startExporter({
      storage, host: '127.0.0.1', otlpPort: 0, httpPort: 0, clock, log: () => {},
      config: { ledger: { refresh_interval: '0s' }, auth: { api_token: TOKEN }, pricing: { overrides: WRONG } },
    });
    for (let k = 0; k < 8; k++) {
      clock.t = new Date(Date.parse('2026-11-03T10:00:00Z') + k * 3 * 86_400_000);
      const input = 1000 + 17 * k;
      const output = 50 + k;
      const res = await postOtlp(e.otlpUrl, otlpJson([{ spanId: `b${(k + 1).toString(16).padStart(15, '0')}`, user: `user-${k % 3}`, provider: 'openai', model: 'gpt-4o-mini', input, output }], BigInt(clock.t.getTime()) * 1_000_000n));
      expect(res.status).toBe(200);
      sent.push({ input, output, at: clock.t });
    }
    clock.t = new Date('2026-12-03T09:00:00Z');
    writeFileSync(config, `storage: ${JSON.stringify(storage)}\npricing:\n  overrides: ${JSON.stringify(FIXED)}\n`);
  }, 120_000);
  afterAll(async () => {
    await e?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const price = (overrides: unknown[], s: { input: number; output: number; at: Date }) => {
    const p = PriceBook.load({ overrides }).priceStrings({ provider: 'openai', model: 'gpt-4o-mini', usage: { input: s.input, cache_read: 0, cache_write: 0, output: s.output, reasoning: 0 }, at: s.at });
    if (!p.priced) throw new Error('priced');
    return new Decimal(p.totalUsd);
  };
  const delta = () => sent.reduce((s, x) => s.plus(price(FIXED, x)).minus(price(WRONG, x)), new Decimal(0)).toFixed();

  it('while the exporter holds the ledger: the command points to POST /api/v1/reprice, which answers a dry run', async () => {
    const r = await cli(['reprice', '--from', '2026-11-01', '--to', '2026-11-30', '--config', config]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/held by a running exporter \(process \d+\): re-price through it with POST \/api\/v1\/reprice on its operations port/);
    const dry = await httpRequest(`${e!.httpUrl}/api/v1/reprice`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({ from: '2026-11-01', to: '2026-11-30' }),
    });
    expect(dry.status).toBe(200);
    // The exporter prices with its own (still wrong) configuration: nothing to change there.
    expect(JSON.parse(dry.body.toString())).toMatchObject({ dry_run: true, scanned_calls: 8, calls: 0 });
  });

  it('once it stopped: --dry-run, then the terminal is asked (n: nothing, y: applied, exactly the difference), and the report says so', async () => {
    await e!.close();
    e = undefined;
    const dry = await cli(['reprice', '--from', '2026-11-01', '--to', '2026-11-30', '--config', config, '--dry-run', '--format', 'json']);
    expect(dry.code).toBe(0);
    expect(JSON.parse(dry.out)).toMatchObject({ dry_run: true, calls: 8, delta_usd: delta() });
    // A terminal is asked (script(1) gives the command a pseudo-terminal): "n" applies nothing, "y" applies it.
    const no = await onTerminal(['reprice', '--from', '2026-11-01', '--to', '2026-11-30', '--config', config, '--by', 'e2e'], 'n\n');
    expect(no.out).toMatch(/apply this re-pricing of 8 call\(s\), -?[\d.]+ USD in total\? \[y\/N\]/);
    expect(no.out).toContain('not applied');
    expect((await cli(['reprice', '--from', '2026-11-01', '--to', '2026-11-30', '--config', config, '--dry-run', '--format', 'json'])).out).toContain('"calls":8');
    const applied = await onTerminal(['reprice', '--from', '2026-11-01', '--to', '2026-11-30', '--config', config, '--by', 'e2e'], 'y\n');
    expect(applied.code).toBe(0);
    const id = /applied: audit id (\S+), by e2e/.exec(applied.out)?.[1];
    expect(id).toBeDefined();
    const report = await cli(['report', '--period', '2026-11', '--config', config]);
    expect(report.out).toContain(`by e2e, audit id ${id}: 8 call(s), ${delta()} USD`);
    const total = sent.reduce((s, x) => s.plus(price(FIXED, x)), new Decimal(0)).toFixed();
    const json = JSON.parse((await cli(['report', '--period', '2026-11', '--config', config, '--format', 'json'])).out) as { total: { cost_usd: string; adjustment_usd: string } };
    expect(json.total).toMatchObject({ cost_usd: total, adjustment_usd: delta() });
    expect((await cli(['reprice', '--from', '2026-11-01', '--to', '2026-11-30', '--config', config, '--yes'])).out).toContain('nothing to re-price');
  });
});
