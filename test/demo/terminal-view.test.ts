import { describe, it, expect } from 'vitest';
import { stripAnsi, renderLiveView, renderLogLine, newAlertLines, bar, ingestRate } from '../../src/demo/terminal-view.js';
import { firingAlerts, LIMIT_ALERT_RULES } from '../../src/demo/alerts.js';
import { ALERTS } from '../../src/dashboards/alerts.js';
import { formatCost, formatUsd, formatInt, formatDuration, formatPercent } from '../../src/demo/format.js';
import { binCommand, frame, FRAME_START, shellQuote } from '../../src/demo/demo.js';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type { Snapshot, UserUsage, TokenCounts } from '../../src/demo/usage-api.js';

function tokens(input: number, output: number): TokenCounts {
  return { input, cache_read: 0, cache_write: 0, output, reasoning: 0, total: input + output };
}

function user(id: string, plan: string, total: number, requests: number, limitTokens: number | null, limitRequests: number | null): UserUsage {
  const rt = limitTokens === null ? null : total / limitTokens;
  const rr = limitRequests === null ? null : requests / limitRequests;
  return {
    user: id, plan, tokens: tokens(total - 10, 10), requests, cost_usd: '0.01234567',
    limits: { tokens: limitTokens, requests: limitRequests, cost_usd: null },
    ratios: { tokens: rt, requests: rr, cost_usd: null },
    max_ratio: Math.max(rt ?? 0, rr ?? 0),
  };
}

function snapshot(users: UserUsage[], spans: number, at: number): Snapshot {
  const period = { start: '2030-01-01T00:00:00.000Z', end: '2030-02-01T00:00:00.000Z' };
  return {
    usage: { period, users },
    summary: {
      period,
      totals: { tokens: tokens(1000, 234), requests: 17, cost_usd: '1.005' },
      by_provider: [],
      by_model: [
        { provider: 'openai', model: 'gpt-4o-mini', tokens: tokens(900, 200), requests: 12, cost_usd: '0.0005' },
        { provider: 'anthropic', model: 'claude-3-5-haiku-20241022', tokens: tokens(100, 34), requests: 5, cost_usd: '1.0045' },
      ],
    },
    ingestedSpans: spans,
    takenAtMillis: at,
  };
}

const users = [user('alice', 'free', 45_000, 12, 50_000, 10), user('bob', 'pro', 1_000, 3, 500_000, 100), user('carol', 'team', 5, 1, null, null)];

describe('format', () => {
  it('formats money by decimal rounding, half up, never through floats', () => {
    expect(formatUsd('0.00005')).toBe('$0.0001');
    expect(formatUsd('0.00004999')).toBe('$0.0000');
    expect(formatUsd('1.005')).toBe('$1.01');
    expect(formatUsd('1234567.994')).toBe('$1,234,567.99');
    expect(formatUsd('0')).toBe('$0.0000');
    expect(formatUsd(null)).toBe('—');
  });
  it('formats integers, ratios and durations', () => {
    expect(formatInt(1234567)).toBe('1,234,567');
    expect(formatPercent(0.8)).toBe('80%');
    expect(formatPercent(null)).toBe('—');
    expect(formatDuration(3 * 86400_000 + 5 * 3600_000)).toBe('3d 5h');
    expect(formatDuration(61_000)).toBe('1m 1s');
    expect(formatDuration(-5)).toBe('no time');
  });
});

describe('alerts', () => {
  it('derives one near and one over rule per limit from the alert definitions', () => {
    expect(LIMIT_ALERT_RULES.map((r) => r.name).sort()).toEqual(
      // The per-user near/over rules of the limits group (TokenmeterRefusalSpike, per plan, is in the group too).
      ALERTS.filter((a) => a.group === 'tokenmeter-limits' && /^TokenmeterUser(Near|Over)/.test(a.name)).map((a) => a.name).sort(),
    );
    expect(LIMIT_ALERT_RULES).toHaveLength(6);
    for (const m of ['tokens', 'requests', 'cost_usd']) expect(LIMIT_ALERT_RULES.filter((r) => r.measure === m)).toHaveLength(2);
  });
  it('fires Over at 100 % and Near from 80 %, never both for one measure', () => {
    const a = firingAlerts(users);
    expect(a.map((x) => `${x.name}/${x.user}`)).toEqual(['TokenmeterUserOverRequestLimit/alice', 'TokenmeterUserNearTokenLimit/alice']);
  });
  it('reports only alerts that started firing', () => {
    const now = firingAlerts(users);
    expect(newAlertLines(now, now.slice(0, 1))).toEqual(['ALERT TokenmeterUserNearTokenLimit user=alice plan=free tokens=90% of limit']);
    expect(newAlertLines(now, now)).toEqual([]);
  });
});

