import { describe, it, expect } from 'vitest';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { formatCost as tsFormatCost, formatUsd as tsFormatUsd } from '../../src/demo/format.js';
import { firingAlerts as tsFiringAlerts, LIMIT_ALERT_RULES as TS_LIMIT_ALERT_RULES } from '../../src/demo/alerts.js';
import { ALERTS } from '../../src/dashboards/alerts.js';

interface StatusPageModule {
  formatUsd(s: string | null): string;
  roundDecimal(s: string, digits: number): string;
  compareDecimal(a: string, b: string): number;
  formatDuration(ms: number): string;
  displayText(s: string): { text: string; title: string | undefined };
  MAX_SHOWN_CHARS: number;
  sortUsers(users: { user: string; plan: string; tokens: { total: number }; requests: number; cost_usd: string; max_ratio: number | null }[], key: string, dir: string): { user: string }[];
  formatCost(cost: string | null, unpriced: number): string;
  LIMIT_ALERT_RULES: { name: string; measure: string; minRatio: number; maxRatio: number; severity: string }[];
  UNPRICED_MODEL_ALERT: { name: string; severity: string };
  firingAlerts(users: unknown[]): unknown[];
  unpricedModels(byModel: { model: string; unpriced_requests: number; tokens: { total: number } }[]): { model: string }[];
}

// The status page is plain browser JS with no build step; it exports its pure helpers so they can be tested here.
const appPath = fileURLToPath(new URL('../../src/exporter/status-page/app.js', import.meta.url));
const app = (await import(pathToFileURL(appPath).href)) as StatusPageModule;

describe('status page formatting', () => {
  it('shows untrusted ids with bidi, zero-width and control characters escaped, backslashes doubled, long ones cut', () => {
    expect(app.displayText('adm\u202Enimda')).toEqual({ text: 'adm\\u{202E}nimda', title: undefined });
    expect(app.displayText('a\u0000b\u001b[31m\u0085\u061c').text).toBe('a\\u{0000}b\\u{001B}[31m\\u{0085}\\u{061C}');
    expect(app.displayText('\u200d\u2028\u2067\ufeff').text).toBe('\\u{200D}\\u{2028}\\u{2067}\\u{FEFF}');
    // A literal "\u{202E}" typed into an id cannot pass for an escaped one.
    expect(app.displayText('x\\u{202E}')).toEqual({ text: 'x\\\\u{202E}', title: undefined });
    expect(app.displayText('\ud800z').text).toBe('\\u{D800}z');
    expect(app.displayText('émoji 😀 ok').text).toBe('émoji 😀 ok');
    const long = 'y'.repeat(app.MAX_SHOWN_CHARS + 1);
    expect(app.displayText(long)).toEqual({ text: `${'y'.repeat(app.MAX_SHOWN_CHARS - 1)}…`, title: long });
    expect(app.displayText('😀'.repeat(app.MAX_SHOWN_CHARS)).title).toBeUndefined();
  });

  it('rounds decimal strings half up by string arithmetic', () => {
    expect(app.roundDecimal('0.99995', 4)).toBe('1.0000');
    expect(app.roundDecimal('9.995', 2)).toBe('10.00');
    expect(app.roundDecimal('0.00004999', 4)).toBe('0.0000');
    expect(app.roundDecimal('12', 2)).toBe('12.00');
    expect(app.roundDecimal('0.1', 0)).toBe('0');
  });

  it('formats money exactly like the terminal view', () => {
    for (const s of ['0', '0.00005', '0.00004999', '0.012345', '0.99995', '1', '1.005', '1234567.994', '19.999', '250.5']) {
      expect(app.formatUsd(s), s).toBe(tsFormatUsd(s));
    }
  });

  it('compares money strings exactly', () => {
    expect(app.compareDecimal('0.10', '0.1')).toBe(0);
    expect(app.compareDecimal('10.0', '9.99999999999999999999')).toBeGreaterThan(0);
    expect(app.compareDecimal('0.000000000000000001', '0.000000000000000002')).toBeLessThan(0);
  });

  it('sorts users by a column in either direction, ties by name', () => {
    const users = [
      { user: 'b', plan: 'pro', tokens: { total: 5 }, requests: 2, cost_usd: '0.2', max_ratio: 0.5 },
      { user: 'a', plan: 'free', tokens: { total: 5 }, requests: 9, cost_usd: '0.10', max_ratio: 1.2 },
      { user: 'c', plan: 'team', tokens: { total: 7 }, requests: 1, cost_usd: '0.3', max_ratio: null },
    ];
    expect(app.sortUsers(users, 'tokens', 'desc').map((u) => u.user)).toEqual(['c', 'a', 'b']);
    expect(app.sortUsers(users, 'cost', 'asc').map((u) => u.user)).toEqual(['a', 'b', 'c']);
    expect(app.sortUsers(users, 'max_ratio', 'desc').map((u) => u.user)).toEqual(['a', 'b', 'c']);
    expect(app.sortUsers(users, 'user', 'asc').map((u) => u.user)).toEqual(['a', 'b', 'c']);
  });
});

describe('status page alerts and unpriced costs', () => {
  it('evaluates the same limit rules as the alert definitions (names, measures, thresholds, severities)', () => {
    expect(app.LIMIT_ALERT_RULES).toEqual(TS_LIMIT_ALERT_RULES.map((r) => ({ ...r })));
    const unpriced = ALERTS.find((a) => a.name === app.UNPRICED_MODEL_ALERT.name);
    expect(unpriced?.severity).toBe(app.UNPRICED_MODEL_ALERT.severity);
  });

  it('fires the same alerts as the terminal view on the same users', () => {
    const u = (user: string, tokens: number | null, requests: number | null, cost: number | null) => ({
      user, plan: 'free', tokens: { total: 1 }, requests: 1, cost_usd: '1', limits: { tokens: 1, requests: 1, cost_usd: '1' },
      ratios: { tokens, requests, cost_usd: cost }, max_ratio: Math.max(tokens ?? 0, requests ?? 0, cost ?? 0),
    });
    // Only the fields the alerts read (the terminal view's type asks for more).
    const users = [u('a', 0.79, 0.8, 1), u('b', 1.5, null, 0.99), u('c', null, null, null), u('d', 0.999, 1e308, 2)] as unknown as Parameters<typeof tsFiringAlerts>[0];
    expect(app.firingAlerts(users)).toEqual(tsFiringAlerts(users));
    expect(app.firingAlerts(users)).toHaveLength(7);
  });

  it('lists unpriced models and shows unpriced costs like the terminal view, never as $0', () => {
    const m = (model: string, unpriced: number, total: number) => ({ model, unpriced_requests: unpriced, tokens: { total } });
    expect(app.unpricedModels([m('priced', 0, 9), m('few', 1, 100), m('many', 5, 1)]).map((x) => x.model)).toEqual(['many', 'few']);
    for (const [cost, unpriced] of [[null, 3], ['1.005', 2], ['0', 0], ['0.00004999', 0]] as const) {
      expect(app.formatCost(cost, unpriced)).toBe(tsFormatCost(cost, unpriced));
    }
    expect(app.formatCost(null, 3)).toBe('unpriced');
    expect(app.formatCost('1.005', 2)).toBe('$1.01 + unpriced');
  });
});
