/**
 * Per-call scans: every committed call (one record per call, as `commit` returned it) matching a filter, streamed.
 * The journal is read one segment at a time (never every segment at once); the SQL ledger is read in keyset pages
 * of the primary key. Reports, repricing, `tokenmeter ledger dump` and `export` build on this.
 */
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { TOKEN_TYPES, type TokenType } from '../contract/names.js';
import { ExactDecimal } from '../money/index.js';
import { LedgerError } from './errors.js';
import { netCostsOf, withNetCosts } from './ledger-interface.js';
import { decodeEntry } from './journal-entry.js';
import { checkSegmentHeader, readEntries, segmentName } from './journal-format.js';
import type { LedgerRecord } from './types.js';
import { adjustedRecord, callKey } from './adjustments.js';
import type { AdjustedCall } from './journal-state.js';

/** Which calls a scan yields; every field is optional and they combine with AND. */
export interface CallFilter {
  /** Only calls of this billing period (its start instant). */
  periodStart?: Date | string;
  /** Only calls whose span ended at or after this instant. */
  from?: Date | string;
  /** Only calls whose span ended before this instant. */
  to?: Date | string;
  /** Only this user's calls. */
  userId?: string;
}

/**
 * One committed call as the ledger holds it: the record as `commit` returned it in `committed` (costs net of any
 * volume discount, with `discountUsd` and `grossCostUsd` set when one applied) and when the ledger received it.
 */
export interface LedgerCall extends LedgerRecord {
  receivedAtMillis: number;
  /** The audit id of the re-pricing whose costs the call now carries (absent: the costs it was committed with). */
  repricedBy?: string;
}

/** The filter checked and normalised once (ISO period start, millisecond bounds). */
export interface NormalisedFilter {
  periodStart: string | undefined;
  fromMillis: number | undefined;
  toMillis: number | undefined;
  userId: string | undefined;
}

function instant(v: Date | string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const ms = typeof v === 'string' ? Date.parse(v) : v instanceof Date ? v.getTime() : NaN;
  if (!Number.isFinite(ms)) throw new LedgerError(`scanCalls: ${name} must be a valid Date or ISO instant, got ${String(v)}`);
  return ms;
}

export function normaliseFilter(filter: CallFilter = {}): NormalisedFilter {
  if (typeof filter !== 'object' || filter === null) throw new LedgerError('scanCalls: the filter must be an object');
  const ps = instant(filter.periodStart, 'periodStart');
  if (filter.userId !== undefined && typeof filter.userId !== 'string') throw new LedgerError('scanCalls: userId must be a string');
  return {
    periodStart: ps === undefined ? undefined : new Date(ps).toISOString(),
    fromMillis: instant(filter.from, 'from'),
    toMillis: instant(filter.to, 'to'),
    userId: filter.userId,
  };
}

/** The committed form of a journal record: per-type costs net of `discount` (the same split as at commit). */
export function netOfDiscount(r: LedgerRecord, discount: string | undefined): LedgerRecord {
  if (discount === undefined) return r;
  return withNetCosts(r, netCostsOf(r, new ExactDecimal(discount)));
}

/** A segment to scan: its sequence number and, for a live ledger, how many bytes of it are committed. */
export interface SegmentToScan {
  seq: number;
  /** Committed bytes (a live ledger's current segment grows while it is read); undefined = the whole file. */
  bytes?: number;
  /**
   * The newest segment of a directory read without its owner (`tokenmeter ledger dump` while the exporter
   * runs): an unfinished entry at its end is a write in progress, not corruption.
   */
  mayHaveTornTail?: boolean;
}

const noIntern = (s: string): string => s;

/**
 * Every call of the given segments (oldest first) that matches the filter, in commit order. A segment that is
 * gone when its turn comes was pruned meanwhile: its calls are no longer in the ledger, so it is skipped.
 */
