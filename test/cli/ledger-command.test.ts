import { spawn } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { discountsFromTiers, JournalLedger, openLedger, type Ledger, type LedgerCall, type LedgerOptions, type LedgerRecord } from '../../src/ledger/index.js';
import { beginSnapshot, loadSnapshot } from '../../src/ledger/journal-snapshot.js';
import { JournalState } from '../../src/ledger/journal-state.js';
import { ManualClock } from '../../src/plans/index.js';
import { findPostgres, startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { addDecimalStrings, makeRecord } from '../ledger/fixtures.js';
import { cli, hasBin } from './helpers.js';

const hasPostgres = findPostgres() !== undefined;
const tmp = mkdtempSync(join(tmpdir(), 'tokenmeter-ledger-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const freshDir = () => join(tmp, `d${++n}`);

const P1 = '2030-07-01T00:00:00.000Z';
const P2 = '2030-08-01T00:00:00.000Z';
const segments = (dir: string) => readdirSync(dir).filter((f) => f.startsWith('journal-')).sort();
const snapshots = (dir: string) => readdirSync(dir).filter((f) => f.startsWith('snapshot-')).sort();

function records(count: number, periodStart: string, seed: number): LedgerRecord[] {
  const t0 = Date.parse(periodStart);
  return Array.from({ length: count }, (_, i) =>
    makeRecord({
      periodStart,
      userId: ['ann', 'bob', 'x,"y"\nz', '=HYPERLINK("http://evil")'][i % 4],
      plan: i % 3 === 0 ? 'pro' : 'free',
      provider: i % 2 === 0 ? 'acme' : 'openai',
      endTimeMillis: t0 + seed * 100_000 + i,
      tokens: { input: 100 + i, output: i % 5, cache_write: 2, cache_write_1h: i % 2 },
      costs: { input: `0.${String(seed * 1000 + i + 1).padStart(7, '0')}`, output: i % 5 === 0 ? '0' : '0.0000003', cache_write: '0.000000000000000001' },
      estimated: i % 7 === 0,
    }),
  );
}

/** A closed ledger with two periods, volume discounts, several segments and snapshots. */
async function makeLedger(dir: string, options: Partial<LedgerOptions> = {}): Promise<LedgerRecord[]> {
  const clock = options.clock ?? new ManualClock('2030-08-05T10:00:00Z');
  const ledger = await openLedger(dir, {
    clock,
    discounts: discountsFromTiers({ acme: [{ above_usd: '0.0001', percent_off: '5' }] }),
    journal: { segmentMaxBytes: 8192, snapshotEveryBytes: 16384 },
    ...options,
  });
  const committed: LedgerRecord[] = [];
  for (let k = 0; k < 12; k++) committed.push(...(await ledger.commit(records(60, k % 3 === 2 ? P2 : P1, k))).committed);
  await ledger.close();
  return committed;
}

async function scan(ledger: Ledger): Promise<LedgerCall[]> {
  const out: LedgerCall[] = [];
  for await (const c of ledger.scanCalls()) out.push(c);
  return out;
}

describe('tokenmeter ledger verify', () => {
  it('verifies a healthy directory: checksums, counts, and the snapshot totals equal the totals from the calls', async () => {
    const dir = freshDir();
    await makeLedger(dir);
    expect(segments(dir).length).toBeGreaterThan(3);
    expect(snapshots(dir).length).toBeGreaterThanOrEqual(1);
    const r = await cli('ledger', 'verify', dir);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain('720 calls');
    expect(r.out).toMatch(/totals: \d+ equal to the calls\n/);
    expect(r.out).toMatch(/OK\n$/);
  });

  it('a flipped byte in a sealed segment fails with the file and offset; exit 1', async () => {
    const dir = freshDir();
    await makeLedger(dir);
    const file = join(dir, segments(dir)[1]);
    const buf = readFileSync(file);
    buf[40] ^= 0xff;
    writeFileSync(file, buf);
    const r = await cli('ledger', 'verify', dir);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${file} is corrupt at byte offset `);
    expect(r.err).toMatch(/is corrupt at byte offset \d+: checksum mismatch; restore the directory from a backup/);
    expect(r.out).toMatch(/FAILED/);
  });

  it('a snapshot whose totals disagree with the calls fails and says what to do', async () => {
    const dir = freshDir();
    await makeLedger(dir);
    const name = snapshots(dir).at(-1)!; // the newest: the one the ledger opens with
    const file = join(dir, name);
    // Rewritten by the ledger's own snapshot code with one user's cost 1e-18 higher: a valid file, wrong totals.
    const state = new JournalState();
    const segs = loadSnapshot(state, file).segments;
    const user = [...state.periods.values()][0].users.values().next().value!;
    user.addString('0.000000000000000001');
    const snap = beginSnapshot(state, segs, Number(name.slice(9, 21)));
    writeFileSync(file, Buffer.concat([...snap.parts]));
    snap.done();
    const r = await cli('ledger', 'verify', dir);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/disagrees with the calls it covers in 1 totals/);
    expect(r.err).toContain('Move the snapshot file aside');
  });

  it('after prune, totals that counted pruned calls are accepted and said so; an unfinished last write is a note', async () => {
    const dir = freshDir();
    const clock = new ManualClock('2030-07-01T10:00:00Z');
    const l = await openLedger(dir, { clock, journal: { segmentMaxBytes: 4096 } });
    await l.commit(records(40, P1, 1));
    clock.set('2030-07-20T10:00:00Z');
    await l.commit(records(40, P1, 2));
    await l.prune({ olderThan: new Date('2030-07-10T00:00:00Z') });
    await l.close();
    appendFileSync(join(dir, segments(dir).at(-1)!), Buffer.from([9, 0, 0, 0, 1, 2])); // a write cut short
    const r = await cli('ledger', 'verify', dir);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/count pruned calls too/);
    expect(r.out).toMatch(/note: segments 1 were pruned/);
    expect(r.out).toMatch(/ends with 6 bytes of an unfinished write/);
  });

  it('input boundaries: missing, a file, empty, PGlite, another format, no argument, extra argument (exit 2)', async () => {
    const file = join(tmp, 'a-file');
    writeFileSync(file, 'x');
    const empty = freshDir();
    mkdirSync(empty);
    const pglite = freshDir();
    mkdirSync(pglite);
    writeFileSync(join(pglite, 'PG_VERSION'), '16\n');
    const future = freshDir();
    mkdirSync(future);
    writeFileSync(join(future, 'FORMAT'), 'tokenmeter journal ledger, format 99\n');
    const cases: [string[], RegExp][] = [
      [[join(tmp, 'nope')], /does not exist: give the ledger directory/],
      [[file], /is not a directory/],
      [[empty], /is not a tokenmeter ledger directory \(no FORMAT file\)/],
      [[pglite], /holds a PGlite ledger .* tokenmeter 0\.1\.0/],
      [[future], /says "tokenmeter journal ledger, format 99": this tokenmeter reads journal ledger formats 1 to \d+; use the tokenmeter that wrote it/],
      [[], /missing DIR/],
      [[empty, 'more'], /unexpected argument 'more'/],
      [[''], /DIR must not be empty/],
      [['--bogus', empty], /unknown option --bogus/],
    ];
    for (const [args, msg] of cases) {
      const r = await cli('ledger', 'verify', ...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err).toMatch(msg);
    }
    expect((await cli('ledger', 'frobnicate')).err).toMatch(/unknown ledger command 'frobnicate'/);
  });
});

describe('tokenmeter ledger dump', () => {
  let dir: string;
  let committed: LedgerRecord[];
  beforeAll(async () => {
    dir = freshDir();
    committed = await makeLedger(dir);
  });

  it('prints every committed call as JSON lines, as commit returned it', async () => {
    const r = await cli('ledger', 'dump', dir);
    expect(r.code).toBe(0);
    const lines = r.out.trimEnd().split('\n').map((l) => JSON.parse(l) as LedgerCall);
    expect(lines.map(({ receivedAtMillis: _r, ...rec }) => rec)).toEqual(JSON.parse(JSON.stringify(committed)));
    expect(lines.some((c) => c.discountUsd !== undefined)).toBe(true);
  });

  it('filters by period and user, and a hostile user id survives CSV quoting', async () => {
    const r = await cli('ledger', 'dump', dir, '--period', P2, '--user', 'x,"y"\nz', '--format', 'csv');
    expect(r.code).toBe(0);
    const want = committed.filter((c) => c.periodStart === P2 && c.userId === 'x,"y"\nz');
    expect(want.length).toBeGreaterThan(10);
    const rows = parseCsv(r.out);
    expect(rows[0].slice(0, 6)).toEqual(['trace_id', 'span_id', 'received_at', 'end_time', 'period_start', 'user_id']);
    expect(rows.slice(1).map((row) => row[5])).toEqual(want.map(() => 'x,"y"\nz'));
    expect(rows.slice(1).map((row) => row.at(-1))).toEqual(want.map((c) => c.totalCostUsd));
    const formula = parseCsv((await cli('ledger', 'dump', dir, '--user', '=HYPERLINK("http://evil")', '--format', 'csv')).out);
    expect(formula[1][5]).toBe('\'=HYPERLINK("http://evil")');
  });

  it('reads a directory the exporter holds (no lock needed), leaving out a write in progress', async () => {
    const live = freshDir();
    const ledger = await openLedger(live, { clock: new ManualClock('2030-07-02T00:00:00Z') });
    await ledger.commit(records(25, P1, 1));
    const seg = join(live, segments(live).at(-1)!);
    appendFileSync(seg, Buffer.from([200, 0, 0, 0, 7, 7, 7])); // an entry being written
    const r = await cli('ledger', 'dump', live);
    expect(r.code).toBe(0);
    expect(r.out.trimEnd().split('\n')).toHaveLength(25);
    await ledger.close().catch(() => {});
  });

  it('bad flags are exit 2 naming the flag', async () => {
    for (const [args, msg] of [
      [['--format', 'xml'], /--format must be jsonl or csv, got 'xml'/],
      [['--period', 'last month'], /--period must be a valid Date or ISO instant/],
      [['--from', '2030-13-45'], /--from must be/],
      [['--user'], /--user needs a value/],
    ] as [string[], RegExp][]) {
      const r = await cli('ledger', 'dump', dir, ...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err).toMatch(msg);
    }
  });
});

/** RFC 4180 (quoted fields with "" and newlines). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      row.push(field);
      field = '';
    } else if (ch === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += ch;
  }
  return rows;
}

describe.skipIf(!hasPostgres)('tokenmeter ledger export (real PostgreSQL)', () => {
  let pg: TestPostgres;
  beforeAll(async () => {
    pg = await startPostgres();
  }, 60_000);
  afterAll(async () => {
    await pg?.cleanup();
  });

  it('moves calls and totals; the PostgreSQL ledger gives the same totals, also for periods whose calls were pruned', async () => {
    const dir = freshDir();
    const clock = new ManualClock('2030-07-01T10:00:00Z');
    await makeLedger(dir, { clock });
    const l = await openLedger(dir, { clock });
    clock.set('2030-07-20T10:00:00Z');
    await l.commit(records(30, P2, 40));
    expect((await l.prune({ olderThan: new Date('2030-07-10T00:00:00Z') })).callsDeleted).toBe(720);
    await l.close();

    const url = await pg.createDatabase('export1');
    const r = await cli('ledger', 'export', dir, url);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/exported 30 calls and the totals of 2 periods/);
    expect(r.out).toMatch(/gives the same totals/);

    const journal = await openLedger(dir, { clock });
    const target = await openLedger(url);
    try {
      for (const p of [P1, P2]) {
        expect(await target.loadPeriodRollups(p, { unpriced: true })).toEqual(await journal.loadPeriodRollups(p, { unpriced: true }));
        expect(await target.periodSummary(p)).toEqual(await journal.periodSummary(p));
        expect(await target.providerPeriodSpend(p)).toEqual(await journal.providerPeriodSpend(p));
        for (const u of ['ann', 'x,"y"\nz']) expect(await target.userPeriodUsage(u, p)).toEqual(await journal.userPeriodUsage(u, p));
      }
      expect((await target.loadPeriodRollups(P1)).reduce((s, x) => s + x.requests, 0)).toBe(480);
      const byId = (a: LedgerCall, b: LedgerCall) => (a.traceId + a.spanId < b.traceId + b.spanId ? -1 : 1);
      expect((await scan(target)).sort(byId)).toEqual((await scan(journal)).sort(byId));
    } finally {
      await journal.close();
      await target.close();
    }

    // The target is no longer empty: refused; --resume finishes (here: repeats) an export into it.
    const again = await cli('ledger', 'export', dir, url);
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/already holds 30 calls .* export into a new, empty database \(or pass --resume/);
    const resumed = await cli('ledger', 'export', dir, url, '--resume');
    expect(resumed.code).toBe(0);
    expect(resumed.out).toMatch(/\(30 were already there\)/);
  }, 120_000);

  it('a directory in use is refused with what to do; bad URLs are exit 2; an unreachable server is exit 1', async () => {
    const dir = freshDir();
    await makeLedger(dir);
    const held = await JournalLedger.open(dir);
    try {
      const r = await cli('ledger', 'export', dir, pg.url);
      expect(r.code).toBe(2);
      expect(r.err).toMatch(/in use by process \d+ \(this process\).*Stop the exporter first, or work on a copy made with `tokenmeter ledger backup/);
    } finally {
      await held.close();
    }
    for (const [url, msg] of [
      ['mysql://u:secret@h/db', /must be a postgres:\/\/ or postgresql:\/\/ URL .*got "mysql:\/\/u:\*\*\*@h\/db"/],
      ['postgres://u:secret@[::1/db', /"postgres:\/\/u:\*\*\*@\[::1\/db" is not a valid URL/],
      ['postgres:///db', /names no host/],
    ]) {
      const r = await cli('ledger', 'export', dir, url as string);
      expect(r.code, url as string).toBe(2);
      expect(r.err).toMatch(msg as RegExp);
      expect(r.err).not.toContain('secret');
    }
    const down = await cli('ledger', 'export', dir, 'postgres://postgres@127.0.0.1:1/postgres');
    expect(down.code).toBe(1);
    expect(down.err).toMatch(/ECONNREFUSED|unavailable/);
  }, 60_000);
});

const DIST_LEDGER = fileURLToPath(new URL('../../dist/ledger/index.js', import.meta.url));

describe.skipIf(!hasBin)('tokenmeter ledger backup', () => {
  it('copies consistently while another process keeps committing, snapshotting and rolling segments', async () => {
    const dir = freshDir();
    // The writer: an exporter-like process committing small groups as fast as it can.
    const writer = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `
        import { openLedger } from ${JSON.stringify(DIST_LEDGER)};
        import { randomBytes } from 'node:crypto';
        const l = await openLedger(${JSON.stringify(dir)}, { journal: { segmentMaxBytes: 16384, snapshotEveryBytes: 32768 } });
        process.stdout.write('ready\\n');
        for (let k = 0; ; k++) {
          const recs = Array.from({ length: 20 }, (_, i) => ({
            traceId: randomBytes(16).toString('hex'), spanId: randomBytes(8).toString('hex'), endTimeMillis: 1e12 + k * 100 + i,
            provider: 'openai', rawModel: 'gpt-4o', model: 'gpt-4o', operation: 'chat', userId: 'u' + (i % 7), plan: 'free',
            usage: { input: i + 1, cache_read: 0, cache_write: 0, output: k % 5, reasoning: 0 }, estimated: false, outcome: 'success',
            source: 'tokenmeter', periodStart: '2030-07-01T00:00:00.000Z', priced: true,
            costUsd: { input: '0.00000' + (i + 1), cache_read: '0', cache_write: '0', output: '0', reasoning: '0' }, totalCostUsd: '0.00000' + (i + 1),
          }));
          await l.commit(recs);
        }
        `,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      await new Promise<void>((res, rej) => {
        writer.stdout.once('data', () => res());
        writer.once('exit', (code) => rej(new Error(`writer exited ${code}`)));
      });
      await new Promise((res) => setTimeout(res, 300));
      for (let k = 0; k < 6; k++) {
        const dest = join(tmp, `backup-${n}-${k}`);
        const r = await cli('ledger', 'backup', dir, dest);
        expect(r.err).toBe('');
        expect(r.code).toBe(0);
        // The copy verifies (snapshot totals = totals from the calls) and opens with totals = its own calls.
        const v = await cli('ledger', 'verify', dest);
        expect(v.err).toBe('');
        expect(v.code).toBe(0);
        const copy = await openLedger(dest);
        try {
          const calls = await scan(copy);
          expect(calls.length).toBeGreaterThan(0);
          const rollups = await copy.loadPeriodRollups('2030-07-01T00:00:00.000Z');
          expect(rollups.reduce((s, x) => s + x.requests, 0)).toBe(calls.length);
          expect(addDecimalStrings(rollups.map((x) => x.costUsd))).toBe(addDecimalStrings(calls.map((c) => c.totalCostUsd)));
          expect(rollups.reduce((s, x) => s + x.tokens.input, 0)).toBe(calls.reduce((s, c) => s + c.usage.input, 0));
        } finally {
          await copy.close();
        }
        await new Promise((res) => setTimeout(res, 150));
      }
      expect(snapshots(dir).length).toBeGreaterThan(0);
    } finally {
      writer.kill('SIGKILL');
    }
    // A copy over a non-empty directory is refused.
    const r = await cli('ledger', 'backup', dir, dir);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/exists and is not an empty directory: give a new directory/);
  }, 120_000);
});

