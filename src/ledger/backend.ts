/**
 * The two SQL backends behind one small interface: PGlite (embedded PostgreSQL in a local directory) and
 * PostgreSQL through a `pg` Pool. The ledger's SQL is the same for both.
 */
import { closeSync, fsyncSync, openSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { acquireDirectoryLock } from './dir-lock.js';
import { classifyError, LedgerError, LedgerUnavailableError } from './errors.js';

export type Row = Record<string, unknown>;

export interface SqlRunner {
  query<R extends Row = Row>(sql: string, params?: unknown[]): Promise<R[]>;
}

export interface SqlSession extends SqlRunner {
  /** Runs a script of several statements (no parameters). */
  exec(sql: string): Promise<void>;
}

/** `embedded`: the journal ledger in a directory; `pglite`: PGlite in a directory; `postgres`: PostgreSQL. */
export type BackendKind = 'embedded' | 'pglite' | 'postgres';

export interface SqlBackend extends SqlRunner {
  readonly kind: BackendKind;
  /** Runs `fn` in one transaction; rolls back when it throws. */
  transaction<T>(fn: (tx: SqlRunner) => Promise<T>): Promise<T>;
  /** One dedicated connection for the duration of `fn` (session-level advisory locks, migrations). */
  withSession<T>(fn: (session: SqlSession) => Promise<T>): Promise<T>;
  /** Makes committed transactions durable where the backend does not do it itself (embedded). */
  flush(): Promise<void>;
  close(): Promise<void>;
}

export interface EmbeddedBackendOptions {
  /** fsync the write-ahead log after each commit (default true); see `EmbeddedBackend.flush`. */
  fsyncWal?: boolean;
}

/** PGlite in a directory. One process owns the directory; PGlite runs one query or transaction at a time. */
export class EmbeddedBackend implements SqlBackend {
  readonly kind = 'pglite' as const;
  readonly dir: string;
  #db: import('@electric-sql/pglite').PGlite;
  #fsyncWal: boolean;
  #lastWalFile: string | undefined;
  #closed = false;
  #release: () => void = () => {};

  private constructor(dir: string, db: import('@electric-sql/pglite').PGlite, options: EmbeddedBackendOptions) {
    this.dir = dir;
    this.#db = db;
    this.#fsyncWal = options.fsyncWal ?? true;
  }

  static async open(dir: string, options: EmbeddedBackendOptions = {}): Promise<EmbeddedBackend> {
    const abs = resolve(dir);
    try {
      await mkdir(abs, { recursive: true });
    } catch (err) {
      throw new LedgerError(`cannot create the embedded ledger directory ${abs}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    const release = acquireDirectoryLock(abs);
    try {
      // Loaded lazily: the WebAssembly build is only needed for the embedded store.
      const { PGlite } = await import('@electric-sql/pglite');
      const db = new PGlite(abs);
      await db.waitReady;
      const backend = new EmbeddedBackend(abs, db, options);
      backend.#release = release;
      return backend;
    } catch (err) {
      release();
      throw new LedgerUnavailableError(`cannot open the embedded ledger in ${abs}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }

  #check(): void {
    if (this.#closed) throw new LedgerUnavailableError('ledger is closed');
  }

  async query<R extends Row = Row>(sql: string, params?: unknown[]): Promise<R[]> {
    this.#check();
    return (await this.#db.query<R>(sql, params)).rows;
  }

  async transaction<T>(fn: (tx: SqlRunner) => Promise<T>): Promise<T> {
    this.#check();
    return this.#db.transaction(async (tx) => fn({ query: async <R extends Row = Row>(sql: string, params?: unknown[]) => (await tx.query<R>(sql, params)).rows }));
  }

  async withSession<T>(fn: (session: SqlSession) => Promise<T>): Promise<T> {
    this.#check();
    const db = this.#db;
    return fn({
      query: async <R extends Row = Row>(sql: string, params?: unknown[]) => (await db.query<R>(sql, params)).rows,
      exec: async (sql: string) => {
        await db.exec(sql);
      },
    });
  }

  /**
   * PGlite runs PostgreSQL with fsync off and its Node filesystem has no fsync: a commit has reached the OS (it
   * survives a crash of this process) but not necessarily the disk. To survive an OS crash or power loss too,
   * fsync the WAL segment(s) the commit was written to; group commit amortises this over many records.
   */
  async flush(): Promise<void> {
    if (!this.#fsyncWal) return;
    this.#check();
    const rows = await this.#db.query<{ f: string }>('SELECT pg_walfile_name(pg_current_wal_insert_lsn()) AS f');
    const current = rows.rows[0].f;
    const files = this.#lastWalFile && this.#lastWalFile !== current ? [this.#lastWalFile, current] : [current];
    for (const f of files) fsyncPath(join(this.dir, 'pg_wal', f));
    if (files.length > 1 || this.#lastWalFile === undefined) fsyncPath(join(this.dir, 'pg_wal'));
    this.#lastWalFile = current;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await this.#db.close();
    } finally {
      this.#release();
    }
  }
}

function fsyncPath(path: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    fsyncSync(fd);
  } catch (err) {
    // A recycled segment may be gone already: its contents were then checkpointed.
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
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
