/**
 * The ledger's interface and the types both ledgers share (the journal ledger and SqlLedger), kept apart from
 * either implementation and from the factory (ledger.ts) so neither imports the other.
 */
import { Decimal } from 'decimal.js';
import { TOKEN_TYPES, type TokenType } from '../contract/names.js';
import { allocateDiscount, ExactDecimal } from '../pricing/index.js';
import type { Clock } from '../plans/clock.js';
import type { BackendKind, PostgresBackendOptions } from './backend.js';
import { LedgerError } from './errors.js';
import type { SnapshotFileSystem } from './journal-format.js';
import type { CommitResult, LedgerRecord, PeriodRollup } from './types.js';
import type { CallFilter, LedgerCall } from './call-scan.js';
import type { RepriceAudit, RepriceRequest } from './adjustments.js';

type Exact = ExactDecimal;

export const DEFAULT_DEDUP_WINDOW_MILLIS = 7 * 24 * 60 * 60 * 1000;

/**
 * A volume discount: the discount in USD on a call costing `grossUsd` from `provider` when the provider's gross
 * spend earlier in the period is `priorSpendUsd`. Must return 0 <= discount <= grossUsd.
 */
export type DiscountFunction = (provider: string, priorSpendUsd: Decimal, grossUsd: Decimal) => Decimal;

export interface CommitOptions {
  /** Overrides the ledger's configured discount function for this commit. */
  discounts?: DiscountFunction;
  /**
   * Ask for `CommitResult.touched` (the changed rows, live, to read in the turn the commit resolved) instead of
   * building the sorted `rollups` up front; they are still built if read. The exporter's metrics path sets it.
   */
  liveTotals?: boolean;
}

export interface LedgerOptions {
  /**
   * How long a (trace id, span id) is remembered at least (default 7 days). The calls table is the dedup
   * record, so `prune` refuses to delete calls received within this window.
   */
  dedupWindowMillis?: number;
  /** Source of the received time and of "now" for prune's window check. */
  clock?: Clock;
  /** Volume discounts applied on every commit (see `DiscountFunction`). */
  discounts?: DiscountFunction;
  /** The journal ledger (a directory as storage). */
  journal?: JournalLedgerOptions;
  postgres?: PostgresBackendOptions;
}

export interface JournalLedgerOptions {
  /** Start a new segment file when the current one reaches this size (default 64 MiB). */
  segmentMaxBytes?: number;
  /** Write a snapshot after this many journal bytes since the last one (default 64 MiB): bounds replay at open. */
  snapshotEveryBytes?: number;
  /**
   * While a snapshot is written, fsync it after every this many bytes too (default Infinity: only once, at the end).
   * Keeps the snapshot's dirty pages few, so that a commit's fdatasync does not wait behind a large flush of them
   * (each step is a file-system journal commit of its own, though: see BENCHMARKS.md 4b).
   */
  snapshotSyncEveryBytes?: number;
  /**
   * The most of the event loop a snapshot being written takes while commits are waiting or in progress (default 1:
   * no limit): its time producing each part is followed by idle time in proportion. With nothing to commit it runs
   * at full speed (also while a checkpoint or prune, which hold the commits back, waits for it).
   */
  snapshotLoopShare?: number;
  /** Write a snapshot on close (default true: the next open reads it instead of replaying). Tests turn it off. */
  snapshotOnClose?: boolean;
  /**
   * Where the ledger says what an operator must know (a format upgrade, a corrupt snapshot skipped at open).
   * Default: stderr.
   */
  log?: (message: string) => void;
  /** The file system snapshots are written with (tests pass a fake that fills up; default node:fs/promises). */
  fileSystem?: SnapshotFileSystem;
  /** Timings of each commit group and snapshot file operation, for benchmarks (see JournalTrace). */
  trace?: JournalTrace;
}

/**
 * Where a benchmark hears how long each step of a commit group and each snapshot file operation took
 * (`performance.now()` milliseconds), to tell what makes a slow request slow. Called synchronously; keep it cheap.
 */
