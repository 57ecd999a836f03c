/**
 * Opens the ledger, and keeps trying in the background when it cannot be reached at start (PostgreSQL down or
 * restarting): the exporter starts anyway, answers 503 + Retry-After until the ledger opens, and becomes ready
 * without a restart. Errors retrying cannot fix (a schema newer than this tokenmeter, an embedded directory in
 * use by another process) still fail the start.
 */
export interface LedgerConnectionOptions<L> {
  /** Opens (and migrates) the ledger. */
  open: () => Promise<L>;
  /** Whether a failed open is worth retrying (the ledger is unavailable, not misconfigured). */
  retryable: (err: unknown) => boolean;
  /** Closes an opened ledger. */
  close: (ledger: L) => Promise<void>;
  /** Builds the error operations get while the ledger is not open (the exporter maps it to 503). */
  unavailable: (message: string) => Error;
  /** Called once, when the ledger has opened after the start (not when it opened at the first attempt). */
  onOpen?: (ledger: L) => void;
  log?: (line: string) => void;
  /** First retry delay (default 250 ms); doubles up to `maxDelayMillis`. */
  initialDelayMillis?: number;
  /** Longest wait between attempts (default 5000 ms). */
  maxDelayMillis?: number;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class LedgerConnection<L> {
  #ledger: L | undefined;
  #lastError = '';
  #timer: NodeJS.Timeout | undefined;
  #attempt: Promise<void> | undefined;
  #closed = false;
  #delay: number;

  private constructor(private readonly o: LedgerConnectionOptions<L>) {
    this.#delay = o.initialDelayMillis ?? 250;
  }

  /**
   * Tries once. Resolves with a connection whether or not the ledger opened (when it did not, retries run in the
   * background); rejects only for an error that retrying cannot fix.
   */
  static async start<L>(o: LedgerConnectionOptions<L>): Promise<LedgerConnection<L>> {
    const c = new LedgerConnection(o);
    try {
      c.#ledger = await o.open();
    } catch (err) {
      if (!o.retryable(err)) throw err;
      c.#lastError = messageOf(err);
      o.log?.(`the ledger is unavailable (${c.#lastError}); answering 503 and retrying in the background`);
      c.#schedule();
    }
    return c;
  }

  /** The open ledger, if any. */
  get ledger(): L | undefined {
    return this.#ledger;
  }

  /** The open ledger, or throws the unavailable error (→ 503 + Retry-After). */
  require(): L {
    if (this.#ledger !== undefined) return this.#ledger;
    throw this.o.unavailable(`the ledger is not reachable yet: ${this.#lastError || 'opening'}`);
  }

  #schedule(): void {
    if (this.#closed) return;
    const delay = this.#delay;
    this.#delay = Math.min(this.#delay * 2, this.o.maxDelayMillis ?? 5000);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#attempt = this.#tryOpen().finally(() => (this.#attempt = undefined));
    }, delay);
    this.#timer.unref();
  }

  async #tryOpen(): Promise<void> {
    let ledger: L;
    try {
      ledger = await this.o.open();
    } catch (err) {
      const message = messageOf(err);
      if (message !== this.#lastError) this.o.log?.(`the ledger is still unavailable: ${message}`);
      this.#lastError = message;
      // A non-retryable error after the start (e.g. another tokenmeter migrated the schema past ours) is logged and
      // retried too: the operator sees it in the log and on /readyz, and the exporter keeps answering 503.
      this.#schedule();
      return;
    }
    if (this.#closed) {
      await this.o.close(ledger).catch(() => {});
      return;
    }
    this.#ledger = ledger;
    this.o.log?.('the ledger is reachable: ready');
    this.o.onOpen?.(ledger);
  }

  /** Stops retrying and closes the ledger (waits for an attempt in flight). Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#attempt) await this.#attempt;
    const ledger = this.#ledger;
    this.#ledger = undefined;
    if (ledger !== undefined) await this.o.close(ledger);
  }
}
