import { Decimal } from 'decimal.js';
import { randomBytes } from 'node:crypto';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { z } from 'zod';
import { LABEL, METRIC, OVERFLOW_USER, TOKEN_TYPES } from '../contract/names.js';
import type { LedgerRecord } from '../ledger/types.js';
import type { PlanLimits } from '../plans/types.js';
import { userIdProblem } from '../usage/record-text.js';
import { periodPlanOf } from './period-plan.js';
import type { HoldFile, LoadedHolds } from './reservation-file.js';
import type { LedgerPort, PlanPort, PricingPort } from './ports.js';

/*
 * Admission control, exporter side (issue 16). `POST /api/v1/reservations` holds a call's estimate against the
 * user's remaining allowance for the period, or refuses it with the limit. A hold is settled when the ledger
 * commits the call's span (identified by trace id + span id, sent with the reservation): from that moment the
 * call's real usage is in the ledger's totals and the hold no longer counts. Holds that are never settled expire
 * after the TTL. A refusal writes nothing to the ledger.
 *
 * Two stores: in memory next to the embedded ledger (one exporter process owns it), and a PostgreSQL table
 * (reservations-postgres.ts) so replicas sharing one ledger share the holds.
 */

export type LimitName = 'requests' | 'tokens' | 'cost_usd';

export interface Hold {
  tokens: number;
  requests: number;
  /** Exact decimal string. */
  costUsd: string;
}

/** A user's period as a reservation decision sees it: committed usage, plans billed, and the active holds. */
export interface UserSnapshot {
  tokens: number;
  requests: number;
  costUsd: string;
  billedPlans: string[];
  reserved: Hold;
}

export interface NewReservation {
  id: string;
  userId: string;
  plan: string;
  periodStart: Date;
  hold: Hold;
  expiresAt: Date;
  traceId?: string;
  spanId?: string;
}

/** A hold removed because its call was committed: what it held against what the call used. */
export interface SettledHold {
  estimateTokens: number;
  actualTokens: number;
}

export interface ReservationStore {
  /**
   * Atomically (no other reservation or settlement of the user in between): reads the user's committed usage and
   * active holds for the period, calls `decide`, and stores the reservation it returns (none: refused).
   */
  reserve(userId: string, periodStart: Date, now: Date, decide: (s: UserSnapshot) => NewReservation | undefined): Promise<void>;
  /** The user's active holds in the period. */
  reserved(userId: string, periodStart: Date, now: Date): Promise<Hold>;
  /** The committed calls (and duplicates of committed ones): their holds are settled. Idempotent. */
  settle(records: readonly Pick<LedgerRecord, 'traceId' | 'spanId' | 'usage'>[]): Promise<SettledHold[]>;
  /** Removes holds past their expiry; returns how many. */
  expire(now: Date): Promise<number>;
  /** Active holds now (for the gauge). */
  activeCount(): number;
  close(): Promise<void>;
}

export const ZERO_HOLD: Hold = { tokens: 0, requests: 0, costUsd: '0' };

function addHold(a: Hold, b: Hold): Hold {
  return { tokens: a.tokens + b.tokens, requests: a.requests + b.requests, costUsd: new Decimal(a.costUsd).plus(b.costUsd).toFixed() };
}

function recordTokens(usage: LedgerRecord['usage']): number {
  let n = 0;
  for (const t of TOKEN_TYPES) n += usage[t] ?? 0;
  return n;
}

// ---------------------------------------------------------------------------------------------------------------
// In memory (embedded ledger)

interface Held extends NewReservation {
  key: string;
  spanKey: string | undefined;
}

/** One user's holds in one period, with their running sum (no pass over the holds per decision). */
interface UserHolds {
  ids: Set<string>;
  tokens: number;
  requests: number;
  cost: Decimal;
  /** The earliest expiry among the holds: before it, none has expired. */
  minExpiryMillis: number;
}

