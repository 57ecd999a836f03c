import { Decimal } from 'decimal.js';
import pg from 'pg';
import { TOKEN_TYPES } from '../contract/names.js';
import type { LedgerRecord } from '../ledger/types.js';
import type { Hold, NewReservation, ReservationStore, SettledHold, UserSnapshot } from './reservations.js';

/*
 * Reservations shared by exporter replicas on one PostgreSQL ledger. A hold is one row; it counts while it has not
 * expired and no `calls` row with its trace id + span id exists. So the ledger's own commit of the call, the
 * transaction that inserts that row and adds the call to the period totals, is what settles the hold: one atomic
 * step, without any change to the ledger. Rows of settled and expired holds are deleted afterwards (cleanup only).
 *
 * A decision reads the user's period totals and active holds in ONE statement (one snapshot: a call's row and its
 * totals are committed together), under a per-user transaction-scoped advisory lock that serialises the
 * reservations of one user across every replica.
 */

const TABLE = 'tokenmeter_reservations';
const CREATE = `
CREATE TABLE IF NOT EXISTS ${TABLE} (
  id text PRIMARY KEY,
  user_id text NOT NULL,
  period_start timestamptz NOT NULL,
  plan text NOT NULL,
  trace_id text,
  span_id text,
  tokens bigint NOT NULL CHECK (tokens >= 0),
  requests integer NOT NULL CHECK (requests >= 0),
  cost_usd numeric NOT NULL CHECK (cost_usd >= 0),
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS ${TABLE}_user_idx ON ${TABLE} (user_id, period_start);
CREATE INDEX IF NOT EXISTS ${TABLE}_span_idx ON ${TABLE} (trace_id, span_id);
CREATE INDEX IF NOT EXISTS ${TABLE}_expires_idx ON ${TABLE} (expires_at);`;

const ACTIVE = `t.expires_at > $3 AND NOT EXISTS (SELECT 1 FROM calls c WHERE c.trace_id = t.trace_id AND c.span_id = t.span_id)`;
const TOKENS_SUM = TOKEN_TYPES.map((t) => `${t}_tokens`).join(' + ');

const SNAPSHOT = `
WITH u AS (
  SELECT coalesce(sum(${TOKENS_SUM}), 0)::text AS tokens, coalesce(sum(requests), 0)::text AS requests,
         coalesce(sum(cost_usd), 0)::text AS cost, coalesce(array_agg(plan), '{}') AS plans
  FROM period_user_usage WHERE user_id = $1 AND period_start = $2
), r AS (
  SELECT coalesce(sum(tokens), 0)::text AS tokens, coalesce(sum(requests), 0)::text AS requests, coalesce(sum(cost_usd), 0)::text AS cost
  FROM ${TABLE} t WHERE t.user_id = $1 AND t.period_start = $2 AND ${ACTIVE}
)
SELECT u.tokens, u.requests, u.cost, u.plans, r.tokens AS r_tokens, r.requests AS r_requests, r.cost AS r_cost FROM u, r`;

interface SnapshotRow {
  tokens: string;
  requests: string;
  cost: string;
  plans: string[];
  r_tokens: string;
  r_requests: string;
  r_cost: string;
}

export class PostgresReservationStore implements ReservationStore {
  private readonly pool: pg.Pool;
  private ready: Promise<void> | undefined;
  private active = 0;

  constructor(url: string) {
    this.pool = new pg.Pool({ connectionString: url, max: 4, connectionTimeoutMillis: 2000, idleTimeoutMillis: 30_000, application_name: 'tokenmeter-reservations' });
    this.pool.on('error', () => {});
    this.pool.on('connect', (c) => c.on('error', () => {}));
  }

  /** Creates the table once (serialised across replicas); retried on the next use after a failure. */
  private init(): Promise<void> {
    this.ready ??= this.tx(async (c) => {
      await c.query("SELECT pg_advisory_xact_lock(hashtextextended('tokenmeter.reservations.schema', 0))");
      await c.query(CREATE);
    }).catch((err: unknown) => {
      this.ready = undefined;
      throw err;
    });
    return this.ready;
  }

