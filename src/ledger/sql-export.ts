/**
 * `tokenmeter ledger export DIR postgres://...`: moves an embedded journal ledger to PostgreSQL. Every call the
 * journal still holds becomes a row of `calls` (with its received time and any volume discount as committed),
 * and every period's totals are written as the journal holds them, so totals that counted calls since deleted
 * by retention stay whole. Then the PostgreSQL ledger's answers are compared with the journal's.
 */
import { TOKEN_TYPES } from '../contract/names.js';
import { PostgresBackend, type SqlBackend } from './backend.js';
import type { LedgerCall } from './call-scan.js';
import { classifyError, LedgerError } from './errors.js';
import { listJournalDirectory } from './journal-inspect.js';
import { JournalLedger } from './journal-ledger.js';
import { isPostgresStorage, migrate, openLedger, type Ledger, type ModelUsage } from './ledger.js';

export interface ExportOptions {
  /** Accept a target that already holds calls: an earlier export of this directory that was interrupted. */
  resume?: boolean;
  /** Calls per INSERT (default 1000). */
  batchCalls?: number;
  /** Told the running count of calls copied, after each batch. */
  onProgress?: (calls: number) => void;
}

export interface ExportReport {
  calls: number;
  /** Calls already in the target (a resumed export). */
  callsAlreadyThere: number;
  periods: number;
  /** Rows written to the rollup tables. */
  rollupRows: number;
  /** Differences between the journal's answers and PostgreSQL's after the export; empty when they agree. */
  differences: string[];
}

/** Checks a PostgreSQL URL before anything connects; a LedgerError saying what is wrong. */
export function checkPostgresUrl(url: string): void {
  if (typeof url !== 'string' || !isPostgresStorage(url)) {
    throw new LedgerError(`the target must be a postgres:// or postgresql:// URL (for example postgres://user:password@host:5432/tokenmeter), got "${redact(String(url))}"`);
  }
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new LedgerError(`"${redact(url)}" is not a valid URL: check the host, port and any %-encoding of the password`);
  }
  if (u.hostname === '' && !u.searchParams.has('host')) throw new LedgerError(`"${redact(url)}" names no host: write postgres://user:password@host:5432/database`);
}

/** The URL with any password replaced, for messages. */
export function redact(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/?#@]*):[^@/?#]*@/i, '$1:***@');
}

const TOKEN_COLS = ['input_tokens', 'cache_read_tokens', 'cache_write_tokens', 'output_tokens', 'reasoning_tokens', 'cache_write_1h_tokens'];
const COST_COLS = ['input_cost_usd', 'cache_read_cost_usd', 'cache_write_cost_usd', 'output_cost_usd', 'reasoning_cost_usd'];

export async function exportJournalToPostgres(dir: string, url: string, options: ExportOptions = {}): Promise<ExportReport> {
  listJournalDirectory(dir); // a clear message for anything that is not a journal ledger directory
  checkPostgresUrl(url);
  const journal = await JournalLedger.open(dir, {}, { snapshotOnClose: false });
  let backend: PostgresBackend | undefined;
  let target: Ledger | undefined;
  try {
    backend = new PostgresBackend(url, { maxConnections: 2, statementTimeoutMillis: 0 });
    try {
      await migrate(backend);
    } catch (err) {
      throw classifyError(err, 'migrate');
    }
    const [{ calls: already, rollups }] = await run(() =>
      backend!.query<{ calls: string; rollups: string }>('SELECT (SELECT count(*) FROM calls)::text AS calls, (SELECT count(*) FROM period_user_usage)::text AS rollups'),
    );
    if ((Number(already) > 0 || Number(rollups) > 0) && !options.resume) {
      throw new LedgerError(
        `the PostgreSQL ledger at ${redact(url)} already holds ${already} calls and ${rollups} period totals: export into a new, empty database ` +
          `(or pass --resume to finish an interrupted export of this same directory)`,
      );
    }
    const report: ExportReport = { calls: 0, callsAlreadyThere: 0, periods: 0, rollupRows: 0, differences: [] };
    const size = options.batchCalls ?? 1000;
    let batch: LedgerCall[] = [];
    const flush = async () => {
      const inserted = await insertCalls(backend!, batch);
      report.calls += batch.length;
      report.callsAlreadyThere += batch.length - inserted;
      batch = [];
      options.onProgress?.(report.calls);
    };
    for await (const c of journal.scanCalls()) {
      batch.push(c);
      if (batch.length >= size) await flush();
    }
    if (batch.length > 0) await flush();
    // The re-pricings' audit records (the calls above carry their costs and audit id; the per-call old amounts
    // stay in the journal's adjustment entries).
    for (const audit of await journal.repriceAudits()) {
      await run(() =>
        backend!.query(
          `INSERT INTO reprice_audits (id, applied_at, applied_by, arguments, calls, newly_priced, delta_usd, periods, price_ids, users)
           VALUES ($1, $2::timestamptz, $3, $4::jsonb, $5, $6, $7::numeric, $8::timestamptz[], $9::jsonb, $10::jsonb) ON CONFLICT (id) DO NOTHING`,
          [audit.id, audit.at, audit.by, JSON.stringify(audit.arguments), audit.calls, audit.newlyPriced, audit.deltaUsd, audit.periods, JSON.stringify(audit.priceIds), JSON.stringify(audit.users)],
        ),
      );
    }

    const periods = journal.periodStarts();
    report.periods = periods.length;
    for (const ps of periods) report.rollupRows += await writePeriodTotals(backend, journal, ps);
    await backend.close();
    backend = undefined;

    target = await openLedger(url, { postgres: { maxConnections: 2 } });
    report.differences = await compareLedgers(journal, target, periods);
    return report;
  } finally {
    await target?.close().catch(() => {});
    await backend?.close().catch(() => {});
    await journal.close();
  }
}

