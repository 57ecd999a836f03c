/**
 * Writes a report as it streams: a header, one line at a time, then the total (the exact sum of the lines). Table
 * (for people), CSV (spreadsheets; cells that a spreadsheet would run as a formula are defused) or JSON. Nothing
 * written depends on when the report is made, so the same period gives the same bytes.
 */
import { TOKEN_TYPES } from '../contract/names.js';
import type { BillingPeriod } from '../plans/types.js';
import { KEY_COLUMNS, ReportTotals, auditShare, convertExact, type ReportBy, type ReportLine } from './report.js';
import type { RepriceAudit } from '../ledger/adjustments.js';
import { ExactDecimal } from '../money/index.js';

export const REPORT_FORMATS = ['table', 'csv', 'json'] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

export interface ReportHeader {
  /** `2026-11` */
  label: string;
  period: BillingPeriod;
  status: 'open' | 'closed';
  /** When an open period closes (its end + the late-arrival window). */
  closesAt: Date;
  by: ReportBy;
  user?: string;
  /** Display currency other than USD, with its configured rate (units per USD). */
  display?: { currency: string; rate: string };
  /**
   * The re-pricings that touched the period (`Ledger.repriceAudits`): each is said in the header ("re-priced on ...
   * by ..., audit id ...") or, in CSV, on a line after the total; by user, an adjustment_usd column.
   */
  repricings?: readonly RepriceAudit[];
}

interface Repricing {
  audit: RepriceAudit;
  calls: number;
  deltaUsd: string;
}

function repricingsOf(h: ReportHeader): Repricing[] {
  const iso = h.period.start.toISOString();
  return (h.repricings ?? []).map((audit) => ({ audit, ...auditShare(audit, iso, h.user) })).filter((r) => r.calls > 0);
}

function repricingText(r: Repricing): string {
  return `re-priced on ${r.audit.at} by ${tableText(r.audit.by)}, audit id ${r.audit.id}: ${r.calls} call(s), ${r.deltaUsd} USD`;
}

/** Writes one chunk; resolves when the sink can take more (backpressure). */
export type ReportSink = (chunk: string) => Promise<void> | void;

const TOKEN_COLUMNS = [...TOKEN_TYPES, 'total_tokens'] as const;

function totalTokens(l: ReportLine): number {
  let n = 0;
  for (const t of TOKEN_TYPES) n += l.tokens[t];
  return n;
}

/** Cost of a line: null when every request of it was unpriced (the cost is unknown, never 0). */
function costOf(l: ReportLine): string | null {
  return l.requests > 0 && l.unpricedRequests >= l.requests ? null : l.costUsd;
}

// eslint-disable-next-line no-control-regex -- ids come from spans: no escape sequence reaches a terminal
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

/** A key as shown in a table: control characters replaced, very long ids cut. */
function tableText(s: string): string {
  const clean = s.replace(CONTROL, '?');
  return clean.length > 64 ? `${clean.slice(0, 63)}…` : clean;
}

/**
 * A CSV cell: quoted when it holds a comma, quote or line break; a cell starting with = + - @ (or a tab / CR) is
 * prefixed with ' so that a spreadsheet shows it as text instead of running it as a formula (user ids come from
 * spans, i.e. from anyone who can make the app send one).
 */