export interface JournalTrace {
  /**
   * One commit group: `start` (its callers taken from the queue), `appendStart` (decided and encoded),
   * `written` (in the file), `synced` (fdatasync returned), `end` (every caller applied and resolved).
   * `written`/`synced` equal `appendStart` for a group of duplicates only (nothing written).
   */
  group?(t: { start: number; appendStart: number; written: number; synced: number; end: number; callers: number; records: number; fresh: number }): void;
  /**
   * One snapshot, from its start (the state taken) to the end (written, synced, verified, renamed, or failed);
   * `busyMillis`: the event-loop time spent producing its parts; `pausedMillis`: the idle time it added to leave the
   * loop to commits (snapshotLoopShare).
   */
  snapshot?(start: number, end: number, busyMillis: number, pausedMillis: number): void;
  /** One operation on a snapshot file (write of `bytes`, the fsync, or a read-back of `bytes`). */
  snapshotIo?(kind: 'write' | 'sync' | 'read', start: number, end: number, bytes: number): void;
}

export type TokenCounts = Record<TokenType, number>;

/** Usage per provider and model (for one user, or for everyone). */
export interface ModelUsage {
  provider: string;
  model: string;
  /** Set on per-user rows. */
  userId?: string;
  plan?: string;
  tokens: TokenCounts;
  /** The 1-hour-TTL part of `tokens.cache_write`. */
  cacheWrite1hTokens: number;
  totalTokens: number;
  requests: number;
  unpricedRequests: number;
  estimatedRequests: number;
  /** Exact decimal string, net of volume discounts. */
  costUsd: string;
}

export interface UserPeriodUsage {
  userId: string;
  periodStart: string;
  tokens: TokenCounts;
  cacheWrite1hTokens: number;
  totalTokens: number;
  requests: number;
  costUsd: string;
  /** One rollup per plan the user was billed under in the period (usually one). */
  plans: PeriodRollup[];
  byModel: ModelUsage[];
}

export interface ProviderSpend {
  provider: string;
  grossUsd: string;
  discountUsd: string;
  netUsd: string;
  requests: number;
}

export interface PeriodSummary {
  periodStart: string;
  tokens: TokenCounts;
  totalTokens: number;
  requests: number;
  costUsd: string;
  byModel: ModelUsage[];
  byProvider: ProviderSpend[];
}

export interface PruneOptions {
  /** Delete calls received before this instant. Must be at least the dedup window in the past. */
  olderThan: Date;
  /** Also delete rollups of periods starting before this instant (default: keep every period's totals). */
  rollupsBefore?: Date;
}

export interface PruneResult {
  callsDeleted: number;
  rollupRowsDeleted: number;
}

export interface LoadRollupsOptions {
  /** Also count each user's unpriced requests (`unpricedRequests`): the usage API's list asks, the periodic gauge
   * refresh does not (on a SQL ledger it costs a scan of the period's per-model rows). */
  unpriced?: boolean;
}

export interface Ledger {
  readonly kind: BackendKind;
  readonly dedupWindowMillis: number;
  /** Commits atomically, exactly once per (trace id, span id); see CommitResult. */
  commit(records: LedgerRecord[], options?: CommitOptions): Promise<CommitResult>;
  /** Resolves when the ledger answers a query; rejects with LedgerUnavailableError otherwise. */
  ping(): Promise<void>;
  loadPeriodRollups(periodStart: Date | string, options?: LoadRollupsOptions): Promise<PeriodRollup[]>;
  userPeriodUsage(userId: string, periodStart: Date | string): Promise<UserPeriodUsage>;
  /** One user's usage in the period per plan, provider and model. */
  userModelUsage(userId: string, periodStart: Date | string): Promise<ModelUsage[]>;
  /** Everyone's usage in the period per provider and model. */
  periodModelUsage(periodStart: Date | string): Promise<ModelUsage[]>;
  periodSummary(periodStart: Date | string): Promise<PeriodSummary>;
  providerPeriodSpend(periodStart: Date | string): Promise<ProviderSpend[]>;
  prune(options: PruneOptions): Promise<PruneResult>;
  /**
   * Every committed call matching `filter`, streamed (bounded memory whatever the ledger's size): the records as
   * `commit` returned them in `committed`, with their received time. Calls deleted by `prune` are not in it.
   * Order: commit order on the journal ledger, (trace id, span id) on a SQL ledger.
   */
  scanCalls(filter?: CallFilter): AsyncIterable<LedgerCall>;
  /**
   * The period's (user, plan) rollups with their unpriced requests, one at a time in (user, plan) order (byte order
   * of the ids), never all built at once: billing reports of 100k users. `userId`: only that user's.
   */
  scanPeriodRollups(periodStart: Date | string, options?: ScanRollupsOptions): AsyncIterable<PeriodRollup>;
  /**
   * Applies a re-pricing (issue 18) in one transaction with its audit record: every call's costs replaced, the
   * totals adjusted by the differences. Refused (LedgerError, nothing changed) when a call's cost in force is no
   * longer the `old` the request names.
   */
  applyReprice(request: RepriceRequest): Promise<RepriceAudit>;
  /** The audit records of applied re-pricings that touched the period (every one without), oldest first. */
  repriceAudits(periodStart?: Date | string): Promise<RepriceAudit[]>;
  close(): Promise<void>;
}