async function run<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw classifyError(err, 'export');
  }
}

/** Inserts calls as the journal committed them; a call already there (a resumed export) is left as it is. */
async function insertCalls(db: SqlBackend, calls: LedgerCall[]): Promise<number> {
  const a = (f: (c: LedgerCall) => unknown) => calls.map(f);
  const rows = await run(() =>
    db.query(
      `WITH i AS (INSERT INTO calls (trace_id, span_id, period_start, end_time, received_at, user_id, plan, feature, provider,
         raw_model, model, operation, outcome, source, estimated, service_tier, priced, price_id,
         ${TOKEN_COLS.join(', ')}, ${COST_COLS.join(', ')}, gross_cost_usd, discount_usd, cost_usd, repriced_by)
       SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::timestamptz[],
         $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[],
         $15::boolean[], $16::text[], $17::boolean[], $18::text[],
         $19::bigint[], $20::bigint[], $21::bigint[], $22::bigint[], $23::bigint[], $24::bigint[],
         $25::numeric[], $26::numeric[], $27::numeric[], $28::numeric[], $29::numeric[], $30::numeric[], $31::numeric[], $32::numeric[],
         $33::text[])
       ON CONFLICT (trace_id, span_id) DO NOTHING RETURNING 1) SELECT count(*)::text AS n FROM i`,
      [
        a((c) => c.traceId),
        a((c) => c.spanId),
        a((c) => c.periodStart),
        a((c) => new Date(c.endTimeMillis).toISOString()),
        a((c) => new Date(c.receivedAtMillis).toISOString()),
        a((c) => c.userId),
        a((c) => c.plan),
        a((c) => c.feature ?? null),
        a((c) => c.provider),
        a((c) => c.rawModel),
        a((c) => c.model),
        a((c) => c.operation),
        a((c) => c.outcome),
        a((c) => c.source),
        a((c) => c.estimated),
        a((c) => c.serviceTier ?? null),
        a((c) => c.priced),
        a((c) => c.priceId ?? null),
        ...TOKEN_TYPES.map((t) => a((c) => c.usage[t])),
        a((c) => c.usage.cache_write_1h ?? 0),
        ...TOKEN_TYPES.map((t) => a((c) => c.costUsd[t])),
        a((c) => c.grossCostUsd ?? c.totalCostUsd),
        a((c) => c.discountUsd ?? '0'),
        a((c) => c.totalCostUsd),
        a((c) => c.repricedBy ?? null),
      ],
    ),
  );
  return Number(rows[0].n);
}

