/**
 * Whether the ledger is up, from what it last did, not from a probe alone. A ledger can answer a ping (and serve
 * reads) while every commit fails: a full disk, a read-only file system, a PostgreSQL out of space. So:
 *
 * - a failed commit sets `tokenmeter_ledger_up` to 0 and makes /readyz answer 503 for `failureHoldMillis` after
 *   it (each failed commit extends it: senders retrying after Retry-After keep it failing while the fault lasts);
 * - only a successful commit, or a successful probe or read once no commit has failed for that long, sets it
 *   back to 1 (without traffic there is nothing else to go by; the next failed commit takes it down again);
 * - failed commits are logged with their cause: the first at once, then at most one line per `logIntervalMillis`
 *   saying how many failed meanwhile.
 */
export interface LedgerHealthOptions {
  setUp: (up: boolean) => void;
  log: (message: string) => void;
  now?: () => number;
  failureHoldMillis: number;
  logIntervalMillis?: number;
}

export class LedgerHealth {
  private lastFailure: { atMillis: number; message: string } | undefined;
  private lastLogMillis = Number.NEGATIVE_INFINITY;
  private unlogged = 0;
  private readonly now: () => number;
  private readonly logIntervalMillis: number;

  constructor(private readonly o: LedgerHealthOptions) {
    this.now = o.now ?? Date.now;
    this.logIntervalMillis = o.logIntervalMillis ?? 60_000;
  }

  commitSucceeded(): void {
    if (this.lastFailure !== undefined) {
      this.o.log(`ledger commits succeed again${this.unlogged > 0 ? ` (${this.unlogged} more failed since the last message)` : ''}`);
      this.unlogged = 0;
      this.lastLogMillis = Number.NEGATIVE_INFINITY;
    }
    this.lastFailure = undefined;
    this.o.setUp(true);
  }

  commitFailed(err: unknown): void {
    const now = this.now();
    const message = describe(err);
    this.lastFailure = { atMillis: now, message };
    this.o.setUp(false);
    if (now - this.lastLogMillis >= this.logIntervalMillis) {
      const more = this.unlogged > 0 ? ` (${this.unlogged} more failed since the last message)` : '';
      this.o.log(`ledger commit failed, answering 503 so senders retry: ${message}${more}`);
      this.lastLogMillis = now;
      this.unlogged = 0;
    } else this.unlogged++;
  }

  /** A failed commit within the hold time: its message and age. */
  recentFailure(): { message: string; agoMillis: number } | undefined {
    const f = this.lastFailure;
    if (f === undefined) return undefined;
    const ago = this.now() - f.atMillis;
    return ago < this.o.failureHoldMillis ? { message: f.message, agoMillis: ago } : undefined;
  }

  /** A probe or a read answered: up unless a commit failed recently. Returns whether the ledger counts as up. */
  answered(): boolean {
    if (this.recentFailure() !== undefined) return false;
    this.o.setUp(true);
    return true;
  }

  /** A probe or a read failed. */
  failed(): void {
    this.o.setUp(false);
  }
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  let m = err.message;
  // The driver's or the file system's own error, when wrapped.
  const cause = (err as { cause?: unknown }).cause;
  if (cause instanceof Error && !m.includes(cause.message)) m += ` (cause: ${cause.message})`;
  return m.length > 500 ? `${m.slice(0, 497)}...` : m;
}
