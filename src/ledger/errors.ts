/** A ledger operation failed for a reason retrying will not fix (a bad record, a schema problem, a bug). */
export class LedgerError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LedgerError';
  }
}

/**
 * The ledger cannot be reached or cannot write now (database down, restarting, connection lost, disk full,
 * closed). Nothing of the failed call was committed; the caller should answer 503 with Retry-After so the
 * sender retries.
 */
export class LedgerUnavailableError extends LedgerError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LedgerUnavailableError';
  }
}

/**
 * An embedded ledger directory is held by another live process (its `tokenmeter.lock`): one writer per directory.
 * A class of its own so `tokenmeter serve` can say so in one line, with the owner's pid and the flag to change.
 */
export class LedgerInUseError extends LedgerError {
  constructor(
    message: string,
    readonly directory: string,
    readonly ownerPid: number,
    readonly lockPath: string,
  ) {
    super(message);
    this.name = 'LedgerInUseError';
  }
}

export function isLedgerUnavailable(err: unknown): boolean {
  return err instanceof LedgerUnavailableError;
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH',
  'ENETUNREACH', 'ENOENT', 'ENOSPC', 'EIO',
]);

/**
 * SQLSTATEs meaning "the server cannot serve this now": connection exceptions (08), operator intervention
 * (57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now), insufficient resources (53: disk
 * full, out of memory, too many connections), system errors (58: I/O error), read-only (25006, a standby).
 */
function sqlStateUnavailable(code: string): boolean {
  return code.startsWith('08') || code.startsWith('53') || code.startsWith('58') || code === '57P01' || code === '57P02' || code === '57P03' || code === '25006';
}

const UNAVAILABLE_MESSAGES = [
  /connection terminated/i,
  /timeout exceeded when trying to connect/i,
  /not queryable/i,
  /connection.*(closed|ended|lost)/i,
  /server closed the connection/i,
  /the database system is (starting up|shutting down|in recovery mode)/i,
];

/** Whether a driver error means the ledger is unavailable (vs. a problem with the statement or data). */
export function isUnavailableDriverError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (NETWORK_CODES.has(code)) return true;
    if (/^[0-9A-Z]{5}$/.test(code)) return sqlStateUnavailable(code);
  }
  if (UNAVAILABLE_MESSAGES.some((re) => re.test(err.message))) return true;
  const cause = (err as { cause?: unknown }).cause;
  return cause !== undefined && cause !== err && isUnavailableDriverError(cause);
}

/** Maps a driver error to the ledger's error classes (already-classified errors pass through). */
export function classifyError(err: unknown, what: string): LedgerError {
  if (err instanceof LedgerError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (isUnavailableDriverError(err)) return new LedgerUnavailableError(`ledger unavailable (${what}): ${message}`, { cause: err });
  return new LedgerError(`ledger ${what} failed: ${message}`, { cause: err });
}

/** SQLSTATEs after which the same transaction may simply be run again (concurrent replicas). */
export function isRetryableConflict(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return code === '40P01' || code === '40001';
}