/** Replaces one period's rows of the four rollup tables with the journal's totals, in one transaction. */
async function writePeriodTotals(db: SqlBackend, journal: JournalLedger, ps: string): Promise<number> {
  const rollups = await journal.loadPeriodRollups(ps);
  const userModels: ModelUsage[] = [];
  for (const userId of new Set(rollups.map((r) => r.userId))) userModels.push(...(await journal.userModelUsage(userId, ps)));
  const models = await journal.periodModelUsage(ps);
  const spend = await journal.providerPeriodSpend(ps);
  const oneHour = new Map<string, number>();
  for (const m of userModels) oneHour.set(`${m.userId}\u0000${m.plan}`, (oneHour.get(`${m.userId}\u0000${m.plan}`) ?? 0) + m.cacheWrite1hTokens);
  const tokens = <T extends { tokens: Record<string, number> }>(rows: T[], oneH: (r: T) => number) => [
    ...TOKEN_TYPES.map((t) => rows.map((r) => r.tokens[t])),
    rows.map(oneH),
  ];
  await run(() =>
    db.transaction(async (tx) => {
      for (const table of ['period_user_usage', 'period_user_model_usage', 'period_model_usage', 'period_provider_spend']) {
        await tx.query(`DELETE FROM ${table} WHERE period_start = $1::timestamptz`, [ps]);
      }
      await tx.query(
        `INSERT INTO period_user_usage (period_start, user_id, plan, ${TOKEN_COLS.join(', ')}, requests, cost_usd, updated_at)
         SELECT $1::timestamptz, u, p, t0, t1, t2, t3, t4, t5, r, c, now() FROM unnest($2::text[], $3::text[], $4::bigint[], $5::bigint[],
           $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::numeric[]) AS k(u, p, t0, t1, t2, t3, t4, t5, r, c)`,
        [ps, rollups.map((r) => r.userId), rollups.map((r) => r.plan), ...tokens(rollups, (r) => oneHour.get(`${r.userId}\u0000${r.plan}`) ?? 0),
          rollups.map((r) => r.requests), rollups.map((r) => r.costUsd)],
      );
      await tx.query(
        `INSERT INTO period_user_model_usage (period_start, user_id, plan, provider, model, ${TOKEN_COLS.join(', ')},
           requests, unpriced_requests, estimated_requests, cost_usd)
         SELECT $1::timestamptz, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::bigint[],
           $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[], $13::bigint[], $14::bigint[], $15::numeric[])`,
        [ps, userModels.map((m) => m.userId), userModels.map((m) => m.plan), userModels.map((m) => m.provider), userModels.map((m) => m.model),
          ...tokens(userModels, (m) => m.cacheWrite1hTokens), userModels.map((m) => m.requests), userModels.map((m) => m.unpricedRequests),
          userModels.map((m) => m.estimatedRequests), userModels.map((m) => m.costUsd)],
      );
      await tx.query(
        `INSERT INTO period_model_usage (period_start, provider, model, ${TOKEN_COLS.join(', ')}, requests, unpriced_requests, estimated_requests, cost_usd)
         SELECT $1::timestamptz, * FROM unnest($2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[],
           $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[], $13::numeric[])`,
        [ps, models.map((m) => m.provider), models.map((m) => m.model), ...tokens(models, (m) => m.cacheWrite1hTokens), models.map((m) => m.requests),
          models.map((m) => m.unpricedRequests), models.map((m) => m.estimatedRequests), models.map((m) => m.costUsd)],
      );
      await tx.query(
        `INSERT INTO period_provider_spend (period_start, provider, gross_usd, discount_usd, net_usd, requests)
         SELECT $1::timestamptz, * FROM unnest($2::text[], $3::numeric[], $4::numeric[], $5::numeric[], $6::bigint[])`,
        [ps, spend.map((s) => s.provider), spend.map((s) => s.grossUsd), spend.map((s) => s.discountUsd), spend.map((s) => s.netUsd), spend.map((s) => s.requests)],
      );
    }),
  );
  return rollups.length + userModels.length + models.length + spend.length;
}

/** What a user of either ledger would see per period: the user list with unpriced counts, summary, spend. */
export async function compareLedgers(a: Ledger, b: Ledger, periods: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const ps of periods) {
    const pairs: [string, (l: Ledger) => Promise<unknown>][] = [
      ['totals per user and plan', (l) => l.loadPeriodRollups(ps, { unpriced: true })],
      ['summary per model', (l) => l.periodSummary(ps)],
      ['spend per provider', (l) => l.providerPeriodSpend(ps)],
    ];
    for (const [what, get] of pairs) {
      const [x, y] = [JSON.stringify(await get(a)), JSON.stringify(await get(b))];
      if (x !== y) out.push(`${ps} ${what}: the journal says ${x.slice(0, 300)}, PostgreSQL ${y.slice(0, 300)}`);
    }
    // Each user's breakdown per plan, provider and model (the usage API's answer).
    for (const userId of new Set((await a.loadPeriodRollups(ps)).map((r) => r.userId))) {
      const [x, y] = [JSON.stringify(await a.userPeriodUsage(userId, ps)), JSON.stringify(await b.userPeriodUsage(userId, ps))];
      if (x !== y) out.push(`${ps} user ${JSON.stringify(userId)}: the journal says ${x.slice(0, 300)}, PostgreSQL ${y.slice(0, 300)}`);
      if (out.length >= 20) return out;
    }
  }
  return out;
}