export function csvCell(s: string): string {
  // A plain negative number (a re-pricing's difference) is a number, not a formula: left as it is.
  const safe = /^[=+\-@\t\r]/.test(s) && !/^-\d+(\.\d+)?$/.test(s) ? `'${s}` : s;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

function displayHeader(h: ReportHeader): string[] {
  return h.display ? [`cost_${h.display.currency.toLowerCase()}`] : [];
}

function displayCost(h: ReportHeader, cost: string | null): string[] {
  if (!h.display) return [];
  return [cost === null ? '' : convertExact(cost, h.display.rate)];
}

function lineJson(h: ReportHeader, l: ReportLine, key: Record<string, string> | undefined, adjustment?: string): string {
  const cost = costOf(l);
  const tokens: Record<string, number> = { ...l.tokens, total: totalTokens(l) };
  return JSON.stringify({
    ...(key ?? {}),
    tokens,
    requests: l.requests,
    unpriced_requests: l.unpricedRequests,
    cost_usd: cost,
    ...(adjustment !== undefined ? { adjustment_usd: adjustment } : {}),
    ...(h.display ? { display: { currency: h.display.currency, amount: cost === null ? null : convertExact(cost, h.display.rate) } } : {}),
  });
}

function headerLines(h: ReportHeader, reps: Repricing[]): string[] {
  return [
    `period ${h.label}: ${h.period.start.toISOString()} to ${h.period.end.toISOString()} (${h.status === 'closed' ? 'closed' : `open: calls may still arrive until ${h.closesAt.toISOString()}`})`,
    `by ${h.by}${h.user !== undefined ? `, user ${tableText(h.user)}` : ''}; cost in USD, exact${h.display ? `; ${h.display.currency} at ${h.display.rate} per USD` : ''}`,
    ...reps.map(repricingText),
  ];
}

/** Writes the report; returns the total line (the exact sum of the lines). */
export async function writeReport(lines: AsyncIterable<ReportLine>, h: ReportHeader, format: ReportFormat, sink: ReportSink): Promise<ReportLine> {
  const keys = KEY_COLUMNS[h.by];
  const totals = new ReportTotals();
  let count = 0;
  const reps = repricingsOf(h);
  // By user in a re-priced period: each line's part of the re-pricings, and their sum on the total line.
  const adjusting = reps.length > 0 && h.by === 'user';
  let adjustmentTotal = new ExactDecimal(0);
  const adjustmentOf = (l: ReportLine): string | undefined => {
    if (!adjusting) return undefined;
    const a = l.adjustmentUsd ?? '0';
    adjustmentTotal = adjustmentTotal.plus(a);
    return a;
  };
  if (format === 'json') {
    const head = {
      period: { label: h.label, start: h.period.start.toISOString(), end: h.period.end.toISOString(), status: h.status, ...(h.status === 'open' ? { closes_at: h.closesAt.toISOString() } : {}) },
      by: h.by,
      ...(h.user !== undefined ? { user: h.user } : {}),
      currency: 'USD',
      ...(h.display ? { display_currency: h.display.currency, display_rate: h.display.rate } : {}),
      ...(reps.length > 0
        ? { repricings: reps.map((r) => ({ id: r.audit.id, at: r.audit.at, by: r.audit.by, arguments: r.audit.arguments, calls: r.calls, delta_usd: r.deltaUsd })) }
        : {}),
    };
    await sink(`${JSON.stringify(head).slice(0, -1)},"lines":[`);
    for await (const l of lines) {
      totals.add(l);
      await sink(`${count++ === 0 ? '\n' : ',\n'}${lineJson(h, l, Object.fromEntries(keys.map((k, i) => [k, l.key[i]!])), adjustmentOf(l))}`);
    }
    const total = totals.line();
    await sink(`\n],"total":${lineJson(h, total, undefined, adjusting ? adjustmentTotal.toFixed() : undefined)}}\n`);
    return total;
  }
  const columns = [...keys, ...TOKEN_COLUMNS, 'requests', 'unpriced_requests', 'cost_usd', ...(adjusting ? ['adjustment_usd'] : []), ...displayHeader(h)];
  const cells = (key: string[], l: ReportLine, adjustment: string | undefined): string[] => {
    const cost = costOf(l);
    return [
      ...key, ...TOKEN_TYPES.map((t) => String(l.tokens[t])), String(totalTokens(l)), String(l.requests), String(l.unpricedRequests), cost ?? '',
      ...(adjustment !== undefined ? [adjustment] : []), ...displayCost(h, cost),
    ];
  };
  const totalAdjustment = () => (adjusting ? adjustmentTotal.toFixed() : undefined);
  if (format === 'csv') {
    await sink(`${columns.join(',')}\n`);
    for await (const l of lines) {
      totals.add(l);
      await sink(`${cells(l.key, l, adjustmentOf(l)).map(csvCell).join(',')}\n`);
    }
    const total = totals.line();
    await sink(`${cells(['TOTAL', ...keys.slice(1).map(() => '')], total, totalAdjustment()).map(csvCell).join(',')}\n`);
    // The re-pricings after the total (a CSV has no header lines): the text in the first cell, the difference under cost_usd.
    const costAt = columns.indexOf('cost_usd');
    for (const r of reps) {
      const row = columns.map(() => '');
      row[0] = repricingText(r);
      row[costAt] = r.deltaUsd;
      await sink(`${row.map(csvCell).join(',')}\n`);
    }
    return total;
  }
  // Table: fixed widths (the lines stream, so they cannot be measured first); a longer value widens its own row.
  const widths = columns.map((c, i) => (i < keys.length ? Math.max(c.length, 24) : Math.max(c.length, 12)));
  const row = (values: string[]) => values.map((v, i) => (i < keys.length ? v.padEnd(widths[i]!) : v.padStart(widths[i]!))).join('  ').trimEnd();
  await sink(`${headerLines(h, reps).join('\n')}\n\n${row(columns)}\n`);
  for await (const l of lines) {
    totals.add(l);
    count++;
    await sink(`${row(cells(l.key.map(tableText), l, adjustmentOf(l)).map((c, i) => (i >= keys.length && c === '' && columns[i]!.startsWith('cost') ? 'unpriced' : c)))}\n`);
  }
  const total = totals.line();
  await sink(`${row(cells(['TOTAL', ...keys.slice(1).map(() => '')], total, totalAdjustment()))}\n`);
  if (count === 0) await sink('(no usage in this period)\n');
  if (total.unpricedRequests > 0) await sink(`${total.unpricedRequests} request(s) had no price at the time: their tokens are counted, their cost is not in cost_usd.\n`);
  return total;
}