export interface ScanRollupsOptions {
  userId?: string;
  /** Rows per query on a SQL ledger (default 2000). */
  pageSize?: number;
}

export interface NetCosts {
  costUsd: Record<TokenType, Exact>;
  /** The per-call fee part, net, when the record has one. */
  fee?: Exact;
  total: Exact;
  gross: Exact;
  discount: Exact;
}

/**
 * A priced record's costs net of `discount` (gross = its totalCostUsd): the discount spread over the five token
 * costs and the fee part in proportion (allocateDiscount), so the net parts still add up to the net total. The one
 * split used at commit, on reload and when scanning calls.
 */
export function netCostsOf(r: LedgerRecord, discount: Exact): NetCosts {
  const parts = {} as Record<TokenType | 'fee', Decimal>;
  for (const t of TOKEN_TYPES) parts[t] = new Decimal(r.costUsd[t]);
  if (r.feeCostUsd !== undefined) parts.fee = new Decimal(r.feeCostUsd);
  const shares = allocateDiscount(parts, new Decimal(discount.toFixed()));
  const costUsd = {} as Record<TokenType, Exact>;
  for (const t of TOKEN_TYPES) costUsd[t] = new ExactDecimal(r.costUsd[t]).minus(shares[t].toFixed());
  const gross = new ExactDecimal(r.totalCostUsd);
  const net: NetCosts = { costUsd, total: gross.minus(discount), gross, discount };
  if (r.feeCostUsd !== undefined) net.fee = new ExactDecimal(r.feeCostUsd).minus(shares.fee.toFixed());
  return net;
}

/** Checks prune's arguments (shared by both ledgers): `olderThan` never inside the dedup window. */
export function pruneArguments(options: PruneOptions, clock: Clock, dedupWindowMillis: number): { olderThan: Date; before: Date | undefined } {
  const olderThan = options.olderThan;
  if (!(olderThan instanceof Date) || !Number.isFinite(olderThan.getTime())) throw new LedgerError('prune: olderThan must be a valid Date');
  const latestAllowed = clock.now().getTime() - dedupWindowMillis;
  if (olderThan.getTime() > latestAllowed) {
    throw new LedgerError(
      `prune: calls are the dedup record, so calls received within the dedup window (${dedupWindowMillis} ms) are kept; ` +
        `olderThan must be at or before ${new Date(latestAllowed).toISOString()}`,
    );
  }
  const before = options.rollupsBefore;
  if (before !== undefined && !(before instanceof Date && Number.isFinite(before.getTime()))) throw new LedgerError('prune: rollupsBefore must be a valid Date');
  return { olderThan, before };
}

/** A committed record with its volume discount applied (per-type costs net, gross and discount set). */
export function withNetCosts(r: LedgerRecord, net: NetCosts): LedgerRecord {
  const costUsd = {} as Record<TokenType, string>;
  for (const t of TOKEN_TYPES) costUsd[t] = net.costUsd[t].toFixed();
  const out: LedgerRecord = { ...r, costUsd, totalCostUsd: net.total.toFixed(), discountUsd: net.discount.toFixed(), grossCostUsd: net.gross.toFixed() };
  if (net.fee !== undefined) out.feeCostUsd = net.fee.toFixed();
  return out;
}
