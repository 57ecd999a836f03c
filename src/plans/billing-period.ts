/**
 * Billing periods: calendar months in a time zone, starting at local midnight on an anchor day. Time-zone
 * offsets come from Intl.DateTimeFormat (the runtime's IANA data), so DST is handled without a dependency.
 */
import { periodConfigSchema, type PeriodConfig, type PeriodConfigInput } from './config.js';
import type { Clock } from './clock.js';
import type { BillingPeriod } from './types.js';

interface LocalParts {
  year: number;
  /** 1-12 */
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
      era: 'short',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** The wall-clock date and time in `timeZone` at `millis`. */
export function localParts(millis: number, timeZone: string): LocalParts {
  const out: LocalParts = { year: 0, month: 0, day: 0, hour: 0, minute: 0, second: 0 };
  let bc = false;
  for (const p of formatterFor(timeZone).formatToParts(new Date(millis))) {
    switch (p.type) {
      case 'year': out.year = Number(p.value); break;
      case 'month': out.month = Number(p.value); break;
      case 'day': out.day = Number(p.value); break;
      case 'hour': out.hour = Number(p.value); break;
      case 'minute': out.minute = Number(p.value); break;
      case 'second': out.second = Number(p.value); break;
      case 'era': bc = p.value.startsWith('B'); break;
    }
  }
  if (bc) out.year = 1 - out.year;
  return out;
}

/** The zone's UTC offset at `millis` in milliseconds (local = UTC + offset), to the second. */
export function offsetMillis(millis: number, timeZone: string): number {
  const p = localParts(millis, timeZone);
  const asUtc = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);
  return asUtc - Math.floor(millis / 1000) * 1000;
}

/**
 * The first instant of the local calendar day year-month-day in `timeZone`: local midnight, or - where a DST
 * change skips midnight - the instant the day begins. Month may overflow (13 = January next year).
 */
export function startOfLocalDay(year: number, month: number, day: number, timeZone: string): Date {
  const wall = Date.UTC(year, month - 1, day);
  const target = new Date(wall);
  const ty = target.getUTCFullYear();
  const tm = target.getUTCMonth() + 1;
  const td = target.getUTCDate();
  // The offset in force at local midnight is one of the offsets around it; try those a day either side.
  const offsets = new Set([offsetMillis(wall - 86_400_000, timeZone), offsetMillis(wall, timeZone), offsetMillis(wall + 86_400_000, timeZone)]);
  let best: number | undefined;
  for (const off of offsets) {
    const t = wall - off;
    const p = localParts(t, timeZone);
    if (p.year === ty && p.month === tm && p.day === td && (best === undefined || t < best)) best = t;
  }
  if (best === undefined) throw new RangeError(`cannot find the start of ${ty}-${tm}-${td} in ${timeZone}`);
  // Midnight skipped by a DST change: the day starts at the transition, found by narrowing down to the second.
  const p = localParts(best, timeZone);
  if (p.hour !== 0 || p.minute !== 0 || p.second !== 0) {
    let lo = best - 86_400_000; // still the previous day
    let hi = best;
    while (hi - lo > 1000) {
      const mid = Math.floor((lo + hi) / 2000) * 1000;
      const q = localParts(mid, timeZone);
      if (q.year === ty && q.month === tm && q.day === td) hi = mid;
      else lo = mid;
    }
    best = hi;
  }
  return new Date(best);
}

/** Computes billing periods for one configuration. */
/** How many recently computed periods a calendar remembers (late spans may still fall in the previous one). */
const RECENT_PERIODS = 4;

export class BillingCalendar {
  readonly timeZone: string;
  readonly anchorDay: number;
  /**
   * The last few periods computed, newest first. Computing one goes through Intl (tens of microseconds) and
   * the exporter asks once per span, almost always for the current period.
   */
  private readonly recent: { startMillis: number; endMillis: number }[] = [];

  constructor(config: PeriodConfigInput | PeriodConfig = {}) {
    const parsed = periodConfigSchema.parse(config);
    this.timeZone = parsed.timezone;
    this.anchorDay = parsed.anchor_day;
  }

  /** The period containing `instant` (start inclusive, end exclusive). */
  periodFor(instant: Date): BillingPeriod {
    const millis = instant.getTime();
    if (!Number.isFinite(millis)) throw new RangeError('periodFor: invalid date');
    for (const p of this.recent) {
      if (millis >= p.startMillis && millis < p.endMillis) return { start: new Date(p.startMillis), end: new Date(p.endMillis) };
    }
    const period = this.computePeriod(millis);
    this.recent.unshift({ startMillis: period.start.getTime(), endMillis: period.end.getTime() });
    if (this.recent.length > RECENT_PERIODS) this.recent.pop();
    return period;
  }

  /** Works the period out from the calendar rules; `periodFor` caches its answers. */
  protected computePeriod(millis: number): BillingPeriod {
    const local = localParts(millis, this.timeZone);
    let year = local.year;
    let month = local.month;
    if (local.day < this.anchorDay) month -= 1;
    let start = startOfLocalDay(year, month, this.anchorDay, this.timeZone);
    if (start.getTime() > millis) {
      // Only when the anchor day itself starts late (DST at midnight) and the instant precedes it.
      month -= 1;
      start = startOfLocalDay(year, month, this.anchorDay, this.timeZone);
    }
    const norm = new Date(Date.UTC(year, month - 1, 1));
    year = norm.getUTCFullYear();
    month = norm.getUTCMonth() + 1;
    return { start, end: startOfLocalDay(year, month + 1, this.anchorDay, this.timeZone) };
  }

  nextPeriod(period: BillingPeriod): BillingPeriod {
    return this.periodFor(period.end);
  }

  previousPeriod(period: BillingPeriod): BillingPeriod {
    return this.periodFor(new Date(period.start.getTime() - 1));
  }

  currentPeriod(clock: Clock): BillingPeriod {
    return this.periodFor(clock.now());
  }
}

/** The period containing `instant` under `config` (default: calendar month in UTC). */
export function periodFor(instant: Date, config: PeriodConfigInput | PeriodConfig = {}): BillingPeriod {
  return new BillingCalendar(config).periodFor(instant);
}

/** The period after `period` under `config`. */
export function nextPeriod(period: BillingPeriod, config: PeriodConfigInput | PeriodConfig = {}): BillingPeriod {
  return new BillingCalendar(config).nextPeriod(period);
}
