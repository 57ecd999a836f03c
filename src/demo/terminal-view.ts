/**
 * The demo's live terminal view and its plain-log fallback. Pure functions from usage-API snapshots to text;
 * nothing here computes usage — every figure is read from the exporter's API.
 */
import { Decimal } from 'decimal.js';
import { NEAR_LIMIT_RATIO, OVER_LIMIT_RATIO } from '../dashboards/alerts.js';
import { firingAlerts, type FiringAlert } from './alerts.js';
import { formatCost, formatDuration, formatInt, formatPercent, formatUsd } from './format.js';
import type { Snapshot, UserUsage } from './usage-api.js';

export interface RenderOptions {
  color: boolean;
  /** Terminal width in columns. */
  columns: number;
  /**
   * Terminal height: the view is cut to fit it, by showing fewer users, alerts and models (each section then ends
   * with "… and N more"), never by dropping the header or a column. Default: no limit (the final frame).
   */
  rows?: number;
  nowMillis: number;
  /** Shown in the header, e.g. "running 42s". */
  status?: string;
  /** The demo has stopped: no "Ctrl-C to stop" hint. */
  final?: boolean;
}

const ESC = '\u001b[';
const style = (on: boolean, code: string, s: string) => (on && s ? `${ESC}${code}m${s}${ESC}0m` : s);
const bold = (c: boolean, s: string) => style(c, '1', s);
const dim = (c: boolean, s: string) => style(c, '2', s);

function levelColor(ratio: number | null): string {
  if (ratio === null) return '0';
  // The alert thresholds, so a bar changes colour when its limit alert fires.
  if (ratio >= OVER_LIMIT_RATIO) return '31'; // red: over the limit
  if (ratio >= NEAR_LIMIT_RATIO) return '33'; // yellow: near it
  return '32';
}

export function bar(ratio: number | null, width: number, color: boolean): string {
  if (width <= 0) return '';
  if (ratio === null) return dim(color, '·'.repeat(width));
  const filled = Math.min(width, Math.round(Math.min(ratio, 1) * width));
  return style(color, levelColor(ratio), '█'.repeat(filled)) + dim(color, '░'.repeat(width - filled));
}