  private async tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const c = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await c.query('BEGIN');
      const out = await fn(c);
      await c.query('COMMIT');
      return out;
    } catch (err) {
      try {
        await c.query('ROLLBACK');
      } catch (e) {
        broken = e instanceof Error ? e : new Error(String(e));
      }
      throw err;
    } finally {
      c.release(broken);
    }
  }

  async reserve(userId: string, periodStart: Date, now: Date, decide: (s: UserSnapshot) => NewReservation | undefined): Promise<void> {
    await this.init();
    await this.tx(async (c) => {
      await c.query("SELECT pg_advisory_xact_lock(hashtextextended('tokenmeter.reservation:' || $1, 0))", [userId]);
      const row = (await c.query<SnapshotRow>(SNAPSHOT, [userId, periodStart, now])).rows[0]!;
      const r = decide({
        tokens: Number(row.tokens),
        requests: Number(row.requests),
        costUsd: new Decimal(row.cost).toFixed(),
        billedPlans: row.plans,
        reserved: { tokens: Number(row.r_tokens), requests: Number(row.r_requests), costUsd: new Decimal(row.r_cost).toFixed() },
      });
      if (r === undefined) return;
      await c.query(
        `INSERT INTO ${TABLE} (id, user_id, period_start, plan, trace_id, span_id, tokens, requests, cost_usd, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
        [r.id, r.userId, r.periodStart, r.plan, r.traceId ?? null, r.spanId ?? null, r.hold.tokens, r.hold.requests, r.hold.costUsd, r.expiresAt],
      );
      this.active++;
    });
  }

  async reserved(userId: string, periodStart: Date, now: Date): Promise<Hold> {
    await this.init();
    const row = (
      await this.pool.query<{ tokens: string; requests: string; cost: string }>(
        `SELECT coalesce(sum(tokens), 0)::text AS tokens, coalesce(sum(requests), 0)::text AS requests, coalesce(sum(cost_usd), 0)::text AS cost
         FROM ${TABLE} t WHERE t.user_id = $1 AND t.period_start = $2 AND ${ACTIVE}`,
        [userId, periodStart, now],
      )
    ).rows[0]!;
    return { tokens: Number(row.tokens), requests: Number(row.requests), costUsd: new Decimal(row.cost).toFixed() };
  }

  /** Cleanup of the rows the ledger's commit already settled; what they held, for the estimate metric. */
  async settle(records: readonly Pick<LedgerRecord, 'traceId' | 'spanId' | 'usage'>[]): Promise<SettledHold[]> {
    if (records.length === 0) return [];
    await this.init();
    const actual = new Map<string, number>();
    for (const r of records) {
      let n = 0;
      for (const t of TOKEN_TYPES) n += r.usage[t] ?? 0;
      actual.set(`${r.traceId}${r.spanId}`, n);
    }
    const rows = (
      await this.pool.query<{ tokens: string; trace_id: string; span_id: string }>(
        `DELETE FROM ${TABLE} WHERE (trace_id, span_id) IN (SELECT * FROM unnest($1::text[], $2::text[])) RETURNING tokens, trace_id, span_id`,
        [records.map((r) => r.traceId), records.map((r) => r.spanId)],
      )
    ).rows;
    this.active = Math.max(0, this.active - rows.length);
    return rows.map((r) => ({ estimateTokens: Number(r.tokens), actualTokens: actual.get(`${r.trace_id}${r.span_id}`) ?? 0 }));
  }

  async expire(now: Date): Promise<number> {
    await this.init();
    // Settled rows whose cleanup was missed (an exporter killed after the commit) go without being counted.
    await this.pool.query(`DELETE FROM ${TABLE} t WHERE EXISTS (SELECT 1 FROM calls c WHERE c.trace_id = t.trace_id AND c.span_id = t.span_id)`);
    const expired = (await this.pool.query(`DELETE FROM ${TABLE} WHERE expires_at <= $1 RETURNING id`, [now])).rowCount ?? 0;
    this.active = Number((await this.pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${TABLE}`)).rows[0]!.n);
    return expired;
  }

  activeCount(): number {
    return this.active;
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
