/**
 * The SQL backend behind one small interface: PostgreSQL through a `pg` Pool. (The embedded store is the journal
 * ledger; PGlite, the embedded SQL store of tokenmeter 0.1.0, is retired.)
 */
import pg from 'pg';
import { classifyError, LedgerUnavailableError } from './errors.js';

export type Row = Record<string, unknown>;

export interface SqlRunner {
  query<R extends Row = Row>(sql: string, params?: unknown[]): Promise<R[]>;
}

export interface SqlSession extends SqlRunner {
  /** Runs a script of several statements (no parameters). */
  exec(sql: string): Promise<void>;
}

/** `embedded`: the journal ledger in a directory; `postgres`: PostgreSQL. */
export type BackendKind = 'embedded' | 'postgres';

export interface SqlBackend extends SqlRunner {
  readonly kind: BackendKind;
  /** Runs `fn` in one transaction; rolls back when it throws. */
  transaction<T>(fn: (tx: SqlRunner) => Promise<T>): Promise<T>;
  /** One dedicated connection for the duration of `fn` (session-level advisory locks, migrations). */
  withSession<T>(fn: (session: SqlSession) => Promise<T>): Promise<T>;
  /** Makes committed transactions durable where the backend does not do it itself. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

export interface PostgresBackendOptions {
  /** Pool size (default 10). */
  maxConnections?: number;
  /** How long to wait for a connection before the ledger counts as unavailable (default 5000). */
  connectionTimeoutMillis?: number;
  /** Server-side statement timeout (default 30000; 0 disables). */
  statementTimeoutMillis?: number;
}

/** PostgreSQL through a pg Pool. Broken connections are discarded, so the pool recovers after a restart. */
export class PostgresBackend implements SqlBackend {
  readonly kind = 'postgres' as const;
  #pool: pg.Pool;
  #closed = false;

  constructor(url: string, options: PostgresBackendOptions = {}) {
    const statementTimeout = options.statementTimeoutMillis ?? 30_000;
    this.#pool = new pg.Pool({
      connectionString: url,
      max: options.maxConnections ?? 10,
      connectionTimeoutMillis: options.connectionTimeoutMillis ?? 5000,
      idleTimeoutMillis: 30_000,
      ...(statementTimeout > 0 ? { statement_timeout: statementTimeout } : {}),
      application_name: 'tokenmeter',
    });
    // An idle connection dropped by a server restart emits 'error' on the pool; without a listener Node would
    // crash the process. The pool has already discarded that client; the next query opens a new one.
    this.#pool.on('error', () => {});
    // Errors on a checked-out client surface through the query promise; the listener (once per connection)
    // keeps the event itself from crashing the process.
    this.#pool.on('connect', (client) => client.on('error', () => {}));
  }

  #check(): void {
    if (this.#closed) throw new LedgerUnavailableError('ledger is closed');
  }

  async #connect(): Promise<pg.PoolClient> {
    this.#check();
    try {
      return await this.#pool.connect();
    } catch (err) {
      throw classifyError(err, 'connect');
    }
  }

  async query<R extends Row = Row>(sql: string, params?: unknown[]): Promise<R[]> {
    this.#check();
    return (await this.#pool.query<R>(sql, params)).rows;
  }

  async transaction<T>(fn: (tx: SqlRunner) => Promise<T>): Promise<T> {
    const client = await this.#connect();
    let broken: unknown;
    try {
      await client.query('BEGIN');
      const result = await fn({ query: async <R extends Row = Row>(sql: string, params?: unknown[]) => (await client.query<R>(sql, params)).rows });
      await client.query('COMMIT');
      return result;
    } catch (err) {
      try {
        await client.query('ROLLBACK');
      } catch (rollbackErr) {
        broken = rollbackErr;
      }
      throw err;
    } finally {
      // A connection that could not roll back is not reused.
      client.release(broken instanceof Error ? broken : undefined);
    }
  }

  async withSession<T>(fn: (session: SqlSession) => Promise<T>): Promise<T> {
    const client = await this.#connect();
    let failed: unknown;
    try {
      return await fn({
        query: async <R extends Row = Row>(sql: string, params?: unknown[]) => (await client.query<R>(sql, params)).rows,
        exec: async (sql: string) => {
          await client.query(sql);
        },
      });
    } catch (err) {
      failed = err;
      throw err;
    } finally {
      // Session state (advisory locks, an open transaction) must not leak to the next user of the connection.
      client.release(failed instanceof Error ? failed : undefined);
    }
  }

  async flush(): Promise<void> {
    // PostgreSQL's COMMIT returns after the WAL is flushed (synchronous_commit = on).
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.end();
  }
}
