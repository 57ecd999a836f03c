/**
 * The demo's live terminal view and its plain-log fallback. Pure functions from usage-API snapshots to text;
 * nothing here computes usage — every figure is read from the exporter's API.
 */
import { Decimal } from 'decimal.js';
import { NEAR_LIMIT_RATIO, OVER_LIMIT_RATIO } from '../dashboards/alerts.js';
import { firingAlerts, type FiringAlert } from './alerts.js';
import { formatDuration, formatInt, formatPercent, formatUsd } from './format.js';
import type { Snapshot, UserUsage } from './usage-api.js';

export interface RenderOptions {
  color: boolean;
  /** Terminal width in columns. */
  columns: number;
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

function measureCell(used: string, limit: string | null, ratio: number | null, color: boolean, barWidth: number): string {
  const figure = limit === null ? `${used}` : `${used}/${limit}`;
  const pct = ratio === null ? '' : style(color, levelColor(ratio), formatPercent(ratio).padStart(5));
  return `${bar(ratio, barWidth, color)} ${pad(figure, 15)}${pct}`;
}

function userLine(u: UserUsage, color: boolean, barWidth: number, nameWidth: number): string {
  return [
    pad(u.user, nameWidth),
    pad(u.plan, 5),
    measureCell(formatInt(u.tokens.total), u.limits.tokens === null ? null : formatInt(u.limits.tokens), u.ratios.tokens, color, barWidth),
    measureCell(formatInt(u.requests), u.limits.requests === null ? null : formatInt(u.limits.requests), u.ratios.requests, color, barWidth),
    pad(formatUsd(u.cost_usd), 9, true) +
      (u.limits.cost_usd === null ? '' : ` ${dim(color, '/ ' + formatUsd(u.limits.cost_usd))} ${style(color, levelColor(u.ratios.cost_usd), formatPercent(u.ratios.cost_usd))}`),
  ].join('  ');
}

function alertLine(a: FiringAlert, color: boolean): string {
  const sev = style(color, a.severity === 'critical' ? '31;1' : a.severity === 'warning' ? '31' : '33', pad(a.name, 30));
  return `  ${sev} user=${a.user} plan=${a.plan} ${a.measure} at ${formatPercent(a.ratio)} of the limit`;
}

/** Spans per second between two snapshots, from the exporter's `tokenmeter_ingested_spans_total`. */
export function ingestRate(current: Snapshot, previous: Snapshot | undefined): number | null {
  if (!previous) return null;
  const dt = (current.takenAtMillis - previous.takenAtMillis) / 1000;
  return dt > 0 ? (current.ingestedSpans - previous.ingestedSpans) / dt : null;
}

export function renderLiveView(snap: Snapshot, previous: Snapshot | undefined, o: RenderOptions): string {
  const c = o.color;
  const { usage, summary } = snap;
  const left = formatDuration(new Date(usage.period.end).getTime() - o.nowMillis);
  const rate = ingestRate(snap, previous);
  const lines: string[] = [];
  lines.push(
    `${bold(c, 'tokenmeter demo')}  ${dim(c, `period ${usage.period.start.slice(0, 10)} → ${usage.period.end.slice(0, 10)} UTC, ${left} left`)}` +
      (o.status ? `  ${dim(c, o.status)}` : ''),
  );
  lines.push('');
  const nameWidth = Math.max(6, ...usage.users.map((u) => u.user.length));
  const barWidth = o.columns >= 120 ? 16 : 10;
  const cellWidth = barWidth + 1 + 15 + 5;
  lines.push(dim(c, [pad('USER', nameWidth), pad('PLAN', 5), pad('TOKENS', cellWidth), pad('REQUESTS', cellWidth), 'COST'].join('  ')));
  for (const u of usage.users) lines.push(userLine(u, c, barWidth, nameWidth));
  if (usage.users.length === 0) lines.push(dim(c, '  (no usage yet — waiting for the first calls)'));

  const alerts = firingAlerts(usage.users);
  lines.push('');
  lines.push(bold(c, `ALERTS`) + dim(c, ` as the alert rules would fire them (${alerts.length})`));
  if (alerts.length === 0) lines.push(dim(c, '  none'));
  const maxAlerts = 8;
  for (const a of alerts.slice(0, maxAlerts)) lines.push(alertLine(a, c));
  if (alerts.length > maxAlerts) lines.push(dim(c, `  … and ${alerts.length - maxAlerts} more`));

  lines.push('');
  lines.push(bold(c, 'SPEND BY MODEL'));
  const models = [...summary.by_model].sort((a, b) => new Decimal(b.cost_usd).comparedTo(a.cost_usd));
  const modelWidth = Math.max(10, ...models.map((m) => m.provider.length + 1 + m.model.length));
  for (const m of models) {
    lines.push(
      `  ${pad(`${m.provider}/${m.model}`, modelWidth)}  ${pad(formatInt(m.tokens.total), 11, true)} tokens  ` +
        `${pad(formatInt(m.requests), 6, true)} requests  ${pad(formatUsd(m.cost_usd), 10, true)}`,
    );
  }
  lines.push(
    `  ${pad(bold(c, 'total'), modelWidth)}  ${pad(formatInt(summary.totals.tokens.total), 11, true)} tokens  ` +
      `${pad(formatInt(summary.totals.requests), 6, true)} requests  ${pad(bold(c, formatUsd(summary.totals.cost_usd)), 10, true)}`,
  );
  lines.push('');
  lines.push(
    `${bold(c, 'INGEST')}  ${rate === null ? '…' : rate.toFixed(1)} spans/s  ${dim(c, `(${formatInt(snap.ingestedSpans)} spans received)`)}` +
      (o.final ? '' : `   ${dim(c, 'Ctrl-C to stop')}`),
  );
  return lines.map((l) => truncate(l, o.columns)).join('\n');
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
