/**
 * The production ledger's backup path (docs/production/README.md, "Backups and point-in-time recovery"), run for
 * real with Debian's PostgreSQL 15: WAL archived by docs/production/postgres/archive-wal.sh, a base backup taken with
 * the same pg_basebackup flags as the compose file's postgres-backup service, and a restore to a point in time that
 * replays the commits before the target and none after it.
 */
import { execFile, execFileSync } from 'node:child_process';
import { appendFileSync, chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { findPostgres } from '../helpers/postgres.js';
import { readRepoFile, root } from '../dashboards/helpers.js';

const run = promisify(execFile);
const pgCtl = findPostgres();
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const SCRIPT = 'docs/production/postgres/archive-wal.sh';
const PASSWORD = 'pitr-test-password';

let base: string | undefined;
const servers: { dataDir: string }[] = [];

async function asPostgres(bin: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  const [cmd, argv] = isRoot ? ['runuser', ['-u', 'postgres', '--', 'env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), bin, ...args]] : [bin, args];
  try {
    const { stdout } = await run(cmd, argv, { timeout: 120_000, env: { ...process.env, ...env } });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${bin} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`, { cause: err });
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

function own(path: string): void {
  if (!isRoot) return;
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  execFileSync('chown', ['-R', `${id('-u')}:${id('-g')}`, path]);
}

afterAll(async () => {
  for (const s of servers) {
    try {
      await asPostgres(pgCtl!, ['-D', s.dataDir, '-m', 'immediate', '-w', 'stop']);
    } catch {}
  }
  if (base) rmSync(base, { recursive: true, force: true });
});

describe.skipIf(!pgCtl)('PostgreSQL backups and point-in-time recovery (docs/production)', () => {
  const bin = (name: string) => join(pgCtl!.replace(/\/pg_ctl$/, ''), name);

  it('the archive script copies a segment once, accepts the same one again and refuses a different one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tokenmeter-wal-'));
    try {
      const archive = join(dir, 'archive');
      writeFileSync(join(dir, 'seg'), 'wal bytes');
      const sh = (src: string) =>
        execFileSync('sh', [join(root, SCRIPT), src, '000000010000000000000001'], { env: { ...process.env, WAL_ARCHIVE_DIR: archive }, stdio: 'pipe' });
      sh(join(dir, 'seg'));
      expect(readdirSync(archive)).toEqual(['000000010000000000000001']);
      sh(join(dir, 'seg'));
      writeFileSync(join(dir, 'other'), 'other wal bytes');
      expect(() => sh(join(dir, 'other'))).toThrow(/exists and differs/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('restores a base backup plus the archived WAL to a point in time', async () => {
    base = mkdtempSync(join(tmpdir(), 'tokenmeter-pitr-'));
    const dataDir = join(base, 'data');
    const archive = join(base, 'wal-archive');
    const backup = join(base, 'backup');
    const sock = join(base, 'sock');
    mkdirSync(sock);
    copyFileSync(join(root, SCRIPT), join(base, 'archive-wal.sh'));
    chmodSync(join(base, 'archive-wal.sh'), 0o755);
    // The compose file's pg_hba.conf, so the replication line pg_basebackup needs is the shipped one.
    writeFileSync(join(base, 'pg_hba.conf'), readRepoFile('docs/production/postgres/pg_hba.conf'));
    chmodSync(base, 0o755);
    own(base);

    // A password, as in the compose file (POSTGRES_PASSWORD): the shipped pg_hba.conf asks for it over the network.
    writeFileSync(join(base, 'pwfile'), `${PASSWORD}\n`);
    own(base);
    await asPostgres(bin('initdb'), ['-D', dataDir, '-U', 'tokenmeter', `--pwfile=${join(base, 'pwfile')}`, '--no-sync', '-E', 'UTF8', '--locale=C']);
    const port = await freePort();
    // The compose file's settings (archive_command through the script, with the archive directory of this test).
    const options = [
      `-p ${port} -k ${sock} -c listen_addresses=127.0.0.1`,
      '-c wal_level=replica -c archive_mode=on -c archive_timeout=60',
      `-c "archive_command=WAL_ARCHIVE_DIR=${archive} sh ${join(base, 'archive-wal.sh')} %p %f"`,
      `-c hba_file=${join(base, 'pg_hba.conf')}`,
    ].join(' ');
    servers.push({ dataDir });
    await asPostgres(pgCtl!, ['-D', dataDir, '-l', join(base, 'primary.log'), '-o', options, '-w', 'start']);
    const psql = (sql: string, p = port) =>
      asPostgres(bin('psql'), ['-h', '127.0.0.1', '-p', String(p), '-U', 'tokenmeter', '-d', 'postgres', '-v', 'ON_ERROR_STOP=1', '-tAc', sql], {
        PGPASSWORD: PASSWORD,
      }).then((s) => s.trim());

    await psql('CREATE TABLE calls (id int PRIMARY KEY, note text)');
    await psql(`INSERT INTO calls SELECT g, 'before the backup' FROM generate_series(1, 100) g`);
    // What postgres-backup runs (to a directory of this test).
    await asPostgres(bin('pg_basebackup'), ['-h', '127.0.0.1', '-p', String(port), '-U', 'tokenmeter', '-D', backup, '-Ft', '-z', '-X', 'stream', '--checkpoint=fast'], {
      PGPASSWORD: PASSWORD,
    });
    expect(existsSync(join(backup, 'base.tar.gz'))).toBe(true);

    await psql(`INSERT INTO calls SELECT g, 'after the backup, before the target' FROM generate_series(101, 150) g`);
    await psql('SELECT pg_sleep(1.1)');
    const target = await psql(`SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'`);
    await psql('SELECT pg_sleep(1.1)');
    await psql(`INSERT INTO calls SELECT g, 'after the target' FROM generate_series(151, 180) g`);
    // Close the segment so the archiver ships it, and wait for it to land.
    const segment = await psql('SELECT pg_walfile_name(pg_switch_wal())');
    const deadline = Date.now() + 30_000;
    while (!existsSync(join(archive, segment)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    expect(existsSync(join(archive, segment)), `archived ${segment}`).toBe(true);
    expect(await psql('SELECT failed_count FROM pg_stat_archiver')).toBe('0');
    await asPostgres(pgCtl!, ['-D', dataDir, '-m', 'fast', '-w', 'stop']);
    servers.pop();

    // The restore, as the README's steps 2 and 3 say.
    const restored = join(base, 'restored');
    mkdirSync(join(restored, 'pg_wal'), { recursive: true });
    execFileSync('tar', ['-xzf', join(backup, 'base.tar.gz'), '-C', restored]);
    execFileSync('tar', ['-xzf', join(backup, 'pg_wal.tar.gz'), '-C', join(restored, 'pg_wal')]);
    appendFileSync(
      join(restored, 'postgresql.auto.conf'),
      `restore_command = 'cp ${archive}/%f %p'\nrecovery_target_time = '${target}'\nrecovery_target_action = 'promote'\narchive_mode = off\n`,
    );
    writeFileSync(join(restored, 'recovery.signal'), '');
    chmodSync(restored, 0o700);
    own(restored);
    const port2 = await freePort();
    servers.push({ dataDir: restored });
    await asPostgres(pgCtl!, ['-D', restored, '-l', join(base, 'restored.log'), '-o', `-p ${port2} -k ${sock} -c listen_addresses=127.0.0.1 -c hba_file=${join(base, 'pg_hba.conf')}`, '-w', '-t', '120', 'start']);

    // Promoted once the target is reached (pg_ctl -w returns when it accepts read-only connections, in recovery).
    const promoted = Date.now() + 60_000;
    while ((await psql('SELECT pg_is_in_recovery()', port2)) === 't' && Date.now() < promoted) await new Promise((r) => setTimeout(r, 250));
    // Everything committed before the target, nothing after it; accepts writes.
    expect(await psql('SELECT count(*) FROM calls', port2)).toBe('150');
    expect(await psql(`SELECT count(*) FROM calls WHERE note = 'after the target'`, port2)).toBe('0');
    expect(await psql('SELECT pg_is_in_recovery()', port2)).toBe('f');
    await psql(`INSERT INTO calls VALUES (181, 'written after the restore')`, port2);
  }, 180_000);
});
