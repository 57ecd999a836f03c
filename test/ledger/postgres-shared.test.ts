import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { GroupCommitter, LedgerError, LedgerUnavailableError, openLedger, type Ledger } from '../../src/ledger/index.js';
import { findPostgres, startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { makeRecord } from './fixtures.js';
import { MIGRATIONS } from '../../src/ledger/migrations.js';

/** Several exporter replicas sharing one PostgreSQL ledger; PostgreSQL going away and coming back. */
describe.skipIf(findPostgres() === undefined)('ledger on a shared PostgreSQL', () => {
  let server: TestPostgres;

  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(async () => {
    await server?.cleanup();
  });

  it('migrations run once when several processes open one database at the same moment', async () => {
    const url = await server.createDatabase('migrate_race');
    const ledgers = await Promise.all(Array.from({ length: 4 }, () => openLedger(url)));
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const { rows } = await client.query('SELECT version, name FROM schema_migrations ORDER BY version');
      expect(rows).toEqual(MIGRATIONS.map((m) => ({ version: m.version, name: m.name })));
    } finally {
      await client.end();
      await Promise.all(ledgers.map((l) => l.close()));
    }
  });

  it('refuses a ledger whose schema is newer than this code', async () => {
    const url = await server.createDatabase('future_schema');
    const l = await openLedger(url);
    await l.close();
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query("INSERT INTO schema_migrations (version, name) VALUES (999, 'from the future')");
    } finally {
      await client.end();
    }
    const err = await openLedger(url).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LedgerError);
    expect(err).not.toBeInstanceOf(LedgerUnavailableError);
    expect((err as Error).message).toMatch(/version 999.*newer/);
  });

  it('two ledgers (two pools) committing the same spans concurrently count each span once', async () => {
    const url = await server.createDatabase('replicas');
    const a = await openLedger(url);
    const b = await openLedger(url);
    try {
      const periodStart = '2030-03-01T00:00:00.000Z';
      const spans = Array.from({ length: 200 }, (_, i) =>
        makeRecord({ periodStart, userId: `user${i % 5}`, plan: i % 2 ? 'pro' : 'free', tokens: { input: 3, output: 1 }, costs: { input: '0.003', output: '0.0011' } }),
      );
      // Each replica receives every span (a retry that reached the other replica), in different batch shapes
      // and orders, through group committers, all at once.
      const gcA = new GroupCommitter(a, { maxBatchRecords: 37, maxWaitMillis: 1 });
      const gcB = new GroupCommitter(b, { maxBatchRecords: 23, maxWaitMillis: 1 });
      const reversed = [...spans].reverse();
      const chunks = (xs: typeof spans, n: number) => Array.from({ length: Math.ceil(xs.length / n) }, (_, i) => xs.slice(i * n, i * n + n));
      const results = await Promise.all([
        ...chunks(spans, 10).map((c) => gcA.commit(c)),
        ...chunks(reversed, 7).map((c) => gcB.commit(c)),
        ...chunks(spans, 50).map((c) => b.commit(c)),
      ]);
      const committed = results.flatMap((r) => r.committed.map((x) => `${x.traceId}/${x.spanId}`));
      expect(committed).toHaveLength(200);
      expect(new Set(committed).size).toBe(200);
      const rollups = await a.loadPeriodRollups(periodStart);
      expect(rollups.reduce((s, r) => s + r.requests, 0)).toBe(200);
      expect(rollups.find((r) => r.userId === 'user0' && r.plan === 'free')).toMatchObject({ requests: 20, costUsd: '0.082' });
      expect(await b.loadPeriodRollups(periodStart)).toEqual(rollups);
      const summary = await b.periodSummary(periodStart);
      expect(summary.costUsd).toBe('0.82');
      expect(summary.totalTokens).toBe(800);
      // A commit on one replica returns totals that include the other replica's commits.
      const extra = makeRecord({ periodStart, userId: 'user0', plan: 'free', tokens: { input: 1 }, costs: { input: '0.001' } });
      const res = await b.commit([extra]);
      expect(res.rollups).toEqual([expect.objectContaining({ userId: 'user0', plan: 'free', requests: 21, costUsd: '0.083' })]);
      await gcA.close();
      await gcB.close();
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('PostgreSQL stopped: LedgerUnavailableError; restarted: the same ledger works again with exact totals', async () => {
    const url = await server.createDatabase('outage');
    const ledger: Ledger = await openLedger(url, { postgres: { connectionTimeoutMillis: 2000 } });
    const gc = new GroupCommitter(ledger, { maxWaitMillis: 1 });
    try {
      const periodStart = '2030-04-01T00:00:00.000Z';
      const before = [1, 2, 3].map((i) => makeRecord({ periodStart, userId: 'o', tokens: { input: i }, costs: { input: `0.${i}` } }));
      await gc.commit(before);
      await ledger.ping();

      await server.stop();
      const during = makeRecord({ periodStart, userId: 'o', tokens: { input: 10 }, costs: { input: '1.05' } });
      await expect(ledger.ping()).rejects.toBeInstanceOf(LedgerUnavailableError);
      await expect(gc.commit([during])).rejects.toBeInstanceOf(LedgerUnavailableError);
      await expect(ledger.loadPeriodRollups(periodStart)).rejects.toBeInstanceOf(LedgerUnavailableError);

      await server.start();
      // The pool dropped its dead connections; no restart of the ledger needed.
      await ledger.ping();
      const res = await gc.commit([during, ...before]);
      expect(res.outcomes).toEqual(['committed', 'duplicate', 'duplicate', 'duplicate']);
      expect(res.rollups).toEqual([
        {
          periodStart,
          userId: 'o',
          plan: 'free',
          tokens: { input: 16, cache_read: 0, cache_write: 0, output: 0, reasoning: 0 },
          requests: 4,
          costUsd: '1.65',
        },
      ]);
    } finally {
      await gc.close();
      await ledger.close();
    }
  });

  it('an unreachable server at open is LedgerUnavailableError', async () => {
    const url = server.url.replace(/:(\d+)\//, ':1/');
    await expect(openLedger(url, { postgres: { connectionTimeoutMillis: 1000 } })).rejects.toBeInstanceOf(LedgerUnavailableError);
  });
});