export async function* scanJournalSegments(
  dir: string,
  segments: readonly SegmentToScan[],
  filter: NormalisedFilter,
  adjusted?: ReadonlyMap<string, AdjustedCall>,
): AsyncGenerator<LedgerCall> {
  for (const seg of segments) {
    const file = join(dir, segmentName(seg.seq));
    let buf: Buffer;
    try {
      buf = await readPrefix(file, seg.bytes);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw new LedgerError(`cannot read ${file}: ${(err as Error).message}`, { cause: err });
    }
    // Checksums first (cheap: the payloads are views of `buf`), then one entry's calls decoded at a time.
    const entries: [Buffer, number][] = [];
    readEntries(buf, file, seg.mayHaveTornTail === true, (payload, offset) => entries.push([payload, offset]));
    for (const [payload, offset] of entries) {
      if (checkSegmentHeader(payload, file, offset)) continue;
      let entry;
      try {
        entry = decodeEntry(payload, noIntern);
      } catch (err) {
        throw new LedgerError(`the journal ledger file ${file} is corrupt at byte offset ${offset}: ${(err as Error).message}; restore the directory from a backup`);
      }
      if (entry.kind !== 'commit') continue;
      const receivedAtMillis = entry.receivedAtMillis;
      const calls: LedgerCall[] = [];
      entry.forEach((c) => {
        if (filter.periodStart !== undefined && c.periodStart !== filter.periodStart) return;
        if (filter.userId !== undefined && c.userId !== filter.userId) return;
        const rec = c.record();
        if (filter.fromMillis !== undefined && rec.endTimeMillis < filter.fromMillis) return;
        if (filter.toMillis !== undefined && rec.endTimeMillis >= filter.toMillis) return;
        const call: LedgerCall = { ...netOfDiscount(rec, c.discount), receivedAtMillis };
        const adj = adjusted !== undefined && adjusted.size > 0 ? adjusted.get(callKey(rec.traceId, rec.spanId)) : undefined;
        calls.push(adj === undefined ? call : { ...adjustedRecord(call, adj.costs), repricedBy: adj.auditId });
      });
      yield* calls;
    }
  }
}

