/**
 * Stripe-style metering export (issue 18, point 5): a period's usage as meter events, one per customer (user and
 * plan) and period or one per call, each with an idempotency key that stays the same from run to run (so a receiver
 * that deduplicates by key counts each line once however often the export is repeated or retried). Written as JSON
 * lines to a file, or posted one event per request to a URL with retries.
 *
 * An event: {"event_name": "tokenmeter_usage", "identifier": key, "timestamp": unix seconds, "payload": {...}} with
 * payload values as strings (as Stripe's meter events take them): `stripe_customer_id` (the user id), `value` (the
 * exact cost in USD of the priced requests), plan, period, the tokens by type, requests, unpriced requests.
 */
import { createHash } from 'node:crypto';
import { TOKEN_TYPES } from '../contract/names.js';
import type { LedgerCall } from '../ledger/call-scan.js';
import type { PeriodRollup } from '../ledger/types.js';
import type { BillingPeriod } from '../plans/types.js';

export const METER_EVENT_NAME = 'tokenmeter_usage';
export const METER_GRANULARITIES = ['period', 'call'] as const;
export type MeterGranularity = (typeof METER_GRANULARITIES)[number];

export interface MeterEvent {
  event_name: string;
  /** The idempotency key: the same line gets the same key on every run. */
  identifier: string;
  /** Unix seconds: the call's end (per call) or the period's last second (per period). */
  timestamp: number;
  payload: Record<string, string>;
}

export interface MeterLedger {
  scanPeriodRollups(periodStart: Date): AsyncIterable<PeriodRollup>;
  scanCalls(filter: { periodStart?: Date }): AsyncIterable<LedgerCall>;
}

export interface MeterExportStats {
  events: number;
  /** Requests without a price at the time: their tokens are in the events, their cost is not in `value`. */
  unpricedRequests: number;
}

const hash = (parts: string[]): string => createHash('sha256').update(parts.join('\u0000')).digest('hex').slice(0, 32);

/** The period's meter events, streamed (per period: one per (user, plan) in byte order; per call: commit order). */
export async function* meterEvents(ledger: MeterLedger, period: BillingPeriod, label: string, granularity: MeterGranularity, stats: MeterExportStats): AsyncGenerator<MeterEvent> {
  const iso = period.start.toISOString();
  const base = (user: string, plan: string): Record<string, string> => ({ stripe_customer_id: user, plan, period: label, period_start: iso, period_end: period.end.toISOString() });
  if (granularity === 'period') {
    const last = Math.floor((period.end.getTime() - 1) / 1000);
    for await (const r of ledger.scanPeriodRollups(period.start)) {
      const payload = base(r.userId, r.plan);
      payload.value = r.costUsd;
      for (const t of TOKEN_TYPES) payload[`${t}_tokens`] = String(r.tokens[t]);
      payload.requests = String(r.requests);
      const unpriced = r.unpricedRequests ?? 0;
      payload.unpriced_requests = String(unpriced);
      stats.unpricedRequests += unpriced;
      stats.events++;
      yield { event_name: METER_EVENT_NAME, identifier: `tm-${label}-${hash([iso, r.userId, r.plan])}`, timestamp: last, payload };
    }
    return;
  }
  for await (const c of ledger.scanCalls({ periodStart: period.start })) {
    if (c.periodStart !== iso) continue;
    const payload = base(c.userId, c.plan);
    payload.value = c.priced ? c.totalCostUsd : '0';
    payload.priced = String(c.priced);
    payload.provider = c.provider;
    payload.model = c.model;
    for (const t of TOKEN_TYPES) payload[`${t}_tokens`] = String(c.usage[t]);
    if (c.estimated) payload.estimated = 'true';
    if (!c.priced) stats.unpricedRequests++;
    stats.events++;
    yield { event_name: METER_EVENT_NAME, identifier: `tm-call-${c.traceId}${c.spanId}`, timestamp: Math.floor(c.endTimeMillis / 1000), payload };
  }
}

export interface PostOptions {
  /** Bearer token for the receiver (absent: no Authorization header). */
  token?: string;
  /** Attempts per event (default 5). */
  attempts?: number;
  /** First retry delay; doubles each time (default 500 ms), at most 30 s or the receiver's Retry-After. */
  retryBaseMillis?: number;
  /** Per request (default 30 s). */
  timeoutMillis?: number;
  /** Requests in flight at once (default 4). */
  concurrency?: number;
  sleep?: (millis: number) => Promise<void>;
}

/** An event the receiver refused (a 4xx other than 408/429) or that still failed after every attempt. */
export class MeterPostError extends Error {}

const sleepFor = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function postOne(url: string, e: MeterEvent, o: PostOptions): Promise<void> {
  const attempts = o.attempts ?? 5;
  const base = o.retryBaseMillis ?? 500;
  const sleep = o.sleep ?? sleepFor;
  let last = '';
  for (let k = 1; k <= attempts; k++) {
    let wait = Math.min(30_000, base * 2 ** (k - 1));
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': e.identifier, ...(o.token !== undefined ? { authorization: `Bearer ${o.token}` } : {}) },
        body: JSON.stringify(e),
        signal: AbortSignal.timeout(o.timeoutMillis ?? 30_000),
      });
      const text = (await res.text()).slice(0, 300);
      if (res.ok) return;
      last = `HTTP ${res.status}${text ? `: ${text}` : ''}`;
      if (res.status !== 408 && res.status !== 429 && res.status < 500) throw new MeterPostError(`the receiver refused event ${e.identifier} (${last})`);
      const after = Number(res.headers.get('retry-after'));
      if (Number.isFinite(after) && after > 0) wait = Math.min(30_000, after * 1000);
    } catch (err) {
      if (err instanceof MeterPostError) throw err;
      last = err instanceof Error ? err.message : String(err);
    }
    if (k < attempts) await sleep(wait);
  }
  throw new MeterPostError(`event ${e.identifier} not delivered after ${attempts} attempts (last: ${last}); run the export again: the receiver deduplicates by the idempotency key`);
}

/** Posts every event (a few at a time); the first that cannot be delivered stops the export with its error. */
export async function postEvents(url: string, events: AsyncIterable<MeterEvent>, o: PostOptions = {}): Promise<number> {
  const limit = Math.max(1, o.concurrency ?? 4);
  const inFlight = new Set<Promise<void>>();
  let failed: unknown;
  let sent = 0;
  for await (const e of events) {
    if (failed !== undefined) break;
    const p = postOne(url, e, o).then(
      () => {
        sent++;
      },
      (err: unknown) => {
        failed ??= err;
      },
    );
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
    if (inFlight.size >= limit) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  if (failed !== undefined) throw failed;
  return sent;
}