/** Removes ANSI colour escapes. */
export function stripAnsi(s: string): string {
  return s.replace(ANSI_PATTERN, '');
}
// eslint-disable-next-line no-control-regex -- ANSI colour escapes start with the ESC control character
const ANSI_PATTERN = /\u001b\[[0-9;]*m/g;

/** Pads to a visible width, ignoring ANSI escapes. */
function pad(s: string, width: number, right = false): string {
  const visible = stripAnsi(s).length;
  const fill = ' '.repeat(Math.max(0, width - visible));
  return right ? fill + s : s + fill;
}

/** Cuts plain text to `width` characters, marking the cut with "…". */
function ellipsize(s: string, width: number): string {
  return s.length <= width ? s : width <= 1 ? s.slice(0, width) : `${s.slice(0, width - 1)}…`;
}

const PCT_WIDTH = 5;

/** The users table's column widths for a terminal width: bars shrink first, then go, then the limits after "/". */
interface UserLayout {
  nameWidth: number;
  planWidth: number;
  barWidth: number;
  withLimits: boolean;
  tokensWidth: number;
  requestsWidth: number;
  costWidth: number;
}

function figure(used: string, limit: string | null, withLimits: boolean): string {
  return limit === null || !withLimits ? used : `${used}/${limit}`;
}

function userFigures(u: UserUsage, withLimits: boolean) {
  return {
    tokens: figure(formatInt(u.tokens.total), u.limits.tokens === null ? null : formatInt(u.limits.tokens), withLimits),
    requests: figure(formatInt(u.requests), u.limits.requests === null ? null : formatInt(u.limits.requests), withLimits),
    cost:
      formatCost(u.cost_usd, u.unpriced_requests) +
      (u.limits.cost_usd === null ? '' : ` / ${formatUsd(u.limits.cost_usd)} ${formatPercent(u.ratios.cost_usd)}`),
  };
}

function userLayout(users: readonly UserUsage[], columns: number): UserLayout {
  const longest = (xs: string[], min: number) => Math.max(min, ...xs.map((x) => x.length));
  let nameWidth = Math.min(24, longest(users.map((u) => u.user), 6));
  const planWidth = Math.min(12, longest(users.map((u) => u.plan), 5));
  const maxBar = columns >= 120 ? 16 : 10;
  for (const withLimits of [true, false]) {
    const f = users.map((u) => userFigures(u, withLimits));
    const tokensWidth = longest(f.map((x) => x.tokens), 6);
    const requestsWidth = longest(f.map((x) => x.requests), 6);
    const costWidth = longest(f.map((x) => x.cost), 4);
    const rest = () => nameWidth + 2 + planWidth + 2 + tokensWidth + PCT_WIDTH + 2 + requestsWidth + PCT_WIDTH + 2 + costWidth;
    const spare = columns - rest();
    // Two bars, each followed by a space.
    const barWidth = Math.min(maxBar, Math.floor(spare / 2) - 1);
    if (barWidth >= 4) return { nameWidth, planWidth, barWidth, withLimits, tokensWidth, requestsWidth, costWidth };
    if (spare >= 0 && withLimits) return { nameWidth, planWidth, barWidth: 0, withLimits, tokensWidth, requestsWidth, costWidth };
    if (!withLimits) {
      // Still too wide: shorter user names, so that COST stays on screen.
      nameWidth = Math.max(6, nameWidth + Math.min(0, spare));
      return { nameWidth, planWidth, barWidth: 0, withLimits, tokensWidth, requestsWidth, costWidth };
    }
  }
  throw new Error('unreachable');
}

function measureCell(text: string, ratio: number | null, color: boolean, l: UserLayout, width: number): string {
  const pct = ratio === null ? ' '.repeat(PCT_WIDTH) : style(color, levelColor(ratio), formatPercent(ratio).padStart(PCT_WIDTH));
  return `${l.barWidth > 0 ? `${bar(ratio, l.barWidth, color)} ` : ''}${pad(text, width)}${pct}`;
}

function userLine(u: UserUsage, color: boolean, l: UserLayout): string {
  const f = userFigures(u, l.withLimits);
  const cost = formatCost(u.cost_usd, u.unpriced_requests);
  return [
    pad(ellipsize(u.user, l.nameWidth), l.nameWidth),
    pad(ellipsize(u.plan, l.planWidth), l.planWidth),
    measureCell(f.tokens, u.ratios.tokens, color, l, l.tokensWidth),
    measureCell(f.requests, u.ratios.requests, color, l, l.requestsWidth),
    ((u.unpriced_requests ?? 0) > 0 ? style(color, '33', cost) : cost) +
      (u.limits.cost_usd === null ? '' : ` ${dim(color, '/ ' + formatUsd(u.limits.cost_usd))} ${style(color, levelColor(u.ratios.cost_usd), formatPercent(u.ratios.cost_usd))}`),
  ].join('  ');
}

function alertLine(a: FiringAlert, color: boolean, columns: number): string {
  const sev = style(color, a.severity === 'critical' ? '31;1' : a.severity === 'warning' ? '31' : '33', pad(a.name, 30));
  return `  ${sev} user=${a.user} plan=${a.plan} ${a.measure} at ${formatPercent(a.ratio)}${columns >= 100 ? ' of the limit' : ''}`;
}

/** Spans per second between two snapshots, from the exporter's `tokenmeter_ingested_spans_total`. */
export function ingestRate(current: Snapshot, previous: Snapshot | undefined): number | null {
  if (!previous) return null;
  const dt = (current.takenAtMillis - previous.takenAtMillis) / 1000;
  return dt > 0 ? (current.ingestedSpans - previous.ingestedSpans) / dt : null;
}

/** How many lines each list gets when `budget` lines are left for all three (each shows at least one if any). */
function allocate(budget: number, wants: { users: number; alerts: number; models: number }) {
  const got = { users: 0, alerts: 0, models: 0 };
  let left = budget;
  const give = (k: keyof typeof got, upTo: number) => {
    const n = Math.max(0, Math.min(upTo - got[k], wants[k] - got[k], left));
    got[k] += n;
    left -= n;
  };
  // First a little of each, then users (the point of the view), then alerts, then models.
  give('users', 1);
  give('alerts', 1);
  give('models', 1);
  give('users', 5);
  give('alerts', 3);
  give('models', 3);
  give('users', Infinity);
  give('alerts', Infinity);
  give('models', Infinity);
  return got;
}

/** The first `n` lines of `items`, the last of them replaced by "… and K more" when not all fit. */
function shown<T>(items: readonly T[], n: number, line: (item: T) => string, more: (k: number) => string): string[] {
  if (items.length <= n) return items.map(line);
  if (n <= 0) return [];
  return [...items.slice(0, n - 1).map(line), more(items.length - (n - 1))];
}

export function renderLiveView(snap: Snapshot, previous: Snapshot | undefined, o: RenderOptions): string {
  const c = o.color;
  const { usage, summary } = snap;
  const columns = Math.max(20, o.columns);
  const left = formatDuration(new Date(usage.period.end).getTime() - o.nowMillis);
  const rate = ingestRate(snap, previous);
  const status = o.status ? `  ${dim(c, o.status)}` : '';
  const long = `${bold(c, 'tokenmeter demo')}  ${dim(c, `period ${usage.period.start.slice(0, 10)} → ${usage.period.end.slice(0, 10)} UTC, ${left} left`)}${status}`;
  const header =
    stripAnsi(long).length <= columns ? long : `${bold(c, 'tokenmeter demo')}  ${dim(c, `period ends ${usage.period.end.slice(0, 10)} (${left})`)}${status}`;

  const l = userLayout(usage.users, columns);
  const tokensHead = (l.barWidth > 0 ? l.barWidth + 1 : 0) + l.tokensWidth + PCT_WIDTH;
  const requestsHead = (l.barWidth > 0 ? l.barWidth + 1 : 0) + l.requestsWidth + PCT_WIDTH;
  const columnHeader = dim(c, [pad('USER', l.nameWidth), pad('PLAN', l.planWidth), pad('TOKENS', tokensHead), pad('REQUESTS', requestsHead), 'COST'].join('  '));

  const alerts = firingAlerts(usage.users);
  const models = [...summary.by_model].sort((a, b) => new Decimal(b.cost_usd ?? 0).comparedTo(a.cost_usd ?? 0));
  const modelCost = (m: { cost_usd: string | null; unpriced_requests?: number }) => formatCost(m.cost_usd, m.unpriced_requests);
  const tokW = Math.max(5, ...[...models.map((m) => m.tokens.total), summary.totals.tokens.total].map((n) => formatInt(n).length));
  const reqW = Math.max(3, ...[...models.map((m) => m.requests), summary.totals.requests].map((n) => formatInt(n).length));
  const costW = Math.max(7, ...[...models.map(modelCost), formatCost(summary.totals.cost_usd, summary.totals.unpriced_requests)].map((s) => s.length));
  const numbers = 2 + tokW + 7 + 2 + reqW + 9 + 2 + costW;
  const modelWidth = Math.max(10, Math.min(Math.max(...models.map((m) => m.provider.length + 1 + m.model.length), 10), columns - 2 - numbers));
  const modelLine = (name: string, tokens: number, requests: number, cost: string) =>
    `  ${pad(name, modelWidth)}  ${pad(formatInt(tokens), tokW, true)} tokens  ${pad(formatInt(requests), reqW, true)} requests  ${pad(cost, costW, true)}`;

  // Lines that always show: header, column header, the two section titles, the models' total, the ingest line.
  const fixed = 6;
  const wants = { users: Math.max(1, usage.users.length), alerts: Math.max(1, alerts.length), models: models.length };
  let blanks = 4;
  let got = { users: wants.users, alerts: wants.alerts, models: wants.models };
  if (o.rows !== undefined) {
    const need = wants.users + wants.alerts + wants.models;
    // Blank separators go first when space is short, then rows of each list.
    blanks = Math.max(0, Math.min(4, o.rows - fixed - need));
    got = allocate(Math.max(0, o.rows - fixed - blanks), wants);
  }
  const blank = (i: number) => (i < blanks ? [''] : []);

  const lines: string[] = [header, ...blank(0), columnHeader];
  if (usage.users.length === 0) lines.push(dim(c, '  (no usage yet — waiting for the first calls)'));
  else lines.push(...shown(usage.users, got.users, (u) => userLine(u, c, l), (k) => dim(c, `  … and ${k} more users (closest to a limit first; every user on the status page)`)));

  lines.push(...blank(1), bold(c, `ALERTS`) + dim(c, ` as the alert rules would fire them (${alerts.length})`));
  if (alerts.length === 0) lines.push(dim(c, '  none'));
  else lines.push(...shown(alerts, got.alerts, (a) => alertLine(a, c, columns), (k) => dim(c, `  … and ${k} more`)));

  lines.push(...blank(2), bold(c, 'SPEND BY MODEL'));
  lines.push(
    ...shown(
      models,
      got.models,
      (m) => {
        const cost = modelCost(m);
        const line = modelLine(ellipsize(`${m.provider}/${m.model}`, modelWidth), m.tokens.total, m.requests, cost);
        return (m.unpriced_requests ?? 0) > 0 ? line.replace(cost, style(c, '33', cost)) : line;
      },
      (k) => dim(c, `  … and ${k} more models`),
    ),
  );
  lines.push(
    `  ${pad(bold(c, 'total'), modelWidth)}  ${pad(formatInt(summary.totals.tokens.total), tokW, true)} tokens  ` +
      `${pad(formatInt(summary.totals.requests), reqW, true)} requests  ${pad(bold(c, formatCost(summary.totals.cost_usd, summary.totals.unpriced_requests)), costW, true)}`,
  );
  lines.push(...blank(3));
  lines.push(
    `${bold(c, 'INGEST')}  ${rate === null ? '…' : rate.toFixed(1)} spans/s  ${dim(c, `(${formatInt(snap.ingestedSpans)} spans received)`)}` +
      (o.final ? '' : `   ${dim(c, 'Ctrl-C to stop')}`),
  );
  return lines.map((line) => truncate(line, columns)).join('\n');
}

/** Cuts a line to `columns` visible characters, keeping ANSI escapes intact. */
function truncate(line: string, columns: number): string {
  let visible = 0;
  let out = '';
  for (let i = 0; i < line.length; i++) {
    if (line[i] === '\u001b') {
      const end = line.indexOf('m', i);
      out += line.slice(i, end + 1);
      i = end;
      continue;
    }
    if (visible >= columns) continue;
    out += line[i];
    visible++;
  }
  return out;
}

/** One plain log line per interval, for when stdout is not a terminal. */
export function renderLogLine(snap: Snapshot, previous: Snapshot | undefined, elapsedSeconds: number): string {
  const { totals } = snap.summary;
  const over = snap.usage.users.filter((u) => (u.max_ratio ?? 0) >= OVER_LIMIT_RATIO).map((u) => u.user);
  const rate = ingestRate(snap, previous);
  return (
    `[demo ${elapsedSeconds}s] users=${snap.usage.users.length} requests=${totals.requests} tokens=${totals.tokens.total} ` +
    `cost_usd=${totals.cost_usd} ingest=${rate === null ? '-' : rate.toFixed(1)}/s over_limit=${over.join(',') || '-'}`
  );
}

/** Log lines for alerts that started firing since the previous snapshot. */
export function newAlertLines(current: FiringAlert[], previous: FiringAlert[]): string[] {
  const before = new Set(previous.map((a) => `${a.name}/${a.user}`));
  return current
    .filter((a) => !before.has(`${a.name}/${a.user}`))
    .map((a) => `ALERT ${a.name} user=${a.user} plan=${a.plan} ${a.measure}=${formatPercent(a.ratio)} of limit`);
}