async function readPrefix(file: string, bytes: number | undefined): Promise<Buffer> {
  const fh = await open(file, 'r');
  try {
    const size = bytes ?? (await fh.stat()).size;
    const buf = Buffer.allocUnsafe(size);
    let done = 0;
    while (done < size) {
      const { bytesRead } = await fh.read(buf, done, size - done, done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    if (done < size) throw new LedgerError(`${file} is shorter (${done} bytes) than the ledger recorded (${size}); restore the directory from a backup`);
    return buf;
  } finally {
    await fh.close();
  }
}

/** Rows per page of a SQL scan: bounded memory, few round trips. */
export const SQL_SCAN_PAGE_ROWS = 2000;

interface SqlQuery {
  query<R extends Record<string, unknown> = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<R[]>;
}

const COST_COLS = ['input_cost_usd', 'cache_read_cost_usd', 'cache_write_cost_usd', 'output_cost_usd', 'reasoning_cost_usd'] as const;
const TOKEN_COLS = ['input_tokens', 'cache_read_tokens', 'cache_write_tokens', 'output_tokens', 'reasoning_tokens'] as const;
const ms = (col: string) => `(extract(epoch from ${col}) * 1000)::bigint::text AS ${col}`;

/** Every call of the `calls` table matching the filter, in (trace id, span id) order, read in keyset pages. */
export async function* scanSqlCalls(db: SqlQuery, filter: NormalisedFilter, pageRows = SQL_SCAN_PAGE_ROWS): AsyncGenerator<LedgerCall> {
  const where: string[] = [];
  const params: unknown[] = [];
  const add = (sql: string, v: unknown) => {
    params.push(v);
    where.push(sql.replace('?', `$${params.length}`));
  };
  if (filter.periodStart !== undefined) add('period_start = ?::timestamptz', filter.periodStart);
  if (filter.userId !== undefined) add('user_id = ?', filter.userId);
  if (filter.fromMillis !== undefined) add('end_time >= ?::timestamptz', new Date(filter.fromMillis).toISOString());
  if (filter.toMillis !== undefined) add('end_time < ?::timestamptz', new Date(filter.toMillis).toISOString());
  const cols = [
    'trace_id', 'span_id', `to_char(period_start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS period_start`,
    ms('end_time'), ms('received_at'), 'user_id', 'plan', 'feature', 'provider', 'raw_model', 'model', 'operation', 'outcome',
    'source', 'estimated', 'service_tier', 'priced', 'price_id', ...TOKEN_COLS.map((c) => `${c}::text AS ${c}`),
    'cache_write_1h_tokens::text AS cache_write_1h_tokens', ...COST_COLS.map((c) => `${c}::text AS ${c}`),
    'gross_cost_usd::text AS gross_cost_usd', 'discount_usd::text AS discount_usd', 'cost_usd::text AS cost_usd',
    'fee_cost_usd::text AS fee_cost_usd', 'web_search_calls::text AS web_search_calls',
    'web_search_preview_calls::text AS web_search_preview_calls', 'search_grounding_calls::text AS search_grounding_calls',
    'repriced_by',
  ].join(', ');
  let after: [string, string] | undefined;
  for (;;) {
    const p = [...params];
    const w = [...where];
    if (after) {
      p.push(after[0], after[1]);
      w.push(`(trace_id, span_id) > ($${p.length - 1}, $${p.length})`);
    }
    p.push(pageRows);
    const rows = await db.query(
      `SELECT ${cols} FROM calls ${w.length > 0 ? `WHERE ${w.join(' AND ')}` : ''} ORDER BY trace_id, span_id LIMIT $${p.length}`,
      p,
    );
    for (const row of rows) yield callOfRow(row);
    if (rows.length < pageRows) return;
    const last = rows[rows.length - 1];
    after = [String(last.trace_id), String(last.span_id)];
  }
}

/** numeric keeps the scale it was given: the text is the string that was committed. */
const money = (v: unknown): string => String(v);

function callOfRow(row: Record<string, unknown>): LedgerCall {
  const n = (c: string) => Number(row[c]);
  const costUsd = {} as Record<TokenType, string>;
  TOKEN_TYPES.forEach((t, k) => (costUsd[t] = money(row[COST_COLS[k]])));
  const rec: LedgerCall = {
    traceId: String(row.trace_id),
    spanId: String(row.span_id),
    endTimeMillis: n('end_time'),
    provider: String(row.provider),
    rawModel: String(row.raw_model),
    operation: String(row.operation),
    usage: {
      input: n('input_tokens'),
      cache_read: n('cache_read_tokens'),
      cache_write: n('cache_write_tokens'),
      output: n('output_tokens'),
      reasoning: n('reasoning_tokens'),
      cache_write_1h: n('cache_write_1h_tokens'),
    },
    estimated: row.estimated === true,
    userId: String(row.user_id),
    outcome: row.outcome === 'error' ? 'error' : 'success',
    source: String(row.source) as LedgerRecord['source'],
    plan: String(row.plan),
    model: String(row.model),
    periodStart: String(row.period_start),
    priced: row.priced === true,
    costUsd,
    totalCostUsd: money(row.cost_usd),
    receivedAtMillis: n('received_at'),
  };
  if (row.feature !== null && row.feature !== undefined) rec.feature = String(row.feature);
  if (row.service_tier !== null && row.service_tier !== undefined) rec.serviceTier = String(row.service_tier);
  if (row.price_id !== null && row.price_id !== undefined) rec.priceId = String(row.price_id);
  if (row.fee_cost_usd !== null && row.fee_cost_usd !== undefined) rec.feeCostUsd = money(row.fee_cost_usd);
  const web = n('web_search_calls');
  const preview = n('web_search_preview_calls');
  const grounding = n('search_grounding_calls');
  if (web || preview || grounding) {
    rec.toolCalls = {};
    if (web) rec.toolCalls.web_search = web;
    if (preview) rec.toolCalls.web_search_preview = preview;
    if (grounding) rec.toolCalls.search_grounding = grounding;
  }
  if (row.repriced_by !== null && row.repriced_by !== undefined) rec.repricedBy = String(row.repriced_by);
  const discount = money(row.discount_usd);
  if (!new ExactDecimal(discount).isZero()) {
    rec.discountUsd = discount;
    rec.grossCostUsd = money(row.gross_cost_usd);
  }
  return rec;
}
