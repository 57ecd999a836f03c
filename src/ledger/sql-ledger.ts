/**
 * The SQL ledger: one row per call, exactly once by (trace id, span id), and exact per-period rollups, on
 * PostgreSQL. See README.md in this folder for the tables.
 */
import { Decimal } from 'decimal.js';
import { TOKEN_TYPES } from '../contract/names.js';
import { ExactDecimal } from '../pricing/index.js';
import { systemClock, type Clock } from '../plans/clock.js';
import { totalTokens } from '../usage/usage.js';
import type { BackendKind, SqlBackend, SqlRunner } from './backend.js';
import { classifyError, isRetryableConflict, LedgerError, LedgerUnavailableError } from './errors.js';
import {
  DEFAULT_DEDUP_WINDOW_MILLIS,
  netCostsOf,
  pruneArguments,
  withNetCosts,
  type CommitOptions,
  type DiscountFunction,
  type Ledger,
  type LedgerOptions,
  type LoadRollupsOptions,
  type ScanRollupsOptions,
  type ModelUsage,
  type NetCosts,
  type PeriodSummary,
  type ProviderSpend,
  type PruneOptions,
  type PruneResult,
  type TokenCounts,
  type UserPeriodUsage,
} from './ledger-interface.js';
import { MIGRATION_LOCK_KEY, MIGRATIONS } from './migrations.js';
import { isPrevalidated, validateRecord } from './record-validation.js';
import { normaliseFilter, scanSqlCalls, type CallFilter, type LedgerCall } from './call-scan.js';
import type { CommitOutcome, CommitResult, LedgerRecord, PeriodRollup } from './types.js';
import { randomBytes } from 'node:crypto';
import { auditOf, newAuditId, validateRepriceRequest, type CallAdjustment, type RepriceAudit, type RepriceRequest } from './adjustments.js';

/** Exact arithmetic for sums of money strings (the default 20 significant digits could round). */
const Exact = ExactDecimal;
type Exact = ExactDecimal;