/**
 * Holds in memory, decided against the embedded ledger's in-memory totals. Atomic by construction: JavaScript runs
 * one turn at a time, and the only await (the ledger read) is checked against a per-user settlement counter, so a
 * settlement between the read and the decision (usage not yet seen, hold already gone) makes it read again.
 * The window the other way (usage committed, hold not yet settled) counts the call twice for a moment: never
 * an overshoot. With the embedded ledger's holds file (reservation-file.ts) every grant is on disk before it is
 * answered and the holds are loaded again at start, so a restart (even kill -9) forgets none.
 */
export class MemoryReservationStore implements ReservationStore {
  private readonly holds = new Map<string, Held>();
  private readonly bySpan = new Map<string, string>();
  private readonly byUser = new Map<string, UserHolds>();
  private readonly settlements = new Map<string, number>();
  /** Holds found expired by a decision, not yet reported by `expire`. */
  private expiredUnreported = 0;

  /**
   * `persisted`: the holds file of the embedded ledger's directory (reservation-file.ts) and what it held at open:
   * every grant is on disk before it is answered, so holds survive a restart. Without it, holds live in memory only.
   */
  constructor(
    private readonly ledger: Pick<LedgerPort, 'userModelUsage'>,
    private readonly persisted?: { file: HoldFile; dir: string; loaded: LoadedHolds },
  ) {
    if (persisted === undefined) return;
    for (const r of persisted.loaded.live) this.add(r);
    this.expiredUnreported = persisted.loaded.expired;
  }

  private add(r: NewReservation): Held {
    const spanKey = r.traceId !== undefined && r.spanId !== undefined ? `${r.traceId}${r.spanId}` : undefined;
    const key = this.userKey(r.userId, r.periodStart);
    const held: Held = { ...r, key, spanKey };
    this.holds.set(r.id, held);
    if (spanKey !== undefined) this.bySpan.set(spanKey, r.id);
    let u = this.byUser.get(key);
    if (u === undefined) this.byUser.set(key, (u = { ids: new Set(), tokens: 0, requests: 0, cost: new Decimal(0), minExpiryMillis: Number.POSITIVE_INFINITY }));
    u.ids.add(r.id);
    u.tokens += r.hold.tokens;
    u.requests += r.hold.requests;
    if (r.hold.costUsd !== '0') u.cost = u.cost.plus(r.hold.costUsd);
    u.minExpiryMillis = Math.min(u.minExpiryMillis, r.expiresAt.getTime());
    return held;
  }

  private userKey(userId: string, periodStart: Date): string {
    return `${userId}\u0000${periodStart.getTime()}`;
  }

  /** The user's active holds; expired ones are removed first (and counted as expired). */
  private activeHold(key: string, now: Date): Hold {
    const u = this.byUser.get(key);
    if (u === undefined) return ZERO_HOLD;
    const t = now.getTime();
    if (t >= u.minExpiryMillis) {
      const gone: string[] = [];
      for (const id of [...u.ids]) {
        const h = this.holds.get(id);
        if (h !== undefined && h.expiresAt.getTime() <= t) {
          this.remove(h);
          gone.push(id);
          this.expiredUnreported++;
        }
      }
      this.persisted?.file.ended(gone);
      const left = this.byUser.get(key);
      if (left === undefined) return ZERO_HOLD;
      let min = Number.POSITIVE_INFINITY;
      for (const id of left.ids) min = Math.min(min, this.holds.get(id)?.expiresAt.getTime() ?? min);
      left.minExpiryMillis = min;
      return { tokens: left.tokens, requests: left.requests, costUsd: left.cost.toFixed() };
    }
    return { tokens: u.tokens, requests: u.requests, costUsd: u.cost.toFixed() };
  }

