export type { LedgerRecord, PeriodRollup, CommitResult, CommitOutcome, LiveRollup, TouchedRollups } from './types.js';
export { openLedger, isPostgresStorage, migrate, validateRecord, DEFAULT_DEDUP_WINDOW_MILLIS } from './ledger.js';
export type {
  Ledger,
  LedgerOptions,
  LoadRollupsOptions,
  ScanRollupsOptions,
  CommitOptions,
  DiscountFunction,
  ModelUsage,
  UserPeriodUsage,
  PeriodSummary,
  ProviderSpend,
  PruneOptions,
  PruneResult,
  TokenCounts,
} from './ledger.js';
export { GroupCommitter } from './group-commit.js';
export { JournalLedger } from './journal-ledger.js';
export type { JournalLedgerOptions, JournalTrace } from './journal-ledger.js';
export type { GroupCommitterOptions, GroupCommitterStats } from './group-commit.js';
export { LedgerError, LedgerInUseError, LedgerUnavailableError, isLedgerUnavailable, isUnavailableDriverError } from './errors.js';
export { discountsFromTiers } from './discounts.js';
export { MIGRATIONS } from './migrations.js';
export type { Migration } from './migrations.js';
export type { BackendKind, PostgresBackendOptions } from './backend.js';
export { normaliseFilter, netOfDiscount } from './call-scan.js';
export type { CallFilter, LedgerCall } from './call-scan.js';
export { MAX_ADJUSTMENTS, validateRepriceRequest } from './adjustments.js';
export type { CallAdjustment, CallCosts, RepriceAudit, RepriceRequest, AuditUserLine } from './adjustments.js';