const ISO_SQL = (col: string) => `to_char(${col} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
const TOKEN_COLS = ['input_tokens', 'cache_read_tokens', 'cache_write_tokens', 'output_tokens', 'reasoning_tokens'] as const;
const COST_COLS = ['input_cost_usd', 'cache_read_cost_usd', 'cache_write_cost_usd', 'output_cost_usd', 'reasoning_cost_usd'] as const;
const TOKENS_SELECT = [...TOKEN_COLS, 'cache_write_1h_tokens'].map((c) => `${c}::text AS ${c}`).join(', ');

function isoOf(periodStart: Date | string): string {
  const d = typeof periodStart === 'string' ? new Date(periodStart) : periodStart;
  if (!Number.isFinite(d.getTime())) throw new LedgerError(`invalid period start: ${String(periodStart)}`);
  return d.toISOString();
}

function money(s: unknown): string {
  return new Exact(String(s ?? '0')).toFixed();
}

function tokensOf(row: Record<string, unknown>): TokenCounts {
  const out = {} as TokenCounts;
  TOKEN_TYPES.forEach((t, k) => (out[t] = Number(row[TOKEN_COLS[k]])));
  return out;
}

/** Tokens, requests and exact cost summed over rollup or per-model rows. */
function totalsOf(rows: readonly { tokens: TokenCounts; requests: number; costUsd: string }[]): {
  tokens: TokenCounts;
  totalTokens: number;
  requests: number;
  costUsd: string;
} {
  const tokens = Object.fromEntries(TOKEN_TYPES.map((t) => [t, 0])) as TokenCounts;
  let cost = new Exact(0);
  let requests = 0;
  for (const r of rows) {
    for (const t of TOKEN_TYPES) tokens[t] += r.tokens[t];
    requests += r.requests;
    cost = cost.plus(r.costUsd);
  }
  return { tokens, totalTokens: totalTokens(tokens), requests, costUsd: cost.toFixed() };
}

function rollupOf(row: Record<string, unknown>): PeriodRollup {
  return {
    periodStart: String(row.period_start),
    userId: String(row.user_id),
    plan: String(row.plan),
    tokens: tokensOf(row),
    requests: Number(row.requests),
    costUsd: money(row.cost_usd),
  };
}

function modelUsageOf(row: Record<string, unknown>): ModelUsage {
  const tokens = tokensOf(row);
  const out: ModelUsage = {
    provider: String(row.provider),
    model: String(row.model),
    tokens,
    cacheWrite1hTokens: Number(row.cache_write_1h_tokens),
    totalTokens: totalTokens(tokens),
    requests: Number(row.requests),
    unpricedRequests: Number(row.unpriced_requests),
    estimatedRequests: Number(row.estimated_requests),
    costUsd: money(row.cost_usd),
  };
  if (row.user_id !== undefined) out.userId = String(row.user_id);
  if (row.plan !== undefined) out.plan = String(row.plan);
  return out;
}

/** Accumulates per-key deltas of the newly committed records. */
interface Delta {
  keys: string[];
  tokens: number[]; // five buckets + cache_write_1h
  requests: number;
  unpriced: number;
  estimated: number;
  cost: Exact;
  gross: Exact;
  discount: Exact;
}

function addDelta(map: Map<string, Delta>, keys: string[], r: LedgerRecord, net: Exact, gross: Exact, discount: Exact): void {
  const id = JSON.stringify(keys);
  let d = map.get(id);
  if (!d) {
    d = { keys, tokens: [0, 0, 0, 0, 0, 0], requests: 0, unpriced: 0, estimated: 0, cost: new Exact(0), gross: new Exact(0), discount: new Exact(0) };
    map.set(id, d);
  }
  TOKEN_TYPES.forEach((t, k) => (d.tokens[k] += r.usage[t]));
  d.tokens[5] += r.usage.cache_write_1h ?? 0;
  d.requests += 1;
  if (!r.priced) d.unpriced += 1;
  if (r.estimated) d.estimated += 1;
  d.cost = d.cost.plus(net);
  d.gross = d.gross.plus(gross);
  d.discount = d.discount.plus(discount);
}

function sortedDeltas(map: Map<string, Delta>): Delta[] {
  return [...map.values()].sort((a, b) => {
    for (let k = 0; k < a.keys.length; k++) {
      if (a.keys[k] !== b.keys[k]) return a.keys[k] < b.keys[k] ? -1 : 1;
    }
    return 0;
  });
}

const col = (ds: Delta[], k: number) => ds.map((d) => d.keys[k]);
const tokenArrays = (ds: Delta[]) => [0, 1, 2, 3, 4, 5].map((k) => ds.map((d) => d.tokens[k]));
const TOKEN_INSERT_COLS = [...TOKEN_COLS, 'cache_write_1h_tokens'];
const addCols = (table: string, cols: string[]) => cols.map((c) => `${c} = ${table}.${c} + EXCLUDED.${c}`).join(', ');

export class SqlLedger implements Ledger {
  readonly kind: BackendKind;
  readonly dedupWindowMillis: number;
  readonly #backend: SqlBackend;
  readonly #clock: Clock;
  readonly #discounts: DiscountFunction | undefined;
  #closed = false;

  constructor(backend: SqlBackend, options: LedgerOptions) {
    this.#backend = backend;
    this.kind = backend.kind;
    this.dedupWindowMillis = options.dedupWindowMillis ?? DEFAULT_DEDUP_WINDOW_MILLIS;
    this.#clock = options.clock ?? systemClock;
    this.#discounts = options.discounts;
  }

  async #run<T>(what: string, fn: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new LedgerUnavailableError('ledger is closed');
    try {
      return await fn();
    } catch (err) {
      throw classifyError(err, what);
    }
  }

  async commit(records: LedgerRecord[], options: CommitOptions = {}): Promise<CommitResult> {
    if (!Array.isArray(records)) throw new LedgerError('commit: records must be an array');
    if (!isPrevalidated(records)) for (let i = 0; i < records.length; i++) validateRecord(records[i], i);
    if (records.length === 0) return { committed: [], duplicates: [], rollups: [], outcomes: [] };
    const discounts = options.discounts ?? this.#discounts;

    // The first occurrence of a span in the batch is the candidate; later repeats are duplicates.
    const firstIndex = new Map<string, number>();
    records.forEach((r, i) => {
      const key = `${r.traceId}/${r.spanId}`;
      if (!firstIndex.has(key)) firstIndex.set(key, i);
    });
    // Inserting in key order keeps concurrent transactions on one PostgreSQL from deadlocking each other.
    const candidates = [...firstIndex.values()].sort((a, b) => {
      const x = records[a];
      const y = records[b];
      return x.traceId === y.traceId ? (x.spanId < y.spanId ? -1 : 1) : x.traceId < y.traceId ? -1 : 1;
    });
    const receivedAt = this.#clock.now().toISOString();

    const { inserted, nets, rollups } = await this.#run('commit', async () => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await this.#backend.transaction((tx) => this.#commitTx(tx, records, candidates, receivedAt, discounts));
        } catch (err) {
          if (attempt < 5 && isRetryableConflict(err)) continue;
          throw err;
        }
      }
    });
    await this.#run('flush', () => this.#backend.flush());

    const outcomes: CommitOutcome[] = records.map(() => 'duplicate');
    const committed: LedgerRecord[] = [];
    const duplicates: LedgerRecord[] = [];
    records.forEach((r, i) => {
      const key = `${r.traceId}/${r.spanId}`;
      if (firstIndex.get(key) === i && inserted.has(key)) {
        outcomes[i] = 'committed';
        const net = nets.get(key);
        committed.push(net && net.discount.gt(0) ? withNetCosts(r, net) : r);
      } else {
        duplicates.push(r);
      }
    });
    return { committed, duplicates, rollups, outcomes };
  }

  async #commitTx(
    tx: SqlRunner,
    records: LedgerRecord[],
    candidates: number[],
    receivedAt: string,
    discounts: DiscountFunction | undefined,
  ): Promise<{ inserted: Set<string>; nets: Map<string, NetCosts>; rollups: PeriodRollup[] }> {
    const cands = candidates.map((i) => records[i]);

    // With volume discounts: lock the providers' period spend rows first, so concurrent commits see each
    // other's spend in order and the discount tiers are applied to the true prior spend.
    const spend = new Map<string, Exact>();
    if (discounts) {
      const pairs = new Map<string, [string, string]>();
      for (const r of cands) if (r.priced) pairs.set(JSON.stringify([isoOf(r.periodStart), r.provider]), [isoOf(r.periodStart), r.provider]);
      const keys = [...pairs.values()].sort((a, b) => (a[0] === b[0] ? (a[1] < b[1] ? -1 : 1) : a[0] < b[0] ? -1 : 1));
      if (keys.length > 0) {
        const ps = keys.map((k) => k[0]);
        const pv = keys.map((k) => k[1]);
        await tx.query(
          `INSERT INTO period_provider_spend (period_start, provider) SELECT * FROM unnest($1::timestamptz[], $2::text[])
           ON CONFLICT (period_start, provider) DO NOTHING`,
          [ps, pv],
        );
        const rows = await tx.query(
          `SELECT ${ISO_SQL('s.period_start')} AS period_start, s.provider, s.gross_usd::text AS gross_usd
           FROM period_provider_spend s JOIN unnest($1::timestamptz[], $2::text[]) AS k(ps, pv)
             ON s.period_start = k.ps AND s.provider = k.pv
           ORDER BY s.period_start, s.provider FOR UPDATE OF s`,
          [ps, pv],
        );
        for (const row of rows) spend.set(JSON.stringify([row.period_start, row.provider]), new Exact(String(row.gross_usd)));
      }
    }

    const a = (f: (r: LedgerRecord) => unknown) => cands.map(f);
    const insertedRows = await tx.query<{ trace_id: string; span_id: string }>(
      `INSERT INTO calls (trace_id, span_id, period_start, end_time, received_at, user_id, plan, feature, provider,
         raw_model, model, operation, outcome, source, estimated, service_tier, priced, price_id,
         ${TOKEN_INSERT_COLS.join(', ')}, ${COST_COLS.join(', ')}, gross_cost_usd, discount_usd, cost_usd,
         fee_cost_usd, web_search_calls, web_search_preview_calls, search_grounding_calls)
       SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::timestamptz[],
         $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[],
         $15::boolean[], $16::text[], $17::boolean[], $18::text[],
         $19::bigint[], $20::bigint[], $21::bigint[], $22::bigint[], $23::bigint[], $24::bigint[],
         $25::numeric[], $26::numeric[], $27::numeric[], $28::numeric[], $29::numeric[], $30::numeric[], $31::numeric[], $32::numeric[],
         $33::numeric[], $34::bigint[], $35::bigint[], $36::bigint[])
       ON CONFLICT (trace_id, span_id) DO NOTHING
       RETURNING trace_id, span_id`,
      [
        a((r) => r.traceId),
        a((r) => r.spanId),
        a((r) => isoOf(r.periodStart)),
        a((r) => new Date(r.endTimeMillis).toISOString()),
        a(() => receivedAt),
        a((r) => r.userId),
        a((r) => r.plan),
        a((r) => r.feature ?? null),
        a((r) => r.provider),
        a((r) => r.rawModel),
        a((r) => r.model),
        a((r) => r.operation),
        a((r) => r.outcome),
        a((r) => r.source),
        a((r) => r.estimated),
        a((r) => r.serviceTier ?? null),
        a((r) => r.priced),
        a((r) => r.priceId ?? null),
        ...TOKEN_TYPES.map((t) => a((r) => r.usage[t])),
        a((r) => r.usage.cache_write_1h ?? 0),
        ...TOKEN_TYPES.map((t) => a((r) => r.costUsd[t])),
        a((r) => r.totalCostUsd),
        a(() => '0'),
        a((r) => r.totalCostUsd),
        a((r) => r.feeCostUsd ?? null),
        a((r) => r.toolCalls?.web_search ?? 0),
        a((r) => r.toolCalls?.web_search_preview ?? 0),
        a((r) => r.toolCalls?.search_grounding ?? 0),
      ],
    );
    const inserted = new Set(insertedRows.map((row) => `${row.trace_id}/${row.span_id}`));
    const fresh = cands.filter((r) => inserted.has(`${r.traceId}/${r.spanId}`));

    // Volume discounts on the new calls, in call order, against the provider's prior gross spend.
    const nets = new Map<string, NetCosts>();
    if (discounts) {
      const ordered = [...fresh].sort((x, y) => x.endTimeMillis - y.endTimeMillis || (x.traceId + x.spanId < y.traceId + y.spanId ? -1 : 1));
      const changed: { r: LedgerRecord; net: NetCosts }[] = [];
      for (const r of ordered) {
        if (!r.priced) continue;
        const key = JSON.stringify([isoOf(r.periodStart), r.provider]);
        const prior = spend.get(key) ?? new Exact(0);
        const gross = new Exact(r.totalCostUsd);
        const raw = discounts(r.provider, new Decimal(prior.toFixed()), new Decimal(gross.toFixed()));
        const discount = new Exact(raw.toFixed());
        if (!discount.isFinite() || discount.isNegative() || discount.gt(gross)) {
          throw new LedgerError(`volume discount for ${r.provider} must be between 0 and ${gross.toFixed()} USD, got ${raw.toFixed()}`);
        }
        spend.set(key, prior.plus(gross));
        if (discount.isZero()) continue;
        const net: NetCosts = netCostsOf(r, discount);
        nets.set(`${r.traceId}/${r.spanId}`, net);
        changed.push({ r, net });
      }
      if (changed.length > 0) {
        const c = (f: (x: { r: LedgerRecord; net: NetCosts }) => unknown) => changed.map(f);
        await tx.query(
          `UPDATE calls SET input_cost_usd = u.c0, cache_read_cost_usd = u.c1, cache_write_cost_usd = u.c2,
             output_cost_usd = u.c3, reasoning_cost_usd = u.c4, discount_usd = u.d, cost_usd = u.net, fee_cost_usd = u.fee
           FROM unnest($1::text[], $2::text[], $3::numeric[], $4::numeric[], $5::numeric[], $6::numeric[], $7::numeric[], $8::numeric[], $9::numeric[], $10::numeric[])
             AS u(t, s, c0, c1, c2, c3, c4, d, net, fee)
           WHERE calls.trace_id = u.t AND calls.span_id = u.s`,
          [
            c((x) => x.r.traceId),
            c((x) => x.r.spanId),
            ...TOKEN_TYPES.map((t) => c((x) => x.net.costUsd[t].toFixed())),
            c((x) => x.net.discount.toFixed()),
            c((x) => x.net.total.toFixed()),
            c((x) => x.net.fee?.toFixed() ?? null),
          ],
        );
      }
    }

    // Rollups: only the newly inserted calls add to them.
    const users = new Map<string, Delta>();
    const userModels = new Map<string, Delta>();
    const models = new Map<string, Delta>();
    const providers = new Map<string, Delta>();
    for (const r of fresh) {
      const ps = isoOf(r.periodStart);
      const net = nets.get(`${r.traceId}/${r.spanId}`);
      const gross = new Exact(r.totalCostUsd);
      const cost = net ? net.total : gross;
      const discount = net ? net.discount : new Exact(0);
      addDelta(users, [ps, r.userId, r.plan], r, cost, gross, discount);
      addDelta(userModels, [ps, r.userId, r.plan, r.provider, r.model], r, cost, gross, discount);
      addDelta(models, [ps, r.provider, r.model], r, cost, gross, discount);
      addDelta(providers, [ps, r.provider], r, cost, gross, discount);
    }
    if (fresh.length > 0) {
      const u = sortedDeltas(users);
      await tx.query(
        `INSERT INTO period_user_usage (period_start, user_id, plan, ${TOKEN_INSERT_COLS.join(', ')}, requests, cost_usd, updated_at)
         SELECT k.*, $12::timestamptz FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::bigint[], $5::bigint[],
           $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::numeric[]) AS k
         ON CONFLICT (period_start, user_id, plan) DO UPDATE SET
           ${addCols('period_user_usage', [...TOKEN_INSERT_COLS, 'requests', 'cost_usd'])}, updated_at = EXCLUDED.updated_at`,
        [col(u, 0), col(u, 1), col(u, 2), ...tokenArrays(u), u.map((d) => d.requests), u.map((d) => d.cost.toFixed()), receivedAt],
      );
      const um = sortedDeltas(userModels);
      await tx.query(
        `INSERT INTO period_user_model_usage (period_start, user_id, plan, provider, model, ${TOKEN_INSERT_COLS.join(', ')},
           requests, unpriced_requests, estimated_requests, cost_usd)
         SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[],
           $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[], $13::bigint[], $14::bigint[], $15::numeric[])
         ON CONFLICT (period_start, user_id, plan, provider, model) DO UPDATE SET
           ${addCols('period_user_model_usage', [...TOKEN_INSERT_COLS, 'requests', 'unpriced_requests', 'estimated_requests', 'cost_usd'])}`,
        [
          col(um, 0), col(um, 1), col(um, 2), col(um, 3), col(um, 4), ...tokenArrays(um),
          um.map((d) => d.requests), um.map((d) => d.unpriced), um.map((d) => d.estimated), um.map((d) => d.cost.toFixed()),
        ],
      );
      const m = sortedDeltas(models);
      await tx.query(
        `INSERT INTO period_model_usage (period_start, provider, model, ${TOKEN_INSERT_COLS.join(', ')},
           requests, unpriced_requests, estimated_requests, cost_usd)
         SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[],
           $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[], $13::numeric[])
         ON CONFLICT (period_start, provider, model) DO UPDATE SET
           ${addCols('period_model_usage', [...TOKEN_INSERT_COLS, 'requests', 'unpriced_requests', 'estimated_requests', 'cost_usd'])}`,
        [col(m, 0), col(m, 1), col(m, 2), ...tokenArrays(m), m.map((d) => d.requests), m.map((d) => d.unpriced), m.map((d) => d.estimated), m.map((d) => d.cost.toFixed())],
      );
      const p = sortedDeltas(providers);
      await tx.query(
        `INSERT INTO period_provider_spend (period_start, provider, gross_usd, discount_usd, net_usd, requests)
         SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::numeric[], $4::numeric[], $5::numeric[], $6::bigint[])
         ON CONFLICT (period_start, provider) DO UPDATE SET
           ${addCols('period_provider_spend', ['gross_usd', 'discount_usd', 'net_usd', 'requests'])}`,
        [col(p, 0), col(p, 1), p.map((d) => d.gross.toFixed()), p.map((d) => d.discount.toFixed()), p.map((d) => d.cost.toFixed()), p.map((d) => d.requests)],
      );
    }

    // The current totals of every touched (period, user, plan), including other replicas' commits.
    const touched = new Map<string, [string, string, string]>();
    for (const r of records) {
      const k: [string, string, string] = [isoOf(r.periodStart), r.userId, r.plan];
      touched.set(JSON.stringify(k), k);
    }
    const keys = [...touched.values()];
    const rows = await tx.query(
      `SELECT ${ISO_SQL('p.period_start')} AS period_start, p.user_id, p.plan, ${TOKENS_SELECT},
         p.requests::text AS requests, p.cost_usd::text AS cost_usd
       FROM period_user_usage p JOIN unnest($1::timestamptz[], $2::text[], $3::text[]) AS k(ps, u, pl)
         ON p.period_start = k.ps AND p.user_id = k.u AND p.plan = k.pl
       ORDER BY p.period_start, p.user_id, p.plan`,
      [keys.map((k) => k[0]), keys.map((k) => k[1]), keys.map((k) => k[2])],
    );
    return { inserted, nets, rollups: rows.map(rollupOf) };
  }

  async ping(): Promise<void> {
    await this.#run('ping', () => this.#backend.query('SELECT 1'));
  }

  async loadPeriodRollups(periodStart: Date | string, options: LoadRollupsOptions = {}): Promise<PeriodRollup[]> {
    const ps = isoOf(periodStart);
    if (!options.unpriced) {
      const rows = await this.#run('query', () =>
        this.#backend.query(
          `SELECT ${ISO_SQL('period_start')} AS period_start, user_id, plan, ${TOKENS_SELECT},
             requests::text AS requests, cost_usd::text AS cost_usd
           FROM period_user_usage WHERE period_start = $1::timestamptz ORDER BY user_id, plan`,
          [ps],
        ),
      );
      return rows.map(rollupOf);
    }
    const rows = await this.#run('query', () =>
      this.#backend.query(
        // The unpriced requests per user and plan come from the per-model rows (only the few with any).
        `SELECT ${ISO_SQL('u.period_start')} AS period_start, u.user_id, u.plan, ${TOKENS_SELECT},
           u.requests::text AS requests, u.cost_usd::text AS cost_usd, COALESCE(m.unpriced, 0)::text AS unpriced_requests
         FROM period_user_usage u
         LEFT JOIN (SELECT user_id, plan, sum(unpriced_requests) AS unpriced FROM period_user_model_usage
                    WHERE period_start = $1::timestamptz AND unpriced_requests > 0 GROUP BY user_id, plan) m
           ON m.user_id = u.user_id AND m.plan = u.plan
         WHERE u.period_start = $1::timestamptz ORDER BY u.user_id, u.plan`,
        [ps],
      ),
    );
    return rows.map((row) => {
      const unpriced = Number(row.unpriced_requests);
      return unpriced > 0 ? { ...rollupOf(row), unpricedRequests: unpriced } : rollupOf(row);
    });
  }

  /** Keyset pages on (user_id, plan) in byte order (COLLATE "C", whatever the database's collation). */
  async *scanPeriodRollups(periodStart: Date | string, options: ScanRollupsOptions = {}): AsyncGenerator<PeriodRollup> {
    const ps = isoOf(periodStart);
    const pageSize = options.pageSize ?? 2000;
    if (!Number.isSafeInteger(pageSize) || pageSize < 1) throw new LedgerError('scanPeriodRollups: pageSize must be a positive integer');
    let after: [string, string] | undefined;
    for (;;) {
      const params: unknown[] = [ps, pageSize];
      let where = 'u.period_start = $1::timestamptz';
      if (options.userId !== undefined) {
        params.push(options.userId);
        where += ` AND u.user_id = $${params.length}`;
      }
      if (after) {
        params.push(after[0], after[1]);
        where += ` AND (u.user_id COLLATE "C", u.plan COLLATE "C") > ($${params.length - 1} COLLATE "C", $${params.length} COLLATE "C")`;
      }
      const rows = await this.#run('query', () =>
        this.#backend.query(
          `SELECT ${ISO_SQL('u.period_start')} AS period_start, u.user_id, u.plan, ${TOKENS_SELECT},
             u.requests::text AS requests, u.cost_usd::text AS cost_usd,
             (SELECT COALESCE(sum(m.unpriced_requests), 0) FROM period_user_model_usage m
               WHERE m.period_start = u.period_start AND m.user_id = u.user_id AND m.plan = u.plan)::text AS unpriced_requests
           FROM period_user_usage u WHERE ${where}
           ORDER BY u.user_id COLLATE "C", u.plan COLLATE "C" LIMIT $2`,
          params,
        ),
      );
      for (const row of rows) {
        const unpriced = Number(row.unpriced_requests);
        yield unpriced > 0 ? { ...rollupOf(row), unpricedRequests: unpriced } : rollupOf(row);
      }
      if (rows.length < pageSize) return;
      const last = rows[rows.length - 1]!;
      after = [String(last.user_id), String(last.plan)];
    }
  }

  async userModelUsage(userId: string, periodStart: Date | string): Promise<ModelUsage[]> {
    const ps = isoOf(periodStart);
    const rows = await this.#run('query', () =>
      this.#backend.query(
        `SELECT user_id, plan, provider, model, ${TOKENS_SELECT}, requests::text AS requests,
           unpriced_requests::text AS unpriced_requests, estimated_requests::text AS estimated_requests, cost_usd::text AS cost_usd
         FROM period_user_model_usage WHERE period_start = $1::timestamptz AND user_id = $2
         ORDER BY plan, provider, model`,
        [ps, userId],
      ),
    );
    return rows.map(modelUsageOf);
  }

  async userPeriodUsage(userId: string, periodStart: Date | string): Promise<UserPeriodUsage> {
    const ps = isoOf(periodStart);
    const [plansRows, byModel] = await Promise.all([
      this.#run('query', () =>
        this.#backend.query(
          `SELECT ${ISO_SQL('period_start')} AS period_start, user_id, plan, ${TOKENS_SELECT},
             requests::text AS requests, cost_usd::text AS cost_usd
           FROM period_user_usage WHERE period_start = $1::timestamptz AND user_id = $2 ORDER BY plan`,
          [ps, userId],
        ),
      ),
      this.userModelUsage(userId, ps),
    ]);
    const plans = plansRows.map(rollupOf);
    const cacheWrite1hTokens = plansRows.reduce((s, r) => s + Number(r.cache_write_1h_tokens), 0);
    return { userId, periodStart: ps, ...totalsOf(plans), cacheWrite1hTokens, plans, byModel };
  }

  async periodModelUsage(periodStart: Date | string): Promise<ModelUsage[]> {
    const ps = isoOf(periodStart);
    const rows = await this.#run('query', () =>
      this.#backend.query(
        `SELECT provider, model, ${TOKENS_SELECT}, requests::text AS requests, unpriced_requests::text AS unpriced_requests,
           estimated_requests::text AS estimated_requests, cost_usd::text AS cost_usd
         FROM period_model_usage WHERE period_start = $1::timestamptz ORDER BY provider, model`,
        [ps],
      ),
    );
    return rows.map(modelUsageOf);
  }

  async providerPeriodSpend(periodStart: Date | string): Promise<ProviderSpend[]> {
    const ps = isoOf(periodStart);
    const rows = await this.#run('query', () =>
      this.#backend.query(
        `SELECT provider, gross_usd::text AS gross_usd, discount_usd::text AS discount_usd, net_usd::text AS net_usd,
           requests::text AS requests
         FROM period_provider_spend WHERE period_start = $1::timestamptz ORDER BY provider`,
        [ps],
      ),
    );
    return rows.map((r) => ({
      provider: String(r.provider),
      grossUsd: money(r.gross_usd),
      discountUsd: money(r.discount_usd),
      netUsd: money(r.net_usd),
      requests: Number(r.requests),
    }));
  }

  async periodSummary(periodStart: Date | string): Promise<PeriodSummary> {
    const ps = isoOf(periodStart);
    const [byModel, byProvider] = await Promise.all([this.periodModelUsage(ps), this.providerPeriodSpend(ps)]);
    return { periodStart: ps, ...totalsOf(byModel), byModel, byProvider };
  }

  async prune(options: PruneOptions): Promise<PruneResult> {
    const { olderThan, before } = pruneArguments(options, this.#clock, this.dedupWindowMillis);
    return this.#run('prune', () =>
      this.#backend.transaction(async (tx) => {
        const calls = await tx.query(`WITH d AS (DELETE FROM calls WHERE received_at < $1::timestamptz RETURNING 1) SELECT count(*)::text AS n FROM d`, [
          olderThan.toISOString(),
        ]);
        let rollupRowsDeleted = 0;
        if (before) {
          for (const table of ['period_user_usage', 'period_user_model_usage', 'period_model_usage', 'period_provider_spend']) {
            const r = await tx.query(`WITH d AS (DELETE FROM ${table} WHERE period_start < $1::timestamptz RETURNING 1) SELECT count(*)::text AS n FROM d`, [
              before.toISOString(),
            ]);
            rollupRowsDeleted += Number(r[0].n);
          }
        }
        return { callsDeleted: Number(calls[0].n), rollupRowsDeleted };
      }),
    );
  }

  /**
   * Applies a re-pricing in one transaction: each call's row updated only where its cost and price id are still
   * the old ones (else the whole re-pricing is refused: the ledger changed since it was computed), the audit
   * record and one row per call inserted, the rollups adjusted by the differences. Rows in key order (no deadlock
   * with commits); a serialisation failure or deadlock is retried.
   */
  async applyReprice(request: RepriceRequest): Promise<RepriceAudit> {
    validateRepriceRequest(request);
    const at = this.#clock.now();
    const audit = auditOf(request, newAuditId(at.getTime(), () => randomBytes(4).toString('hex')), at.toISOString());
    const adj = [...request.adjustments].sort((x, y) => (x.traceId === y.traceId ? (x.spanId < y.spanId ? -1 : 1) : x.traceId < y.traceId ? -1 : 1));
    return this.#run('reprice', async () => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await this.#backend.transaction(async (tx) => {
            await this.#repriceTx(tx, audit, adj);
            return audit;
          });
        } catch (err) {
          if (attempt < 5 && isRetryableConflict(err)) continue;
          throw err;
        }
      }
    });
  }

  async #repriceTx(tx: SqlRunner, audit: RepriceAudit, adj: CallAdjustment[]): Promise<void> {
    const a = (f: (x: CallAdjustment) => unknown) => adj.map(f);
    const updated = await tx.query(
      `UPDATE calls c SET priced = true, price_id = v.new_price_id,
         input_cost_usd = v.ci, cache_read_cost_usd = v.ccr, cache_write_cost_usd = v.ccw, output_cost_usd = v.co,
         reasoning_cost_usd = v.cr, fee_cost_usd = v.fee, gross_cost_usd = v.gross, discount_usd = v.discount,
         cost_usd = v.cost, repriced_by = $17
       FROM unnest($1::text[], $2::text[], $3::boolean[], $4::text[], $5::numeric[], $6::text[], $7::numeric[], $8::numeric[],
         $9::numeric[], $10::numeric[], $11::numeric[], $12::numeric[], $13::numeric[], $14::numeric[], $15::numeric[], $16::text[])
         AS v(t, s, old_priced, old_price_id, old_cost, new_price_id, ci, ccr, ccw, co, cr, fee, gross, discount, cost, ps)
       WHERE c.trace_id = v.t AND c.span_id = v.s AND c.period_start = v.ps::timestamptz AND c.priced = v.old_priced
         AND c.price_id IS NOT DISTINCT FROM v.old_price_id AND c.cost_usd = v.old_cost
       RETURNING c.trace_id`,
      [
        a((x) => x.traceId), a((x) => x.spanId), a((x) => x.old.priced), a((x) => x.old.priceId ?? null),
        a((x) => x.old.totalCostUsd), a((x) => x.new.priceId),
        ...TOKEN_TYPES.map((t) => a((x) => x.new.costUsd[t])),
        a((x) => x.new.feeCostUsd ?? null), a((x) => x.new.grossCostUsd), a((x) => x.new.discountUsd), a((x) => x.new.totalCostUsd),
        a((x) => isoOf(x.periodStart)), audit.id,
      ],
    );
    if (updated.length !== adj.length) {
      throw new LedgerError(
        `re-pricing: ${adj.length - updated.length} of its ${adj.length} calls are no longer in the ledger with the cost it was computed from (re-priced or pruned meanwhile); compute the re-pricing again`,
      );
    }
    await tx.query(
      `INSERT INTO reprice_audits (id, applied_at, applied_by, arguments, calls, newly_priced, delta_usd, periods, price_ids, users)
       VALUES ($1, $2::timestamptz, $3, $4::jsonb, $5, $6, $7::numeric, $8::timestamptz[], $9::jsonb, $10::jsonb)`,
      [audit.id, audit.at, audit.by, JSON.stringify(audit.arguments), audit.calls, audit.newlyPriced, audit.deltaUsd, audit.periods, JSON.stringify(audit.priceIds), JSON.stringify(audit.users)],
    );
    const delta = (x: CallAdjustment) => new Exact(x.new.totalCostUsd).minus(x.old.totalCostUsd);
    await tx.query(
      `INSERT INTO call_adjustments (audit_id, trace_id, span_id, period_start, user_id, plan, old_priced, old_price_id, new_price_id,
         old_cost_usd, new_cost_usd, delta_usd)
       SELECT $1, * FROM unnest($2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::text[], $7::boolean[], $8::text[], $9::text[],
         $10::numeric[], $11::numeric[], $12::numeric[])`,
      [
        audit.id, a((x) => x.traceId), a((x) => x.spanId), a((x) => isoOf(x.periodStart)), a((x) => x.userId), a((x) => x.plan),
        a((x) => x.old.priced), a((x) => x.old.priceId ?? null), a((x) => x.new.priceId), a((x) => x.old.totalCostUsd), a((x) => x.new.totalCostUsd),
        a((x) => delta(x).toFixed()),
      ],
    );
    // The rollups: the differences summed per row, applied in key order.
    type Agg = { key: string[]; net: Exact; gross: Exact; discount: Exact; unpriced: number };
    const groups = { users: new Map<string, Agg>(), userModels: new Map<string, Agg>(), models: new Map<string, Agg>(), providers: new Map<string, Agg>() };
    const add = (m: Map<string, Agg>, key: string[], x: CallAdjustment) => {
      const k = JSON.stringify(key);
      let g = m.get(k);
      if (!g) m.set(k, (g = { key, net: new Exact(0), gross: new Exact(0), discount: new Exact(0), unpriced: 0 }));
      g.net = g.net.plus(delta(x));
      g.gross = g.gross.plus(new Exact(x.new.grossCostUsd).minus(x.old.grossCostUsd));
      g.discount = g.discount.plus(new Exact(x.new.discountUsd).minus(x.old.discountUsd));
      if (!x.old.priced) g.unpriced++;
    };
    for (const x of adj) {
      const ps = isoOf(x.periodStart);
      add(groups.users, [ps, x.userId, x.plan], x);
      add(groups.userModels, [ps, x.userId, x.plan, x.provider, x.model], x);
      add(groups.models, [ps, x.provider, x.model], x);
      add(groups.providers, [ps, x.provider], x);
    }
    const sorted = (m: Map<string, Agg>) => [...m.values()].sort((x, y) => {
      for (let i = 0; i < x.key.length; i++) if (x.key[i] !== y.key[i]) return x.key[i]! < y.key[i]! ? -1 : 1;
      return 0;
    });
    const k = (rows: Agg[], i: number) => rows.map((r) => r.key[i]);
    const u = sorted(groups.users);
    await tx.query(
      `UPDATE period_user_usage t SET cost_usd = t.cost_usd + v.d FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::numeric[]) AS v(ps, u, pl, d)
       WHERE t.period_start = v.ps AND t.user_id = v.u AND t.plan = v.pl`,
      [k(u, 0), k(u, 1), k(u, 2), u.map((r) => r.net.toFixed())],
    );
    const um = sorted(groups.userModels);
    await tx.query(
      `UPDATE period_user_model_usage t SET cost_usd = t.cost_usd + v.d, unpriced_requests = t.unpriced_requests - v.n
       FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::numeric[], $7::bigint[]) AS v(ps, u, pl, pv, m, d, n)
       WHERE t.period_start = v.ps AND t.user_id = v.u AND t.plan = v.pl AND t.provider = v.pv AND t.model = v.m`,
      [k(um, 0), k(um, 1), k(um, 2), k(um, 3), k(um, 4), um.map((r) => r.net.toFixed()), um.map((r) => r.unpriced)],
    );
    const m = sorted(groups.models);
    await tx.query(
      `UPDATE period_model_usage t SET cost_usd = t.cost_usd + v.d, unpriced_requests = t.unpriced_requests - v.n
       FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::numeric[], $5::bigint[]) AS v(ps, pv, m, d, n)
       WHERE t.period_start = v.ps AND t.provider = v.pv AND t.model = v.m`,
      [k(m, 0), k(m, 1), k(m, 2), m.map((r) => r.net.toFixed()), m.map((r) => r.unpriced)],
    );
    const p = sorted(groups.providers);
    await tx.query(
      `UPDATE period_provider_spend t SET gross_usd = t.gross_usd + v.g, discount_usd = t.discount_usd + v.dc, net_usd = t.net_usd + v.d
       FROM unnest($1::timestamptz[], $2::text[], $3::numeric[], $4::numeric[], $5::numeric[]) AS v(ps, pv, g, dc, d)
       WHERE t.period_start = v.ps AND t.provider = v.pv`,
      [k(p, 0), k(p, 1), p.map((r) => r.gross.toFixed()), p.map((r) => r.discount.toFixed()), p.map((r) => r.net.toFixed())],
    );
  }

  async repriceAudits(periodStart?: Date | string): Promise<RepriceAudit[]> {
    const params: unknown[] = [];
    let where = '';
    if (periodStart !== undefined) {
      params.push(isoOf(periodStart));
      where = 'WHERE $1::timestamptz = ANY(periods)';
    }
    const rows = await this.#run('query', () =>
      this.#backend.query(
        `SELECT id, ${ISO_SQL('applied_at')} AS applied_at, applied_by, arguments, calls::text AS calls, newly_priced::text AS newly_priced,
           delta_usd::text AS delta_usd, ARRAY(SELECT ${ISO_SQL('p')} FROM unnest(periods) AS p) AS periods, price_ids, users
         FROM reprice_audits ${where} ORDER BY applied_at, id`,
        params,
      ),
    );
    return rows.map((r) => ({
      id: String(r.id),
      at: String(r.applied_at),
      by: String(r.applied_by),
      arguments: r.arguments as string[],
      calls: Number(r.calls),
      newlyPriced: Number(r.newly_priced),
      deltaUsd: String(r.delta_usd),
      periods: [...(r.periods as string[])].sort(),
      priceIds: r.price_ids as [string | null, string][],
      users: (r.users as RepriceAudit['users']).map((x) => ({ periodStart: x.periodStart, userId: x.userId, plan: x.plan, calls: x.calls, deltaUsd: x.deltaUsd })),
    }));
  }

  scanCalls(filter: CallFilter = {}): AsyncIterable<LedgerCall> {
    const f = normaliseFilter(filter);
    if (this.#closed) throw new LedgerUnavailableError('ledger is closed');
    return scanSqlCalls({ query: (sql, params) => this.#run('scan', () => this.#backend.query(sql, params)) }, f);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#backend.close();
  }
}

/** Applies the numbered migrations that are missing, under an advisory lock (safe when replicas start together). */
export async function migrate(backend: SqlBackend): Promise<number[]> {
  return backend.withSession(async (s) => {
    await s.query('SELECT pg_advisory_lock($1::bigint)', [MIGRATION_LOCK_KEY]);
    try {
      await s.exec(
        'CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())',
      );
      const applied = new Set((await s.query<{ version: number }>('SELECT version FROM schema_migrations')).map((r) => Number(r.version)));
      const newest = Math.max(0, ...MIGRATIONS.map((m) => m.version));
      const unknown = [...applied].filter((v) => v > newest);
      if (unknown.length > 0) {
        throw new LedgerError(`the ledger's schema (version ${Math.max(...unknown)}) is newer than this tokenmeter understands (${newest}); upgrade tokenmeter`);
      }
      const done: number[] = [];
      for (const m of MIGRATIONS) {
        if (applied.has(m.version)) continue;
        await s.exec('BEGIN');
        try {
          await s.exec(m.sql);
          await s.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
          await s.exec('COMMIT');
        } catch (err) {
          await s.exec('ROLLBACK').catch(() => {});
          throw err;
        }
        done.push(m.version);
      }
      return done;
    } finally {
      await s.query('SELECT pg_advisory_unlock($1::bigint)', [MIGRATION_LOCK_KEY]).catch(() => {});
    }
  });
}