  async reserve(userId: string, periodStart: Date, now: Date, decide: (s: UserSnapshot) => NewReservation | undefined): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const seen = this.settlements.get(userId) ?? 0;
      const rows = await this.ledger.userModelUsage(userId, periodStart);
      // A hold of this user was settled while the ledger was read: read again (bounded; the last read decides,
      // which can only count a settled call twice, never miss one: the ledger's totals include it by then).
      if ((this.settlements.get(userId) ?? 0) !== seen && attempt < 3) continue;
      let tokens = 0;
      let requests = 0;
      let cost: Decimal | undefined;
      const billedPlans: string[] = [];
      for (const r of rows) {
        tokens += recordTokens(r.tokens);
        requests += r.requests;
        cost = cost === undefined ? new Decimal(r.costUsd) : cost.plus(r.costUsd);
        if (r.plan !== undefined) billedPlans.push(r.plan);
      }
      const key = this.userKey(userId, periodStart);
      const r = decide({ tokens, requests, costUsd: cost === undefined ? '0' : cost.toFixed(), billedPlans, reserved: this.activeHold(key, now) });
      if (r !== undefined) {
        // In memory first (in this same turn), so every decision from now on counts it; then on disk before the
        // grant is answered. A hold that could not be written is taken back and the request fails (503): the app's
        // fail mode decides, as when the exporter cannot be reached.
        const held = this.add(r);
        if (this.persisted !== undefined) {
          try {
            await this.persisted.file.grant(r);
          } catch (err) {
            if (this.holds.get(r.id) === held) this.remove(held);
            throw new Error(`could not write the reservation to disk: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
          }
        }
      }
      return;
    }
  }

  async reserved(userId: string, periodStart: Date, now: Date): Promise<Hold> {
    return this.activeHold(this.userKey(userId, periodStart), now);
  }

  private remove(h: Held): void {
    this.holds.delete(h.id);
    if (h.spanKey !== undefined) this.bySpan.delete(h.spanKey);
    const u = this.byUser.get(h.key);
    if (u !== undefined && u.ids.delete(h.id)) {
      if (u.ids.size === 0) this.byUser.delete(h.key);
      else {
        u.tokens -= h.hold.tokens;
        u.requests -= h.hold.requests;
        if (h.hold.costUsd !== '0') u.cost = u.cost.minus(h.hold.costUsd);
      }
    }
  }

  /** Synchronous, so the pipeline settles in the same turn its commit resolved in. */
  settleNow(records: readonly Pick<LedgerRecord, 'traceId' | 'spanId' | 'usage'>[]): SettledHold[] {
    const out: SettledHold[] = [];
    if (this.bySpan.size === 0) return out;
    const gone: string[] = [];
    for (const rec of records) {
      const id = this.bySpan.get(`${rec.traceId}${rec.spanId}`);
      if (id === undefined) continue;
      const h = this.holds.get(id);
      if (h === undefined) continue;
      this.remove(h);
      gone.push(id);
      this.settlements.set(h.userId, (this.settlements.get(h.userId) ?? 0) + 1);
      out.push({ estimateTokens: h.hold.tokens, actualTokens: recordTokens(rec.usage) });
    }
    this.persisted?.file.ended(gone);
    return out;
  }

  settle(records: readonly Pick<LedgerRecord, 'traceId' | 'spanId' | 'usage'>[]): Promise<SettledHold[]> {
    return Promise.resolve(this.settleNow(records));
  }

  async expire(now: Date): Promise<number> {
    let n = this.expiredUnreported;
    this.expiredUnreported = 0;
    const t = now.getTime();
    const gone: string[] = [];
    for (const h of [...this.holds.values()]) {
      if (h.expiresAt.getTime() <= t) {
        this.remove(h);
        gone.push(h.id);
        n++;
      }
    }
    if (this.holds.size === 0) this.settlements.clear();
    const p = this.persisted;
    if (p !== undefined) {
      p.file.ended(gone);
      if (p.file.needsCompaction()) p.file.compact(p.dir, [...this.holds.values()]);
    }
    return n;
  }

  activeCount(): number {
    return this.holds.size;
  }

  async close(): Promise<void> {
    await this.persisted?.file.close();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The request

const USER_PLAN_RE = /^[A-Za-z0-9_.-]{1,64}$/;
const MAX_TOKENS = 100_000_000;

export const reservationRequestSchema = z.strictObject({
  user: z.string().min(1).max(256),
  plan: z.string().regex(USER_PLAN_RE, 'plan must be 1-64 letters, digits, "_", "-" or "."').optional(),
  provider: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'provider must be 1-64 letters, digits, "_", "-" or "."'),
  model: z.string().min(1).max(256),
  input_tokens: z.number().int().min(0).max(MAX_TOKENS),
  max_output_tokens: z.number().int().min(0).max(MAX_TOKENS).optional(),
  trace_id: z.string().regex(/^[0-9a-f]{32}$/, 'trace_id must be 32 lower-case hex digits').optional(),
  span_id: z.string().regex(/^[0-9a-f]{16}$/, 'span_id must be 16 lower-case hex digits').optional(),
  enforce: z.enum(['block', 'warn']).default('block'),
});
export type ReservationRequest = z.output<typeof reservationRequestSchema>;

/** A request body the API refuses with 400 (the message says which field and why), or 413 for a batch too large. */
export class BadReservation extends Error {
  constructor(
    message: string,
    readonly status: 400 | 413 = 400,
  ) {
    super(message);
  }
}

/** One reservation as parsed JSON: the fields checked, or BadReservation saying which and why. */
export function reservationFromJson(json: unknown): ReservationRequest {
  const r = reservationRequestSchema.safeParse(json);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new BadReservation(`${i.path.join('.') || 'body'}: ${i.message}`.slice(0, 300));
  }
  const problem = userIdProblem(r.data.user);
  if (problem !== undefined) throw new BadReservation(`user: the user id ${problem}`);
  if ((r.data.trace_id === undefined) !== (r.data.span_id === undefined)) throw new BadReservation('trace_id and span_id go together');
  return r.data;
}

export function parseReservationRequest(body: Buffer): ReservationRequest {
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    throw new BadReservation('the body is not JSON');
  }
  return reservationFromJson(json);
}

/** Most reservations in one batch request (the app sends at most this many at once: enforce.ts). */
export const MAX_RESERVATION_BATCH_ITEMS = 256;

/** A batch's item that cannot be decided: its own 4xx/5xx, next to the other items' answers. */
export interface ReservationItemError {
  error: string;
  status: number;
}

/**
 * A request body: one reservation (an object) or a batch (a JSON array of 1 to MAX_RESERVATION_BATCH_ITEMS of them).
 * A broken body or batch as a whole is BadReservation; in a batch, each item is checked on its own, so a bad item
 * gets its own error and the others are still decided.
 */
export function parseReservationBody(body: Buffer): { batch: false; request: ReservationRequest } | { batch: true; items: (ReservationRequest | ReservationItemError)[] } {
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    throw new BadReservation('the body is not JSON');
  }
  if (!Array.isArray(json)) return { batch: false, request: reservationFromJson(json) };
  if (json.length === 0) throw new BadReservation('body: an empty batch (send 1 to 256 reservations in the array)');
  if (json.length > MAX_RESERVATION_BATCH_ITEMS) throw new BadReservation(`body: a batch of ${json.length} reservations; at most ${MAX_RESERVATION_BATCH_ITEMS} per request`, 413);
  return {
    batch: true,
    items: json.map((item: unknown, i: number) => {
      try {
        return reservationFromJson(item);
      } catch (err) {
        if (err instanceof BadReservation) return { error: `[${i}] ${err.message}`, status: 400 };
        throw err;
      }
    }),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Metrics

export class ReservationMetrics {
  private readonly total: Counter<string>;
  private readonly refusedByUser: Counter<string>;
  private readonly expiredTotal: Counter<string>;
  private readonly ratio: Histogram<string>;
  private readonly users = new Set<string>();

  constructor(
    registry: Registry,
    private readonly maxUsers: number,
    activeCount: () => number,
  ) {
    const registers = [registry];
    this.total = new Counter({
      name: METRIC.reservationsTotal,
      help: 'Reservation requests answered (admission control), by plan, outcome (granted, refused, warned) and limit (none when within every limit).',
      labelNames: [LABEL.plan, LABEL.outcome, LABEL.limit],
      registers,
    });
    this.refusedByUser = new Counter({
      name: METRIC.userRefusedCallsTotal,
      help: 'LLM calls refused before they were sent, per user (bounded: past limits.max_users, user="__overflow__") and plan.',
      labelNames: [LABEL.user, LABEL.plan],
      registers,
    });
    this.expiredTotal = new Counter({ name: METRIC.reservationsExpiredTotal, help: 'Reservations never settled by a committed call, expired after their TTL.', registers });
    new Gauge({
      name: METRIC.reservationsActive,
      help: 'Reservations held now (granted, not yet settled or expired).',
      registers,
      collect() {
        this.set(activeCount());
      },
    });
    this.ratio = new Histogram({
      name: METRIC.reservationActualToEstimateRatio,
      help: "Settled reservations: the call's actual tokens divided by the reservation's estimate.",
      buckets: [0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 2, 4, 10],
      registers,
    });
  }

  answered(plan: string, outcome: 'granted' | 'refused' | 'warned', limit: LimitName | 'none', userId: string): void {
    this.total.inc({ [LABEL.plan]: plan, [LABEL.outcome]: outcome, [LABEL.limit]: limit });
    if (outcome !== 'refused') return;
    let user = userId;
    if (!this.users.has(user)) {
      if (this.users.size < this.maxUsers) this.users.add(user);
      else user = OVERFLOW_USER;
    }
    this.refusedByUser.inc({ [LABEL.user]: user, [LABEL.plan]: plan });
  }

  expired(n: number): void {
    if (n > 0) this.expiredTotal.inc(n);
  }

  settled(s: readonly SettledHold[]): void {
    for (const h of s) if (h.estimateTokens > 0) this.ratio.observe(h.actualTokens / h.estimateTokens);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The decision

export interface ReservationServiceOptions {
  store: ReservationStore;
  plans: PlanPort;
  pricing: PricingPort;
  metrics?: ReservationMetrics;
  now: () => Date;
  /** How long an unsettled hold counts (config `reservations.ttl`). */
  ttlMillis: number;
  /** Output tokens assumed when the request sets no max_output_tokens (config `reservations.default_output_tokens`). */
  defaultOutputTokens: number;
  newId?: () => string;
}

export type ReservationAnswerJson =
  | {
      granted: true;
      id: string;
      expires_at: string;
      plan: string;
      period: { start: string; end: string };
      estimate: { tokens: number; cost_usd: string | null };
      warned?: { limit: LimitName; used: number | string; limit_value: number | string };
    }
  | { granted: false; user: string; plan: string; limit: LimitName; used: number | string; limit_value: number | string; retry_after: string };

/** The first limit the call would take the user over, or undefined. Requests, then tokens, then budget. */
export function overLimit(s: UserSnapshot, est: Hold, limits: PlanLimits): { limit: LimitName; used: number | string; value: number | string } | undefined {
  const requests = s.requests + s.reserved.requests;
  if (limits.requests !== undefined && requests + est.requests > limits.requests) return { limit: 'requests', used: requests, value: limits.requests };
  const tokens = s.tokens + s.reserved.tokens;
  if (limits.tokens !== undefined && tokens + est.tokens > limits.tokens) return { limit: 'tokens', used: tokens, value: limits.tokens };
  if (limits.costUsd !== undefined) {
    const cost = new Decimal(s.costUsd).plus(s.reserved.costUsd);
    if (cost.plus(est.costUsd).gt(limits.costUsd)) return { limit: 'cost_usd', used: cost.toFixed(), value: limits.costUsd.toFixed() };
  }
  return undefined;
}

const MAX_REFUSED_USERS = 100_000;

export class ReservationService {
  private readonly newId: () => string;
  /** Refused calls per user in the current period (this process; the status page shows them). */
  private refused = { periodStartMillis: Number.NaN, byUser: new Map<string, number>() };

  constructor(private readonly o: ReservationServiceOptions) {
    // A random prefix per process and a counter: unique across replicas, without 12 random bytes per call.
    const prefix = randomBytes(6).toString('hex');
    let counter = 0;
    this.newId = o.newId ?? (() => `r_${prefix}${(counter++).toString(16).padStart(12, '0')}`);
  }

  /** The estimate of a call: its input tokens plus its max output (or the default), priced from the catalog. */
  estimate(req: ReservationRequest, at: Date): Hold {
    const output = req.max_output_tokens ?? this.o.defaultOutputTokens;
    let costUsd = '0';
    try {
      const p = this.o.pricing.priceStrings({
        provider: req.provider,
        model: req.model,
        usage: { input: req.input_tokens, cache_read: 0, cache_write: 0, output, reasoning: 0 },
        at,
      });
      // An unpriced model holds no money (its tokens and requests still count); its calls are alerted on as unpriced.
      if (p.priced) costUsd = p.totalUsd;
    } catch {
      costUsd = '0';
    }
    return { tokens: req.input_tokens + output, requests: 1, costUsd };
  }

  async reserve(req: ReservationRequest): Promise<ReservationAnswerJson> {
    const now = this.o.now();
    const period = this.o.plans.periodFor(now);
    const est = this.estimate(req, now);
    let answer: ReservationAnswerJson | undefined;
    let outcome = 'granted' as 'granted' | 'refused' | 'warned';
    let limitLabel = 'none' as LimitName | 'none';
    let planLabel = '';
    await this.o.store.reserve(req.user, period.start, now, (s) => {
      // One plan per user and period (period-plan.ts): the claimed plan can only make limits stricter.
      const claimed = this.o.plans.planFor(req.user, req.plan);
      const plan = periodPlanOf(req.user, [...s.billedPlans, claimed], this.o.plans);
      planLabel = plan;
      const over = overLimit(s, est, this.o.plans.limitsFor(req.user, plan));
      if (over !== undefined && req.enforce === 'block') {
        outcome = 'refused';
        limitLabel = over.limit;
        answer = { granted: false, user: req.user, plan, limit: over.limit, used: over.used, limit_value: over.value, retry_after: period.end.toISOString() };
        return undefined;
      }
      const id = this.newId();
      const expiresAt = new Date(now.getTime() + this.o.ttlMillis);
      answer = {
        granted: true,
        id,
        expires_at: expiresAt.toISOString(),
        plan,
        period: { start: period.start.toISOString(), end: period.end.toISOString() },
        estimate: { tokens: est.tokens, cost_usd: est.costUsd },
      };
      if (over !== undefined) {
        outcome = 'warned';
        limitLabel = over.limit;
        answer.warned = { limit: over.limit, used: over.used, limit_value: over.value };
      }
      const r: NewReservation = { id, userId: req.user, plan, periodStart: period.start, hold: est, expiresAt };
      if (req.trace_id !== undefined && req.span_id !== undefined) {
        r.traceId = req.trace_id;
        r.spanId = req.span_id;
      }
      return r;
    });
    this.o.metrics?.answered(planLabel, outcome, limitLabel, req.user);
    if (outcome === 'refused') {
      if (this.refused.periodStartMillis !== period.start.getTime()) this.refused = { periodStartMillis: period.start.getTime(), byUser: new Map() };
      // Bounded like the per-user series: a flood of made-up user ids cannot grow it without end.
      if (this.refused.byUser.has(req.user) || this.refused.byUser.size < MAX_REFUSED_USERS) this.refused.byUser.set(req.user, (this.refused.byUser.get(req.user) ?? 0) + 1);
    }
    return answer!;
  }

  async settle(records: readonly LedgerRecord[]): Promise<void> {
    const s = await this.o.store.settle(records);
    this.o.metrics?.settled(s);
  }

  async expire(): Promise<number> {
    const n = await this.o.store.expire(this.o.now());
    this.o.metrics?.expired(n);
    return n;
  }

  /** Calls refused this period per user, as counted by this process (empty for another period). */
  refusedCalls(periodStart: Date): ReadonlyMap<string, number> {
    return this.refused.periodStartMillis === periodStart.getTime() ? this.refused.byUser : new Map();
  }

  reserved(userId: string, periodStart: Date): Promise<Hold> {
    return this.o.store.reserved(userId, periodStart, this.o.now());
  }

  close(): Promise<void> {
    return this.o.store.close();
  }
}

export { addHold };
