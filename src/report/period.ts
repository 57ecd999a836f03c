/**
 * A billing period named by its month: `2026-11` is the period that starts on the anchor day of November 2026 in
 * the billing calendar's time zone (the calendar month itself with the default calendar).
 */
import type { BillingPeriod } from '../plans/types.js';

export class PeriodLabelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PeriodLabelError';
  }
}

/** Earliest month a period may name (tokenmeter's ledgers hold nothing older). */
export const MIN_PERIOD_YEAR = 2000;

/** Checks `YYYY-MM` (no other form); `name` is the parameter or flag named in errors. */
export function parsePeriodLabel(text: string, name = 'period'): { year: number; month: number } {
  const shown = JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text);
  const m = /^(\d{4})-(\d{2})$/.exec(text);
  if (!m) throw new PeriodLabelError(`${name} must be a month written YYYY-MM (e.g. 2026-11), got ${shown}`);
  const year = Number(m[1]);
  const month = Number(m[2]);
  if (month < 1 || month > 12) throw new PeriodLabelError(`${name} must be a month written YYYY-MM with a month from 01 to 12, got ${shown}`);
  if (year < MIN_PERIOD_YEAR) throw new PeriodLabelError(`${name} must be ${MIN_PERIOD_YEAR}-01 or later, got ${shown}`);
  return { year, month };
}

/** The label of a period: the year and month its start falls in, in the calendar's time zone. */
export function periodLabel(period: BillingPeriod, timeZone = 'UTC'): string {
  const parts = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit' }).formatToParts(period.start);
  return `${parts.find((p) => p.type === 'year')?.value}-${parts.find((p) => p.type === 'month')?.value}`;
}

export interface PeriodCalendar {
  /** The period containing an instant. */
  periodFor(at: Date): BillingPeriod;
  /** The period starting in the given month (the billing calendar's anchor day and time zone). */
  periodNamed?(year: number, month: number): BillingPeriod;
}

/**
 * The period a label names, refused when it has not started yet at `now` (a report of the future is a typo).
 * Without `periodNamed` the period containing the first of the month (UTC) is taken.
 */
export function resolvePeriod(text: string, calendar: PeriodCalendar, now: Date, name = 'period'): BillingPeriod {
  const { year, month } = parsePeriodLabel(text, name);
  const period = calendar.periodNamed ? calendar.periodNamed(year, month) : calendar.periodFor(new Date(Date.UTC(year, month - 1, 1)));
  if (period.start.getTime() > now.getTime()) {
    throw new PeriodLabelError(`${name} ${text} has not started yet (it starts ${period.start.toISOString()})`);
  }
  return period;
}

/**
 * Whether calls can still be charged to the period: until its end plus the late-arrival window (a span that ended
 * in the period may arrive that long after). A closed period's report only changes through a re-pricing.
 */
export function periodStatus(period: BillingPeriod, now: Date, lateArrivalMillis: number): { status: 'open' | 'closed'; closesAt: Date } {
  const closesAt = new Date(period.end.getTime() + lateArrivalMillis);
  return { status: now.getTime() >= closesAt.getTime() ? 'closed' : 'open', closesAt };
}