describe('terminal view', () => {
  const prev = snapshot(users, 100, 0);
  const cur = snapshot(users, 150, 10_000);

  it('renders every user with plan, figures against limits, alerts, spend by model and ingest rate', () => {
    const out = renderLiveView(cur, prev, { color: false, columns: 160, nowMillis: Date.parse('2030-01-30T00:00:00Z') });
    expect(out).toMatch(/alice\s+free\s+█+░*\s+45,000\/50,000\s+90%/);
    expect(out).toMatch(/12\/10\s+120%/);
    expect(out).toMatch(/carol\s+team\s+·+\s+5\s/);
    expect(out).toMatch(/TokenmeterUserOverRequestLimit\s+user=alice plan=free requests at 120% of the limit/);
    expect(out).toContain('NearTokenLimit');
    expect(out).toContain('2d 0h left');
    expect(out).toMatch(/anthropic\/claude-3-5-haiku-20241022\s+134 tokens\s+5 requests\s+\$1\.00/);
    expect(out.indexOf('anthropic/')).toBeLessThan(out.indexOf('openai/gpt-4o-mini')); // sorted by spend
    expect(out).toMatch(/total\s+1,234 tokens\s+17 requests\s+\$1\.01/);
    expect(out).toContain('5.0 spans/s');
    expect(out).not.toContain('\u001b[');
  });

  it('colours near in yellow and over in red when colour is on', () => {
    const out = renderLiveView(cur, prev, { color: true, columns: 160, nowMillis: 0 });
    expect(out).toContain('\u001b[33m  90%');
    expect(out).toContain('\u001b[31m 120%');
    expect(bar(1.5, 4, true)).toBe('\u001b[31m████\u001b[0m');
  });

  it('keeps lines within the terminal width', () => {
    const out = renderLiveView(cur, prev, { color: true, columns: 60, nowMillis: 0 });
    for (const line of out.split('\n')) expect(stripAnsi(line).length).toBeLessThanOrEqual(60);
  });

  it('prints plain log lines from the API totals', () => {
    expect(renderLogLine(cur, prev, 12)).toBe(
      '[demo 12s] users=3 requests=17 tokens=1234 cost_usd=1.005 ingest=5.0/s over_limit=alice',
    );
    expect(ingestRate(cur, undefined)).toBeNull();
  });

  it('shows a waiting line before any usage', () => {
    const out = renderLiveView(snapshot([], 0, 0), undefined, { color: false, columns: 100, nowMillis: 0 });
    expect(out).toContain('no usage yet');
    expect(out).toContain('… spans/s');
  });
});

