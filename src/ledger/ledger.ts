/**
 * The durable ledger: one record per call, exactly once by (trace id, span id), and exact per-period rollups.
 * `openLedger` picks the store (the journal ledger in a directory, or PostgreSQL); the interface is in
 * ledger-interface.ts, the record check in record-validation.ts, the SQL ledger in sql-ledger.ts. This module
 * also re-exports what callers import from it.
 */
import { resolve } from 'node:path';
import { PostgresBackend } from './backend.js';
import { classifyError, LedgerError } from './errors.js';
import { pgliteRetiredMessage } from './journal-inspect.js';
import { JournalLedger } from './journal-ledger.js';
import { DEFAULT_DEDUP_WINDOW_MILLIS, type Ledger, type LedgerOptions } from './ledger-interface.js';
import { migrate, SqlLedger } from './sql-ledger.js';

export { DEFAULT_DEDUP_WINDOW_MILLIS, pruneArguments, withNetCosts } from './ledger-interface.js';
export type {
  CommitOptions,
  DiscountFunction,
  JournalLedgerOptions,
  Ledger,
  LedgerOptions,
  LoadRollupsOptions,
  ScanRollupsOptions,
  ModelUsage,
  NetCosts,
  PeriodSummary,
  ProviderSpend,
  PruneOptions,
  PruneResult,
  TokenCounts,
  UserPeriodUsage,
} from './ledger-interface.js';
export { isPrevalidated, markPrevalidated, validateRecord } from './record-validation.js';
export type { RecordCheck } from './record-validation.js';
export { migrate } from './sql-ledger.js';

const URL_RE = /^[a-z][a-z0-9+.-]*:\/\//i;
const PGLITE_PREFIX = /^pglite:/i;

/** True when `storage` names a PostgreSQL ledger (shared by replicas) rather than an embedded directory. */
export function isPostgresStorage(storage: string): boolean {
  return /^postgres(ql)?:\/\//i.test(storage);
}

/**
 * Opens the ledger: a `postgres://` or `postgresql://` URL → PostgreSQL (shared by replicas), after running the
 * missing migrations; any other string → the journal ledger in that directory (created if missing).
 * `pglite:<dir>` (the embedded store of tokenmeter 0.1.0) is refused with a message saying what to do.
 */
export async function openLedger(storage: string, options: LedgerOptions = {}): Promise<Ledger> {
  if (typeof storage !== 'string' || storage.trim() === '') throw new LedgerError('storage must be a directory or a postgres:// URL');
  const window = options.dedupWindowMillis ?? DEFAULT_DEDUP_WINDOW_MILLIS;
  if (!Number.isSafeInteger(window) || window <= 0) throw new LedgerError('dedupWindowMillis must be a positive integer');
  if (PGLITE_PREFIX.test(storage)) throw new LedgerError(pgliteRetiredMessage(resolve(storage.replace(PGLITE_PREFIX, ''))));
  if (!isPostgresStorage(storage)) {
    if (URL_RE.test(storage)) throw new LedgerError(`unsupported storage URL scheme in "${storage.split('://')[0]}://..." (use a directory or postgres://)`);
    return JournalLedger.open(storage, options, options.journal);
  }
  const backend = new PostgresBackend(storage, options.postgres);
  try {
    await migrate(backend);
  } catch (err) {
    await backend.close().catch(() => {});
    throw classifyError(err, 'migrate');
  }
  return new SqlLedger(backend, options);
}

