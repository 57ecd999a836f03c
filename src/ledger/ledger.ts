/**
 * The durable ledger: one record per call, exactly once by (trace id, span id), and exact per-period rollups.
 * `openLedger` picks the store (the journal ledger in a directory, PGlite, PostgreSQL); the interface is in
 * ledger-interface.ts, the record check in record-validation.ts, the SQL ledger in sql-ledger.ts. This module
 * also re-exports what callers import from it.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { EmbeddedBackend, PostgresBackend, type SqlBackend } from './backend.js';
import { classifyError, LedgerError } from './errors.js';
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
 * Opens the ledger: a `postgres://` or `postgresql://` URL → PostgreSQL (shared by replicas); `pglite:<dir>` →
 * PGlite (embedded PostgreSQL, the embedded store of earlier versions) in that directory; any other string →
 * the journal ledger in that directory (created if missing). SQL ledgers run missing migrations before returning.
 */
export async function openLedger(storage: string, options: LedgerOptions = {}): Promise<Ledger> {
  if (typeof storage !== 'string' || storage.trim() === '') throw new LedgerError('storage must be a directory, pglite:<directory> or a postgres:// URL');
  const window = options.dedupWindowMillis ?? DEFAULT_DEDUP_WINDOW_MILLIS;
  if (!Number.isSafeInteger(window) || window <= 0) throw new LedgerError('dedupWindowMillis must be a positive integer');
  let backend: SqlBackend;
  if (isPostgresStorage(storage)) backend = new PostgresBackend(storage, options.postgres);
  else if (URL_RE.test(storage)) throw new LedgerError(`unsupported storage URL scheme in "${storage.split('://')[0]}://..." (use a directory, pglite:<directory> or postgres://)`);
  else if (PGLITE_PREFIX.test(storage)) {
    const dir = storage.replace(PGLITE_PREFIX, '');
    if (dir.trim() === '') throw new LedgerError('storage pglite:<directory> needs a directory');
    if (existsSync(join(dir, 'FORMAT'))) throw new LedgerError(`${resolve(dir)} holds a journal ledger, not PGlite: use "${dir}" (without pglite:) as storage`);
    backend = await EmbeddedBackend.open(dir, options.embedded);
  } else return JournalLedger.open(storage, options, options.journal);
  try {
    await migrate(backend);
  } catch (err) {
    await backend.close().catch(() => {});
    throw classifyError(err, 'migrate');
  }
  return new SqlLedger(backend, options);
}