describe('terminal view on a small terminal (80×24)', () => {
  const many = Array.from({ length: 40 }, (_, i) =>
    user(`user-${String(i).padStart(2, '0')}`, ['free', 'pro', 'team'][i % 3]!, 1_234_567 - i * 1000, 9 + (i % 5), i % 3 === 2 ? 2_000_000 : 50_000, 10),
  );
  const models = Array.from({ length: 9 }, (_, i) => ({ provider: 'anthropic', model: `claude-model-with-a-long-name-${i}`, tokens: tokens(1_000_000, i), requests: 1234, cost_usd: `${i}.5` }));
  const snap = (): Snapshot => {
    const s = snapshot(many, 0, 0);
    s.summary.by_model = models;
    return s;
  };

  it('fits 80 columns and 24 rows: header, column titles with COST, a cost on every user row, "… and N more"', () => {
    const out = renderLiveView(snap(), undefined, { color: false, columns: 80, rows: 24, nowMillis: 0, status: 'running 12345s' });
    const lines = out.split('\n');
    expect(lines.length).toBeLessThanOrEqual(24);
    for (const l of lines) expect(l.length, l).toBeLessThanOrEqual(80);
    expect(lines[0]).toMatch(/^tokenmeter demo .*running 12345s$/);
    expect(lines[1]).toMatch(/^USER\s+PLAN\s+TOKENS\s+REQUESTS\s+COST$/);
    const rows = lines.filter((l) => /^user-\d\d /.test(l));
    expect(rows.length).toBeGreaterThan(5);
    for (const r of rows) expect(r).toMatch(/\$0\.0123$/);
    const more = lines.find((l) => l.includes('more users'))!;
    expect(Number(/… and (\d+) more users/.exec(more)![1]) + rows.length).toBe(40);
    expect(out).toMatch(/… and \d+ more$/m); // alerts
    expect(out).toMatch(/… and \d+ more models/);
    expect(out).toMatch(/^\s+total\s+[\d,]+ tokens\s+[\d,]+ requests\s+\$1\.01$/m);
    expect(lines[lines.length - 1]).toMatch(/^INGEST/);
  });

  it('at any size from 40×10 to 200×60 keeps within the screen and shows the header and COST', () => {
    for (const [columns, rows] of [[40, 10], [60, 15], [80, 24], [100, 30], [200, 60]] as const) {
      const out = renderLiveView(snap(), undefined, { color: true, columns, rows, nowMillis: 0 });
      const lines = out.split('\n').map(stripAnsi);
      expect(lines.length, `${columns}x${rows}`).toBeLessThanOrEqual(rows);
      for (const l of lines) expect(l.length).toBeLessThanOrEqual(columns);
      expect(lines[0]).toMatch(/^tokenmeter demo/);
      if (columns >= 60) expect(lines[1]).toMatch(/COST$/);
    }
  });

  it('shows unpriced usage as unpriced, never $0', () => {
    const s = snapshot([{ ...user('ursula', 'free', 1000, 2, 50_000, 10), cost_usd: null, unpriced_requests: 2 }, { ...user('mia', 'pro', 10, 2, null, null), unpriced_requests: 1 }], 0, 0);
    s.summary.by_model = [{ provider: 'openai', model: 'my-private-model', tokens: tokens(900, 100), requests: 2, cost_usd: null, unpriced_requests: 2 }];
    s.summary.totals = { tokens: tokens(900, 100), requests: 2, cost_usd: null, unpriced_requests: 2 };
    const out = renderLiveView(s, undefined, { color: false, columns: 80, rows: 24, nowMillis: 0 });
    expect(out).toMatch(/^ursula .* unpriced$/m);
    expect(out).toMatch(/^mia .* \$0\.0123 \+ unpriced$/m);
    expect(out).toMatch(/openai\/my-private-model\s+1,000 tokens\s+2 requests\s+unpriced$/m);
    expect(out).toMatch(/total\s+1,000 tokens\s+2 requests\s+unpriced$/m);
    expect(out).not.toContain('$0.0000');
    expect(formatCost(null, 3)).toBe('unpriced');
    expect(formatCost('1.5', 1)).toBe('$1.50 + unpriced');
    expect(formatCost('0', 0)).toBe('$0.0000');
  });

  it('frames redraw from the top left without a trailing newline (a full screen would scroll)', () => {
    const f = frame('a\nb');
    expect(f.startsWith(FRAME_START)).toBe(true);
    expect(f.endsWith('\n')).toBe(false);
    expect(f).toBe('\u001b[Ha\u001b[K\nb\u001b[K\u001b[J');
  });

  it('prints an exit hint that runs from the clone', () => {
    const root = fileURLToPath(new URL('../..', import.meta.url));
    // Relative inside the clone (src/ here under vitest, dist/ when built: test/e2e/demo-tty-80x24.test.ts runs it).
    expect(binCommand(root)).toMatch(/^node (src|dist)\/cli\/main\.js$/);
    // Absolute from anywhere else.
    // (A sibling of the clone, never one of its ancestors: the clone itself may live under the temp directory.)
    expect(binCommand(join(root, '..', 'somewhere-else'))).toMatch(new RegExp(`^node ${join(root, '(src|dist)', 'cli', 'main\\.js')}$`));
    expect(shellQuote('/tmp/a b')).toBe(`'/tmp/a b'`);
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
  });
});
