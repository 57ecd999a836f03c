/**
 * `tokenmeter demo --duration 20 --seed 1` as a user runs it (the built bin, a child process, no TTY): every
 * simulated user shows up in the usage API with non-zero usage, someone is over a limit, and the ledger holds
 * exactly the usage the mock provider sent — per user and per token type.
 */
import { describe, it, expect, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TOKEN_TYPES } from '../../src/contract/names.js';
import { startExporter } from '../../src/exporter/exporter.js';
import type { MockSentRecord } from '../../src/demo/mock-record.js';
import type { UsageResponse } from '../../src/demo/usage-api.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'dist', 'cli', 'main.js');
const dir = mkdtempSync(join(tmpdir(), 'tokenmeter-demo-e2e-'));

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(!existsSync(BIN))('tokenmeter demo (built bin, no TTY)', () => {
  it('meters every simulated user, exactly what the mock provider sent', { timeout: 120_000 }, async () => {
    const child = spawn(process.execPath, [BIN, 'demo', '--duration', '20', '--seed', '1', '--ports', 'auto', '--data-dir', dir], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));

    // While it runs: the usage API (found from the banner) shows all 12 users with usage.
    let live: UsageResponse | undefined;
    for (let i = 0; i < 100 && child.exitCode === null; i++) {
      await new Promise((r) => setTimeout(r, 500));
      const m = /status page\s+(http:\/\/127\.0\.0\.1:\d+)\//.exec(stderr);
      if (!m) continue;
      const res = await fetch(`${m[1]}/api/v1/usage`).catch(() => undefined);
      if (!res?.ok) continue;
      live = (await res.json()) as UsageResponse;
      if (live.users.length === 12 && live.users.every((u) => u.tokens.total > 0 && u.requests > 0)) break;
    }
    expect(live?.users, stderr).toHaveLength(12);
    expect(live!.users.every((u) => u.tokens.total > 0 && u.requests > 0)).toBe(true);
    expect(new Set(live!.users.map((u) => u.plan))).toEqual(new Set(['free', 'pro', 'team']));

    expect(await exited, `stdout:\n${stdout}\nstderr:\n${stderr}`).toBe(0);
    // Plain log lines (no TTY), the alerts as they fired, and the summary saying where the data is.
    expect(stdout).toMatch(/^\[demo \d+s\] users=12 requests=\d+ tokens=\d+ cost_usd=[\d.]+ ingest=/m);
    expect(stdout).toMatch(/^ALERT TokenmeterUserOverRequestLimit user=\S+ plan=free/m);
    expect(stdout).toContain('tokenmeter demo stopped.');
    expect(stdout).toContain(join(dir, 'ledger'));
    expect(stdout).not.toContain('\u001b[');

    // After it stopped: the ledger it left behind, read through a fresh exporter's usage API...
    const exporter = await startExporter({ storage: join(dir, 'ledger'), host: '127.0.0.1', otlpPort: 0, httpPort: 0, log: () => {} });
    let final: UsageResponse;
    let summary: { totals: { tokens: Record<string, number> } };
    try {
      final = (await (await fetch(`${exporter.httpUrl}/api/v1/usage`)).json()) as UsageResponse;
      summary = (await (await fetch(`${exporter.httpUrl}/api/v1/summary`)).json()) as typeof summary;
    } finally {
      await exporter.close();
    }
    // ...equals, per user and token type, the usage the mock provider put on the wire.
    const sent = JSON.parse(readFileSync(join(dir, 'mock-sent-usage.json'), 'utf8')) as MockSentRecord;
    expect(Object.keys(sent.users).sort()).toEqual(final.users.map((u) => u.user).sort());
    for (const u of final.users) {
      const s = sent.users[u.user];
      for (const t of TOKEN_TYPES) expect(u.tokens[t], `${u.user} ${t}`).toBe(s.usage[t]);
      expect(u.requests, `${u.user} requests`).toBe(s.calls);
    }
    expect(final.users.reduce((n, u) => n + u.requests, 0)).toBe(sent.calls);
    // The free plan allows 10 requests: the heavy free user is over it.
    expect(final.users.some((u) => (u.max_ratio ?? 0) >= 1)).toBe(true);
    // The workload mixes token types: cache reads/writes and reasoning show up when the provider reports them.
    for (const t of TOKEN_TYPES) expect(sent.total[t], t).toBeGreaterThan(0);
    // ...and /api/v1/summary (the status page's totals) shows exactly them.
    for (const t of TOKEN_TYPES) expect(summary.totals.tokens[t], `summary ${t}`).toBe(sent.total[t]);
  });
});
